#!/usr/bin/env python3
"""The local control plane and AWS emulator, started by one command.

    e2e/harness.py build            build/cache what is missing, then exit
    e2e/harness.py gitops-tools     build/cache the GitOps health tools
                                    (e2e/gitops) and print their paths as JSON
    e2e/harness.py chart-tools      build/cache helm and kustomize (e2e/helm)
                                    and print their paths as JSON
    e2e/harness.py up [options]     build what is missing, start etcd,
                                    kube-apiserver and the AWS emulator on free
                                    loopback ports, seed the emulator, write a
                                    kubeconfig and an env file, and stay up until
                                    SIGINT/SIGTERM (or stdin EOF with
                                    --exit-on-stdin-eof); then stop everything
                                    and remove the run directory (unless
                                    --keep-dir).

The last line printed on stdout before serving is `harness ready <dir>/harness.json`;
that JSON (and `<dir>/env`, for `source`) names every endpoint and file.

This file starts on the system python3 and re-executes itself inside the
project virtualenv (.cache/venv) once that exists, because the certificates
and the emulator seeding need packages from e2e/requirements.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parent
REPO_DIR = E2E_DIR.parent
CACHE_DIR = Path(os.environ.get("IAM_OPERATOR_CACHE", REPO_DIR / ".cache"))
VENV_DIR = CACHE_DIR / "venv"
VENV_PYTHON = VENV_DIR / "bin" / "python"
KUBE_BIN_MODULE = E2E_DIR / "kube-bin"
GITOPS_MODULE = E2E_DIR / "gitops"
# The GitOps health tools (e2e/gitops/cmd/*) and the key each has in the
# JSON `gitops-tools` prints.
GITOPS_TOOLS = {"flux-apply": "fluxApply", "lua-health": "luaHealth"}
HELM_MODULE = E2E_DIR / "helm"
# helm and kustomize, built from the upstream main packages e2e/helm pins,
# and the key each has in the JSON `chart-tools` prints.
CHART_TOOLS = {
    "helm": ("helm.sh/helm/v4/cmd/helm", "helm"),
    "kustomize": ("sigs.k8s.io/kustomize/kustomize/v5", "kustomize"),
}
REQUIREMENTS = E2E_DIR / "requirements.txt"

# The release the Go wrapper module pins; kept in one place with go.mod by
# reading it from there, so a bump of go.mod cannot leave a stale version here.
KUBE_PACKAGES = {
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kubectl": "k8s.io/kubernetes/cmd/kubectl",
    "etcd": "go.etcd.io/etcd/server/v3",
}

DEFAULT_CLUSTER = "iam-operator-local"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
# Where config/base (the chart's default rendering) installs the operator.
OPERATOR_NAMESPACE = "iam-operator"
OPERATOR_SERVICE_ACCOUNT = "iam-operator"
# Where the test command collects a run's evidence (emulator call logs, RBAC
# refusals) for the checks after cargo test.
POLICY_PROOF_DIR_ENV = "IAM_OPERATOR_POLICY_PROOF_DIR"
START_TIMEOUT_S = float(os.environ.get("IAM_OPERATOR_HARNESS_START_TIMEOUT", "90"))


def log(msg: str) -> None:
    print(f"[harness] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# build: the virtualenv and the Kubernetes binaries, cached by content hash
# --------------------------------------------------------------------------


def file_digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def ensure_venv() -> None:
    stamp = VENV_DIR / ".requirements-digest"
    want = file_digest(REQUIREMENTS)
    if VENV_PYTHON.exists() and stamp.exists() and stamp.read_text() == want:
        return
    log(f"creating virtualenv {VENV_DIR} from {REQUIREMENTS.name}")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(VENV_DIR)], check=True)
    pip = [str(VENV_PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(want)
    log(f"virtualenv ready in {time.monotonic() - started:.0f}s")


def kube_release() -> str:
    for line in (KUBE_BIN_MODULE / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "k8s.io/kubernetes":
            return parts[1]
    raise SystemExit("e2e/kube-bin/go.mod does not require k8s.io/kubernetes")


def kube_bin_dir() -> Path:
    digest = file_digest(KUBE_BIN_MODULE / "go.mod", KUBE_BIN_MODULE / "go.sum")
    return CACHE_DIR / "kube-bin" / f"{kube_release()}-{digest}"


def go_build(module: Path, out: Path, targets: dict[str, tuple[str, str]], needs: str) -> None:
    """Builds each missing `name: (package, ldflags)` of `module` into `out`,
    through a staging directory so that an interrupted build never leaves a
    half-written binary where the cache is looked up."""
    missing = [name for name in targets if not (out / name).exists()]
    if not missing:
        return
    if shutil.which("go") is None:
        raise SystemExit(f"the Go toolchain is needed to build {needs}")
    staging = out.with_name(out.name + ".partial")
    staging.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
    for name in missing:
        package, ldflags = targets[name]
        log(f"building {name} ({package}) from Go modules; cold builds take minutes")
        started = time.monotonic()
        subprocess.run(
            ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(staging / name), package],
            cwd=module,
            env=env,
            check=True,
        )
        log(f"built {name} in {time.monotonic() - started:.0f}s")
    out.mkdir(parents=True, exist_ok=True)
    for name in missing:
        (staging / name).replace(out / name)
    shutil.rmtree(staging, ignore_errors=True)


def ensure_kube_binaries() -> Path:
    out = kube_bin_dir()
    release = kube_release()
    major, minor = release.lstrip("v").split(".")[:2]
    # Without these the binaries report v0.0.0-master and feature gates fall
    # back to compiled-in defaults instead of the release's.
    version_pkg = "k8s.io/component-base/version"
    ldflags = " ".join(
        [
            "-s -w",
            f"-X {version_pkg}.gitVersion={release}",
            f"-X {version_pkg}.gitMajor={major}",
            f"-X {version_pkg}.gitMinor={minor}",
            f"-X {version_pkg}.gitTreeState=clean",
        ]
    )
    targets = {name: (package, ldflags) for name, package in KUBE_PACKAGES.items()}
    go_build(KUBE_BIN_MODULE, out, targets, "kube-apiserver, etcd and kubectl")
    return out


def gitops_bin_dir() -> Path:
    # Keyed on the module's go.sum and its own sources: an edited program
    # must not be served from a stale build.
    sources = sorted(GITOPS_MODULE.rglob("*.go"))
    digest = file_digest(GITOPS_MODULE / "go.mod", GITOPS_MODULE / "go.sum", *sources)
    return CACHE_DIR / "gitops-bin" / digest


def ensure_gitops_tools() -> dict[str, str]:
    """Flux's apply-and-wait library and Argo CD's Lua interpreter, built
    into two small programs the GitOps health test drives."""
    out = gitops_bin_dir()
    targets = {name: (f"./cmd/{name}", "-s -w") for name in GITOPS_TOOLS}
    go_build(GITOPS_MODULE, out, targets, "the GitOps health tools (e2e/gitops)")
    return {key: str(out / name) for name, key in GITOPS_TOOLS.items()}


def module_version(module: Path, path: str) -> str:
    for line in (module / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == path:
            return parts[1]
    raise SystemExit(f"{module}/go.mod does not require {path}")


def chart_tools_dir() -> Path:
    # Keyed on the pinned versions only: the module has no sources of its own.
    digest = file_digest(HELM_MODULE / "go.mod", HELM_MODULE / "go.sum")
    return CACHE_DIR / "chart-tools" / digest


def ensure_chart_tools() -> dict[str, str]:
    """helm (v4) and kustomize, to lint, render and compare the chart and the
    kustomize base (tests/chart.rs)."""
    out = chart_tools_dir()
    # helm's release scripts stamp its full version; without it `helm
    # version` says only v4.3.
    helm_version = module_version(HELM_MODULE, "helm.sh/helm/v4")
    ldflags = {"helm": f"-s -w -X helm.sh/helm/v4/internal/version.version={helm_version}", "kustomize": "-s -w"}
    targets = {name: (package, ldflags[name]) for name, (package, _) in CHART_TOOLS.items()}
    go_build(HELM_MODULE, out, targets, "helm and kustomize (e2e/helm)")
    return {key: str(out / name) for name, (_, key) in CHART_TOOLS.items()}


def reexec_in_venv() -> None:
    if Path(sys.prefix).resolve() == VENV_DIR.resolve():
        return
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])


# --------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------


def write_pki(pki: Path) -> None:
    """One CA signs the serving cert and the client certs; the service-account
    signing key is RSA because that is what EKS issuers use (RS256)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=7)

    def write_key(key, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    def write_cert(cert, path: Path) -> None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def name(common: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("iam-operator-harness-ca")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_key(ca_key, pki / "ca.key")
    write_cert(ca, pki / "ca.crt")

    def leaf(subject: x509.Name, usage, sans=None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    serving_key, serving = leaf(
        name("kube-apiserver"),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    write_key(serving_key, pki / "apiserver.key")
    write_cert(serving, pki / "apiserver.crt")

    # Full access for setup and tests. The operator authenticates as its
    # ServiceAccount instead (install_operator_identity).
    admin_key, admin = leaf(name("admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH)
    write_key(admin_key, pki / "admin.key")
    write_cert(admin, pki / "admin.crt")

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_key(sa_key, pki / "sa.key")
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def write_kubeconfig(path: Path, server: str, pki: Path, user: str, credentials: dict) -> None:
    import base64

    ca = base64.b64encode((pki / "ca.crt").read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "harness", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "harness", "context": {"cluster": "harness", "user": user, "namespace": "default"}}],
        "current-context": "harness",
    }
    # JSON is valid YAML, and kubeconfig loaders accept it.
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def client_certificate(pki: Path, user: str) -> dict:
    import base64

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    return {"client-certificate-data": b64(pki / f"{user}.crt"), "client-key-data": b64(pki / f"{user}.key")}


def install_operator_identity(kubectl: Path, admin_kubeconfig: Path) -> str:
    """The operator's ServiceAccount and RBAC exactly as an install makes them:
    config/base, which tests/chart.rs keeps equal to the Helm chart's default
    rendering, built by kubectl's own kustomize. Everything but the CRDs (a
    test decides when they appear: readiness waits for them). The Deployment
    is applied too and never runs (no kubelet). Returns a TokenRequest token
    for that ServiceAccount, so the operator runs with the chart's
    permissions and nothing more (but e2e/test-leases.yaml): a missing rule
    fails a test."""

    def run(*argv: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(kubectl), "--kubeconfig", str(admin_kubeconfig), *argv], input=stdin, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(argv[:3])} failed: {done.stderr.strip()}")
        return done.stdout

    import yaml

    rendered = yaml.safe_load_all(run("kustomize", str(REPO_DIR / "config" / "base")))
    objects = [d for d in rendered if d and d["kind"] != "CustomResourceDefinition"]
    run("apply", "--server-side", "--field-manager=harness", "-f", "-", stdin=yaml.safe_dump_all(objects))
    # Per-launch Lease names for the tests' operators (see the file).
    run("apply", "--server-side", "--field-manager=harness", "-f", str(E2E_DIR / "test-leases.yaml"))
    # As long as the PKI (7 days): tests and a quick start never outlive it.
    return run(
        "create", "token", OPERATOR_SERVICE_ACCOUNT, "-n", OPERATOR_NAMESPACE, "--duration=168h"
    ).strip()


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    """Runs in the child before exec: if the harness is killed outright
    (SIGKILL), the kernel kills its servers too instead of orphaning them."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    # Own process group: a Ctrl-C reaches the harness, which then stops the
    # children in order, rather than every process at once.
    os.setpgid(0, 0)


class Processes:
    def __init__(self, logs: Path):
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict | None = None, stdout=None) -> subprocess.Popen:
        log_file = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else log_file,
            stderr=log_file,
            env=env,
            preexec_fn=die_with_parent,
        )
        self.running.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.running:
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}; end of its log:\n{tail}")

    def stop_all(self) -> None:
        # Reverse start order: the apiserver stops before its etcd goes away.
        for name, proc in reversed(self.running):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    log(f"{name} ignored SIGTERM, killing it")
                    proc.kill()
                    proc.wait()
        self.running.clear()


def wait_until(what: str, probe, procs: Processes, timeout_s: float = START_TIMEOUT_S) -> float:
    started = time.monotonic()
    last_error = None
    while time.monotonic() - started < timeout_s:
        procs.check_alive()
        try:
            if probe():
                return time.monotonic() - started
        except (OSError, urllib.error.URLError, ssl.SSLError) as e:
            last_error = e
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout_s:.0f}s (last error: {last_error})")


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return resp.status == 200
    except urllib.error.HTTPError:
        return False


# --------------------------------------------------------------------------
# up
# --------------------------------------------------------------------------


def start_etcd(procs: Processes, bins: Path, run_dir: Path) -> str:
    client_url = f"http://127.0.0.1:{free_port()}"
    peer_url = f"http://127.0.0.1:{free_port()}"
    procs.start(
        "etcd",
        [
            str(bins / "etcd"),
            "--name=harness",
            f"--data-dir={run_dir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=harness={peer_url}",
            # Test data is thrown away; fsync only costs start time and IO.
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
    )
    return client_url


def start_emulator(procs: Processes, run_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": DEFAULT_REGION,
        "PYTHONUNBUFFERED": "1",
    }
    proof_dir = os.environ.get(POLICY_PROOF_DIR_ENV)
    if proof_dir:
        # The test command proves the operator's AWS policy against every
        # call of the run: one log per emulator, named after its run dir.
        Path(proof_dir).mkdir(parents=True, exist_ok=True)
        env["EMULATOR_CALL_LOG_FILE"] = str(Path(proof_dir) / f"calls-{run_dir.name}.jsonl")
    return procs.start(
        "emulator",
        [str(VENV_PYTHON), str(E2E_DIR / "emulator" / "server.py"), "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
    )


def read_emulator_url(proc: subprocess.Popen, procs: Processes) -> str:
    # The emulator picks its own port (no bind race) and announces it.
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode(errors="replace").strip()
        if line.startswith("emulator ready on "):
            return line.removeprefix("emulator ready on ")
    procs.check_alive()
    raise RuntimeError("emulator closed stdout before announcing its address")


def start_apiserver(procs: Processes, bins: Path, run_dir: Path, etcd_url: str) -> tuple[str, int]:
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    pki = run_dir / "pki"
    # Every request's metadata, so tests can count what a client wrote
    # (a resync in sync must write nothing).
    audit_policy = run_dir / "audit-policy.yaml"
    audit_policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"
    )
    procs.start(
        "kube-apiserver",
        [
            str(bins / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=RBAC",
            # The issuer is the apiserver itself, so its discovery document and
            # JWKS are really served, as an EKS issuer's are.
            f"--service-account-issuer={url}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            # No controller-manager runs, so nothing would create the default
            # ServiceAccount this plugin insists on.
            "--disable-admission-plugins=ServiceAccount",
            # One apiserver and no Service network: nothing to reconcile.
            "--endpoint-reconciler-type=none",
            f"--audit-policy-file={audit_policy}",
            f"--audit-log-path={run_dir / 'logs' / 'audit.log'}",
            "--audit-log-mode=blocking",
            # Rotated (by default at 100 MB) the log would lose what the
            # RBAC check and the bench read from it mid-run.
            "--audit-log-maxsize=1000000",
            "--v=1",
        ],
    )
    return url, port


def seed_emulator(
    emulator_url: str, cluster: str, region: str, issuer: str, oidc_provider: bool, pod_identity_agent: bool
) -> str | None:
    def control(method: str, path: str, body: dict) -> None:
        req = urllib.request.Request(
            f"{emulator_url}/_emulator/{path}",
            data=json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    control("POST", "clusters", {"name": cluster, "region": region, "issuer": issuer})
    if pod_identity_agent:
        # As on a cluster made for Pod Identity: without the agent no binding
        # is Ready.
        control("PUT", f"clusters/{cluster}/addons/eks-pod-identity-agent", {"status": "ACTIVE", "region": region})
    if not oidc_provider:
        return None
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=emulator_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    # Like `eksctl utils associate-iam-oidc-provider`: the provider's URL is
    # the issuer without its scheme, and the audience IRSA tokens carry.
    arn = iam.create_open_id_connect_provider(
        Url=issuer, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["0" * 40]
    )["OpenIDConnectProviderArn"]
    return arn


def record_rbac_refusals(audit_log: Path) -> None:
    """Every request a ServiceAccount (the operator, under the chart's RBAC)
    made and RBAC refused, written where the test command collects a run's
    evidence; `harness.py rbac-refusals` fails the run on any. The operator
    may log a refused Event and go on, so a test alone could miss it."""
    evidence = os.environ.get(POLICY_PROOF_DIR_ENV)
    if not evidence:
        return
    requests, refused = 0, []
    # A harness that failed before its apiserver started has no log: it
    # still answers for itself, with nothing.
    lines = audit_log.read_text(errors="replace").splitlines() if audit_log.exists() else []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not event.get("user", {}).get("username", "").startswith("system:serviceaccount:"):
            continue
        requests += 1
        # The authorizer's own verdict: a 403 from admission (such as a
        # namespace being deleted refusing new Events) is not RBAC's.
        if event.get("annotations", {}).get("authorization.k8s.io/decision") == "forbid":
            ref = event.get("objectRef", {})
            refused.append(
                f"{event['user']['username']}: {event.get('verb')} {ref.get('resource', '')}"
                f"{'/' + ref['subresource'] if ref.get('subresource') else ''}"
                f" {ref.get('namespace', '')}/{ref.get('name', '')}"
            )
    out = Path(evidence) / f"kube-requests-{audit_log.parent.parent.name}.json"
    out.write_text(json.dumps({"requests": requests, "refused": refused}, indent=2))


def rbac_evidence_expected(run_dir: Path) -> None:
    """Says, at start, that this harness will leave RBAC evidence, so the
    check after the run waits for a harness still stopping instead of
    judging without it."""
    evidence = os.environ.get(POLICY_PROOF_DIR_ENV)
    if evidence:
        Path(evidence).mkdir(parents=True, exist_ok=True)
        (Path(evidence) / f"kube-requests-{run_dir.name}.expected").touch()


def cmd_rbac_refusals(evidence: Path) -> int:
    deadline = time.monotonic() + 60
    while True:
        missing = [
            marker.name
            for marker in evidence.glob("kube-requests-*.expected")
            if not marker.with_suffix(".json").exists()
        ]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if missing:
        print(f"no RBAC evidence from harnesses that started: {', '.join(missing)}")
        return 1
    files = sorted(evidence.glob("kube-requests-*.json"))
    runs = [json.loads(f.read_text()) for f in files]
    requests = sum(r["requests"] for r in runs)
    refused = [line for r in runs for line in r["refused"]]
    print(f"{requests} Kubernetes requests by the operator's ServiceAccounts in {len(runs)} harnesses, "
          f"{len(refused)} refused by RBAC")
    for line in refused:
        print(f"  refused: {line}")
    return 1 if refused or not runs else 0


def cmd_up(args: argparse.Namespace) -> int:
    bins = ensure_kube_binaries()
    run_dir = Path(args.dir or tempfile.mkdtemp(prefix="iam-operator-harness-")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    procs = Processes(logs)

    stopping = {"signal": None}

    def on_signal(signum, _frame):
        stopping["signal"] = signum
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    started = time.monotonic()
    try:
        emulator = start_emulator(procs, run_dir)
        write_pki(run_dir / "pki")
        rbac_evidence_expected(run_dir)
        etcd_url = start_etcd(procs, bins, run_dir)
        etcd_ready = wait_until("etcd", lambda: http_ok(f"{etcd_url}/health"), procs)
        api_url, _ = start_apiserver(procs, bins, run_dir, etcd_url)

        tls = ssl.create_default_context(cafile=str(run_dir / "pki" / "ca.crt"))
        tls.load_cert_chain(str(run_dir / "pki" / "admin.crt"), str(run_dir / "pki" / "admin.key"))
        api_ready = wait_until("kube-apiserver", lambda: http_ok(f"{api_url}/readyz", tls), procs)

        emulator_url = read_emulator_url(emulator, procs)
        oidc_arn = seed_emulator(
            emulator_url,
            args.cluster_name,
            args.region,
            api_url,
            not args.no_oidc_provider,
            not args.no_pod_identity_agent,
        )

        kubeconfig = run_dir / "kubeconfig"
        operator_kubeconfig = run_dir / "operator.kubeconfig"
        pki = run_dir / "pki"
        write_kubeconfig(kubeconfig, api_url, pki, "admin", client_certificate(pki, "admin"))
        token = install_operator_identity(bins / "kubectl", kubeconfig)
        write_kubeconfig(operator_kubeconfig, api_url, pki, OPERATOR_SERVICE_ACCOUNT, {"token": token})

        info = {
            "dir": str(run_dir),
            "kubeconfig": str(kubeconfig),
            "operatorKubeconfig": str(operator_kubeconfig),
            # What the operator's requests carry in the audit log, and the
            # namespace it runs in (POD_NAMESPACE: its Lease lives there).
            "operatorUser": f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}",
            "operatorNamespace": OPERATOR_NAMESPACE,
            "kubectl": str(bins / "kubectl"),
            "auditLog": str(run_dir / "logs" / "audit.log"),
            "apiserverUrl": api_url,
            "issuer": api_url,
            "emulatorUrl": emulator_url,
            "clusterName": args.cluster_name,
            "region": args.region,
            "accountId": DEFAULT_ACCOUNT,
            "oidcProviderArn": oidc_arn,
            "kubernetesVersion": kube_release(),
            "pids": {name: proc.pid for name, proc in procs.running},
            "timings": {
                "etcdReadySeconds": round(etcd_ready, 2),
                "apiserverReadySeconds": round(api_ready, 2),
                "totalSeconds": round(time.monotonic() - started, 2),
            },
        }
        (run_dir / "harness.json").write_text(json.dumps(info, indent=2))
        env_lines = {
            "KUBECONFIG": kubeconfig,
            "KUBECTL": bins / "kubectl",
            "AWS_ENDPOINT_URL": emulator_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": args.region,
            "AWS_DEFAULT_REGION": args.region,
            "IAM_OPERATOR_CLUSTER_NAME": args.cluster_name,
            "IAM_OPERATOR_EMULATOR_URL": emulator_url,
            "IAM_OPERATOR_HARNESS_DIR": run_dir,
            "IAM_OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
        }
        (run_dir / "env").write_text("".join(f"export {k}='{v}'\n" for k, v in env_lines.items()))
        log(
            f"up in {info['timings']['totalSeconds']}s: apiserver {api_url}, emulator {emulator_url}, "
            f"cluster {args.cluster_name} ({args.region})"
        )
        print(f"harness ready {run_dir / 'harness.json'}", flush=True)

        if args.exit_on_stdin_eof:
            # The test process holds our stdin; when it exits for any reason
            # (including a panic or SIGKILL) the pipe closes and we clean up.
            while sys.stdin.buffer.read(4096):
                pass
        else:
            while True:
                procs.check_alive()
                time.sleep(1)
        return 0
    except KeyboardInterrupt:
        return 0 if stopping["signal"] is not None else 130
    except Exception as e:  # noqa: BLE001 - report any start failure, then clean up
        log(f"failed: {e}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        record_rbac_refusals(run_dir / "logs" / "audit.log")
        if not args.keep_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
        log("stopped")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build and cache the binaries and the virtualenv")
    sub.add_parser("gitops-tools", help="build or reuse the GitOps health tools; print their paths as JSON")
    sub.add_parser("chart-tools", help="build or reuse helm and kustomize; print their paths as JSON")
    up = sub.add_parser("up", help="start the control plane and the emulator")
    up.add_argument("--dir", help="run directory (default: a new temporary one, removed on exit)")
    up.add_argument(
        "--keep-dir",
        action="store_true",
        # Tests start the harness themselves: the variable is how a failing
        # test run keeps its logs for a look afterwards.
        default=os.environ.get("IAM_OPERATOR_HARNESS_KEEP_DIR", "") not in ("", "0", "false"),
        help="keep the run directory (logs, etcd data) on exit; also IAM_OPERATOR_HARNESS_KEEP_DIR=1",
    )
    up.add_argument("--cluster-name", default=DEFAULT_CLUSTER)
    up.add_argument("--region", default=DEFAULT_REGION)
    up.add_argument(
        "--no-oidc-provider", action="store_true", help="do not create the IAM OIDC provider for the issuer"
    )
    up.add_argument(
        "--no-pod-identity-agent",
        action="store_true",
        help="do not install the eks-pod-identity-agent add-on on the cluster",
    )
    up.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes")
    refusals = sub.add_parser(
        "rbac-refusals", help="fail if RBAC refused any request of the operator in the collected harness runs"
    )
    refusals.add_argument("evidence", type=Path, help=f"the {POLICY_PROOF_DIR_ENV} of the test run")
    args = parser.parse_args()

    ensure_venv()
    reexec_in_venv()
    if args.command == "build":
        print(ensure_kube_binaries())
        ensure_gitops_tools()
        ensure_chart_tools()
        return 0
    if args.command == "gitops-tools":
        print(json.dumps(ensure_gitops_tools()))
        return 0
    if args.command == "chart-tools":
        print(json.dumps(ensure_chart_tools()))
        return 0
    if args.command == "rbac-refusals":
        return cmd_rbac_refusals(args.evidence)
    return cmd_up(args)


if __name__ == "__main__":
    sys.exit(main())
