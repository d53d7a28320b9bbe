#!/usr/bin/env python3
"""Benchmark: iam-operator (release build) on the local harness.

For each kind (IamServiceAccount, PodIdentityBinding) it prints, and appends
with the machine's facts to BENCHMARKS.md:

1. latency: one object at a time, apply -> Ready, p50/p90/p99 over
   --samples objects, Ready seen on a watch;
2. throughput: N objects applied at once (each of --sizes, 10000 too with
   --long) until all are Ready, next to the emulator's floor: the same AWS
   calls, grouped per object and in their order, replayed by a plain HTTP
   client with the operator's concurrency and no operator in the loop;
3. AWS calls per create, per no-op resync and per delete (the emulator's
   call log) next to the least each needs;
4. Kubernetes writes per reconcile (the apiserver's audit log over the
   operator's reconcile counter);
5. the operator's RSS (VmRSS, VmHWM) with N of each kind, its CPU while idle
   for a minute after they converged, and the bytes the apiserver sent to
   ServiceAccount watchers.

Each size runs on a fresh operator process. Figures only; nothing is
asserted.

    python3 e2e/bench.py [--sizes 100,1000] [--long] [--samples 100]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import http.client
import json
import os
import platform
import queue
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
READS = ("Get", "List", "Describe")
GROUP = "iam-operator.io/v1alpha1"
MANAGED_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
INLINE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}
# The operator's --max-concurrent-reconciles (its default unless set in the
# environment): the floor's client keeps as many objects in flight.
CONCURRENCY = int(os.environ.get("IAM_OPERATOR_MAX_CONCURRENT_RECONCILES", "8"))


def isa_body(name: str) -> dict:
    return {
        "apiVersion": GROUP,
        "kind": "IamServiceAccount",
        "metadata": {"name": name},
        "spec": {
            "serviceAccount": {"create": True},
            "policies": {"managed": [MANAGED_POLICY], "inline": {"read": INLINE_POLICY}},
        },
    }


def pib_body(name: str) -> dict:
    return {
        "apiVersion": GROUP,
        "kind": "PodIdentityBinding",
        "metadata": {"name": name},
        "spec": {
            "serviceAccountName": name,
            "role": {},
            "policies": {"managed": [MANAGED_POLICY], "inline": {"read": INLINE_POLICY}},
        },
    }


@dataclass
class Kind:
    name: str
    plural: str
    body: Callable[[str], dict]
    # The call every reconcile of one object makes exactly once, late:
    # seeing it N times means all N objects were looked at again.
    resync_marker: str
    # The least a create, a no-op resync and a delete of one object need
    # (two policies: one managed, one inline).
    least_create: str
    least_noop: str
    least_delete: str


KINDS = [
    Kind(
        "IamServiceAccount", "iamserviceaccounts", isa_body, "ListRolePolicies",
        least_create="3 writes (CreateRole, AttachRolePolicy, PutRolePolicy) + 1 read (GetRole)",
        least_noop="4 reads (role, attached, inline list, inline document), 0 writes",
        least_delete="3 writes (DetachRolePolicy, DeleteRolePolicy, DeleteRole)",
    ),
    Kind(
        "PodIdentityBinding", "podidentitybindings", pib_body, "ListPodIdentityAssociations",
        least_create="4 writes (CreateRole, AttachRolePolicy, PutRolePolicy, "
        "CreatePodIdentityAssociation) + 2 reads (GetRole, ListPodIdentityAssociations)",
        least_noop="5 reads (role, attached, inline list, inline document, associations), 0 writes",
        least_delete="4 writes (DeletePodIdentityAssociation, DetachRolePolicy, DeleteRolePolicy, DeleteRole)",
    ),
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# -- Kubernetes ---------------------------------------------------------------


# What a kept-alive connection the server closed while idle raises: the
# request never reached it, so sending it again is safe.
# A kept connection the API server closed while it idled fails on the next
# send (TLS reports the close as an EOF): the request never left.
STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ssl.SSLEOFError)


class Kube:
    """The harness's API server as its admin, over plain HTTPS: kubectl's
    start-up would be most of a single object's latency."""

    def __init__(self, h: dict) -> None:
        pki = Path(h["dir"]) / "pki"
        self.base = h["apiserverUrl"]
        self.tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.tls.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self.address = urllib.parse.urlsplit(self.base)
        self.connections = threading.local()

    def request(self, method: str, path: str, body: dict | None = None,
                content_type: str = "application/json") -> dict:
        """One request on this thread's kept-alive connection, as kubectl or
        a GitOps tool would make it: a TLS handshake per object would load
        the API server more than the operator does. Retries what the API
        server asks to be retried (429) and a kept connection it had closed
        while idle; never one that timed out (the server may have acted)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        for attempt in range(10):
            connection = getattr(self.connections, "https", None)
            if connection is None:
                connection = http.client.HTTPSConnection(
                    self.address.hostname, self.address.port, context=self.tls, timeout=60)
                self.connections.https = connection
            try:
                connection.request(method, path, body=data, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except STALE_CONNECTION:
                connection.close()
                self.connections.https = None
                if attempt >= 2:
                    raise
                continue
            except (http.client.HTTPException, OSError):
                connection.close()
                self.connections.https = None
                raise
            if response.status == 429:
                time.sleep(float(response.getheader("Retry-After") or 1))
                continue
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {response.status}: {payload[:300]!r}")
            return json.loads(payload)
        raise RuntimeError(f"{method} {path}: still refused (429) after 10 attempts")

    def text(self, path: str) -> str:
        req = urllib.request.Request(self.base + path)
        with urllib.request.urlopen(req, context=self.tls, timeout=60) as resp:
            return resp.read().decode()

    def create_namespace(self, name: str) -> None:
        self.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def objects_path(self, kind: Kind, namespace: str) -> str:
        return f"/apis/{GROUP}/namespaces/{namespace}/{kind.plural}"

    def watch_lines(self, path: str, resource_version: str, stop: threading.Event) -> Iterator[dict]:
        url = f"{self.base}{path}?watch=1&resourceVersion={resource_version}&allowWatchBookmarks=false"
        with urllib.request.urlopen(urllib.request.Request(url), context=self.tls) as resp:
            while not stop.is_set():
                line = resp.readline()
                if not line:
                    return
                yield json.loads(line)


class ReadyWatch:
    """When each object of one kind in one namespace was first seen Ready,
    and when each was seen deleted, on a watch started before any apply."""

    def __init__(self, kube: Kube, kind: Kind, namespace: str) -> None:
        self.kube, self.path = kube, kube.objects_path(kind, namespace)
        self.ready: dict[str, float] = {}
        self.deleted: dict[str, float] = {}
        self.changed = threading.Condition()
        self.stop = threading.Event()
        rv = kube.request("GET", self.path)["metadata"]["resourceVersion"]
        self.thread = threading.Thread(target=self._run, args=(rv,), daemon=True)
        self.thread.start()

    def _run(self, rv: str) -> None:
        for event in self.kube.watch_lines(self.path, rv, self.stop):
            now = time.monotonic()
            obj = event.get("object", {})
            name = obj.get("metadata", {}).get("name")
            with self.changed:
                if event.get("type") == "DELETED":
                    self.deleted.setdefault(name, now)
                elif any(c.get("type") == "Ready" and c.get("status") == "True"
                         for c in obj.get("status", {}).get("conditions", [])):
                    self.ready.setdefault(name, now)
                self.changed.notify_all()

    def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(done, timeout)

    def close(self) -> None:
        self.stop.set()


def audit_writes(audit_log: Path, offset: int, user: str) -> tuple[Counter, int]:
    """Writes by `user` in the audit log past `offset`, by resource (Lease
    renewals left out: they are leader election's, not a reconcile's)."""
    counts: Counter = Counter()
    with audit_log.open("rb") as log:
        log.seek(offset)
        for line in log:
            event = json.loads(line)
            if event.get("stage") != "ResponseComplete" or event.get("user", {}).get("username") != user:
                continue
            if event.get("verb") not in ("create", "update", "patch", "delete", "deletecollection"):
                continue
            ref = event.get("objectRef", {})
            resource = ref.get("resource", "?") + ("/" + ref["subresource"] if ref.get("subresource") else "")
            if resource != "leases":
                counts[resource] += 1
        end = log.tell()
    return counts, end


def watch_bytes(kube: Kube) -> dict[str, float]:
    """Bytes the API server has sent to watchers, by resource (older
    servers label the histogram by kind)."""
    sent: dict[str, float] = defaultdict(float)
    for line in kube.text("/metrics").splitlines():
        if line.startswith("apiserver_watch_events_sizes_sum{"):
            label = re.search(r'(?:resource|kind)="([^"]*)"', line)
            if label:
                sent[label.group(1).lower()] += float(line.rsplit(" ", 1)[1])
    return sent


def service_account_watch_bytes(kube: Kube) -> float:
    sent = watch_bytes(kube)
    return sent.get("serviceaccounts", 0.0) + sent.get("serviceaccount", 0.0)


# -- AWS emulator -------------------------------------------------------------


def calls_since(emulator: str, seq: int) -> list[dict]:
    with urllib.request.urlopen(f"{emulator}/_emulator/calls?since={seq}") as resp:
        return json.load(resp)["calls"]


def last_seq(emulator: str) -> int:
    with urllib.request.urlopen(f"{emulator}/_emulator/calls/last", timeout=30) as resp:
        return json.load(resp)["seq"]


def aws_calls(calls: list[dict]) -> list[dict]:
    """The calls reconciles make (STS is only asked at start)."""
    return [c for c in calls if c["service"] in ("iam", "eks")]


def writes(calls: list[dict]) -> list[dict]:
    return [c for c in calls if not c["operation"].startswith(READS)]


class Floor:
    """Replays the operator's calls with a plain client: per object, the
    same operations in the same order, under names of its own; objects
    CONCURRENCY at a time. What the emulator alone costs for that work."""

    def __init__(self, h: dict) -> None:
        self.url, self.region, self.cluster = h["emulatorUrl"], h["region"], h["clusterName"]
        self.address = urllib.parse.urlsplit(self.url)
        self.connections = threading.local()
        self.account, self.provider = h["accountId"], h.get("oidcProviderArn") or ""
        self.trust = json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                           "Action": ["sts:AssumeRole", "sts:TagSession"]}],
        })

    def _headers(self, service: str) -> dict[str, str]:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        return {
            "X-Amz-Date": stamp,
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/{stamp[:8]}/{self.region}/{service}/aws4_request, "
                             "SignedHeaders=host;x-amz-date, Signature=0",
        }

    def _send(self, service: str, method: str, path: str, body: bytes | None,
              content_type: str) -> tuple[int, bytes]:
        """On this thread's kept-alive connection, as the operator's SDK
        keeps its own: a connection per call would slow the floor."""
        headers = {**self._headers(service), "Content-Type": content_type}
        for attempt in range(3):
            connection = getattr(self.connections, "http", None)
            if connection is None:
                connection = http.client.HTTPConnection(self.address.hostname, self.address.port, timeout=60)
                self.connections.http = connection
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            except STALE_CONNECTION:
                connection.close()
                self.connections.http = None
                if attempt >= 2:
                    raise
            except (http.client.HTTPException, OSError):
                connection.close()
                self.connections.http = None
                raise
        raise AssertionError("unreachable")

    def _iam(self, action: str, **params: str) -> int:
        form = urllib.parse.urlencode({"Action": action, "Version": "2010-05-08", **params}).encode()
        return self._send("iam", "POST", "/", form, "application/x-www-form-urlencoded; charset=utf-8")[0]

    def _eks(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        return self._send("eks", method, f"/clusters/{self.cluster}{path}", data, "application/json")

    def _call(self, operation: str, role: str, subject: str, association: list[str]) -> int:
        namespace, account = subject.split("/", 1)
        policy = {"PolicyName": "read"}
        if operation in ("GetRole", "DeleteRole", "ListAttachedRolePolicies", "ListRolePolicies", "ListRoleTags"):
            return self._iam(operation, RoleName=role)
        if operation == "CreateRole":
            return self._iam(operation, RoleName=role, AssumeRolePolicyDocument=self.trust,
                             **{"Tags.member.1.Key": "bench", "Tags.member.1.Value": "floor"})
        if operation in ("AttachRolePolicy", "DetachRolePolicy"):
            return self._iam(operation, RoleName=role, PolicyArn=MANAGED_POLICY)
        if operation == "PutRolePolicy":
            return self._iam(operation, RoleName=role, PolicyDocument=json.dumps(INLINE_POLICY), **policy)
        if operation in ("GetRolePolicy", "DeleteRolePolicy"):
            return self._iam(operation, RoleName=role, **policy)
        if operation == "UpdateAssumeRolePolicy":
            return self._iam(operation, RoleName=role, PolicyDocument=self.trust)
        if operation == "TagRole":
            return self._iam(operation, RoleName=role, **{"Tags.member.1.Key": "bench", "Tags.member.1.Value": "floor"})
        if operation == "GetOpenIDConnectProvider":
            return self._iam(operation, OpenIDConnectProviderArn=self.provider)
        if operation == "ListPodIdentityAssociations":
            query = urllib.parse.urlencode({"namespace": namespace, "serviceAccount": account})
            return self._eks("GET", f"/pod-identity-associations?{query}")[0]
        if operation == "CreatePodIdentityAssociation":
            status, answer = self._eks("POST", "/pod-identity-associations", {
                "namespace": namespace, "serviceAccount": account,
                "roleArn": f"arn:aws:iam::{self.account}:role/{role}", "tags": {"bench": "floor"}})
            if status == 200:
                association.append(json.loads(answer)["association"]["associationId"])
            return status
        if operation in ("DescribePodIdentityAssociation", "DeletePodIdentityAssociation"):
            method = "GET" if operation.startswith("Describe") else "DELETE"
            return self._eks(method, f"/pod-identity-associations/{association[0] if association else 'a-none'}")[0]
        raise ValueError(f"the floor cannot replay {operation}")

    def replay(self, chains: list[list[str]], tag: str) -> tuple[float, int, Counter]:
        """Seconds for all chains, calls made, and their statuses."""
        statuses: Counter = Counter()
        lock = threading.Lock()

        def run(index: int, chain: list[str]) -> None:
            role, subject, association = f"floor-{tag}-{index}", f"floor-{tag}/sa-{index}", []
            for operation in chain:
                status = self._call(operation, role, subject, association)
                with lock:
                    statuses[status] += 1

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
            for future in [pool.submit(run, i, chain) for i, chain in enumerate(chains)]:
                future.result()
        return time.monotonic() - started, sum(statuses.values()), statuses


def chains_by_object(calls: list[dict], role_of: dict[str, str], namespace: str) -> list[list[str]]:
    """The operator's calls grouped per object, in order: IAM calls by the
    role they name, EKS calls by the ServiceAccount they are about (the
    bench names ServiceAccounts after their objects)."""
    owner_of_role = {role: name for name, role in role_of.items()}
    chains: dict[str, list[str]] = defaultdict(list)
    for call in calls:
        if call["service"] == "iam" and call["operation"] == "GetOpenIDConnectProvider":
            continue  # about no role; counted below against the objects in turn
        owner = owner_of_role.get(call.get("target") or "") if call["service"] == "iam" else None
        if call["service"] == "eks":
            subject = call.get("subject") or ""
            owner = subject.split("/", 1)[1] if subject.startswith(namespace + "/") else None
        if owner:
            chains[owner].append(call["operation"])
    providers = [c for c in calls if c["operation"] == "GetOpenIDConnectProvider"]
    names = sorted(chains)
    for i, _ in enumerate(providers):
        if names:
            chains[names[i % len(names)]].insert(0, "GetOpenIDConnectProvider")
    return [chains[name] for name in names]


# -- the operator ---------------------------------------------------------------


def proc_figures(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "rss_mib": int(fields["VmRSS"].split()[0]) / 1024,
        "hwm_mib": int(fields["VmHWM"].split()[0]) / 1024,
        "cpu_seconds": (int(stat[11]) + int(stat[12])) / ticks,
    }


def cpu_by_program(root: int) -> Counter:
    """CPU seconds so far of every process under `root`, by program (the
    emulator is a Python process, named for what it is)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent, name, cpu = {}, {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(stat[1])
        name[pid] = "emulator" if "emulator" in cmdline else Path(cmdline.split(" ", 1)[0]).name
        cpu[pid] = (int(stat[11]) + int(stat[12])) / ticks
    totals: Counter = Counter()
    for pid in cpu:
        ancestor = pid
        while ancestor in parent and ancestor != root:
            ancestor = parent[ancestor]
        if ancestor == root and pid != root:
            totals[name[pid]] += cpu[pid]
    return totals


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Operator:
    def __init__(self, h: dict, log_path: Path) -> None:
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": h["operatorKubeconfig"],
            "POD_NAMESPACE": h["operatorNamespace"],
            "AWS_ENDPOINT_URL": h["emulatorUrl"],
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": h["region"],
            "RUST_LOG": "warn",
        }
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(
            # Resyncs an hour apart: at 10000 objects a run outlasts the
            # default ten minutes, and resync reads in the middle of the
            # floor's replay would slow the floor (the no-op resync is asked
            # for by an annotation, not waited for).
            [str(REPO / "target/release/iam-operator"), "--cluster-name", h["clusterName"],
             "--metrics-address", f"127.0.0.1:{self.metrics_port}", "--resync-seconds", "3600"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.metrics()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the operator did not serve /metrics; see {log_path}")

    def exit_reason(self) -> str | None:
        """None while the operator runs; else its exit code and last log lines."""
        code = self.proc.poll()
        if code is None:
            return None
        self.log.flush()
        tail = Path(self.log.name).read_text(errors="replace").splitlines()[-5:]
        return f"exit code {code}: " + " | ".join(tail)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as resp:
            return resp.read().decode()

    def reconciles(self, kind: str) -> int:
        pattern = re.compile(rf'^iam_operator_reconciles_total{{kind="{kind}"}} (\d+)', re.M)
        found = pattern.search(self.metrics())
        return int(found.group(1)) if found else 0

    def figures(self) -> dict:
        return proc_figures(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# -- the measurements -----------------------------------------------------------


@dataclass
class Bench:
    h: dict
    kube: Kube
    emulator: str
    audit_log: Path
    operator_user: str
    harness_pid: int
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def row(self, what: str, value: str, target: str = "") -> None:
        self.rows.append((what, value, target))
        print(f"  {what:<58} {value}" + (f"   [{target}]" if target else ""), flush=True)

    def cpu(self, operator: "Operator") -> Counter:
        """CPU seconds so far of the harness's processes, the operator's and this client's."""
        used = cpu_by_program(self.harness_pid)
        used["iam-operator"] = operator.figures()["cpu_seconds"]
        own = os.times()
        used["bench client"] = own.user + own.system
        return used

    def apply_all(self, kind: Kind, namespace: str, names: list[str]) -> None:
        path = self.kube.objects_path(kind, namespace)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for future in [pool.submit(self.kube.request, "POST", path, kind.body(n)) for n in names]:
                future.result()

    def delete_all(self, kind: Kind, namespace: str, watch: ReadyWatch, names: list[str]) -> float:
        started = time.monotonic()
        self.kube.request("DELETE", self.kube.objects_path(kind, namespace))
        if not watch.wait(lambda: len(watch.deleted) >= len(names), 600):
            print(f"  (only {len(watch.deleted)} of {len(names)} gone after 600 s)", file=sys.stderr)
        return time.monotonic() - started

    def latency(self, kind: Kind, samples: int) -> None:
        namespace = f"latency-{kind.plural[:3]}"
        self.kube.create_namespace(namespace)
        watch = ReadyWatch(self.kube, kind, namespace)
        seconds = []
        # Not counted: the first object after start also waits for the
        # Lease and the first list of every watch.
        warm_up = "warm-up"
        self.kube.request("POST", self.kube.objects_path(kind, namespace), kind.body(warm_up))
        if not watch.wait(lambda: warm_up in watch.ready, 120):
            raise RuntimeError(f"{kind.name} {namespace}/{warm_up} not Ready after 120 s")
        for i in range(samples):
            name = f"one-{i}"
            started = time.monotonic()
            self.kube.request("POST", self.kube.objects_path(kind, namespace), kind.body(name))
            if not watch.wait(lambda: name in watch.ready, 120):
                raise RuntimeError(f"{kind.name} {namespace}/{name} not Ready after 120 s")
            seconds.append(watch.ready[name] - started)
        self.row(f"{kind.name}: apply -> Ready, one at a time ({samples})",
                 f"p50 {percentile(seconds, 50) * 1000:.0f} ms, p90 {percentile(seconds, 90) * 1000:.0f} ms, "
                 f"p99 {percentile(seconds, 99) * 1000:.0f} ms", "p50 <= 250 ms, p99 <= 1 s")
        self.delete_all(kind, namespace, watch, [warm_up] + [f"one-{i}" for i in range(samples)])
        watch.close()

    def burst(self, kind: Kind, n: int, operator: Operator) -> dict:
        """N at once until all Ready; the floor; a no-op resync. Objects stay."""
        namespace = f"burst-{n}-{kind.plural[:3]}"
        self.kube.create_namespace(namespace)
        names = [f"b-{i}" for i in range(n)]
        watch = ReadyWatch(self.kube, kind, namespace)
        mark, audit_at = last_seq(self.emulator), self.audit_log.stat().st_size
        reconciles_before = operator.reconciles(kind.name)
        cpu_before = self.cpu(operator)
        started = time.monotonic()
        self.apply_all(kind, namespace, names)
        # An operator that stops (a lost Lease, a crash) ends the run at
        # once, with its reason, instead of after the half hour.
        finished = watch.wait(lambda: len(watch.ready) >= n or operator.exit_reason() is not None, 1800)
        if (reason := operator.exit_reason()) is not None:
            raise RuntimeError(f"{kind.name}: the operator stopped with {len(watch.ready)} of {n} Ready: {reason}")
        if not finished:
            raise RuntimeError(f"{kind.name}: {len(watch.ready)} of {n} Ready after 30 minutes")
        all_ready = max(watch.ready.values()) - started
        cpu_used = self.cpu(operator) - cpu_before
        time.sleep(3)  # the reconciles that follow the last status write belong to the create
        create_calls = aws_calls(calls_since(self.emulator, mark))
        kube_writes, _ = audit_writes(self.audit_log, audit_at, self.operator_user)
        reconciles = operator.reconciles(kind.name) - reconciles_before

        objects = self.kube.request("GET", self.kube.objects_path(kind, namespace))["items"]
        role_of = {o["metadata"]["name"]: o.get("status", {}).get("roleName", "") for o in objects}
        chains = chains_by_object(create_calls, role_of, namespace)
        floor_seconds, floor_calls, floor_statuses = Floor(self.h).replay(chains, f"{n}{kind.plural[:1]}")
        operator_statuses = Counter(c["status"] for c in create_calls)

        self.row(f"{kind.name}: {n} applied at once, all Ready after", f"{all_ready:.1f} s ({n / all_ready:.1f}/s)")
        self.row(f"{kind.name}: floor for the same {floor_calls} calls", f"{floor_seconds:.1f} s "
                 f"(ratio {all_ready / floor_seconds:.2f}; within target by "
                 f"{1.25 * floor_seconds + 5 - all_ready:+.1f} s)", "<= 1.25 x floor + 5 s")
        # Where the machine's time went: the floor has the emulator alone,
        # the operator's run shares the cores with the control plane.
        self.row(f"{kind.name}: CPU seconds while the {n} were made ({os.cpu_count()} cores x {all_ready:.1f} s; "
                 "processes alive at both ends)",
                 ", ".join(f"{program} {seconds:.1f}" for program, seconds in cpu_used.most_common() if seconds >= 0.1))
        if floor_statuses != operator_statuses:
            self.row(f"{kind.name}: statuses, operator vs floor", f"{dict(operator_statuses)} vs {dict(floor_statuses)}")
        self.row(f"{kind.name}: AWS calls per create", f"{len(create_calls) / n:.2f} "
                 f"({len(writes(create_calls)) / n:.2f} writes)", f"least: {kind.least_create}")
        self.row(f"{kind.name}: Kubernetes writes per create / per reconcile",
                 f"{sum(kube_writes.values()) / n:.2f} / {sum(kube_writes.values()) / max(reconciles, 1):.2f} "
                 f"({reconciles / n:.2f} reconciles per object; "
                 + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(kube_writes.items())) + ")")
        watch.close()
        return {"namespace": namespace, "names": names, "all_ready": all_ready}

    def noop(self, kind: Kind, n: int, namespace: str, operator: Operator) -> None:
        mark, audit_at = last_seq(self.emulator), self.audit_log.stat().st_size
        reconciles_before = operator.reconciles(kind.name)
        started = time.monotonic()
        # A merge patch on each asks for a reconcile without a spec change.
        path = self.kube.objects_path(kind, namespace)
        stamp = str(time.time())
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(self.kube.request, "PATCH", f"{path}/b-{i}",
                                   {"metadata": {"annotations": {"bench/resync": stamp}}},
                                   "application/merge-patch+json") for i in range(n)]
            for future in futures:
                future.result()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if sum(1 for c in calls_since(self.emulator, mark) if c["operation"] == kind.resync_marker) >= n:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        time.sleep(3)
        calls = aws_calls(calls_since(self.emulator, mark))
        kube_writes, _ = audit_writes(self.audit_log, audit_at, self.operator_user)
        reconciles = operator.reconciles(kind.name) - reconciles_before
        self.row(f"{kind.name}: AWS calls per no-op resync", f"{len(calls) / n:.2f} reads, {len(writes(calls))} writes "
                 f"in all ({elapsed:.1f} s for {n})", f"least: {kind.least_noop}")
        self.row(f"{kind.name}: Kubernetes writes on a no-op resync",
                 f"{sum(kube_writes.values())} in {reconciles} reconciles", "0")

    def delete(self, kind: Kind, n: int, namespace: str, names: list[str]) -> None:
        watch = ReadyWatch(self.kube, kind, namespace)
        mark = last_seq(self.emulator)
        seconds = self.delete_all(kind, namespace, watch, names)
        time.sleep(2)
        calls = aws_calls(calls_since(self.emulator, mark))
        watch.close()
        self.row(f"{kind.name}: AWS calls per delete", f"{len(calls) / n:.2f} ({len(writes(calls)) / n:.2f} writes; "
                 f"all {n} gone after {seconds:.1f} s)", f"least: {kind.least_delete}")


def dirty() -> bool:
    status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True)
    return bool(status.stdout.strip())


def machine_facts(h: dict) -> list[str]:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    venv_python = REPO / ".cache/venv/bin/python"

    def version(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]
        except (OSError, subprocess.CalledProcessError, IndexError):
            return "unknown"

    return [
        f"date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"{int(meminfo['MemTotal'].split()[0]) / 1024 / 1024:.1f} GiB memory, {platform.system()} {platform.release()}",
        f"operator: {version([str(REPO / 'target/release/iam-operator'), '--version'])}, "
        f"commit {version(['git', '-C', str(REPO), 'rev-parse', '--short', 'HEAD'])}"
        f"{' with uncommitted changes' if dirty() else ''}, "
        f"{version(['rustc', '--version'])}",
        f"control plane: kube-apiserver {h.get('kubernetesVersion', '?')}; emulator: moto "
        f"{version([str(venv_python), '-c', 'import moto; print(moto.__version__)'])}",
    ]


def write_benchmarks(facts: list[str], rows: list[tuple[str, str, str]]) -> Path:
    out = REPO / "BENCHMARKS.md"
    if not out.exists():
        out.write_text("# Benchmarks\n\nAppended by `scripts/bench`, newest last. Each run starts its own "
                       "harness (kube-apiserver, etcd, the moto-based emulator) on loopback.\n")
    lines = ["", f"## {facts[0].split(': ', 1)[1]}", ""] + [f"- {f}" for f in facts[1:]] + [
        "", "| what | measured | target or least |", "|---|---|---|"]
    lines += [f"| {what} | {value} | {target} |" for what, value, target in rows]
    with out.open("a") as f:
        f.write("\n".join(lines) + "\n")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="objects per kind applied at once, comma-separated")
    parser.add_argument("--long", action="store_true", help="also 10000 objects of each kind")
    parser.add_argument("--samples", type=int, default=100, help="objects for the one-at-a-time latency")
    parser.add_argument("--idle-seconds", type=int, default=60)
    parser.add_argument("--restart-seconds", type=int, default=60,
                        help="restart the operator over each size's objects and measure its memory this long "
                             "after; 0 skips it")
    parser.add_argument("--no-record", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([10000] if args.long else [])

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
    kubectl = [h["kubectl"], "--kubeconfig", h["kubeconfig"]]
    subprocess.run([*kubectl, "apply", "--server-side", "-f", str(REPO / "crds")], check=True, capture_output=True)
    subprocess.run([*kubectl, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"],
                   check=True, capture_output=True)
    bench = Bench(h, Kube(h), h["emulatorUrl"], Path(h["auditLog"]), h["operatorUser"], harness.pid)
    logs = Path(h["dir"]) / "logs"
    facts = machine_facts(h)
    print("\n".join(facts), flush=True)
    try:
        operator = Operator(h, logs / "bench-operator-latency.log")
        try:
            print("latency", flush=True)
            for kind in KINDS:
                bench.latency(kind, args.samples)
        finally:
            operator.stop()

        for n in sizes:
            print(f"{n} objects of each kind", flush=True)
            operator = Operator(h, logs / f"bench-operator-{n}.log")
            try:
                time.sleep(2)
                idle = operator.figures()
                sa_bytes_before = service_account_watch_bytes(bench.kube)
                made = {}
                for kind in KINDS:
                    made[kind.name] = bench.burst(kind, n, operator)
                    f = operator.figures()
                    bench.row(f"operator memory with {n} {kind.name}s too",
                              f"RSS {f['rss_mib']:.1f} MiB (peak {f['hwm_mib']:.1f} MiB)")
                for kind in KINDS:
                    bench.noop(kind, n, made[kind.name]["namespace"], operator)
                time.sleep(5)
                steady = operator.figures()
                bench.row(f"operator memory, {n} of each kind, steady",
                          f"RSS {steady['rss_mib']:.1f} MiB, peak {steady['hwm_mib']:.1f} MiB "
                          f"(idle at start {idle['rss_mib']:.1f} MiB)",
                          "<= 32 MiB at 1000, <= 80 MiB at 10000")
                cpu_before = operator.figures()["cpu_seconds"]
                time.sleep(args.idle_seconds)
                idle_cpu = (operator.figures()["cpu_seconds"] - cpu_before) / args.idle_seconds * 1000
                bench.row(f"operator CPU idle over {args.idle_seconds} s, {n} of each kind",
                          f"{idle_cpu:.1f} mCPU", "<= 5 mCPU at 1000")
                sa_bytes = service_account_watch_bytes(bench.kube) - sa_bytes_before
                # The operator's is the only ServiceAccount watch on the harness.
                bench.row(f"ServiceAccount watch events sent by the API server, {n} of each kind",
                          f"{sa_bytes / 1024:.0f} KiB ({sa_bytes / max(n, 1):.0f} bytes per ServiceAccount made)")
                cpu_before_restart = 0.0
                if args.restart_seconds:
                    cpu_before_restart = operator.figures()["cpu_seconds"]
                    # A restart lists every object again and rebuilds the
                    # caches at once, without the burst's queue: what a
                    # rollout or a moved pod costs, apart from the burst.
                    operator.stop()
                    operator = Operator(h, logs / f"bench-operator-{n}-restarted.log")
                    time.sleep(args.restart_seconds)
                    restarted = operator.figures()
                    bench.row(f"operator memory {args.restart_seconds} s after a restart over {n} of each kind",
                              f"RSS {restarted['rss_mib']:.1f} MiB, peak {restarted['hwm_mib']:.1f} MiB",
                              "<= 32 MiB at 1000, <= 80 MiB at 10000")
                for kind in KINDS:
                    bench.delete(kind, n, made[kind.name]["namespace"], made[kind.name]["names"])
                cpu_of_round = cpu_before_restart + operator.figures()["cpu_seconds"]
                bench.row(f"operator CPU for the {n} round" + (" (both processes)" if args.restart_seconds else ""),
                          f"{cpu_of_round:.1f} s")
            finally:
                operator.stop()
    except Exception as failure:
        # What was measured before a failure still counts: a long run
        # lost whole to its last step would leave no record at all.
        bench.row("run ended early", f"{type(failure).__name__}: {str(failure)[:300]}")
        if not args.no_record:
            print(f"appended to {write_benchmarks(facts, bench.rows)}")
        raise
    finally:
        harness.stdin.close()
        harness.wait()
    if not args.no_record:
        print(f"appended to {write_benchmarks(facts, bench.rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
