"""Fault rules, the call log, error rendering and request classification, in-process."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from emulator.aws_errors import error_response, fault_response
from emulator.classify import classify, match_rest
from emulator.faults import CallLog, FaultInjector, FaultRule, InjectedError


def rule(**raw) -> FaultRule:
    return FaultRule.from_json(raw)


@pytest.mark.parametrize(
    "raw",
    [
        {"fault": "explode"},
        {"fault": "throttle", "rate": 1.5},
        {"fault": "throttle", "rate": "1"},
        {"fault": "delay"},
        {"fault": "delay", "delayMs": -1},
        {"fault": "throttle", "count": -1},
        {"fault": "throttle", "service": ""},
        {"fault": "throttle", "colour": "red"},
        {"fault": "throttle", "after": -1},
        {"fault": "throttle", "after": 1.0},
        {"fault": "throttle", "after": True},
        {"fault": "throttle", "after": None},
        {"fault": "throttle", "operation": []},
        {"fault": "throttle", "operation": [""]},
        {"fault": "throttle", "operation": ["GetRole", None]},
        {"fault": "throttle", "operation": {"GetRole": 1}},
        {"fault": "throttle", "operation": ""},
        {"fault": "hold"},
        {"fault": "hold", "delayMs": -5},
        {"fault": "error"},
        {"fault": "error", "code": ""},
        {"fault": "error", "code": "Access Denied"},
        {"fault": "error", "code": 403},
        {"fault": "error", "code": "X", "status": 399},
        {"fault": "error", "code": "X", "status": 600},
        {"fault": "error", "code": "X", "status": "400"},
        {"fault": "error", "code": "X", "status": True},
        {"fault": "error", "code": "X", "message": None},
        {"fault": "delay", "delayMs": 1, "status": 500},
        {"fault": "throttle", "message": "why"},
        "throttle",
    ],
)
def test_malformed_rules_are_rejected(raw):
    with pytest.raises(ValueError):
        FaultRule.from_json(raw)


def test_rule_defaults_and_matching():
    r = rule(fault="throttle")
    assert (r.service, r.operation, r.rate, r.count) == ("*", "*", 1.0, None)
    specific = rule(service="IAM", operation="CreateRole", fault="throttle")
    assert specific.matches("iam", "CreateRole")
    assert not specific.matches("iam", "GetRole")
    assert not specific.matches("sts", "CreateRole")


def test_operation_lists():
    r = rule(service="iam", operation=["GetRole", "ListRoles"], fault="throttle")
    assert r.matches("iam", "GetRole") and r.matches("iam", "ListRoles")
    assert not r.matches("iam", "CreateRole") and not r.matches("eks", "GetRole")
    assert r.to_json()["operation"] == ["GetRole", "ListRoles"]
    assert rule(operation="GetRole", fault="throttle").to_json()["operation"] == "GetRole"
    assert rule(operation=["GetRole", "*"], fault="throttle").matches("sts", "Anything")


def test_error_rule_fields_and_defaults():
    r = rule(fault="error", code="AccessDenied")
    assert r.error == InjectedError("AccessDenied", 400, "Error injected by the e2e emulator")
    out = rule(fault="error", code="LimitExceeded", status=409, message="").to_json()
    assert (out["code"], out["status"], out["message"]) == ("LimitExceeded", 409, "")
    assert "code" not in rule(fault="throttle").to_json()


def test_after_lets_the_first_n_matching_requests_pass():
    injector = FaultInjector()
    injector.configure([rule(operation="GetRole", fault="throttle", after=2, count=1)])
    operations = ("GetRole", "ListRoles", "GetRole", "GetRole", "GetRole")
    outcomes = [injector.decide("iam", op) for op in operations]
    assert [d.fault if d else None for d in outcomes] == [None, None, None, "throttle", None]
    (snapshot,) = injector.snapshot()["rules"]
    assert (snapshot["after"], snapshot["seen"], snapshot["fired"]) == (2, 4, 1)


def test_requests_let_through_by_after_draw_nothing_from_the_seed():
    def run(after):
        injector = FaultInjector()
        injector.configure([rule(fault="throttle", rate=0.5, after=after)], seed=11)
        return [injector.decide("eks", "X") is not None for _ in range(after + 50)]

    assert run(5)[:5] == [False] * 5
    assert run(5)[5:] == run(0)[:50]


def test_every_matching_rule_sees_a_request_an_earlier_one_took():
    injector = FaultInjector()
    injector.configure([rule(fault="throttle", count=1), rule(fault="server_error", after=1)])
    assert [injector.decide("iam", "GetRole").fault for _ in range(2)] == ["throttle", "server_error"]
    assert [(r["seen"], r["fired"]) for r in injector.snapshot()["rules"]] == [(2, 1), (2, 1)]


def test_a_hold_counts_as_fired_only_once_it_begins():
    injector = FaultInjector()
    injector.configure([rule(fault="hold", delayMs=10, count=1)])
    decision = injector.decide("iam", "CreateRole")
    assert (decision.fault, decision.delay_ms) == ("hold", 10)
    assert injector.snapshot()["rules"][0]["fired"] == 0
    # Still counted against `count` meanwhile, so a second request is not held too.
    assert injector.decide("iam", "CreateRole") is None
    injector.hold_began(decision)
    assert injector.snapshot()["rules"][0]["fired"] == 1
    injector.clear()
    injector.hold_began(decision)  # a hold outliving its rule is harmless
    assert injector.snapshot()["rules"] == []


def test_count_limits_how_often_a_rule_fires():
    injector = FaultInjector()
    injector.configure([rule(fault="throttle", count=2)])
    fired = [injector.decide("iam", "GetRole") for _ in range(4)]
    assert [d.fault if d else None for d in fired] == ["throttle", "throttle", None, None]
    assert injector.snapshot()["rules"][0]["fired"] == 2


def test_first_firing_rule_wins():
    injector = FaultInjector()
    injector.configure([rule(fault="server_error", operation="GetRole", count=1), rule(fault="throttle")])
    assert injector.decide("iam", "GetRole").fault == "server_error"
    assert injector.decide("iam", "GetRole").fault == "throttle"


def test_rates_are_reproducible_for_a_seed():
    def run(seed):
        injector = FaultInjector()
        injector.configure([rule(fault="throttle", rate=0.5)], seed=seed)
        return [injector.decide("eks", "X") is not None for _ in range(200)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert 60 < sum(run(7)) < 140
    never = FaultInjector()
    never.configure([rule(fault="throttle", rate=0.0)])
    assert all(never.decide("eks", "X") is None for _ in range(100))


def test_call_log_since_and_clear_keep_seq_monotonic():
    log = CallLog()
    for op in ("A", "B", "C"):
        log.record(started=1.0, service="iam", region="us-east-1", operation=op, status=200, fault=None)
    assert [c["operation"] for c in log.since(1)] == ["B", "C"]
    log.clear()
    assert log.since() == []
    assert (
        log.record(started=2.0, service="iam", region=None, operation="D", status=200, fault=None)["seq"] == 4
    )


@pytest.mark.parametrize(
    "service,namespace",
    [
        ("iam", "https://iam.amazonaws.com/doc/2010-05-08/"),
        ("sts", "https://sts.amazonaws.com/doc/2011-06-15/"),
    ],
)
def test_query_throttle_is_the_aws_xml_error(service, namespace):
    resp = fault_response(service, "throttle")
    assert resp.status == 400
    root = ET.fromstring(resp.body)
    ns = {"a": namespace}
    assert root.tag == f"{{{namespace}}}ErrorResponse"
    assert root.findtext("a:Error/a:Type", namespaces=ns) == "Sender"
    assert root.findtext("a:Error/a:Code", namespaces=ns) == "Throttling"
    assert root.findtext("a:Error/a:Message", namespaces=ns) == "Rate exceeded"
    assert root.findtext("a:RequestId", namespaces=ns)


def test_server_errors_per_protocol():
    iam = fault_response("iam", "server_error")
    assert (
        iam.status == 500
        and b"<Code>ServiceFailure</Code>" in iam.body
        and b"<Type>Receiver</Type>" in iam.body
    )
    eks = fault_response("eks", "server_error", cluster_name="dev")
    assert eks.status == 500 and ("x-amzn-ErrorType", "ServerException") in eks.headers
    assert json.loads(eks.body)["clusterName"] == "dev"
    throttle = fault_response("eks", "throttle")
    assert throttle.status == 429 and ("x-amzn-ErrorType", "ThrottlingException") in throttle.headers
    assert json.loads(throttle.body) == {"message": "Rate exceeded"}


@pytest.mark.parametrize(
    "service,namespace",
    [
        ("iam", "https://iam.amazonaws.com/doc/2010-05-08/"),
        ("sts", "https://sts.amazonaws.com/doc/2011-06-15/"),
    ],
)
def test_query_errors_carry_code_status_and_fault_side(service, namespace):
    ns = {"a": namespace}
    client = error_response(service, "AccessDenied", 403, "no <way> & no", cluster_name="ignored")
    assert client.status == 403
    root = ET.fromstring(client.body)
    assert root.findtext("a:Error/a:Type", namespaces=ns) == "Sender"
    assert root.findtext("a:Error/a:Code", namespaces=ns) == "AccessDenied"
    assert root.findtext("a:Error/a:Message", namespaces=ns) == "no <way> & no"
    server = error_response(service, "ServiceUnavailable", 503, "later")
    assert ET.fromstring(server.body).findtext("a:Error/a:Type", namespaces=ns) == "Receiver"


def test_rest_json_errors_name_the_cluster_only_where_the_shape_has_it():
    denied = error_response("eks", "AccessDeniedException", 403, "no", cluster_name="dev")
    assert denied.status == 403 and ("x-amzn-ErrorType", "AccessDeniedException") in denied.headers
    assert json.loads(denied.body) == {"message": "no"}
    missing = error_response("eks", "ResourceNotFoundException", 404, "gone", cluster_name="dev")
    assert json.loads(missing.body) == {"message": "gone", "clusterName": "dev"}
    unnamed = error_response("eks", "InvalidParameterException", 400, "bad")
    assert json.loads(unnamed.body) == {"message": "bad"}


@pytest.mark.parametrize(
    "method,path,operation,params",
    [
        ("POST", "/clusters", "CreateCluster", {}),
        ("GET", "/clusters", "ListClusters", {}),
        ("GET", "/clusters/dev", "DescribeCluster", {"name": "dev"}),
        ("DELETE", "/clusters/dev", "DeleteCluster", {"name": "dev"}),
        ("POST", "/clusters/dev/pod-identity-associations", "CreatePodIdentityAssociation", {"name": "dev"}),
        ("GET", "/clusters/dev/pod-identity-associations", "ListPodIdentityAssociations", {"name": "dev"}),
        (
            "GET",
            "/clusters/dev/pod-identity-associations/a-1",
            "DescribePodIdentityAssociation",
            {"name": "dev", "associationId": "a-1"},
        ),
        (
            "POST",
            "/clusters/dev/pod-identity-associations/a-1",
            "UpdatePodIdentityAssociation",
            {"name": "dev", "associationId": "a-1"},
        ),
        (
            "DELETE",
            "/clusters/dev/pod-identity-associations/a-1",
            "DeletePodIdentityAssociation",
            {"name": "dev", "associationId": "a-1"},
        ),
        (
            "GET",
            "/tags/arn%3Aaws%3Aeks%3Aus-east-1%3A123456789012%3Apodidentityassociation%2Fdev%2Fa-1",
            "ListTagsForResource",
            {"resourceArn": "arn:aws:eks:us-east-1:123456789012:podidentityassociation/dev/a-1"},
        ),
        ("PATCH", "/clusters", "Unknown", {}),
    ],
)
def test_eks_routes_come_from_the_botocore_model(method, path, operation, params):
    assert match_rest("eks", method, path) == (operation, params)


def test_classify_reads_scope_and_action():
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
        "HTTP_AUTHORIZATION": (
            "AWS4-HMAC-SHA256 Credential=AKIAX/20250101/us-east-1/iam/aws4_request, "
            "SignedHeaders=host, Signature=abc"
        ),
    }
    req = classify(environ, b"Action=CreateRole&Version=2010-05-08&RoleName=r")
    assert (req.service, req.region, req.access_key, req.operation) == (
        "iam",
        "us-east-1",
        "AKIAX",
        "CreateRole",
    )
    unsigned = classify({"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "QUERY_STRING": ""}, b"")
    assert (unsigned.service, unsigned.operation) == (None, "Unknown")


def test_unsigned_web_identity_call_is_sts():
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
    }
    req = classify(environ, b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&WebIdentityToken=t")
    assert (req.service, req.operation) == ("sts", "AssumeRoleWithWebIdentity")
