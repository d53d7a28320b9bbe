from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

E2E_DIR = Path(__file__).resolve().parents[2]
SERVER = E2E_DIR / "emulator" / "server.py"
sys.path.insert(0, str(E2E_DIR))

ACCOUNT = "123456789012"
REGION = "us-east-1"
READY_PREFIX = "emulator ready on "
START_TIMEOUT_S = 60


class Emulator:
    """A running emulator, seen from a test: raw HTTP, control API and boto3 clients."""

    def __init__(self, url: str) -> None:
        self.url = url

    def http(
        self,
        method: str,
        path: str,
        body: bytes | str | dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    def control(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        status, _, raw = self.http(method, "/_emulator" + path, body)
        return status, json.loads(raw)

    def ok(self, method: str, path: str, body: dict | None = None) -> Any:
        status, payload = self.control(method, path, body)
        assert status == 200, payload
        return payload

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        return self.ok("GET", f"/calls?since={since}")["calls"]

    def client(self, service: str, region: str = REGION, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(**config) if config else None,
        )

    def sigv4_headers(self, service: str) -> dict[str, str]:
        # The emulator routes on the credential scope and never checks signatures.
        return {
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential=AKIATESTING/20240101/{REGION}/{service}/aws4_request, "
                "SignedHeaders=host, Signature=0"
            )
        }


@pytest.fixture(scope="session")
def emulator_process():
    env = dict(
        os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION
    )
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd="/",  # the script must not depend on the working directory
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        line = lines.get(timeout=START_TIMEOUT_S)
    except queue.Empty:
        proc.kill()
        pytest.fail("emulator did not print its ready line")
    assert line.startswith(READY_PREFIX), line
    url = line[len(READY_PREFIX) :].strip()
    yield proc, url
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("emulator did not stop on SIGTERM")
    assert code == 0, f"emulator exited with {code}"


@pytest.fixture
def emu(emulator_process) -> Emulator:
    """The shared emulator with no faults, no IAM propagation delays and an empty call log.

    A full reset costs moto most of a second (IAM re-loads its managed
    policies on the next call), so tests share moto's state and stay apart
    by unique names instead; test_control_api covers reset itself.
    """
    emulator = Emulator(emulator_process[1])
    emulator.ok("DELETE", "/faults")
    emulator.ok("DELETE", "/calls")
    # A test that set a propagation delay and failed must not leak it.
    emulator.ok("PUT", "/propagation", {"roleVisibleToEksAfterMs": 0, "roleVisibleToIamAfterMs": 0})
    return emulator


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cluster(emu: Emulator) -> str:
    name = unique("cluster")
    emu.ok("POST", "/clusters", {"name": name, "issuer": "https://127.0.0.1:6443"})
    return name


@pytest.fixture
def role_arn(emu: Emulator) -> str:
    return make_role(emu, "pod-role")


def make_role(emu: Emulator, prefix: str) -> str:
    iam = emu.client("iam")
    return iam.create_role(RoleName=unique(prefix), AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"]


TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
)
