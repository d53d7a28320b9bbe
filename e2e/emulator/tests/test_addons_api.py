"""EKS add-ons (moto has none) through the running server, and the control route that sets them."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from conftest import ACCOUNT, REGION, Emulator, make_role, unique

AGENT = "eks-pod-identity-agent"
VERSION = "v1.3.0-eksbuild.1"
STATUSES = [
    "CREATING",
    "ACTIVE",
    "CREATE_FAILED",
    "UPDATING",
    "DELETING",
    "DELETE_FAILED",
    "DEGRADED",
    "UPDATE_FAILED",
]
NO_RETRIES = {"retries": {"total_max_attempts": 1}}


@pytest.fixture
def eks(emu: Emulator):
    return emu.client("eks")


def put_addon(emu: Emulator, cluster: str, addon: str = AGENT, **body) -> dict:
    return emu.ok("PUT", f"/clusters/{cluster}/addons/{addon}", {"status": "ACTIVE", **body})["addon"]


def eks_get(emu: Emulator, path: str) -> tuple[int, dict[str, str], dict]:
    status, headers, raw = emu.http("GET", path, headers=emu.sigv4_headers("eks"))
    return status, headers, json.loads(raw)


def arn_pattern(cluster: str, addon: str = AGENT) -> str:
    return rf"arn:aws:eks:{REGION}:{ACCOUNT}:addon/{cluster}/{addon}/[0-9a-f-]{{36}}"


# -- DescribeAddon ---------------------------------------------------------------


def test_describe_an_addon_put_in_place(emu: Emulator, eks, cluster):
    put = put_addon(emu, cluster, status="ACTIVE", addonVersion=VERSION)
    addon = eks.describe_addon(clusterName=cluster, addonName=AGENT)["addon"]
    assert (addon["addonName"], addon["clusterName"], addon["status"]) == (AGENT, cluster, "ACTIVE")
    assert addon["addonVersion"] == VERSION
    assert addon["health"] == {"issues": []}
    assert re.fullmatch(arn_pattern(cluster), addon["addonArn"])
    assert isinstance(addon["createdAt"], datetime) and addon["createdAt"] == addon["modifiedAt"]
    assert addon["tags"] == {}
    assert "serviceAccountRoleArn" not in addon
    # The control route answers DescribeAddon's shape, timestamps as on the wire.
    assert put["addonArn"] == addon["addonArn"]
    assert put["createdAt"] == round(addon["createdAt"].timestamp(), 3)


def test_describe_wire_format(emu: Emulator, cluster):
    put_addon(emu, cluster, serviceAccountRoleArn=f"arn:aws:iam::{ACCOUNT}:role/agent", tags={"k": "v"})
    status, headers, body = eks_get(emu, f"/clusters/{cluster}/addons/{AGENT}")
    assert status == 200 and headers["content-type"] == "application/json"
    addon = body["addon"]
    assert set(addon) == {
        "addonName",
        "clusterName",
        "status",
        "addonVersion",
        "health",
        "addonArn",
        "createdAt",
        "modifiedAt",
        "serviceAccountRoleArn",
        "tags",
    }
    assert isinstance(addon["createdAt"], (int, float)) and addon["createdAt"] > 1.6e9
    assert addon["serviceAccountRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/agent"
    assert addon["tags"] == {"k": "v"}


@pytest.mark.parametrize("status", STATUSES)
def test_every_status_can_be_set(emu: Emulator, eks, cluster, status):
    put_addon(emu, cluster, status=status)
    assert eks.describe_addon(clusterName=cluster, addonName=AGENT)["addon"]["status"] == status


def test_putting_again_changes_status_and_version_in_place(emu: Emulator, eks, cluster):
    first = put_addon(emu, cluster, status="CREATING", addonVersion="v1.2.0-eksbuild.1")
    second = put_addon(emu, cluster, status="DEGRADED")
    assert (second["status"], second["addonVersion"]) == ("DEGRADED", "v1.2.0-eksbuild.1")
    assert second["addonArn"] == first["addonArn"] and second["createdAt"] == first["createdAt"]
    assert second["modifiedAt"] > first["modifiedAt"]
    third = put_addon(emu, cluster, addonVersion=VERSION)
    assert (third["status"], third["addonVersion"]) == ("ACTIVE", VERSION)
    assert eks.describe_addon(clusterName=cluster, addonName=AGENT)["addon"]["status"] == "ACTIVE"


def test_describe_in_a_missing_cluster_is_not_found(emu: Emulator, eks):
    ghost = unique("ghost")
    with pytest.raises(eks.exceptions.ResourceNotFoundException) as info:
        eks.describe_addon(clusterName=ghost, addonName=AGENT)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["clusterName"] == ghost
    assert response["Error"]["Message"] == f"No cluster found for name: {ghost}."


def test_describe_a_missing_addon_is_not_found(emu: Emulator, cluster):
    status, headers, body = eks_get(emu, f"/clusters/{cluster}/addons/{AGENT}")
    assert status == 404 and headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert body == {
        "message": f"No addon: {AGENT} found in cluster: {cluster}",
        "clusterName": cluster,
        "addonName": AGENT,
    }


def test_describe_a_missing_addon_through_boto3(eks, cluster):
    with pytest.raises(eks.exceptions.ResourceNotFoundException) as info:
        eks.describe_addon(clusterName=cluster, addonName=AGENT)
    assert info.value.response["addonName"] == AGENT and info.value.response["clusterName"] == cluster


def test_a_recreated_cluster_has_no_addons(emu: Emulator, eks, cluster):
    put_addon(emu, cluster)
    emu.client("eks").delete_cluster(name=cluster)
    emu.ok("POST", "/clusters", {"name": cluster})
    with pytest.raises(eks.exceptions.ResourceNotFoundException) as info:
        eks.describe_addon(clusterName=cluster, addonName=AGENT)
    assert info.value.response["addonName"] == AGENT


# -- ListAddons ------------------------------------------------------------------


def test_list_empty_sends_null_next_token(emu: Emulator, cluster):
    status, _, body = eks_get(emu, f"/clusters/{cluster}/addons")
    assert status == 200 and body == {"addons": [], "nextToken": None}


def test_list_pages_through_names(emu: Emulator, eks, cluster):
    names = ["vpc-cni", AGENT, "coredns", "kube-proxy", "aws-ebs-csi-driver"]
    for name in names:
        put_addon(emu, cluster, name)
    assert eks.list_addons(clusterName=cluster)["addons"] == sorted(names)

    seen, token, pages = [], None, 0
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = eks.list_addons(clusterName=cluster, maxResults=2, **kwargs)
        assert len(page["addons"]) <= 2
        seen += page["addons"]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert (seen, pages) == (sorted(names), 3)
    # The last page's nextToken is null, which boto3 leaves out.
    last = eks.list_addons(clusterName=cluster, maxResults=5)
    assert last["addons"] == sorted(names) and "nextToken" not in last


@pytest.mark.parametrize("max_results", ["0", "101", "-1", "ten"])
def test_list_max_results_out_of_range_is_invalid(emu: Emulator, cluster, max_results):
    # boto3 would refuse most of these itself, so send them raw.
    status, headers, body = eks_get(emu, f"/clusters/{cluster}/addons?maxResults={max_results}")
    assert status == 400 and headers["x-amzn-errortype"] == "InvalidParameterException"
    assert body["clusterName"] == cluster


def test_list_max_results_bounds_are_allowed(emu: Emulator, cluster):
    for max_results in ("1", "100"):
        assert eks_get(emu, f"/clusters/{cluster}/addons?maxResults={max_results}")[0] == 200


def test_list_bad_next_token_is_invalid(eks, cluster):
    with pytest.raises(eks.exceptions.InvalidParameterException):
        eks.list_addons(clusterName=cluster, nextToken="not-a-token")


def test_list_in_a_missing_cluster_is_not_found(eks):
    ghost = unique("ghost")
    with pytest.raises(eks.exceptions.ResourceNotFoundException) as info:
        eks.list_addons(clusterName=ghost)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert info.value.response["clusterName"] == ghost


# -- CreateAddon / DeleteAddon ---------------------------------------------------


def test_create_is_active_at_once(emu: Emulator, eks, cluster):
    role = make_role(emu, "agent-role")
    created = eks.create_addon(
        clusterName=cluster,
        addonName=AGENT,
        addonVersion=VERSION,
        serviceAccountRoleArn=role,
        tags={"a": "b"},
    )["addon"]
    assert (created["status"], created["addonVersion"]) == ("ACTIVE", VERSION)
    assert created["serviceAccountRoleArn"] == role
    assert created["tags"] == {"a": "b"} and re.fullmatch(arn_pattern(cluster), created["addonArn"])
    assert eks.describe_addon(clusterName=cluster, addonName=AGENT)["addon"] == created
    assert eks.list_addons(clusterName=cluster)["addons"] == [AGENT]


def test_create_without_version_gets_a_default(eks, cluster):
    created = eks.create_addon(clusterName=cluster, addonName="coredns")["addon"]
    assert created["addonVersion"]


def test_create_an_existing_addon_is_in_use(emu: Emulator, eks, cluster):
    put_addon(emu, cluster, status="DEGRADED")
    with pytest.raises(eks.exceptions.ResourceInUseException) as info:
        eks.create_addon(clusterName=cluster, addonName=AGENT)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert (response["clusterName"], response["addonName"]) == (cluster, AGENT)
    assert response["Error"]["Message"] == "Addon already exists."


def test_create_retried_with_its_token_answers_the_addon(eks, cluster):
    first = eks.create_addon(clusterName=cluster, addonName=AGENT, clientRequestToken="token-1")["addon"]
    again = eks.create_addon(clusterName=cluster, addonName=AGENT, clientRequestToken="token-1")["addon"]
    assert again == first
    with pytest.raises(eks.exceptions.ResourceInUseException):
        eks.create_addon(clusterName=cluster, addonName=AGENT, clientRequestToken="token-2")


def test_create_in_a_missing_cluster_is_not_found(eks):
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.create_addon(clusterName=unique("ghost"), addonName=AGENT)


@pytest.mark.parametrize(
    "extra",
    [
        {"serviceAccountRoleArn": f"arn:aws:iam::{ACCOUNT}:policy/not-a-role"},
        {"resolveConflicts": "SOMETIMES"},
        {"podIdentityAssociations": [{"serviceAccount": "sa", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/r"}]},
    ],
)
def test_create_refuses_what_it_cannot_take(emu: Emulator, cluster, extra):
    status, headers, raw = emu.http(
        "POST",
        f"/clusters/{cluster}/addons",
        {"addonName": AGENT, **extra},
        headers={**emu.sigv4_headers("eks"), "Content-Type": "application/json"},
    )
    assert status == 400 and headers["x-amzn-errortype"] == "InvalidParameterException"
    assert json.loads(raw)["addonName"] == AGENT


def test_delete_answers_deleting_and_removes_it(emu: Emulator, eks, cluster):
    put = put_addon(emu, cluster)
    deleted = eks.delete_addon(clusterName=cluster, addonName=AGENT)["addon"]
    assert deleted["status"] == "DELETING" and deleted["addonArn"] == put["addonArn"]
    assert eks.list_addons(clusterName=cluster)["addons"] == []
    with pytest.raises(eks.exceptions.ResourceNotFoundException) as info:
        eks.delete_addon(clusterName=cluster, addonName=AGENT)
    assert info.value.response["addonName"] == AGENT


# -- control route ---------------------------------------------------------------


def test_control_delete_removes_and_is_idempotent(emu: Emulator, eks, cluster):
    put = put_addon(emu, cluster)
    assert emu.ok("DELETE", f"/clusters/{cluster}/addons/{AGENT}") == {"addon": put}
    assert emu.ok("DELETE", f"/clusters/{cluster}/addons/{AGENT}") == {"addon": None}
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.describe_addon(clusterName=cluster, addonName=AGENT)


def test_control_addon_in_another_region(emu: Emulator):
    name = unique("west")
    emu.ok("POST", "/clusters", {"name": name, "region": "us-west-2"})
    put = put_addon(emu, name, region="us-west-2")
    assert put["addonArn"].startswith(f"arn:aws:eks:us-west-2:{ACCOUNT}:addon/{name}/{AGENT}/")
    west = emu.client("eks", region="us-west-2")
    assert west.describe_addon(clusterName=name, addonName=AGENT)["addon"]["status"] == "ACTIVE"
    assert emu.ok("DELETE", f"/clusters/{name}/addons/{AGENT}", {"region": "us-west-2"})["addon"] == put


@pytest.mark.parametrize(
    "body, status",
    [
        ({}, 400),
        ({"status": "RUNNING"}, 400),
        ({"status": "ACTIVE", "stauts": "ACTIVE"}, 400),
        ({"status": "ACTIVE", "addonVersion": 3}, 400),
        ({"status": "ACTIVE", "tags": ["a"]}, 400),
    ],
)
def test_control_refuses_bad_bodies(emu: Emulator, cluster, body, status):
    got, payload = emu.control("PUT", f"/clusters/{cluster}/addons/{AGENT}", body)
    assert got == status and "error" in payload
    assert emu.control("DELETE", f"/clusters/{cluster}/addons/{AGENT}")[1] == {"addon": None}


def test_control_needs_the_cluster(emu: Emulator):
    ghost = unique("ghost")
    for method, body in (("PUT", {"status": "ACTIVE"}), ("DELETE", None)):
        status, payload = emu.control(method, f"/clusters/{ghost}/addons/{AGENT}", body)
        assert status == 404 and payload == {"error": f"No cluster found for name: {ghost}."}, method


def test_control_other_methods_are_not_allowed(emu: Emulator, cluster):
    assert emu.control("GET", f"/clusters/{cluster}/addons/{AGENT}")[0] == 405
    assert emu.control("GET", f"/clusters/{cluster}/addons")[0] == 404


# -- call log and faults ---------------------------------------------------------


def test_calls_are_logged_with_their_resource(emu: Emulator, eks, cluster):
    start = emu.calls()[-1]["seq"] if emu.calls() else 0
    eks.list_addons(clusterName=cluster)
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.describe_addon(clusterName=cluster, addonName=AGENT)
    created = eks.create_addon(clusterName=cluster, addonName=AGENT, tags={"team": "web"})["addon"]
    eks.describe_addon(clusterName=cluster, addonName=AGENT)
    eks.delete_addon(clusterName=cluster, addonName=AGENT)
    calls = [c for c in emu.calls(since=start) if c["service"] == "eks"]
    cluster_arn = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{cluster}"

    assert [(c["operation"], c["status"]) for c in calls] == [
        ("ListAddons", 200),
        ("DescribeAddon", 404),
        ("CreateAddon", 200),
        ("DescribeAddon", 200),
        ("DeleteAddon", 200),
    ]
    assert all(c["target"] == cluster and c["region"] == REGION and c["fault"] is None for c in calls)
    assert [c["action"] for c in calls] == [f"eks:{c['operation']}" for c in calls]
    listed, missing, create, described, deleted = calls
    assert listed["resource"] == cluster_arn and create["resource"] == cluster_arn
    assert create["requestTags"] == {"team": "web"} and create["tagKeys"] == ["team"]
    # An absent add-on has no id yet: the ARN ends in a wildcard.
    assert missing["resource"] == f"arn:aws:eks:{REGION}:{ACCOUNT}:addon/{cluster}/{AGENT}/*"
    assert described["resource"] == created["addonArn"] == deleted["resource"]
    assert described["resourceTags"] == {"team": "web"}


def test_faults_apply_to_addon_calls(emu: Emulator, cluster):
    put_addon(emu, cluster)
    eks = emu.client("eks", **NO_RETRIES)
    emu.ok(
        "PUT",
        "/faults",
        {
            "rules": [
                {"service": "eks", "operation": "DescribeAddon", "fault": "throttle", "count": 1},
                {
                    "service": "eks",
                    "operation": "ListAddons",
                    "fault": "error",
                    "code": "AccessDeniedException",
                    "status": 403,
                    "count": 1,
                },
            ]
        },
    )
    with pytest.raises(eks.exceptions.ThrottlingException) as throttled:
        eks.describe_addon(clusterName=cluster, addonName=AGENT)
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert throttled.value.response["clusterName"] == cluster
    with pytest.raises(eks.exceptions.AccessDeniedException):
        eks.list_addons(clusterName=cluster)
    # Each rule fired once; the calls after are served.
    assert eks.describe_addon(clusterName=cluster, addonName=AGENT)["addon"]["status"] == "ACTIVE"
    assert eks.list_addons(clusterName=cluster)["addons"] == [AGENT]
    faulted = [(c["operation"], c["status"], c["fault"]) for c in emu.calls() if c["fault"]]
    assert faulted == [("DescribeAddon", 429, "throttle"), ("ListAddons", 403, "error")]
