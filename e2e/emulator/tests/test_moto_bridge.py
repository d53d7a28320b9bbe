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
