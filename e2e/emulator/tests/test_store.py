"""PodIdentityStore on its own: no HTTP, no moto."""

from __future__ import annotations

import itertools

import pytest
from emulator.aws_errors import EksError
from emulator.pod_identity import ID_ALPHABET, PodIdentityStore, Scope, new_association_id

SCOPE = Scope("123456789012", "us-east-1")
ROLE = "arn:aws:iam::123456789012:role/app"
OTHER_ROLE = "arn:aws:iam::123456789012:role/other"
FOREIGN_TARGET = "arn:aws:iam::210987654321:role/target"


START = 1_700_000_000.0


class FakeDirectory:
    def __init__(self) -> None:
        self.clusters = {("123456789012", "us-east-1", "dev"): "dev#1"}
        # role ARN -> creation time; these two are an hour old when tests start.
        self.roles = {ROLE: START - 3600, OTHER_ROLE: START - 3600}

    def cluster_incarnation(self, scope: Scope, cluster: str) -> str | None:
        return self.clusters.get((scope.account_id, scope.region, cluster))

    def role_created_at(self, account_id: str, partition: str, role_arn: str) -> float | None:
        return self.roles.get(role_arn)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(directory: FakeDirectory, clock: Clock) -> PodIdentityStore:
    ids = (f"a-{n:017d}" for n in itertools.count(1))
    external = (f"ext-{n}" for n in itertools.count(1))
    return PodIdentityStore(
        directory, clock=clock, make_id=lambda: next(ids), make_external_id=lambda: next(external)
    )


def create(store: PodIdentityStore, namespace: str = "ns", sa: str = "sa", **extra):
    return store.create(
        SCOPE, "dev", {"namespace": namespace, "serviceAccount": sa, "roleArn": ROLE, **extra}
    )


def error_of(fn, *args, **kwargs) -> EksError:
    with pytest.raises(EksError) as info:
        fn(*args, **kwargs)
    return info.value


def test_association_ids_look_like_eks_ones():
    for _ in range(50):
        assoc_id = new_association_id()
        assert assoc_id.startswith("a-") and len(assoc_id) == 19
        assert set(assoc_id[2:]) <= set(ID_ALPHABET)


def test_create_returns_full_description(store: PodIdentityStore, clock: Clock):
    assoc = create(store, tags={"team": "a"})
    assert assoc == {
        "clusterName": "dev",
        "namespace": "ns",
        "serviceAccount": "sa",
        "roleArn": ROLE,
        "associationArn": "arn:aws:eks:us-east-1:123456789012:podidentityassociation/dev/a-00000000000000001",
        "associationId": "a-00000000000000001",
        "tags": {"team": "a"},
        "createdAt": clock.now,
        "modifiedAt": clock.now,
        "disableSessionTags": False,
    }


def test_target_role_brings_an_external_id(store: PodIdentityStore):
    assoc = create(store, targetRoleArn=FOREIGN_TARGET)
    assert assoc["targetRoleArn"] == FOREIGN_TARGET
    assert assoc["externalId"] == "ext-1"


def test_same_service_account_twice_is_in_use(store: PodIdentityStore):
    create(store)
    err = error_of(create, store)
    assert (err.code, err.status, err.extra) == ("ResourceInUseException", 409, {"clusterName": "dev"})
    create(store, namespace="other-ns")  # a different namespace is a different key


def test_unknown_cluster(store: PodIdentityStore):
    err = error_of(store.create, SCOPE, "nope", {"namespace": "n", "serviceAccount": "s", "roleArn": ROLE})
    assert (err.code, err.status) == ("ResourceNotFoundException", 404)
    assert error_of(store.list, SCOPE, "nope").code == "ResourceNotFoundException"
    assert error_of(store.describe, SCOPE, "nope", "a-x").code == "ResourceNotFoundException"


def test_clusters_are_scoped_by_account_and_region(store: PodIdentityStore):
    err = error_of(store.list, Scope("123456789012", "eu-west-1"), "dev")
    assert err.code == "ResourceNotFoundException"


@pytest.mark.parametrize(
    "field,value",
    [
        ("roleArn", "arn:aws:iam::123456789012:role/missing"),
        ("roleArn", "arn:aws:iam::123456789012:user/app"),
        ("roleArn", "not-an-arn"),
        ("roleArn", "arn:aws:iam::210987654321:role/app"),
        ("targetRoleArn", "arn:aws:iam::123456789012:role/missing"),
        ("targetRoleArn", "arn:aws:s3:::bucket"),
    ],
)
def test_bad_roles_are_invalid_parameters(store: PodIdentityStore, field: str, value: str):
    err = error_of(create, store, **{field: value})
    assert (err.code, err.status) == ("InvalidParameterException", 400)


@pytest.mark.parametrize("missing", ["namespace", "serviceAccount", "roleArn"])
def test_required_members(store: PodIdentityStore, missing: str):
    request = {"namespace": "ns", "serviceAccount": "sa", "roleArn": ROLE}
    del request[missing]
    err = error_of(store.create, SCOPE, "dev", request)
    assert err.code == "InvalidParameterException" and missing in err.message


def test_policy_requires_disabled_session_tags(store: PodIdentityStore):
    policy = '{"Version": "2012-10-17", "Statement": []}'
    assert error_of(create, store, policy=policy).code == "InvalidParameterException"
    assoc = create(store, policy=policy, disableSessionTags=True)
    assert assoc["policy"] == policy and assoc["disableSessionTags"] is True


def test_create_is_idempotent_per_token(store: PodIdentityStore, clock: Clock):
    first = create(store, clientRequestToken="tok")
    clock.now += 5
    assert create(store, clientRequestToken="tok") == first
    err = error_of(create, store, sa="other", clientRequestToken="tok")
    assert err.code == "InvalidRequestException"
    assert len(store.list(SCOPE, "dev")["associations"]) == 1


def test_update_changes_only_updatable_members(store: PodIdentityStore, clock: Clock):
    assoc = create(store, tags={"t": "1"})
    clock.now += 10
    updated = store.update(
        SCOPE,
        "dev",
        assoc["associationId"],
        {"roleArn": OTHER_ROLE, "namespace": "hijack", "serviceAccount": "hijack", "tags": {"x": "y"}},
    )
    assert updated["roleArn"] == OTHER_ROLE
    assert (updated["namespace"], updated["serviceAccount"], updated["tags"]) == ("ns", "sa", {"t": "1"})
    assert updated["createdAt"] == assoc["createdAt"]
    assert updated["modifiedAt"] == clock.now


def test_update_bumps_modified_at_even_within_a_millisecond(store: PodIdentityStore):
    assoc = create(store)
    updated = store.update(SCOPE, "dev", assoc["associationId"], {"disableSessionTags": True})
    assert updated["modifiedAt"] > assoc["modifiedAt"]


def test_update_sets_and_clears_target_role(store: PodIdentityStore):
    assoc_id = create(store)["associationId"]
    with_target = store.update(SCOPE, "dev", assoc_id, {"targetRoleArn": FOREIGN_TARGET})
    assert with_target["targetRoleArn"] == FOREIGN_TARGET and with_target["externalId"] == "ext-1"
    again = store.update(SCOPE, "dev", assoc_id, {"targetRoleArn": "arn:aws:iam::210987654321:role/t2"})
    assert again["externalId"] == "ext-1"  # the association keeps its external id
    cleared = store.update(SCOPE, "dev", assoc_id, {"targetRoleArn": ""})
    assert "targetRoleArn" not in cleared and "externalId" not in cleared


def test_update_needs_a_change_and_valid_roles(store: PodIdentityStore):
    assoc_id = create(store)["associationId"]
    assert error_of(store.update, SCOPE, "dev", assoc_id, {}).code == "InvalidParameterException"
    err = error_of(
        store.update, SCOPE, "dev", assoc_id, {"roleArn": "arn:aws:iam::123456789012:role/missing"}
    )
    assert err.code == "InvalidParameterException"
    assert (
        error_of(store.update, SCOPE, "dev", "a-missing", {"roleArn": ROLE}).code
        == "ResourceNotFoundException"
    )


def test_update_is_idempotent_per_token(store: PodIdentityStore, clock: Clock):
    assoc_id = create(store)["associationId"]
    first = store.update(SCOPE, "dev", assoc_id, {"roleArn": OTHER_ROLE, "clientRequestToken": "u1"})
    clock.now += 3
    assert store.update(SCOPE, "dev", assoc_id, {"roleArn": OTHER_ROLE, "clientRequestToken": "u1"}) == first
    err = error_of(store.update, SCOPE, "dev", assoc_id, {"roleArn": ROLE, "clientRequestToken": "u1"})
    assert err.code == "InvalidRequestException"


def test_delete(store: PodIdentityStore):
    assoc = create(store)
    assert store.delete(SCOPE, "dev", assoc["associationId"]) == assoc
    assert error_of(store.describe, SCOPE, "dev", assoc["associationId"]).code == "ResourceNotFoundException"
    create(store)  # the service account is free again


def test_recreated_cluster_starts_empty(store: PodIdentityStore, directory: FakeDirectory):
    create(store)
    directory.clusters[("123456789012", "us-east-1", "dev")] = "dev#2"
    assert store.list(SCOPE, "dev")["associations"] == []


def test_pagination_walks_every_association_once(store: PodIdentityStore):
    created = [create(store, sa=f"sa-{i}")["associationId"] for i in range(5)]
    seen, token, pages = [], None, 0
    while True:
        page = store.list(SCOPE, "dev", max_results=2, next_token=token)
        pages += 1
        seen += [a["associationId"] for a in page["associations"]]
        token = page.get("nextToken")
        if token is None:
            break
    assert seen == created and pages == 3


def test_pagination_survives_deletes_between_pages(store: PodIdentityStore):
    ids = [create(store, sa=f"sa-{i}")["associationId"] for i in range(3)]
    first = store.list(SCOPE, "dev", max_results=1)
    store.delete(SCOPE, "dev", ids[1])
    rest = store.list(SCOPE, "dev", max_results=5, next_token=first["nextToken"])
    assert [a["associationId"] for a in rest["associations"]] == [ids[2]]
    assert "nextToken" not in rest


def test_list_filters(store: PodIdentityStore):
    create(store, namespace="a", sa="x")
    create(store, namespace="a", sa="y")
    create(store, namespace="b", sa="x")

    def keys(**filters):
        return [
            (a["namespace"], a["serviceAccount"]) for a in store.list(SCOPE, "dev", **filters)["associations"]
        ]

    assert keys(namespace="a") == [("a", "x"), ("a", "y")]
    assert keys(service_account="x") == [("a", "x"), ("b", "x")]
    assert keys(namespace="b", service_account="x") == [("b", "x")]
    assert keys(namespace="c") == []


def test_list_summaries_omit_role_and_times(store: PodIdentityStore):
    create(store)
    (summary,) = store.list(SCOPE, "dev")["associations"]
    assert set(summary) == {"clusterName", "namespace", "serviceAccount", "associationArn", "associationId"}


@pytest.mark.parametrize("max_results", [0, 101, -1])
def test_list_rejects_out_of_range_page_size(store: PodIdentityStore, max_results: int):
    assert error_of(store.list, SCOPE, "dev", max_results=max_results).code == "InvalidParameterException"


@pytest.mark.parametrize("token", ["garbage!", "eyJ2IjogMn0", "bm90LWpzb24"])
def test_list_rejects_bad_tokens(store: PodIdentityStore, token: str):
    assert error_of(store.list, SCOPE, "dev", next_token=token).code == "InvalidParameterException"


def test_default_page_is_100(store: PodIdentityStore):
    for i in range(101):
        create(store, sa=f"sa-{i}")
    page = store.list(SCOPE, "dev")
    assert len(page["associations"]) == 100 and "nextToken" in page


def test_tags_by_arn(store: PodIdentityStore):
    assoc = create(store, tags={"a": "1"})
    arn = assoc["associationArn"]
    store.tag(SCOPE, arn, {"b": "2"})
    store.untag(SCOPE, arn, ["a"])
    assert store.tags_of(SCOPE, arn) == {"b": "2"}
    assert store.describe(SCOPE, "dev", assoc["associationId"])["tags"] == {"b": "2"}
    missing = arn.replace(assoc["associationId"], "a-00000000000000099")
    assert error_of(store.tags_of, SCOPE, missing).code == "NotFoundException"
    assert error_of(store.tag, SCOPE, arn, {"aws:reserved": "x"}).code == "BadRequestException"


# -- IAM propagation delay -----------------------------------------------------

NEW_ROLE = "arn:aws:iam::123456789012:role/new"


def test_propagation_is_off_by_default(store: PodIdentityStore, directory: FakeDirectory, clock: Clock):
    directory.roles[NEW_ROLE] = clock.now  # created this very instant
    assert store.role_visible_after_ms == 0
    assert create(store, roleArn=NEW_ROLE)["roleArn"] == NEW_ROLE


def test_young_role_is_missing_until_the_window_ends(
    store: PodIdentityStore, directory: FakeDirectory, clock: Clock
):
    store.set_role_visible_after_ms(300)
    directory.roles[NEW_ROLE] = clock.now
    clock.now += 0.299
    err = error_of(create, store, roleArn=NEW_ROLE)
    assert err.code == "InvalidParameterException"
    assert err.message == "Role provided in the request does not exist"
    clock.now += 0.001  # exactly 300 ms old: visible
    assert create(store, roleArn=NEW_ROLE)["roleArn"] == NEW_ROLE


def test_propagation_spares_older_roles(store: PodIdentityStore):
    store.set_role_visible_after_ms(60_000)
    assert create(store)["roleArn"] == ROLE  # an hour old


def test_propagation_applies_to_update_and_same_account_targets(
    store: PodIdentityStore, directory: FakeDirectory, clock: Clock
):
    assoc_id = create(store)["associationId"]
    store.set_role_visible_after_ms(1000)
    directory.roles[NEW_ROLE] = clock.now
    for change in ({"roleArn": NEW_ROLE}, {"targetRoleArn": NEW_ROLE}):
        assert error_of(store.update, SCOPE, "dev", assoc_id, change).code == "InvalidParameterException"
    assert error_of(create, store, sa="other", targetRoleArn=NEW_ROLE).code == "InvalidParameterException"
    # EKS cannot look into another account, so a foreign target never waits.
    assert create(store, sa="foreign", targetRoleArn=FOREIGN_TARGET)["targetRoleArn"] == FOREIGN_TARGET
    clock.now += 1
    assert store.update(SCOPE, "dev", assoc_id, {"targetRoleArn": NEW_ROLE})["targetRoleArn"] == NEW_ROLE


def test_reset_turns_propagation_off(store: PodIdentityStore):
    store.set_role_visible_after_ms(500)
    store.reset()
    assert store.role_visible_after_ms == 0


def test_negative_propagation_is_refused(store: PodIdentityStore):
    with pytest.raises(ValueError):
        store.set_role_visible_after_ms(-1)
