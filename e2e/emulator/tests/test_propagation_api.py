"""IAM eventual consistency as EKS Pod Identity sees it: /_emulator/propagation."""

from __future__ import annotations

import json
import time

import pytest
from conftest import Emulator, make_role

DELAY_MS = 300
# Past the window with room to spare for a slow CI host.
PAST_WINDOW_S = DELAY_MS / 1000 + 0.2


@pytest.fixture
def eks(emu: Emulator):
    # No retries: each attempt must be one the test made on purpose.
    return emu.client("eks", retries={"total_max_attempts": 1})


def set_delay(emu: Emulator, delay_ms: int) -> dict:
    return emu.ok("PUT", "/propagation", {"roleVisibleToEksAfterMs": delay_ms})


def create(eks, cluster: str, role_arn: str, sa: str = "web", **extra) -> dict:
    return eks.create_pod_identity_association(
        clusterName=cluster, namespace="apps", serviceAccount=sa, roleArn=role_arn, **extra
    )["association"]


def test_default_is_zero_and_round_trips(emu: Emulator):
    assert emu.ok("GET", "/propagation") == {"roleVisibleToEksAfterMs": 0}
    assert set_delay(emu, 1500) == {"roleVisibleToEksAfterMs": 1500}
    assert emu.ok("GET", "/propagation") == {"roleVisibleToEksAfterMs": 1500}
    assert set_delay(emu, 0) == {"roleVisibleToEksAfterMs": 0}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"roleVisibleToEksAfterMs": -1},
        {"roleVisibleToEksAfterMs": 1.5},
        {"roleVisibleToEksAfterMs": "300"},
        {"roleVisibleToEksAfterMs": True},
        {"roleVisibleToEksAfterMs": None},
        {"roleVisibleToEksAfterMs": 300, "roleVisibleAfterMs": 300},
        [300],
    ],
)
def test_bad_input_is_rejected(emu: Emulator, body):
    set_delay(emu, 700)
    status, headers, raw = emu.http("PUT", "/_emulator/propagation", json.dumps(body))
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(raw)["error"]
    assert emu.ok("GET", "/propagation") == {"roleVisibleToEksAfterMs": 700}  # unchanged


def test_malformed_json_and_wrong_method(emu: Emulator):
    assert emu.http("PUT", "/_emulator/propagation", b"{not json")[0] == 400
    assert emu.control("POST", "/propagation", {"roleVisibleToEksAfterMs": 1})[0] == 405


def test_new_role_is_missing_until_the_delay_elapsed(emu: Emulator, eks, cluster):
    set_delay(emu, DELAY_MS)
    role_arn = make_role(emu, "fresh")
    with pytest.raises(eks.exceptions.InvalidParameterException) as info:
        create(eks, cluster, role_arn)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Message"] == "Role provided in the request does not exist"
    assert response["clusterName"] == cluster
    # IAM itself already knows the role: only EKS lags behind.
    emu.client("iam").get_role(RoleName=role_arn.rsplit("/", 1)[1])

    time.sleep(PAST_WINDOW_S)
    assert create(eks, cluster, role_arn)["roleArn"] == role_arn


def test_update_and_same_account_target_wait_too(emu: Emulator, eks, cluster, role_arn):
    assoc_id = create(eks, cluster, role_arn)["associationId"]
    time.sleep(PAST_WINDOW_S)  # role_arn is now older than the window, only `fresh` is not
    set_delay(emu, DELAY_MS)
    fresh = make_role(emu, "fresh")
    with pytest.raises(eks.exceptions.InvalidParameterException):
        eks.update_pod_identity_association(clusterName=cluster, associationId=assoc_id, roleArn=fresh)
    with pytest.raises(eks.exceptions.InvalidParameterException):
        create(eks, cluster, role_arn, sa="other", targetRoleArn=fresh)
    # EKS cannot look into another account, so a foreign target never waits.
    create(eks, cluster, role_arn, sa="foreign", targetRoleArn="arn:aws:iam::210987654321:role/elsewhere")

    time.sleep(PAST_WINDOW_S)
    updated = eks.update_pod_identity_association(
        clusterName=cluster, associationId=assoc_id, roleArn=fresh, targetRoleArn=fresh
    )["association"]
    assert (updated["roleArn"], updated["targetRoleArn"]) == (fresh, fresh)


def test_roles_older_than_the_window_are_unaffected(emu: Emulator, eks, cluster):
    role_arn = make_role(emu, "seasoned")
    time.sleep(PAST_WINDOW_S)
    set_delay(emu, DELAY_MS)
    assert create(eks, cluster, role_arn)["roleArn"] == role_arn


def test_zero_turns_it_off(emu: Emulator, eks, cluster):
    set_delay(emu, 60_000)
    set_delay(emu, 0)
    role_arn = make_role(emu, "fresh")
    assert create(eks, cluster, role_arn)["roleArn"] == role_arn
