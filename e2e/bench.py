#!/usr/bin/env python3
"""Benchmark: iam-operator (release build) on the local harness.

Prints, for each kind (IamServiceAccount, then PodIdentityBinding):
apply-to-Ready latency for single objects and for a burst of N, AWS calls
per create and per no-op resync (from the emulator's call log); then the
operator's memory and CPU. Figures only; nothing is asserted.

    python3 e2e/bench.py [--objects N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
READS = ("Get", "List", "Describe")


def calls_since(emulator: str, seq: int) -> list[dict]:
    with urllib.request.urlopen(f"{emulator}/_emulator/calls?since={seq}") as resp:
        return json.load(resp)["calls"]


def last_seq(emulator: str) -> int:
    calls = calls_since(emulator, 0)
    return calls[-1]["seq"] if calls else 0


def isa_manifest(name: str) -> str:
    return f"""apiVersion: iam-operator.io/v1alpha1
kind: IamServiceAccount
metadata: {{name: {name}}}
spec:
  serviceAccount: {{create: true}}
  policies:
    managed: [arn:aws:iam::aws:policy/ReadOnlyAccess]
    inline:
      read: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: 's3:GetObject', Resource: '*'}}]}}
---
"""


def pib_manifest(name: str) -> str:
    return f"""apiVersion: iam-operator.io/v1alpha1
kind: PodIdentityBinding
metadata: {{name: {name}}}
spec:
  serviceAccountName: {name}
  role: {{}}
  policies:
    managed: [arn:aws:iam::aws:policy/ReadOnlyAccess]
    inline:
      read: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: 's3:GetObject', Resource: '*'}}]}}
---
"""


@dataclass
class Kind:
    resource: str
    manifest: Callable[[str], str]
    # The call every reconcile of one object makes exactly once, late: seeing
    # it N times means all N objects were looked at again.
    resync_marker: str


KINDS = {
    "IamServiceAccount": Kind("isa", isa_manifest, "ListRolePolicies"),
    "PodIdentityBinding": Kind("pib", pib_manifest, "ListPodIdentityAssociations"),
}


def aws_calls(calls: list[dict]) -> list[dict]:
    """The calls reconciles make (STS is only asked at start)."""
    return [c for c in calls if c["service"] in ("iam", "eks")]


def writes(calls: list[dict]) -> list[dict]:
    return [c for c in calls if not c["operation"].startswith(READS)]


def proc_figures(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "rss_mib": int(fields["VmRSS"].split()[0]) / 1024,
        "peak_rss_mib": int(fields["VmHWM"].split()[0]) / 1024,
        "cpu_seconds": (int(stat[11]) + int(stat[12])) / ticks,
    }


def measure(kind: Kind, n: int, kubectl, h: dict, emulator: str, operator_pid: int) -> dict:
    """Single creates, a burst of n, and a no-op resync of the burst."""
    single_ns, burst_ns = f"single-{kind.resource}", f"burst-{kind.resource}"
    kubectl("create", "namespace", single_ns)
    single = []
    for i in range(5):
        started = time.monotonic()
        kubectl("apply", "-n", single_ns, "-f", "-", stdin=kind.manifest(f"one-{i}"))
        kubectl("wait", "-n", single_ns, "--for=condition=Ready", "--timeout=120s", f"{kind.resource}/one-{i}")
        single.append(time.monotonic() - started)

    # A burst of n, as a Git sync would apply them.
    kubectl("create", "namespace", burst_ns)
    mark = last_seq(emulator)
    watch = subprocess.Popen(
        [h["kubectl"], "--kubeconfig", h["kubeconfig"], "get", kind.resource, "-n", burst_ns, "-w", "-o",
         'jsonpath={.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}'],
        stdout=subprocess.PIPE, text=True,
    )
    started = time.monotonic()
    kubectl("apply", "-n", burst_ns, "-f", "-", stdin="".join(kind.manifest(f"b-{i}") for i in range(n)))
    ready_at: dict[str, float] = {}
    for line in watch.stdout:
        parts = line.split()
        if len(parts) == 2 and parts[1] == "True" and parts[0] not in ready_at:
            ready_at[parts[0]] = time.monotonic() - started
            if len(ready_at) == n:
                break
    watch.kill()
    # Reconciles that follow the last status write belong to the create.
    time.sleep(2)
    create_calls = aws_calls(calls_since(emulator, mark))
    rss_after_burst = proc_figures(operator_pid)["rss_mib"]

    # No-op resync of all n: trigger, wait until each object was looked at.
    mark = last_seq(emulator)
    started = time.monotonic()
    kubectl("annotate", "--overwrite", kind.resource, "--all", "-n", burst_ns, "bench/resync=1")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if sum(1 for c in calls_since(emulator, mark) if c["operation"] == kind.resync_marker) >= n:
            break
        time.sleep(0.2)
    resync_seconds = time.monotonic() - started
    time.sleep(2)
    resync_calls = aws_calls(calls_since(emulator, mark))
    return {
        "single": single,
        "ready_at": list(ready_at.values()),
        "burst_total": max(ready_at.values()),
        "create_calls": create_calls,
        "resync_calls": resync_calls,
        "resync_seconds": resync_seconds,
        "rss_after_burst": rss_after_burst,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=50)
    args = parser.parse_args()

    print("building the operator (release)...", file=sys.stderr, flush=True)
    subprocess.run(["cargo", "build", "--quiet", "--release", "--bin", "iam-operator"], cwd=REPO, check=True)

    harness = subprocess.Popen(
        [sys.executable, str(REPO / "e2e/harness.py"), "up", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    info_path = None
    for line in harness.stdout:
        if line.startswith("harness ready "):
            info_path = line.split(" ", 2)[2].strip()
            break
    if info_path is None:
        sys.exit("harness did not start")
    h = json.loads(Path(info_path).read_text())
    emulator = h["emulatorUrl"]

    def kubectl(*argv: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [h["kubectl"], "--kubeconfig", h["kubeconfig"], *argv],
            input=stdin, capture_output=True, text=True, check=True,
        ).stdout

    # The harness installed the operator's ServiceAccount and RBAC; its
    # kubeconfig carries that ServiceAccount's token.
    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    env = {
        **os.environ,
        "KUBECONFIG": h["operatorKubeconfig"],
        "POD_NAMESPACE": h["operatorNamespace"],
        "AWS_ENDPOINT_URL": emulator,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": h["region"],
        "RUST_LOG": "warn",
    }
    operator = subprocess.Popen(
        [str(REPO / "target/release/iam-operator"), "--cluster-name", h["clusterName"], "--metrics-address", "127.0.0.1:0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)
        idle = proc_figures(operator.pid)

        figures = {}
        for kind_name, kind in KINDS.items():
            figures[kind_name] = measure(kind, args.objects, kubectl, h, emulator, operator.pid)
        after = proc_figures(operator.pid)

        n = args.objects
        for kind_name, f in figures.items():
            print(f"{kind_name}:")
            print(f"  apply -> Ready, single (5 runs):  median {statistics.median(f['single']):.2f}s, "
                  f"max {max(f['single']):.2f}s")
            print(f"  apply -> Ready, burst of {n}:      median {statistics.median(f['ready_at']):.2f}s, "
                  f"all Ready after {f['burst_total']:.2f}s ({n / f['burst_total']:.1f} objects/s)")
            print(f"  AWS calls per create:             {len(f['create_calls']) / n:.1f} "
                  f"({len(writes(f['create_calls'])) / n:.1f} writes)")
            print(f"  AWS calls per no-op resync:       {len(f['resync_calls']) / n:.1f} "
                  f"({len(writes(f['resync_calls']))} writes in total)")
            print(f"  no-op resync of all {n}:           {f['resync_seconds']:.2f}s")
            print(f"  operator RSS after burst:         {f['rss_after_burst']:.1f} MiB")
        print(f"operator RSS idle / at the end: {idle['rss_mib']:.1f} / {after['rss_mib']:.1f} MiB "
              f"(peak {after['peak_rss_mib']:.1f} MiB)")
        print(f"operator CPU for all of the above: {after['cpu_seconds']:.2f}s")
    finally:
        operator.terminate()
        operator.wait()
        harness.stdin.close()
        harness.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
