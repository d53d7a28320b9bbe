"""EKS Pod Identity through the running server, driven by boto3 like a real client."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from conftest import ACCOUNT, REGION, Emulator, make_role, unique


@pytest.fixture
def eks(emu: Emulator):
    return emu.client("eks")


def create(eks, cluster: str, role_arn: str, namespace: str = "apps", sa: str = "web", **extra):
    return eks.create_pod_identity_association(
        clusterName=cluster, namespace=namespace, serviceAccount=sa, roleArn=role_arn, **extra
    )["association"]


def test_create_describe_delete(eks, cluster, role_arn):
    assoc = create(eks, cluster, role_arn, tags={"owner": "e2e"})
    assert re.fullmatch(r"a-[a-z0-9]{17}", assoc["associationId"])
    assert assoc["associationArn"] == (
        f"arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/{cluster}/{assoc['associationId']}"
    )
    assert (assoc["clusterName"], assoc["namespace"], assoc["serviceAccount"]) == (cluster, "apps", "web")
    assert assoc["roleArn"] == role_arn
    assert assoc["tags"] == {"owner": "e2e"}
    assert assoc["disableSessionTags"] is False
    assert isinstance(assoc["createdAt"], datetime) and assoc["createdAt"] == assoc["modifiedAt"]
    for absent in ("ownerArn", "targetRoleArn", "externalId", "policy"):
        assert absent not in assoc

    described = eks.describe_pod_identity_association(
        clusterName=cluster, associationId=assoc["associationId"]
    )
    assert described["association"] == assoc

    deleted = eks.delete_pod_identity_association(clusterName=cluster, associationId=assoc["associationId"])
    assert deleted["association"] == assoc
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.describe_pod_identity_association(clusterName=cluster, associationId=assoc["associationId"])
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.delete_pod_identity_association(clusterName=cluster, associationId=assoc["associationId"])


def test_wire_format_is_epoch_seconds(emu: Emulator, cluster, role_arn):
    status, headers, raw = emu.http(
        "POST",
        f"/clusters/{cluster}/pod-identity-associations",
        {"namespace": "apps", "serviceAccount": "web", "roleArn": role_arn},
        headers={**emu.sigv4_headers("eks"), "Content-Type": "application/json"},
    )
    assert status == 200 and headers["content-type"] == "application/json"
    assoc = json.loads(raw)["association"]
    assert isinstance(assoc["createdAt"], (int, float)) and assoc["createdAt"] > 1.6e9


def test_target_role_and_external_id(eks, emu: Emulator, cluster, role_arn):
    target = make_role(emu, "target-role")
    assoc = create(eks, cluster, role_arn, targetRoleArn=target, disableSessionTags=True)
    assert assoc["targetRoleArn"] == target and assoc["externalId"]
    assert assoc["disableSessionTags"] is True
    # A target role in another account cannot be checked, so it is accepted.
    foreign = create(eks, cluster, role_arn, sa="other", targetRoleArn="arn:aws:iam::210987654321:role/x")
    assert foreign["targetRoleArn"] == "arn:aws:iam::210987654321:role/x"


def test_second_association_for_a_service_account_is_in_use(eks, cluster, role_arn):
    create(eks, cluster, role_arn)
    with pytest.raises(eks.exceptions.ResourceInUseException) as info:
        create(eks, cluster, role_arn)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert info.value.response["clusterName"] == cluster


def test_unknown_cluster_is_not_found(eks, role_arn):
    with pytest.raises(eks.exceptions.ResourceNotFoundException) as info:
        create(eks, "ghost", role_arn)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.list_pod_identity_associations(clusterName="ghost")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/does-not-exist"},
        {"roleArn": f"arn:aws:iam::{ACCOUNT}:policy/not-a-role"},
        {"targetRoleArn": f"arn:aws:iam::{ACCOUNT}:role/does-not-exist"},
    ],
)
def test_bad_role_arns_are_invalid_parameters(eks, cluster, role_arn, kwargs):
    request = {
        "clusterName": cluster,
        "namespace": "apps",
        "serviceAccount": "web",
        "roleArn": role_arn,
        **kwargs,
    }
    with pytest.raises(eks.exceptions.InvalidParameterException) as info:
        eks.create_pod_identity_association(**request)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_missing_required_member_on_the_wire(emu: Emulator, cluster):
    # boto3 refuses to send this, so send it raw as another client might.
    status, headers, raw = emu.http(
        "POST",
        f"/clusters/{cluster}/pod-identity-associations",
        {"namespace": "apps", "serviceAccount": "web"},
        headers={**emu.sigv4_headers("eks"), "Content-Type": "application/json"},
    )
    assert status == 400
    assert headers["x-amzn-errortype"] == "InvalidParameterException"
    assert "roleArn" in json.loads(raw)["message"]


def test_role_deleted_in_iam_is_rejected(eks, emu: Emulator, cluster):
    arn = make_role(emu, "short-lived")
    emu.client("iam").delete_role(RoleName=arn.rsplit("/", 1)[1])
    with pytest.raises(eks.exceptions.InvalidParameterException):
        create(eks, cluster, arn)


def test_idempotent_create(eks, cluster, role_arn):
    first = create(eks, cluster, role_arn, clientRequestToken="token-1")
    again = create(eks, cluster, role_arn, clientRequestToken="token-1")
    assert again == first
    with pytest.raises(eks.exceptions.InvalidRequestException):
        create(eks, cluster, role_arn, sa="someone-else", clientRequestToken="token-1")
    assert len(eks.list_pod_identity_associations(clusterName=cluster)["associations"]) == 1


def test_update_changes_only_allowed_fields(eks, emu: Emulator, cluster, role_arn):
    assoc = create(eks, cluster, role_arn, tags={"keep": "me"})
    new_role = make_role(emu, "new-role")
    target = make_role(emu, "target-role")
    updated = eks.update_pod_identity_association(
        clusterName=cluster,
        associationId=assoc["associationId"],
        roleArn=new_role,
        targetRoleArn=target,
        disableSessionTags=True,
    )["association"]
    assert updated["roleArn"] == new_role
    assert updated["targetRoleArn"] == target and updated["externalId"]
    assert updated["disableSessionTags"] is True
    for fixed in ("namespace", "serviceAccount", "tags", "associationArn", "createdAt"):
        assert updated[fixed] == assoc[fixed]
    assert updated["modifiedAt"] > assoc["modifiedAt"]

    cleared = eks.update_pod_identity_association(
        clusterName=cluster, associationId=assoc["associationId"], targetRoleArn=""
    )["association"]
    assert "targetRoleArn" not in cleared and "externalId" not in cleared
    assert cleared["roleArn"] == new_role

    described = eks.describe_pod_identity_association(
        clusterName=cluster, associationId=assoc["associationId"]
    )
    assert described["association"] == cleared


def test_update_errors(eks, cluster, role_arn):
    assoc = create(eks, cluster, role_arn)
    with pytest.raises(eks.exceptions.InvalidParameterException):
        eks.update_pod_identity_association(
            clusterName=cluster,
            associationId=assoc["associationId"],
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/nope",
        )
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.update_pod_identity_association(
            clusterName=cluster, associationId="a-00000000000000000", roleArn=role_arn
        )
    with pytest.raises(eks.exceptions.InvalidParameterException):
        eks.update_pod_identity_association(clusterName=cluster, associationId=assoc["associationId"])


def test_idempotent_update(eks, emu: Emulator, cluster, role_arn):
    assoc = create(eks, cluster, role_arn)
    other = make_role(emu, "other")
    kwargs = dict(clusterName=cluster, associationId=assoc["associationId"], clientRequestToken="u-1")
    first = eks.update_pod_identity_association(roleArn=other, **kwargs)["association"]
    assert eks.update_pod_identity_association(roleArn=other, **kwargs)["association"] == first
    with pytest.raises(eks.exceptions.InvalidRequestException):
        eks.update_pod_identity_association(roleArn=role_arn, **kwargs)


def test_pagination_with_max_results_1(eks, cluster, role_arn):
    created = [create(eks, cluster, role_arn, sa=f"sa-{i}")["associationId"] for i in range(3)]
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = eks.list_pod_identity_associations(clusterName=cluster, maxResults=1, **kwargs)
        pages += 1
        assert len(page["associations"]) == 1
        seen.append(page["associations"][0]["associationId"])
        token = page.get("nextToken")
        if not token:
            break
    assert (seen, pages) == (created, 3)

    paginator = eks.get_paginator("list_pod_identity_associations")
    via_paginator = [
        a["associationId"]
        for page in paginator.paginate(clusterName=cluster, PaginationConfig={"PageSize": 1})
        for a in page["associations"]
    ]
    assert via_paginator == created


def test_summaries_and_filters(eks, cluster, role_arn):
    create(eks, cluster, role_arn, namespace="a", sa="x")
    create(eks, cluster, role_arn, namespace="a", sa="y")
    create(eks, cluster, role_arn, namespace="b", sa="x")

    def pairs(**filters):
        page = eks.list_pod_identity_associations(clusterName=cluster, **filters)
        return [(s["namespace"], s["serviceAccount"]) for s in page["associations"]]

    assert pairs() == [("a", "x"), ("a", "y"), ("b", "x")]
    assert pairs(namespace="a") == [("a", "x"), ("a", "y")]
    assert pairs(serviceAccount="x") == [("a", "x"), ("b", "x")]
    assert pairs(namespace="b", serviceAccount="x") == [("b", "x")]
    summary = eks.list_pod_identity_associations(clusterName=cluster)["associations"][0]
    assert set(summary) == {"clusterName", "namespace", "serviceAccount", "associationArn", "associationId"}


def test_list_parameter_errors(eks, emu: Emulator, cluster):
    with pytest.raises(eks.exceptions.InvalidParameterException):
        eks.list_pod_identity_associations(clusterName=cluster, maxResults=101)
    with pytest.raises(eks.exceptions.InvalidParameterException):
        eks.list_pod_identity_associations(clusterName=cluster, nextToken="not-a-token")
    with pytest.raises(ParamValidationError):  # boto3 checks the lower bound itself
        eks.list_pod_identity_associations(clusterName=cluster, maxResults=0)
    status, headers, _ = emu.http(
        "GET", f"/clusters/{cluster}/pod-identity-associations?maxResults=0", headers=emu.sigv4_headers("eks")
    )
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidParameterException")


def test_association_tags(eks, cluster, role_arn):
    arn = create(eks, cluster, role_arn, tags={"a": "1"})["associationArn"]
    eks.tag_resource(resourceArn=arn, tags={"b": "2"})
    eks.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert eks.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}
    missing = arn.rsplit("/", 1)[0] + "/a-00000000000000000"
    with pytest.raises(eks.exceptions.NotFoundException):
        eks.list_tags_for_resource(resourceArn=missing)


def test_cluster_tags_still_reach_moto(eks, cluster):
    arn = eks.describe_cluster(name=cluster)["cluster"]["arn"]
    eks.tag_resource(resourceArn=arn, tags={"env": "e2e"})
    assert eks.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "e2e"}


def test_associations_are_per_cluster_and_region(eks, emu: Emulator, cluster, role_arn):
    other = unique("other")
    emu.ok("POST", "/clusters", {"name": other})
    create(eks, cluster, role_arn)
    create(eks, other, role_arn)  # same namespace/service account, other cluster
    assert len(eks.list_pod_identity_associations(clusterName=other)["associations"]) == 1
    west = emu.client("eks", region="eu-west-1")
    with pytest.raises(west.exceptions.ResourceNotFoundException):
        west.list_pod_identity_associations(clusterName=cluster)


def test_error_is_a_client_error_with_message(eks, cluster):
    with pytest.raises(ClientError) as info:
        eks.describe_pod_identity_association(clusterName=cluster, associationId="a-00000000000000000")
    error = info.value.response["Error"]
    assert error["Code"] == "ResourceNotFoundException" and error["Message"]
