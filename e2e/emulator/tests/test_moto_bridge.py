"""moto_bridge against moto itself, in the test process (no server)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from conftest import ACCOUNT, TRUST_POLICY
from emulator import moto_bridge
from moto import mock_aws


@pytest.fixture
def far_from_utc(monkeypatch):
    """Local time 10 hours behind UTC, where reading UTC as local time shows.

    A POSIX TZ string, so it works without the tz database.
    """
    if not hasattr(time, "tzset"):
        pytest.skip("needs time.tzset")
    monkeypatch.setenv("TZ", "EMU+10")
    time.tzset()
    assert time.localtime().tm_gmtoff == -10 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


def test_posix_seconds_reads_naive_as_utc(far_from_utc):
    assert moto_bridge.posix_seconds(datetime(2024, 1, 1)) == 1_704_067_200.0
    plus_two = datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert moto_bridge.posix_seconds(plus_two) == 1_704_067_200.0


def test_role_created_at_is_now_for_a_new_role(far_from_utc):
    with mock_aws():
        iam = boto3.client(
            "iam", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        before = time.time()
        arn = iam.create_role(RoleName="fresh", AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"]
        after = time.time()
        directory = moto_bridge.MotoDirectory()
        created = directory.role_created_at(ACCOUNT, "aws", arn)
        assert created is not None and before - 0.001 <= created <= after + 0.001
        assert directory.role_created_at(ACCOUNT, "aws", arn + "-gone") is None
        assert directory.role_created_at("210987654321", "aws", arn) is None


def test_find_iam_role_ignores_case_and_prefers_the_exact_name():
    with mock_aws():
        iam = boto3.client(
            "iam", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        # Only moto itself lets two names differ in case; the emulator refuses the second.
        for name in ("Twin", "twin"):
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_POLICY)
        policy = iam.create_policy(PolicyName="p", PolicyDocument=POLICY)["Policy"]["Arn"]
        iam.attach_role_policy(RoleName="Twin", PolicyArn=policy)
        iam.put_role_policy(RoleName="Twin", PolicyName="inline", PolicyDocument=POLICY)

        found = moto_bridge.find_iam_role(ACCOUNT, "us-east-1", "Twin")
        assert found == moto_bridge.IamRole(
            name="Twin", attached_policy_arns=frozenset({policy}), inline_policies={"inline": POLICY}
        )
        assert moto_bridge.find_iam_role(ACCOUNT, "us-east-1", "twin").name == "twin"
        assert moto_bridge.find_iam_role(ACCOUNT, "us-east-1", "TWIN").name in ("Twin", "twin")
        assert moto_bridge.find_iam_role(ACCOUNT, "us-east-1", "other") is None


POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'


def test_roles_found_by_name_index_answer_as_moto_did():
    """moto's lookups by name and ARN go through the emulator's index: the
    same roles and errors, a deleted role gone from it, a re-created one found."""
    with mock_aws():
        iam = boto3.client(
            "iam", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        for i in range(50):
            iam.create_role(RoleName=f"r{i}", AssumeRolePolicyDocument=TRUST_POLICY)
        arn = iam.create_role(RoleName="deep", Path="/team/", AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"]
        with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
            iam.create_role(RoleName="r7", AssumeRolePolicyDocument=TRUST_POLICY)
        assert iam.get_role(RoleName="r7")["Role"]["RoleName"] == "r7"
        assert iam.get_role(RoleName="deep")["Role"]["Arn"] == arn
        directory = moto_bridge.MotoDirectory()
        assert directory.role_created_at(ACCOUNT, "aws", arn) is not None
        assert directory.role_created_at(ACCOUNT, "aws", arn.replace("/team/", "/")) is None

        first_id = iam.get_role(RoleName="r7")["Role"]["RoleId"]
        iam.delete_role(RoleName="r7")
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            iam.get_role(RoleName="r7")
        assert moto_bridge.find_iam_role(ACCOUNT, "us-east-1", "R7") is None
        iam.create_role(RoleName="r7", AssumeRolePolicyDocument=TRUST_POLICY)
        assert iam.get_role(RoleName="r7")["Role"]["RoleId"] != first_id
        assert len(iam.list_roles(MaxItems=1000)["Roles"]) == 51
