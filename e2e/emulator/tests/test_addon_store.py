"""AddonStore on its own: no HTTP, no moto."""

from __future__ import annotations

import itertools

import pytest
from emulator.addons import AddonStore
from emulator.aws_errors import EksError
from emulator.pod_identity import Scope

SCOPE = Scope("123456789012", "us-east-1")
START = 1_700_000_000.0


class FakeDirectory:
    def __init__(self) -> None:
        self.clusters = {("123456789012", "us-east-1", "dev"): "dev#1"}

    def cluster_incarnation(self, scope: Scope, cluster: str) -> str | None:
        return self.clusters.get((scope.account_id, scope.region, cluster))

    def role_created_at(self, account_id: str, partition: str, role_arn: str) -> float | None:
        return None


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
def store(directory: FakeDirectory) -> AddonStore:
    ids = (f"id-{n}" for n in itertools.count(1))
    return AddonStore(directory, clock=lambda: START, make_id=lambda: next(ids))


def describe_error_code(store: AddonStore, name: str = "agent") -> str:
    with pytest.raises(EksError) as info:
        store.describe(SCOPE, "dev", name)
    return info.value.code


def test_reset_forgets_addons(store: AddonStore):
    store.put(SCOPE, "dev", "agent", status="ACTIVE")
    store.reset()
    assert describe_error_code(store) == "ResourceNotFoundException"
    assert store.list(SCOPE, "dev") == {"addons": [], "nextToken": None}


def test_a_recreated_cluster_starts_without_addons(store: AddonStore, directory: FakeDirectory):
    store.put(SCOPE, "dev", "agent", status="ACTIVE")
    directory.clusters[("123456789012", "us-east-1", "dev")] = "dev#2"
    assert describe_error_code(store) == "ResourceNotFoundException"


def test_addons_do_not_cross_regions(store: AddonStore, directory: FakeDirectory):
    west = Scope("123456789012", "us-west-2")
    directory.clusters[("123456789012", "us-west-2", "dev")] = "dev-west#1"
    store.put(west, "dev", "agent", status="ACTIVE")
    assert describe_error_code(store) == "ResourceNotFoundException"
    assert store.describe(west, "dev", "agent")["addonArn"] == (
        "arn:aws:eks:us-west-2:123456789012:addon/dev/agent/id-1"
    )


def test_put_refuses_an_unknown_status(store: AddonStore):
    with pytest.raises(ValueError):
        store.put(SCOPE, "dev", "agent", status="RUNNING")


def test_modified_at_moves_even_within_a_millisecond(store: AddonStore):
    first = store.put(SCOPE, "dev", "agent", status="CREATING")
    second = store.put(SCOPE, "dev", "agent", status="ACTIVE")
    assert second["modifiedAt"] == first["modifiedAt"] + 0.001
    assert second["createdAt"] == first["createdAt"] == START
