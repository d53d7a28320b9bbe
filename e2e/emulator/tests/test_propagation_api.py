"""IAM eventual consistency, as EKS Pod Identity and as IAM's own reads see it: /_emulator/propagation."""

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


def delays(eks_ms: int, iam_ms: int) -> dict:
    return {"roleVisibleToEksAfterMs": eks_ms, "roleVisibleToIamAfterMs": iam_ms}


def test_default_is_zero_and_round_trips(emu: Emulator):
    assert emu.ok("GET", "/propagation") == delays(0, 0)
    assert set_delay(emu, 1500) == delays(1500, 0)
    assert emu.ok("GET", "/propagation") == delays(1500, 0)
    assert set_delay(emu, 0) == delays(0, 0)


def test_either_or_both_delays_are_set(emu: Emulator):
    assert emu.ok("PUT", "/propagation", {"roleVisibleToIamAfterMs": 400}) == delays(0, 400)
    assert set_delay(emu, 900) == delays(900, 400)  # the other one is left as it was
    assert emu.ok("PUT", "/propagation", delays(1, 2)) == delays(1, 2)
    assert emu.ok("GET", "/propagation") == delays(1, 2)


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
        {"roleVisibleToIamAfterMs": -1},
        {"roleVisibleToIamAfterMs": "300"},
        {"roleVisibleToIamAfterMs": None},
        # One bad value refuses the whole body: the good one is not applied either.
        {"roleVisibleToEksAfterMs": 1, "roleVisibleToIamAfterMs": 2.5},
        {"roleVisibleToEksAfterMs": False, "roleVisibleToIamAfterMs": 1},
        [300],
    ],
)
def test_bad_input_is_rejected(emu: Emulator, body):
    emu.ok("PUT", "/propagation", delays(700, 800))
    status, headers, raw = emu.http("PUT", "/_emulator/propagation", json.dumps(body))
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(raw)["error"]
    assert emu.ok("GET", "/propagation") == delays(700, 800)  # unchanged


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


# -- IAM's own read-after-create lag ------------------------------------------


@pytest.fixture
def iam(emu: Emulator):
    return emu.client("iam", retries={"total_max_attempts": 1})


def set_iam_delay(emu: Emulator, delay_ms: int) -> dict:
    return emu.ok("PUT", "/propagation", {"roleVisibleToIamAfterMs": delay_ms})


def test_new_role_is_unknown_to_iam_reads_until_the_delay_elapsed(emu: Emulator, iam):
    set_iam_delay(emu, DELAY_MS)
    name = make_role(emu, "fresh").rsplit("/", 1)[1]
    with pytest.raises(iam.exceptions.NoSuchEntityException) as info:
        iam.get_role(RoleName=name)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["Error"] == {
        "Type": "Sender",
        "Code": "NoSuchEntity",
        "Message": f"The role with name {name} cannot be found.",
    }
    (call,) = [c for c in emu.calls() if c["operation"] == "GetRole"]
    assert (call["status"], call["fault"], call["target"]) == (404, None, name)

    time.sleep(PAST_WINDOW_S)
    assert iam.get_role(RoleName=name)["Role"]["RoleName"] == name


def test_every_role_read_lags_and_names_the_role_as_asked(emu: Emulator, iam):
    name = make_role(emu, "Fresh").rsplit("/", 1)[1]
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=POLICY)
    set_iam_delay(emu, 60_000)
    asked = name.lower()  # IAM matches role names regardless of case, and so does the lag
    reads = [
        lambda: iam.get_role(RoleName=asked),
        lambda: iam.list_attached_role_policies(RoleName=asked),
        lambda: iam.list_role_policies(RoleName=asked),
        lambda: iam.get_role_policy(RoleName=asked, PolicyName="inline"),
        lambda: iam.list_role_tags(RoleName=asked),
        lambda: iam.list_instance_profiles_for_role(RoleName=asked),
    ]
    for read in reads:
        with pytest.raises(iam.exceptions.NoSuchEntityException) as info:
            read()
        assert info.value.response["Error"]["Message"] == f"The role with name {asked} cannot be found."
    # Writes and ListRoles see the role at once, and so does EKS.
    iam.tag_role(RoleName=name, Tags=[{"Key": "team", "Value": "a"}])
    iam.put_role_policy(RoleName=name, PolicyName="other", PolicyDocument=POLICY)
    assert name in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    # A role that does not exist at all is still moto's own NoSuchEntity.
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=name + "-gone")

    set_iam_delay(emu, 0)
    for read in reads:
        read()


def test_iam_lag_spares_older_roles_and_leaves_eks_alone(emu: Emulator, iam, eks, cluster):
    seasoned = make_role(emu, "seasoned").rsplit("/", 1)[1]
    time.sleep(PAST_WINDOW_S)
    set_iam_delay(emu, DELAY_MS)
    assert iam.get_role(RoleName=seasoned)["Role"]["RoleName"] == seasoned
    fresh = make_role(emu, "fresh")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=fresh.rsplit("/", 1)[1])
    assert create(eks, cluster, fresh)["roleArn"] == fresh  # the EKS delay is separate, and 0


POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
)
