"""The call log carries what a policy simulator needs (e2e/policy-proof)."""

from __future__ import annotations

import json

import boto3

from conftest import ACCOUNT, REGION, TRUST_POLICY, Emulator, unique
from emulator.faults import CallLog

OPERATOR_KEY = "AKIAOPERATORTEST0001"
CLUSTER_TAG = "iam-operator.io/cluster"


def operator_client(emu: Emulator, service: str) -> object:
    # A key of its own, as the e2e harness gives the operator.
    return boto3.client(
        service,
        endpoint_url=emu.url,
        region_name=REGION,
        aws_access_key_id=OPERATOR_KEY,
        aws_secret_access_key="testing",
    )


def last_seq(emu: Emulator) -> int:
    calls = emu.calls()
    return calls[-1]["seq"] if calls else 0


def only(calls: list[dict], operation: str) -> dict:
    (found,) = [c for c in calls if c["operation"] == operation]
    return found


def test_role_calls_carry_arn_tags_keys_and_boundary(emu: Emulator):
    iam = operator_client(emu, "iam")
    name = unique("ctx-role")
    boundary = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    start = last_seq(emu)
    iam.create_role(
        RoleName=name,
        Path="/k8s/",
        AssumeRolePolicyDocument=TRUST_POLICY,
        PermissionsBoundary=boundary,
        Tags=[{"Key": CLUSTER_TAG, "Value": "c1"}, {"Key": "team", "Value": "web"}],
    )
    iam.tag_role(RoleName=name, Tags=[{"Key": "team", "Value": "api"}])
    iam.untag_role(RoleName=name, TagKeys=["team", CLUSTER_TAG])
    iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=boundary)
    iam.get_role(RoleName=name.upper())  # IAM names ignore case
    calls = emu.calls(since=start)
    arn = f"arn:aws:iam::{ACCOUNT}:role/k8s/{name}"

    create = only(calls, "CreateRole")
    assert create["action"] == "iam:CreateRole"
    assert create["accessKeyId"] == OPERATOR_KEY
    assert create["accountId"] == ACCOUNT, "a new key stays in moto's default account"
    assert create["resource"] == arn, "the ARN the role will have, on its path"
    assert create["resourceTags"] == {}
    assert create["requestTags"] == {CLUSTER_TAG: "c1", "team": "web"}
    assert create["tagKeys"] == [CLUSTER_TAG, "team"]
    assert create["permissionsBoundary"] == boundary

    tag = only(calls, "TagRole")
    assert tag["resource"] == arn
    assert tag["resourceTags"] == {CLUSTER_TAG: "c1", "team": "web"}, "tags before the call"
    assert tag["requestTags"] == {"team": "api"}

    untag = only(calls, "UntagRole")
    assert untag["tagKeys"] == ["team", CLUSTER_TAG]
    assert untag["resourceTags"] == {CLUSTER_TAG: "c1", "team": "api"}

    assert only(calls, "PutRolePermissionsBoundary")["permissionsBoundary"] == boundary
    get = only(calls, "GetRole")
    assert get["resource"] == arn and get["resourceTags"] == {}


def test_oidc_provider_calls_carry_the_arn_the_url_gives_and_the_tags(emu: Emulator):
    iam = operator_client(emu, "iam")
    host_path = f"oidc.example.com/id/{unique('ctx')}"
    start = last_seq(emu)
    arn = iam.create_open_id_connect_provider(
        Url=f"https://{host_path}",
        ClientIDList=["sts.amazonaws.com"],
        Tags=[{"Key": CLUSTER_TAG, "Value": "c1"}],
    )["OpenIDConnectProviderArn"]
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="vault")
    iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[{"Key": "team", "Value": "web"}])
    calls = emu.calls(since=start)

    create = only(calls, "CreateOpenIDConnectProvider")
    assert create["resource"] == arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host_path}"
    assert create["resourceTags"] == {}
    assert create["requestTags"] == {CLUSTER_TAG: "c1"}
    assert create["tagKeys"] == [CLUSTER_TAG]

    add = only(calls, "AddClientIDToOpenIDConnectProvider")
    assert add["resource"] == arn
    assert add["resourceTags"] == {CLUSTER_TAG: "c1"}, "tags before the call"

    tag = only(calls, "TagOpenIDConnectProvider")
    assert tag["resourceTags"] == {CLUSTER_TAG: "c1"}
    assert tag["requestTags"] == {"team": "web"}


def test_eks_calls_carry_cluster_association_and_passed_role(emu: Emulator, cluster, role_arn):
    eks = operator_client(emu, "eks")
    start = last_seq(emu)
    assoc = eks.create_pod_identity_association(
        clusterName=cluster,
        namespace="ns",
        serviceAccount="sa",
        roleArn=role_arn,
        tags={CLUSTER_TAG: "c1"},
    )["association"]
    eks.tag_resource(resourceArn=assoc["associationArn"], tags={"team": "web"})
    eks.list_pod_identity_associations(clusterName=cluster, namespace="ns", serviceAccount="sa")
    eks.describe_pod_identity_association(clusterName=cluster, associationId=assoc["associationId"])
    eks.update_pod_identity_association(clusterName=cluster, associationId=assoc["associationId"], roleArn=role_arn)
    eks.delete_pod_identity_association(clusterName=cluster, associationId=assoc["associationId"])
    calls = emu.calls(since=start)
    cluster_arn = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{cluster}"
    passed = {"action": "iam:PassRole", "resource": role_arn, "passedToService": "pods.eks.amazonaws.com"}

    create = only(calls, "CreatePodIdentityAssociation")
    assert create["action"] == "eks:CreatePodIdentityAssociation"
    assert create["resource"] == cluster_arn
    assert create["requestTags"] == {CLUSTER_TAG: "c1"}
    assert create["implied"] == [passed]

    tag = only(calls, "TagResource")
    assert tag["resource"] == assoc["associationArn"]
    assert tag["resourceTags"] == {CLUSTER_TAG: "c1"}
    assert tag["requestTags"] == {"team": "web"}

    update = only(calls, "UpdatePodIdentityAssociation")
    assert update["resource"] == assoc["associationArn"]
    assert update["resourceTags"] == {CLUSTER_TAG: "c1", "team": "web"}
    assert update["implied"] == [passed]

    delete = only(calls, "DeletePodIdentityAssociation")
    assert delete["resource"] == assoc["associationArn"] and delete["implied"] == []

    # Whose call it was: the benchmark's floor groups calls by it.
    for operation in (
        "CreatePodIdentityAssociation",
        "ListPodIdentityAssociations",
        "DescribePodIdentityAssociation",
        "UpdatePodIdentityAssociation",
        "DeletePodIdentityAssociation",
    ):
        assert only(calls, operation)["subject"] == "ns/sa", operation
    assert tag["subject"] is None


def test_reads_of_what_is_not_there_are_described_too(emu: Emulator, cluster):
    start = last_seq(emu)
    iam = emu.client("iam")
    name = unique("absent")
    try:
        iam.get_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        pass
    emu.client("sts").get_caller_identity()
    emu.client("eks").describe_cluster(name=cluster)
    calls = emu.calls(since=start)
    get = only(calls, "GetRole")
    assert get["status"] == 404
    assert get["resource"] == f"arn:aws:iam::{ACCOUNT}:role/{name}"
    assert get["accessKeyId"] == "testing"
    assert only(calls, "GetCallerIdentity")["resource"] == "*"
    assert only(calls, "DescribeCluster")["resource"] == f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{cluster}"
    assert all("describeError" not in c for c in calls)


def test_calls_are_appended_to_the_log_file(tmp_path):
    path = tmp_path / "calls.jsonl"
    log = CallLog(str(path))
    log.record(started=1.0, service="iam", region="us-east-1", operation="GetRole", status=200, fault=None)
    log.record(
        started=2.0,
        service="iam",
        region="us-east-1",
        operation="TagRole",
        status=200,
        fault=None,
        context={"action": "iam:TagRole", "requestTags": {"a": "b"}},
    )
    log.clear()  # the file is the whole run's record: clearing the deque keeps it
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2]
    assert lines[1]["requestTags"] == {"a": "b"}
    assert CallLog().record(
        started=1.0, service="sts", region=None, operation="GetCallerIdentity", status=200, fault=None
    )["seq"] == 1
