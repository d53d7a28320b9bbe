"""Injected faults, seen through boto3 as an AWS SDK sees real ones."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff, RetryContext, ThrottledRetryableChecker
from conftest import TRUST_POLICY, Emulator, unique

# total_max_attempts counts the first try; legacy max_attempts would count retries only.
NO_RETRIES = {"retries": {"total_max_attempts": 1}}


def set_faults(emu: Emulator, *rules: dict, seed: int | None = None) -> dict:
    body: dict = {"rules": list(rules)}
    if seed is not None:
        body["seed"] = seed
    return emu.ok("PUT", "/faults", body)


@pytest.fixture
def fast_backoff(monkeypatch):
    # botocore's default (standard) retry mode backs off up to 2**n seconds on
    # throttling; keep its decisions about what to retry, drop the wait.
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.01)


def test_rules_round_trip(emu: Emulator):
    put = set_faults(
        emu, {"service": "iam", "operation": "CreateRole", "fault": "throttle", "count": 2}, seed=5
    )
    assert put == {
        "seed": 5,
        "rules": [
            {
                "service": "iam",
                "operation": "CreateRole",
                "fault": "throttle",
                "rate": 1.0,
                "delayMs": 0,
                "count": 2,
                "fired": 0,
            }
        ],
    }
    assert emu.ok("GET", "/faults") == put
    assert emu.ok("DELETE", "/faults")["rules"] == []
    assert emu.ok("GET", "/faults")["rules"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"rules": [{"fault": "meltdown"}]},
        {"rules": [{"fault": "throttle", "rate": 2}]},
        {"rules": "throttle"},
        {"rules": [], "seed": "x"},
    ],
)
def test_bad_rules_are_rejected(emu: Emulator, body):
    status, payload = emu.control("PUT", "/faults", body)
    assert status == 400 and payload["error"]
    assert emu.ok("GET", "/faults")["rules"] == []


def test_iam_throttling_is_the_modeled_aws_error(emu: Emulator):
    set_faults(emu, {"service": "iam", "operation": "CreateRole", "fault": "throttle"})
    iam = emu.client("iam", **NO_RETRIES)
    with pytest.raises(ClientError) as info:
        iam.create_role(RoleName=unique("r"), AssumeRolePolicyDocument=TRUST_POLICY)
    response = info.value.response
    assert response["Error"] == {"Type": "Sender", "Code": "Throttling", "Message": "Rate exceeded"}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RequestId"]
    # The same classification botocore's retry logic applies.
    assert ThrottledRetryableChecker().is_retryable(RetryContext(attempt_number=1, parsed_response=response))
    # Other operations are untouched by an operation-specific rule.
    iam.list_roles()


def test_query_throttle_wire_format(emu: Emulator):
    set_faults(emu, {"service": "sts", "fault": "throttle"})
    status, headers, raw = emu.http(
        "POST",
        "/",
        "Action=GetCallerIdentity&Version=2011-06-15",
        headers={**emu.sigv4_headers("sts"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 400 and headers["content-type"].startswith("text/xml")
    root = ET.fromstring(raw)
    ns = "https://sts.amazonaws.com/doc/2011-06-15/"
    assert root.tag == f"{{{ns}}}ErrorResponse"
    assert root.find(f"{{{ns}}}Error/{{{ns}}}Code").text == "Throttling"
    assert root.find(f"{{{ns}}}RequestId").text == headers["x-amzn-requestid"]


def test_default_retries_ride_out_two_throttles(emu: Emulator, fast_backoff):
    # boto3's default: standard retry mode, three attempts in all.
    set_faults(
        emu, {"service": "iam", "operation": "CreateRole", "fault": "throttle", "rate": 1.0, "count": 2}
    )
    iam = emu.client("iam")
    created = iam.create_role(RoleName=unique("r"), AssumeRolePolicyDocument=TRUST_POLICY)
    assert created["ResponseMetadata"]["RetryAttempts"] == 2
    attempts = [(c["operation"], c["status"], c["fault"]) for c in emu.calls()]
    assert attempts == [
        ("CreateRole", 400, "throttle"),
        ("CreateRole", 400, "throttle"),
        ("CreateRole", 200, None),
    ]
    assert emu.ok("GET", "/faults")["rules"][0]["fired"] == 2


def test_eks_throttling(emu: Emulator, cluster):
    set_faults(emu, {"service": "eks", "fault": "throttle"})
    eks = emu.client("eks", **NO_RETRIES)
    with pytest.raises(eks.exceptions.ThrottlingException) as info:
        eks.list_pod_identity_associations(clusterName=cluster)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert info.value.response["clusterName"] == cluster
    assert ThrottledRetryableChecker().is_retryable(
        RetryContext(attempt_number=1, parsed_response=info.value.response)
    )
    with pytest.raises(eks.exceptions.ThrottlingException):
        eks.describe_cluster(name=cluster)  # moto-served EKS calls are faulted too


def test_server_errors(emu: Emulator, cluster):
    set_faults(emu, {"service": "*", "fault": "server_error"})
    iam = emu.client("iam", **NO_RETRIES)
    with pytest.raises(iam.exceptions.ServiceFailureException) as info:
        iam.get_role(RoleName="anything")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    eks = emu.client("eks", **NO_RETRIES)
    with pytest.raises(eks.exceptions.ServerException) as info:
        eks.list_pod_identity_associations(clusterName=cluster)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    sts = emu.client("sts", **NO_RETRIES)
    with pytest.raises(ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "InternalFailure"
    assert [c["fault"] for c in emu.calls()] == ["server_error"] * 3


def test_server_errors_are_retried(emu: Emulator, fast_backoff):
    set_faults(emu, {"service": "iam", "operation": "ListRoles", "fault": "server_error", "count": 1})
    assert emu.client("iam").list_roles()["ResponseMetadata"]["RetryAttempts"] == 1


def test_delay_then_serve(emu: Emulator):
    set_faults(emu, {"service": "iam", "operation": "ListRoles", "fault": "delay", "delayMs": 300})
    iam = emu.client("iam", **NO_RETRIES)
    started = time.monotonic()
    iam.list_roles()
    assert time.monotonic() - started >= 0.3
    (call,) = emu.calls()
    assert (call["operation"], call["status"], call["fault"]) == ("ListRoles", 200, "delay")


def test_delay_counts_as_fired_while_the_request_is_in_flight(emu: Emulator):
    # A test can wait for `fired` to know a delayed request has arrived and
    # is being held, then act while it is still pending.
    set_faults(emu, {"service": "iam", "operation": "ListRoles", "fault": "delay", "delayMs": 1500})
    iam = emu.client("iam", **NO_RETRIES)
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(iam.list_roles()), daemon=True)
    worker.start()
    deadline = time.monotonic() + 1.0  # well inside the 1.5 s the request is held
    while emu.ok("GET", "/faults")["rules"][0]["fired"] == 0:
        assert time.monotonic() < deadline, "the delayed request was never counted"
        time.sleep(0.02)
    assert worker.is_alive() and outcome == []
    assert emu.calls() == []  # the call log, unlike `fired`, records on response
    worker.join(timeout=10)
    assert len(outcome) == 1
    assert emu.ok("GET", "/faults")["rules"][0]["fired"] == 1
    assert [(c["operation"], c["fault"]) for c in emu.calls()] == [("ListRoles", "delay")]


def test_rate_is_reproducible_with_a_seed(emu: Emulator):
    iam = emu.client("iam", **NO_RETRIES)

    def pattern() -> list[bool]:
        set_faults(
            emu, {"service": "iam", "operation": "ListRoles", "fault": "throttle", "rate": 0.5}, seed=1234
        )
        outcome = []
        for _ in range(12):
            try:
                iam.list_roles()
                outcome.append(False)
            except ClientError:
                outcome.append(True)
        return outcome

    first = pattern()
    assert pattern() == first
    assert 0 < sum(first) < 12


def test_rate_zero_and_unmatched_rules_never_fire(emu: Emulator):
    set_faults(
        emu,
        {"service": "iam", "fault": "throttle", "rate": 0.0},
        {"service": "eks", "fault": "server_error"},
    )
    iam = emu.client("iam", **NO_RETRIES)
    for _ in range(5):
        iam.list_roles()
    assert {c["fault"] for c in emu.calls()} == {None}
