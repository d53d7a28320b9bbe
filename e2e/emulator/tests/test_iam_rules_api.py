"""IAM rules moto lacks (case-insensitive role names, policy quotas), through the running server."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from conftest import ACCOUNT, TRUST_POLICY, Emulator, unique


@pytest.fixture
def iam(emu: Emulator):
    return emu.client("iam")


@pytest.fixture
def role(iam) -> str:
    name = unique("Rules-Role")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_POLICY)
    return name


@pytest.fixture(scope="module")
def aws_policies(emulator_process) -> list[str]:
    """AWS-managed policy ARNs, more than a role may hold."""
    iam = Emulator(emulator_process[1]).client("iam")
    arns = [p["Arn"] for p in iam.list_policies(Scope="AWS", MaxItems=16)["Policies"]]
    assert len(arns) == 16
    return arns


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str, str]:
    response = info.value.response
    error = response["Error"]
    return response["ResponseMetadata"]["HTTPStatusCode"], error["Type"], error["Code"], error["Message"]


def policy_of_size(size: int) -> str:
    """A valid policy document of exactly `size` non-whitespace characters."""
    def document(padding: str) -> str:
        statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::b/{padding}"}
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, separators=(",", ":"))

    shortest = len(document(""))
    assert size >= shortest
    return document("x" * (size - shortest))


def test_create_refuses_a_name_differing_only_in_case(iam, role):
    for other in (role.lower(), role.upper(), role):
        with pytest.raises(ClientError) as info:
            iam.create_role(RoleName=other, AssumeRolePolicyDocument=TRUST_POLICY)
        assert error_of(info) == (409, "Sender", "EntityAlreadyExists", f"Role with name {other} already exists.")
    names = [r["RoleName"] for r in iam.list_roles(MaxItems=1000)["Roles"]]
    assert [n for n in names if n.lower() == role.lower()] == [role]


def test_operations_by_another_case_find_the_role(iam, role, aws_policies):
    lower, upper = role.lower(), role.upper()
    got = iam.get_role(RoleName=upper)["Role"]
    assert got["RoleName"] == role
    assert got["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{role}"

    iam.update_role(RoleName=lower, Description="by lower case")
    assert iam.get_role(RoleName=role)["Role"]["Description"] == "by lower case"
    iam.tag_role(RoleName=lower, Tags=[{"Key": "owner", "Value": "e2e"}])
    assert iam.list_role_tags(RoleName=upper)["Tags"] == [{"Key": "owner", "Value": "e2e"}]

    iam.put_role_policy(RoleName=lower, PolicyName="inline", PolicyDocument=policy_of_size(200))
    assert iam.list_role_policies(RoleName=upper)["PolicyNames"] == ["inline"]
    assert iam.get_role_policy(RoleName=upper, PolicyName="inline")["RoleName"] == role
    iam.attach_role_policy(RoleName=lower, PolicyArn=aws_policies[0])
    attached = iam.list_attached_role_policies(RoleName=upper)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [aws_policies[0]]

    iam.detach_role_policy(RoleName=upper, PolicyArn=aws_policies[0])
    iam.delete_role_policy(RoleName=upper, PolicyName="inline")
    iam.delete_role(RoleName=lower)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role)


def test_unknown_role_is_still_not_found(iam):
    name = unique("Missing-Role")
    with pytest.raises(ClientError) as info:
        iam.get_role(RoleName=name)
    assert error_of(info) == (404, "Sender", "NoSuchEntity", f"Role {name} not found")


def test_eleventh_managed_policy_is_refused(iam, role, aws_policies):
    first_ten, eleventh = aws_policies[:10], aws_policies[10]
    for arn in first_ten:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)

    for asked in (role, role.lower()):
        with pytest.raises(ClientError) as info:
            iam.attach_role_policy(RoleName=asked, PolicyArn=eleventh)
        assert error_of(info) == (409, "Sender", "LimitExceeded", "Cannot exceed quota for PoliciesPerRole: 10")
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert sorted(p["PolicyArn"] for p in attached) == sorted(first_ten)


def test_reattaching_at_the_limit_is_a_no_op(iam, role, aws_policies):
    for arn in aws_policies[:10]:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    iam.attach_role_policy(RoleName=role, PolicyArn=aws_policies[3])
    assert len(iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]) == 10


def test_detach_frees_a_place(iam, role, aws_policies):
    for arn in aws_policies[:10]:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    iam.detach_role_policy(RoleName=role, PolicyArn=aws_policies[0])
    iam.attach_role_policy(RoleName=role, PolicyArn=aws_policies[10])
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert sorted(p["PolicyArn"] for p in attached) == sorted(aws_policies[1:11])


def test_concurrent_attaches_stay_within_the_quota(emu: Emulator, role, aws_policies):
    def attach(arn: str) -> str:
        try:
            emu.client("iam").attach_role_policy(RoleName=role, PolicyArn=arn)
            return "ok"
        except ClientError as err:
            return err.response["Error"]["Code"]

    with ThreadPoolExecutor(len(aws_policies)) as pool:
        outcomes = list(pool.map(attach, aws_policies))
    assert sorted(outcomes) == ["LimitExceeded"] * 6 + ["ok"] * 10
    attached = emu.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert len(attached) == 10


def test_inline_policies_together_are_limited(iam, role):
    iam.put_role_policy(RoleName=role, PolicyName="a", PolicyDocument=policy_of_size(6000))
    with pytest.raises(ClientError) as info:
        iam.put_role_policy(RoleName=role.lower(), PolicyName="b", PolicyDocument=policy_of_size(4241))
    assert error_of(info) == (
        409,
        "Sender",
        "LimitExceeded",
        f"Maximum policy size of 10240 bytes exceeded for role {role}",
    )
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["a"]
    iam.put_role_policy(RoleName=role, PolicyName="b", PolicyDocument=policy_of_size(4240))


def test_replacing_an_inline_policy_counts_it_once(iam, role):
    iam.put_role_policy(RoleName=role, PolicyName="a", PolicyDocument=policy_of_size(6000))
    iam.put_role_policy(RoleName=role, PolicyName="a", PolicyDocument=policy_of_size(10240))
    with pytest.raises(ClientError) as info:
        iam.put_role_policy(RoleName=role, PolicyName="a", PolicyDocument=policy_of_size(10241))
    assert error_of(info)[2] == "LimitExceeded"


def test_whitespace_does_not_count(iam, role):
    spaced = json.dumps(json.loads(policy_of_size(10000)), indent=40)
    assert len(spaced) > 10240
    iam.put_role_policy(RoleName=role, PolicyName="spaced", PolicyDocument=spaced)
    iam.put_role_policy(RoleName=role, PolicyName="rest", PolicyDocument=policy_of_size(240))
