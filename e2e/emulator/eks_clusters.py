"""What the emulator's EKS stores (Pod Identity associations, add-ons) share:
state kept per cluster that starts over when the cluster is re-created, as
EKS deletes a cluster's associations and add-ons with it; EKS's millisecond
timestamps; and the opaque nextToken of their List operations."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from .aws_errors import EksError


class Scope(Protocol):
    account_id: str
    region: str


class Incarnations(Protocol):
    def cluster_incarnation(self, scope: Any, cluster: str) -> str | None:
        """An id of the cluster that changes when it is deleted and re-created; None if absent."""


class PerCluster(Protocol):
    incarnation: str


State = TypeVar("State", bound=PerCluster)


class ClusterStates(Generic[State]):
    """One `State` per (account, region, cluster); callers hold their own lock."""

    def __init__(self, clusters: Incarnations, new_state: Callable[[str], State]) -> None:
        self._clusters = clusters
        self._new_state = new_state
        self._states: dict[tuple[str, str, str], State] = {}

    def of(self, scope: Scope, name: str) -> State:
        """The cluster's state, raising EKS's error for a cluster that does not exist."""
        incarnation = self._clusters.cluster_incarnation(scope, name)
        if incarnation is None:
            raise EksError(
                "ResourceNotFoundException",
                f"No cluster found for name: {name}.",
                {"clusterName": name},
            )
        key = (scope.account_id, scope.region, name)
        state = self._states.get(key)
        if state is None or state.incarnation != incarnation:
            state = self._states[key] = self._new_state(incarnation)
        return state

    def clear(self) -> None:
        self._states.clear()


def now_ms(clock: Callable[[], float]) -> float:
    """Millisecond precision, like the timestamps EKS returns."""
    return round(clock(), 3)


def encode_token(after: Any) -> str:
    raw = json.dumps({"v": 1, "after": after}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, valid: Callable[[Any], bool], refused: Callable[[], EksError]) -> Any:
    """The position a nextToken holds; `refused()` when it is not one of ours."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = data["after"]
        if data.get("v") != 1 or not valid(after):
            raise ValueError(token)
        return after
    except (ValueError, KeyError, TypeError):
        raise refused() from None
