"""EKS Pod Identity associations: the state and rules of the five operations.

Free of HTTP and of moto: what it needs to know about clusters and roles
comes through a Directory, so the rules can be unit-tested on their own.
Requests and results use the EKS API's member names (roleArn, ...), which
keeps the REST binding in eks_api.py a thin translation.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .aws_errors import EksError
from .eks_clusters import ClusterStates, decode_token, encode_token, now_ms

ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 17
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100
MAX_TAGS = 50

ROLE_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?P<name>.+)$")
ASSOCIATION_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):eks:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"podidentityassociation/(?P<cluster>[^/]+)/(?P<id>[^/]+)$"
)
# The members UpdatePodIdentityAssociation may change; the rest are fixed at creation.
UPDATABLE = ("roleArn", "targetRoleArn", "disableSessionTags", "policy")


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class Scope:
    """Who is asking, and where: associations never cross accounts or regions."""

    account_id: str
    region: str

    @property
    def partition(self) -> str:
        return partition_of(self.region)


class Directory(Protocol):
    def cluster_incarnation(self, scope: Scope, cluster: str) -> str | None:
        """An id of the cluster that changes when it is deleted and re-created; None if absent."""

    def role_created_at(self, account_id: str, partition: str, role_arn: str) -> float | None:
        """When IAM created the role, in POSIX seconds; None if it does not exist."""


def new_association_id() -> str:
    return "a-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def new_external_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Association:
    seq: int
    cluster_name: str
    namespace: str
    service_account: str
    role_arn: str
    association_arn: str
    association_id: str
    tags: dict[str, str]
    created_at: float
    modified_at: float
    disable_session_tags: bool = False
    target_role_arn: str | None = None
    external_id: str | None = None
    policy: str | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "clusterName": self.cluster_name,
            "namespace": self.namespace,
            "serviceAccount": self.service_account,
            "roleArn": self.role_arn,
            "associationArn": self.association_arn,
            "associationId": self.association_id,
            "tags": dict(self.tags),
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "disableSessionTags": self.disable_session_tags,
        }
        # Optional members are left out rather than sent as null, as AWS does.
        if self.target_role_arn is not None:
            out["targetRoleArn"] = self.target_role_arn
            out["externalId"] = self.external_id
        if self.policy is not None:
            out["policy"] = self.policy
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "clusterName": self.cluster_name,
            "namespace": self.namespace,
            "serviceAccount": self.service_account,
            "associationArn": self.association_arn,
            "associationId": self.association_id,
        }


@dataclass
class _Cluster:
    incarnation: str
    associations: dict[str, Association] = field(default_factory=dict)


@dataclass
class _Replay:
    fingerprint: str
    result: dict[str, Any]


def invalid(message: str, cluster: str | None = None) -> EksError:
    return EksError("InvalidParameterException", message, {"clusterName": cluster} if cluster else {})


class PodIdentityStore:
    def __init__(
        self,
        directory: Directory,
        clock: Callable[[], float] = time.time,
        make_id: Callable[[], str] = new_association_id,
        make_external_id: Callable[[], str] = new_external_id,
    ) -> None:
        self._directory = directory
        self._clock = clock
        self._make_id = make_id
        self._make_external_id = make_external_id
        # One lock for everything: operations are tiny, and a single lock
        # makes the duplicate check and the insert one atomic step.
        self._lock = threading.RLock()
        # A re-created cluster starts empty: EKS deletes a cluster's
        # associations along with it.
        self._clusters: ClusterStates[_Cluster] = ClusterStates(directory, _Cluster)
        self._replays: dict[tuple[str, ...], _Replay] = {}
        self._seq = 0
        self._role_visible_after_ms = 0

    def reset(self) -> None:
        with self._lock:
            self._clusters.clear()
            self._replays.clear()
            self._role_visible_after_ms = 0

    # -- IAM propagation ----------------------------------------------------

    @property
    def role_visible_after_ms(self) -> int:
        with self._lock:
            return self._role_visible_after_ms

    def set_role_visible_after_ms(self, delay_ms: int) -> None:
        """Models IAM's eventual consistency as EKS sees it: a role younger
        than delay_ms does not exist yet for Pod Identity. 0 turns it off."""
        if delay_ms < 0:
            raise ValueError("delay_ms must not be negative")
        with self._lock:
            self._role_visible_after_ms = delay_ms

    # -- operations ---------------------------------------------------------

    def create(self, scope: Scope, cluster: str, request: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            bucket = self._cluster(scope, cluster)
            namespace = required_str(request, "namespace", cluster)
            service_account = required_str(request, "serviceAccount", cluster)
            role_arn = required_str(request, "roleArn", cluster)
            tags = parse_tags(request.get("tags"), cluster)
            disable_session_tags = _optional_bool(request, "disableSessionTags", cluster)
            target_role_arn = _optional_str(request, "targetRoleArn", cluster) or None
            policy = _optional_str(request, "policy", cluster) or None

            token = _optional_str(request, "clientRequestToken", cluster)
            fingerprint = _fingerprint(
                cluster=cluster,
                namespace=namespace,
                serviceAccount=service_account,
                roleArn=role_arn,
                tags=tags,
                disableSessionTags=disable_session_tags,
                targetRoleArn=target_role_arn,
                policy=policy,
            )
            replay = self._replay(scope, "create", token, fingerprint, cluster)
            if replay is not None:
                return replay

            self._check_role(scope, role_arn, cluster, field_name="roleArn", same_account=True)
            if target_role_arn is not None:
                self._check_role(
                    scope, target_role_arn, cluster, field_name="targetRoleArn", same_account=False
                )
            disable = bool(disable_session_tags)
            _check_policy(policy, disable, cluster)

            for existing in bucket.associations.values():
                if existing.namespace == namespace and existing.service_account == service_account:
                    raise EksError(
                        "ResourceInUseException",
                        f"Association already exists: {existing.association_id}",
                        {"clusterName": cluster},
                    )

            association_id = self._make_id()
            now = self._now()
            self._seq += 1
            association = Association(
                seq=self._seq,
                cluster_name=cluster,
                namespace=namespace,
                service_account=service_account,
                role_arn=role_arn,
                association_arn=(
                    f"arn:{scope.partition}:eks:{scope.region}:{scope.account_id}:"
                    f"podidentityassociation/{cluster}/{association_id}"
                ),
                association_id=association_id,
                tags=tags,
                created_at=now,
                modified_at=now,
                disable_session_tags=disable,
                target_role_arn=target_role_arn,
                external_id=self._make_external_id() if target_role_arn else None,
                policy=policy,
            )
            bucket.associations[association_id] = association
            return self._remember(scope, "create", token, fingerprint, association.describe())

    def describe(self, scope: Scope, cluster: str, association_id: str) -> dict[str, Any]:
        with self._lock:
            return self._association(scope, cluster, association_id).describe()

    def list(
        self,
        scope: Scope,
        cluster: str,
        namespace: str | None = None,
        service_account: str | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            bucket = self._cluster(scope, cluster)
            if max_results is None:
                page_size = DEFAULT_PAGE_SIZE
            elif not 1 <= max_results <= MAX_PAGE_SIZE:
                raise invalid(f"maxResults must be between 1 and {MAX_PAGE_SIZE}, got {max_results}", cluster)
            else:
                page_size = max_results
            after = _decode_token(next_token, cluster) if next_token else 0
            matching = [
                a
                for a in sorted(bucket.associations.values(), key=lambda a: a.seq)
                if a.seq > after
                and (not namespace or a.namespace == namespace)
                and (not service_account or a.service_account == service_account)
            ]
            page = matching[:page_size]
            result: dict[str, Any] = {"associations": [a.summary() for a in page]}
            if len(matching) > page_size:
                result["nextToken"] = _encode_token(page[-1].seq)
            return result

    def update(
        self, scope: Scope, cluster: str, association_id: str, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            association = self._association(scope, cluster, association_id)
            changes = {k: request[k] for k in UPDATABLE if request.get(k) is not None}
            token = _optional_str(request, "clientRequestToken", cluster)
            fingerprint = _fingerprint(cluster=cluster, associationId=association_id, **changes)
            replay = self._replay(scope, "update", token, fingerprint, cluster)
            if replay is not None:
                return replay
            if not changes:
                raise invalid(
                    "Provide at least one of roleArn, targetRoleArn, disableSessionTags or policy",
                    cluster,
                )

            role_arn = association.role_arn
            target_role_arn = association.target_role_arn
            disable = association.disable_session_tags
            policy = association.policy
            if "roleArn" in changes:
                role_arn = required_str(changes, "roleArn", cluster)
                self._check_role(scope, role_arn, cluster, field_name="roleArn", same_account=True)
            if "targetRoleArn" in changes:
                # An empty string is how a caller drops the target role: the
                # SDKs cannot send null for a member that is merely absent.
                target_role_arn = _optional_str(changes, "targetRoleArn", cluster) or None
                if target_role_arn is not None:
                    self._check_role(
                        scope, target_role_arn, cluster, field_name="targetRoleArn", same_account=False
                    )
            if "disableSessionTags" in changes:
                disable = bool(_optional_bool(changes, "disableSessionTags", cluster))
            if "policy" in changes:
                policy = _optional_str(changes, "policy", cluster) or None
            _check_policy(policy, disable, cluster)

            association.role_arn = role_arn
            if target_role_arn is None:
                association.external_id = None
            elif association.external_id is None:
                association.external_id = self._make_external_id()
            association.target_role_arn = target_role_arn
            association.disable_session_tags = disable
            association.policy = policy
            # Strictly later, so a caller can always tell the update happened.
            association.modified_at = max(self._now(), round(association.modified_at + 0.001, 3))
            return self._remember(scope, "update", token, fingerprint, association.describe())

    def delete(self, scope: Scope, cluster: str, association_id: str) -> dict[str, Any]:
        with self._lock:
            bucket = self._cluster(scope, cluster)
            association = self._association(scope, cluster, association_id)
            del bucket.associations[association.association_id]
            return association.describe()

    # -- tagging by ARN -----------------------------------------------------

    def tag(self, scope: Scope, arn: str, tags: Any) -> None:
        with self._lock:
            association = self._by_arn(scope, arn)
            new_tags = parse_tags(tags, None, error_code="BadRequestException")
            merged = {**association.tags, **new_tags}
            if len(merged) > MAX_TAGS:
                raise EksError("BadRequestException", f"A resource can have at most {MAX_TAGS} tags")
            association.tags = merged

    def untag(self, scope: Scope, arn: str, keys: list[str]) -> None:
        with self._lock:
            association = self._by_arn(scope, arn)
            for key in keys:
                association.tags.pop(key, None)

    def tags_of(self, scope: Scope, arn: str) -> dict[str, str]:
        with self._lock:
            return dict(self._by_arn(scope, arn).tags)

    def tags_or_none(self, scope: Scope, arn: str) -> dict[str, str] | None:
        """An association's tags, or None when there is no such association."""
        try:
            return self.tags_of(scope, arn)
        except EksError:
            return None

    def subject_or_none(self, scope: Scope, cluster: str, association_id: str) -> str | None:
        """`namespace/serviceAccount` of an association, or None when there is none."""
        with self._lock:
            try:
                association = self._association(scope, cluster, association_id)
            except EksError:
                return None
            return f"{association.namespace}/{association.service_account}"

    # -- internals ----------------------------------------------------------

    def _now(self) -> float:
        return now_ms(self._clock)

    def _cluster(self, scope: Scope, name: str) -> _Cluster:
        return self._clusters.of(scope, name)

    def _association(self, scope: Scope, cluster: str, association_id: str) -> Association:
        association = self._cluster(scope, cluster).associations.get(association_id)
        if association is None:
            raise EksError(
                "ResourceNotFoundException",
                f"No Pod Identity Association found with id: {association_id}",
                {"clusterName": cluster},
            )
        return association

    def _by_arn(self, scope: Scope, arn: str) -> Association:
        match = ASSOCIATION_ARN.match(arn)
        not_found = EksError("NotFoundException", f"Resource was not found: {arn}")
        if match is None or match["account"] != scope.account_id or match["region"] != scope.region:
            raise not_found
        try:
            association = self._association(scope, match["cluster"], match["id"])
        except EksError:
            raise not_found from None
        if association.association_arn != arn:
            raise not_found
        return association

    def _check_role(
        self, scope: Scope, arn: str, cluster: str, *, field_name: str, same_account: bool
    ) -> None:
        match = ROLE_ARN.match(arn)
        if match is None or match["partition"] != scope.partition:
            raise invalid(f"Invalid {field_name}: {arn} is not an IAM role ARN", cluster)
        if match["account"] != scope.account_id:
            if same_account:
                raise invalid(f"The {field_name} must be a role in account {scope.account_id}", cluster)
            # A target role may live in another account, where EKS cannot look.
            return
        created = self._directory.role_created_at(scope.account_id, scope.partition, arn)
        if created is None or not self._visible_to_eks(created):
            # Real EKS answers a role IAM has not propagated to it yet exactly
            # like a missing one; callers can only retry.
            raise invalid("Role provided in the request does not exist", cluster)

    def _visible_to_eks(self, role_created_at: float) -> bool:
        if self._role_visible_after_ms == 0:
            return True  # off: skip the clock, so behaviour is exactly as without the feature
        # Whole microseconds (moto's resolution): a float of epoch seconds is
        # off by ~0.1 us, which must not decide the boundary.
        age_us = round((self._clock() - role_created_at) * 1_000_000)
        return age_us >= self._role_visible_after_ms * 1000

    def _replay(
        self, scope: Scope, op: str, token: str | None, fingerprint: str, cluster: str
    ) -> dict[str, Any] | None:
        if not token:
            return None
        replay = self._replays.get((scope.account_id, scope.region, op, token))
        if replay is None:
            return None
        if replay.fingerprint != fingerprint:
            # The EKS model has no IdempotentParameterMismatch error; of the
            # errors these operations declare, InvalidRequestException fits.
            raise EksError(
                "InvalidRequestException",
                "The clientRequestToken was already used with different request parameters",
                {"clusterName": cluster},
            )
        return copy.deepcopy(replay.result)

    def _remember(
        self, scope: Scope, op: str, token: str | None, fingerprint: str, result: dict[str, Any]
    ) -> dict[str, Any]:
        if token:
            self._replays[(scope.account_id, scope.region, op, token)] = _Replay(
                fingerprint, copy.deepcopy(result)
            )
        return result


# -- request validation --------------------------------------------------------


def required_str(request: Mapping[str, Any], key: str, cluster: str) -> str:
    value = request.get(key)
    if value is None or value == "":
        raise invalid(f"{key} is required", cluster)
    if not isinstance(value, str):
        raise invalid(f"{key} must be a string", cluster)
    return value


def _optional_str(request: Mapping[str, Any], key: str, cluster: str) -> str | None:
    value = request.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{key} must be a string", cluster)
    return value


def _optional_bool(request: Mapping[str, Any], key: str, cluster: str) -> bool | None:
    value = request.get(key)
    if value is not None and not isinstance(value, bool):
        raise invalid(f"{key} must be a boolean", cluster)
    return value


def parse_tags(
    raw: Any, cluster: str | None, error_code: str = "InvalidParameterException"
) -> dict[str, str]:
    """An EKS `tags` member, checked as EKS does (add-ons use it too)."""

    def fail(message: str) -> EksError:
        return EksError(error_code, message, {"clusterName": cluster} if cluster else {})

    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise fail("tags must be a map of strings")
    if len(raw) > MAX_TAGS:
        raise fail(f"A resource can have at most {MAX_TAGS} tags")
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise fail("tags must be a map of strings")
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise fail("Tag keys must be 1-128 characters and values at most 256")
        if key.lower().startswith("aws:"):
            raise fail("Tag keys starting with 'aws:' are reserved")
    return dict(raw)


def _check_policy(policy: str | None, disable_session_tags: bool, cluster: str) -> None:
    if policy is None:
        return
    try:
        json.loads(policy)
    except ValueError:
        raise invalid("policy must be a JSON IAM policy document", cluster) from None
    if not disable_session_tags:
        # The API reference: a policy requires disableSessionTags=true.
        raise invalid("disableSessionTags must be true when a policy is set", cluster)


def _fingerprint(**params: Any) -> str:
    return json.dumps(params, sort_keys=True)


def _encode_token(after_seq: int) -> str:
    return encode_token(after_seq)


def _decode_token(token: str, cluster: str) -> int:
    return decode_token(
        token,
        lambda after: isinstance(after, int) and not isinstance(after, bool) and after >= 0,
        lambda: invalid("The nextToken is not valid", cluster),
    )
