"""Injected faults, seen through boto3 as an AWS SDK sees real ones."""

from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
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
                "after": 0,
                "seen": 0,
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
        {"rules": [{"fault": "throttle", "after": -1}]},
        {"rules": [{"fault": "throttle", "after": "2"}]},
        {"rules": [{"fault": "throttle", "operation": []}]},
        {"rules": [{"fault": "throttle", "operation": ["GetRole", ""]}]},
        {"rules": [{"fault": "throttle", "operation": ["GetRole", 7]}]},
        {"rules": [{"fault": "hold"}]},
        {"rules": [{"fault": "error"}]},
        {"rules": [{"fault": "error", "code": "AccessDenied", "status": 200}]},
        {"rules": [{"fault": "error", "code": "AccessDenied", "message": 5}]},
        {"rules": [{"fault": "throttle", "code": "AccessDenied"}]},
        # One bad rule refuses them all.
        {"rules": [{"fault": "throttle"}, {"fault": "delay", "delayMs": 5, "after": 1.5}]},
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


# -- limitPerSecond: throttle by request rate ----------------------------------


def test_limit_per_second_throttles_only_the_excess(emu: Emulator):
    set_faults(emu, {"service": "iam", "operation": "ListRoles", "fault": "throttle", "limitPerSecond": 5})
    iam = emu.client("iam", **NO_RETRIES)
    outcomes = []
    for _ in range(10):
        try:
            iam.list_roles()
            outcomes.append("ok")
        except ClientError as e:
            outcomes.append(e.response["Error"]["Code"])
    # A burst of ten: the bucket's five pass, the rest are throttled.
    assert outcomes.count("ok") in (5, 6), outcomes
    assert outcomes.count("Throttling") == 10 - outcomes.count("ok")
    time.sleep(0.5)
    iam.list_roles()  # refilled: half a second is worth 2.5 calls
    (rule,) = emu.ok("GET", "/faults")["rules"]
    assert rule["limitPerSecond"] == 5


def test_limit_per_second_must_be_a_non_negative_number(emu: Emulator):
    for limit in (-1, "5", True):
        status, _ = emu.control("PUT", "/faults", {"rules": [{"fault": "throttle", "limitPerSecond": limit}]})
        assert status == 400


# -- accessKeyId: fault one caller of several ---------------------------------


def test_access_key_faults_only_that_callers_calls(emu: Emulator):
    import boto3

    set_faults(emu, {"service": "iam", "fault": "throttle", "accessKeyId": "AKIAOPERATORONE00001"})
    (rule,) = emu.ok("GET", "/faults")["rules"]
    assert rule["accessKeyId"] == "AKIAOPERATORONE00001"

    def iam_as(key: str):
        from botocore.config import Config

        return boto3.client(
            "iam",
            endpoint_url=emu.url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key="testing",
            config=Config(**NO_RETRIES),
        )

    iam_as("AKIAOPERATORTWO00002").list_roles()
    emu.client("iam", **NO_RETRIES).list_roles()
    with pytest.raises(ClientError) as info:
        iam_as("AKIAOPERATORONE00001").list_roles()
    assert info.value.response["Error"]["Code"] == "Throttling"
    (rule,) = emu.ok("GET", "/faults")["rules"]
    assert (rule["seen"], rule["fired"]) == (1, 1)


@pytest.mark.parametrize("key", ["", 7, ["AKIA"]])
def test_access_key_must_be_a_non_empty_string(emu: Emulator, key):
    status, _ = emu.control("PUT", "/faults", {"rules": [{"fault": "throttle", "accessKeyId": key}]})
    assert status == 400


# -- after: let the first n matching calls through ----------------------------


def test_after_targets_the_kth_matching_call(emu: Emulator):
    set_faults(emu, {"service": "iam", "operation": "ListRoles", "fault": "throttle", "after": 2, "count": 1})
    iam = emu.client("iam", **NO_RETRIES)
    iam.list_roles()
    iam.list_policies(MaxItems=1)  # does not match, so does not count
    iam.list_roles()
    with pytest.raises(ClientError) as info:
        iam.list_roles()
    assert info.value.response["Error"]["Code"] == "Throttling"
    iam.list_roles()
    (rule,) = emu.ok("GET", "/faults")["rules"]
    assert (rule["after"], rule["seen"], rule["fired"]) == (2, 4, 1)
    assert [(c["operation"], c["fault"]) for c in emu.calls()] == [
        ("ListRoles", None),
        ("ListPolicies", None),
        ("ListRoles", None),
        ("ListRoles", "throttle"),
        ("ListRoles", None),
    ]


def test_after_counts_calls_an_earlier_rule_took(emu: Emulator):
    # "Throttle the first ListRoles, fail the third": the second rule counts
    # the first call although the first rule faulted it.
    set_faults(
        emu,
        {"service": "iam", "operation": "ListRoles", "fault": "throttle", "count": 1},
        {"service": "iam", "operation": "ListRoles", "fault": "server_error", "after": 2, "count": 1},
    )
    iam = emu.client("iam", **NO_RETRIES)
    outcomes = []
    for _ in range(4):
        try:
            iam.list_roles()
            outcomes.append(None)
        except ClientError as err:
            outcomes.append(err.response["Error"]["Code"])
    assert outcomes == ["Throttling", None, "ServiceFailure", None]
    rules = emu.ok("GET", "/faults")["rules"]
    assert [(r["seen"], r["fired"]) for r in rules] == [(4, 1), (4, 1)]


def test_operation_list(emu: Emulator):
    put = set_faults(emu, {"service": "iam", "operation": ["GetRole", "ListRoles"], "fault": "throttle"})
    assert put["rules"][0]["operation"] == ["GetRole", "ListRoles"]
    iam = emu.client("iam", **NO_RETRIES)
    for call in (iam.list_roles, lambda: iam.get_role(RoleName="any")):
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.response["Error"]["Code"] == "Throttling"
    iam.list_policies(MaxItems=1)
    assert [(r["seen"], r["fired"]) for r in emu.ok("GET", "/faults")["rules"]] == [(2, 2)]


# -- hold: serve, then withhold the answer -------------------------------------


def wait_until_fired(emu: Emulator, times: int = 1, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while emu.ok("GET", "/faults")["rules"][0]["fired"] < times:
        assert time.monotonic() < deadline, "the hold never began"
        time.sleep(0.02)


def test_hold_applies_the_write_then_withholds_the_answer(emu: Emulator):
    name = unique("held")
    set_faults(emu, {"service": "iam", "operation": "CreateRole", "fault": "hold", "delayMs": 1500})
    held_client = emu.client("iam", **NO_RETRIES)
    outcome: list[object] = []
    started = time.monotonic()
    worker = threading.Thread(
        target=lambda: outcome.append(
            held_client.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_POLICY)
        ),
        daemon=True,
    )
    worker.start()
    wait_until_fired(emu)
    # The role exists and the call is logged, while its caller still waits.
    assert emu.client("iam").get_role(RoleName=name)["Role"]["RoleName"] == name
    (call,) = [c for c in emu.calls() if c["operation"] == "CreateRole"]
    assert (call["status"], call["fault"], call["target"]) == (200, "hold", name)
    assert worker.is_alive() and outcome == []

    worker.join(timeout=10)
    assert time.monotonic() - started >= 1.5
    (created,) = outcome
    assert created["Role"]["RoleName"] == name  # the answer, once released, is the real one
    assert [r["fired"] for r in emu.ok("GET", "/faults")["rules"]] == [1]


def test_a_client_giving_up_on_a_held_call_leaves_the_server_well(emu: Emulator, emulator_process):
    name = unique("abandoned")
    set_faults(emu, {"service": "iam", "operation": "CreateRole", "fault": "hold", "delayMs": 1000})
    impatient = emu.client("iam", read_timeout=0.3, **NO_RETRIES)
    errors: list[Exception] = []

    def create() -> None:
        try:
            impatient.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_POLICY)
        except Exception as err:  # the test inspects it
            errors.append(err)

    worker = threading.Thread(target=create, daemon=True)
    worker.start()
    wait_until_fired(emu)
    held_since = time.monotonic()
    worker.join(timeout=10)
    assert [type(e) for e in errors] == [ReadTimeoutError]
    # Answered while the abandoned request is still held...
    assert emu.ok("GET", "/health") == {"status": "ok"}
    iam = emu.client("iam", **NO_RETRIES)
    assert iam.get_role(RoleName=name)["Role"]["RoleName"] == name
    # ...and once the server has tried to answer the client that left.
    time.sleep(max(0.0, held_since + 1.3 - time.monotonic()))
    assert emu.ok("GET", "/health") == {"status": "ok"}
    assert iam.get_role(RoleName=name)["Role"]["RoleName"] == name
    assert emulator_process[0].poll() is None
    assert [r["fired"] for r in emu.ok("GET", "/faults")["rules"]] == [1]
    (call,) = [c for c in emu.calls() if c["operation"] == "CreateRole"]
    assert (call["status"], call["fault"]) == (200, "hold")


def test_held_pod_identity_association_exists_before_the_answer(emu: Emulator, cluster, role_arn):
    set_faults(
        emu, {"service": "eks", "operation": "CreatePodIdentityAssociation", "fault": "hold", "delayMs": 1000}
    )
    eks = emu.client("eks", **NO_RETRIES)
    outcome: list[dict] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            eks.create_pod_identity_association(
                clusterName=cluster, namespace="apps", serviceAccount="web", roleArn=role_arn
            )["association"]
        ),
        daemon=True,
    )
    worker.start()
    wait_until_fired(emu)
    (listed,) = emu.client("eks").list_pod_identity_associations(clusterName=cluster)["associations"]
    assert outcome == []
    worker.join(timeout=10)
    assert outcome[0]["associationId"] == listed["associationId"]


def test_hold_count_limits_concurrent_holds(emu: Emulator):
    set_faults(emu, {"service": "iam", "operation": "ListRoles", "fault": "hold", "delayMs": 1500, "count": 1})
    iam = emu.client("iam", **NO_RETRIES)
    durations: list[float] = []

    def timed() -> None:
        started = time.monotonic()
        iam.list_roles()
        durations.append(time.monotonic() - started)

    workers = [threading.Thread(target=timed, daemon=True) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=10)
    assert sorted(d >= 1.5 for d in durations) == [False, False, True]
    assert [(r["seen"], r["fired"]) for r in emu.ok("GET", "/faults")["rules"]] == [(3, 1)]


# -- error: any AWS error, in the service's protocol ---------------------------


def test_iam_error_is_parsed_as_the_modeled_exception(emu: Emulator, role_arn):
    name = role_arn.rsplit("/", 1)[1]
    message = "Syntax errors in policy."
    set_faults(
        emu,
        {
            "service": "iam",
            "operation": "PutRolePolicy",
            "fault": "error",
            "code": "MalformedPolicyDocument",
            "status": 400,
            "message": message,
        },
    )
    iam = emu.client("iam", **NO_RETRIES)
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException) as info:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=POLICY)
    response = info.value.response
    assert response["Error"] == {"Type": "Sender", "Code": "MalformedPolicyDocument", "Message": message}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == []  # not served
    (call,) = [c for c in emu.calls() if c["operation"] == "PutRolePolicy"]
    assert (call["status"], call["fault"]) == (400, "error")


@pytest.mark.parametrize(
    "code,status,exception",
    [
        ("AccessDenied", 403, None),
        ("LimitExceeded", 409, "LimitExceededException"),
        ("NoSuchEntity", 404, "NoSuchEntityException"),
        ("ServiceFailure", 500, "ServiceFailureException"),
    ],
)
def test_iam_error_codes_and_statuses(emu: Emulator, code, status, exception):
    set_faults(
        emu, {"service": "iam", "operation": "ListRoles", "fault": "error", "code": code, "status": status}
    )
    iam = emu.client("iam", **NO_RETRIES)
    with pytest.raises(ClientError) as info:
        iam.list_roles()
    if exception is not None:
        assert isinstance(info.value, getattr(iam.exceptions, exception))
    error = info.value.response["Error"]
    assert (error["Code"], error["Type"]) == (code, "Sender" if status < 500 else "Receiver")
    assert error["Message"] == "Error injected by the e2e emulator"  # the default message
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


DENIED = "User is not authorized to perform: eks:CreatePodIdentityAssociation"


def test_eks_error_is_parsed_as_the_modeled_exception(emu: Emulator, cluster, role_arn):
    set_faults(
        emu,
        {
            "service": "eks",
            "operation": ["CreatePodIdentityAssociation", "DescribeCluster"],
            "fault": "error",
            "code": "AccessDeniedException",
            "status": 403,
            "message": DENIED,
        },
    )
    eks = emu.client("eks", **NO_RETRIES)
    with pytest.raises(eks.exceptions.AccessDeniedException) as info:
        eks.create_pod_identity_association(
            clusterName=cluster, namespace="apps", serviceAccount="web", roleArn=role_arn
        )
    response = info.value.response
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert response["Error"]["Message"] == DENIED
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "clusterName" not in response  # AccessDeniedException has no such member
    with pytest.raises(eks.exceptions.AccessDeniedException):
        eks.describe_cluster(name=cluster)  # moto-served EKS calls too
    assert eks.list_pod_identity_associations(clusterName=cluster)["associations"] == []  # not served


def test_eks_error_wire_format(emu: Emulator, cluster):
    set_faults(emu, {"service": "eks", "fault": "error", "code": "ResourceNotFoundException", "status": 404})
    status, headers, raw = emu.http(
        "GET", f"/clusters/{cluster}/pod-identity-associations", headers=emu.sigv4_headers("eks")
    )
    assert status == 404 and headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert json.loads(raw) == {"message": "Error injected by the e2e emulator", "clusterName": cluster}
    eks = emu.client("eks", **NO_RETRIES)
    with pytest.raises(eks.exceptions.ResourceNotFoundException) as info:
        eks.list_pod_identity_associations(clusterName=cluster)
    assert info.value.response["clusterName"] == cluster


def test_sts_error(emu: Emulator):
    set_faults(emu, {"service": "sts", "fault": "error", "code": "ExpiredToken", "message": "gone"})
    with pytest.raises(ClientError) as info:
        emu.client("sts", **NO_RETRIES).get_caller_identity()
    assert info.value.response["Error"] == {"Type": "Sender", "Code": "ExpiredToken", "Message": "gone"}


# -- clearing ------------------------------------------------------------------

NEW_KINDS_OF_RULE = (
    {"service": "iam", "operation": ["ListRoles", "GetRole"], "fault": "throttle", "after": 1},
    {"service": "iam", "operation": "ListRoles", "fault": "hold", "delayMs": 5000},
    {"service": "iam", "fault": "error", "code": "AccessDenied", "status": 403, "message": "no"},
)


def test_new_rule_fields_round_trip_and_are_cleared(emu: Emulator):
    put = set_faults(emu, *NEW_KINDS_OF_RULE, seed=3)
    assert put["rules"][2] == {
        "service": "iam",
        "operation": "*",
        "fault": "error",
        "rate": 1.0,
        "delayMs": 0,
        "count": None,
        "after": 0,
        "code": "AccessDenied",
        "status": 403,
        "message": "no",
        "seen": 0,
        "fired": 0,
    }
    assert emu.ok("GET", "/faults") == put
    assert emu.ok("DELETE", "/faults") == {"seed": 0, "rules": []}
    # None of them acts any more: no throttle, no 5 s hold, no AccessDenied.
    iam = emu.client("iam", **NO_RETRIES)
    started = time.monotonic()
    for _ in range(3):
        iam.list_roles()
    assert time.monotonic() - started < 3
    assert [c["fault"] for c in emu.calls()] == [None] * 3


def test_putting_rules_again_restarts_their_counts(emu: Emulator):
    rule = {"service": "iam", "operation": "ListRoles", "fault": "throttle", "after": 1, "count": 1}
    set_faults(emu, rule)
    iam = emu.client("iam", **NO_RETRIES)
    iam.list_roles()
    assert [(r["seen"], r["fired"]) for r in set_faults(emu, rule)["rules"]] == [(0, 0)]
    iam.list_roles()  # let through again: `after` counts afresh
    with pytest.raises(ClientError):
        iam.list_roles()


POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
)
