"""EKS add-ons: the state and rules of CreateAddon, DescribeAddon, ListAddons and DeleteAddon.

moto has no add-ons. The operator only asks whether one (eks-pod-identity-agent)
is installed and in what state, so an add-on here is a record and nothing is
installed: names and versions are not checked against DescribeAddonVersions,
and a status stays as it was set. CreateAddon makes an add-on ACTIVE at once
and DeleteAddon removes it at once; tests put an add-on in any other state
through the control API (put/remove below).

Like pod_identity.py, free of HTTP and of moto: clusters come through the
same Directory, and requests and results use the EKS API's member names.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .aws_errors import EksError
from .eks_clusters import ClusterStates, decode_token, encode_token, now_ms
from .pod_identity import ROLE_ARN, Directory, Scope, parse_tags, required_str

# The AddonStatus enum of the EKS API.
STATUSES = (
    "CREATING",
    "ACTIVE",
    "CREATE_FAILED",
    "UPDATING",
    "DELETING",
    "DELETE_FAILED",
    "DEGRADED",
    "UPDATE_FAILED",
)
RESOLVE_CONFLICTS = ("OVERWRITE", "NONE", "PRESERVE")
# EKS picks the default version for the cluster's Kubernetes version when none
# is asked for; with no catalogue here, one plausible version stands for it.
DEFAULT_VERSION = "v1.3.0-eksbuild.1"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100
# CreateAddon members the emulator cannot honour: refused rather than ignored,
# so a test never believes they took effect.
UNSUPPORTED = ("podIdentityAssociations", "namespaceConfig")


def new_addon_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Addon:
    name: str
    cluster_name: str
    status: str
    version: str
    arn: str
    created_at: float
    modified_at: float
    tags: dict[str, str] = field(default_factory=dict)
    service_account_role_arn: str | None = None
    configuration_values: str | None = None
    client_request_token: str | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "addonName": self.name,
            "clusterName": self.cluster_name,
            "status": self.status,
            "addonVersion": self.version,
            "health": {"issues": []},
            "addonArn": self.arn,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "tags": dict(self.tags),
        }
        # Optional members are left out rather than sent as null, as AWS does.
        if self.service_account_role_arn is not None:
            out["serviceAccountRoleArn"] = self.service_account_role_arn
        if self.configuration_values is not None:
            out["configurationValues"] = self.configuration_values
        return out


@dataclass
class _Cluster:
    incarnation: str
    addons: dict[str, Addon] = field(default_factory=dict)


def addon_arn_prefix(scope: Scope, cluster: str, name: str) -> str:
    """An add-on's ARN up to its id: EKS ends each add-on's ARN with an id of its own."""
    return f"arn:{scope.partition}:eks:{scope.region}:{scope.account_id}:addon/{cluster}/{name}/"


def invalid(message: str, cluster: str, addon: str | None = None) -> EksError:
    extra = {"clusterName": cluster}
    if addon:
        extra["addonName"] = addon
    return EksError("InvalidParameterException", message, extra)


def addon_not_found(cluster: str, addon: str) -> EksError:
    # EKS's wording, naming both the add-on and the cluster in the error's members.
    return EksError(
        "ResourceNotFoundException",
        f"No addon: {addon} found in cluster: {cluster}",
        {"clusterName": cluster, "addonName": addon},
    )


class AddonStore:
    def __init__(
        self,
        directory: Directory,
        clock: Callable[[], float] = time.time,
        make_id: Callable[[], str] = new_addon_id,
    ) -> None:
        self._directory = directory
        self._clock = clock
        self._make_id = make_id
        # One lock: the existence check and the insert must be one step.
        self._lock = threading.Lock()
        # A re-created cluster starts without add-ons: EKS deletes them with it.
        self._clusters: ClusterStates[_Cluster] = ClusterStates(directory, _Cluster)

    def reset(self) -> None:
        with self._lock:
            self._clusters.clear()

    # -- operations ---------------------------------------------------------

    def create(self, scope: Scope, cluster: str, request: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            bucket = self._cluster(scope, cluster)
            name = required_str(request, "addonName", cluster)
            version = _optional_str(request, "addonVersion", cluster, name) or DEFAULT_VERSION
            role_arn = _optional_str(request, "serviceAccountRoleArn", cluster, name) or None
            if role_arn is not None and ROLE_ARN.match(role_arn) is None:
                message = f"Invalid serviceAccountRoleArn: {role_arn} is not an IAM role ARN"
                raise invalid(message, cluster, name)
            resolve = _optional_str(request, "resolveConflicts", cluster, name)
            if resolve is not None and resolve not in RESOLVE_CONFLICTS:
                message = f"resolveConflicts must be one of {', '.join(RESOLVE_CONFLICTS)}"
                raise invalid(message, cluster, name)
            for member in UNSUPPORTED:
                if request.get(member):
                    raise invalid(f"{member} is not supported by the e2e emulator", cluster, name)
            tags = parse_tags(request.get("tags"), cluster)
            configuration = _optional_str(request, "configurationValues", cluster, name) or None
            token = _optional_str(request, "clientRequestToken", cluster, name) or None

            existing = bucket.addons.get(name)
            if existing is not None:
                if token is not None and existing.client_request_token == token:
                    return existing.describe()  # an SDK retry of the create that made it
                raise EksError(
                    "ResourceInUseException",
                    "Addon already exists.",
                    {"clusterName": cluster, "addonName": name},
                )
            addon = self._new(scope, cluster, name, "ACTIVE", version)
            addon.tags = tags
            addon.service_account_role_arn = role_arn
            addon.configuration_values = configuration
            addon.client_request_token = token
            bucket.addons[name] = addon
            return addon.describe()

    def describe(self, scope: Scope, cluster: str, name: str) -> dict[str, Any]:
        with self._lock:
            return self._addon(scope, cluster, name).describe()

    def list(
        self, scope: Scope, cluster: str, max_results: int | None = None, next_token: str | None = None
    ) -> dict[str, Any]:
        # The parameters first: EKS refuses a bad request before looking anything up.
        if max_results is None:
            page_size = DEFAULT_PAGE_SIZE
        elif not 1 <= max_results <= MAX_PAGE_SIZE:
            raise invalid(f"maxResults must be between 1 and {MAX_PAGE_SIZE}, got {max_results}", cluster)
        else:
            page_size = max_results
        after = _decode_token(next_token, cluster) if next_token else None
        with self._lock:
            bucket = self._cluster(scope, cluster)
            names = [n for n in sorted(bucket.addons) if after is None or n > after]
            page = names[:page_size]
            more = len(names) > page_size
            # ListAddons sends nextToken null on the last page (the API reference).
            return {"addons": page, "nextToken": _encode_token(page[-1]) if more else None}

    def delete(self, scope: Scope, cluster: str, name: str) -> dict[str, Any]:
        """Removes the add-on at once and answers it DELETING, as EKS answers
        while it tears the add-on down."""
        with self._lock:
            addon = self._addon(scope, cluster, name)
            del self._cluster(scope, cluster).addons[name]
            addon.status = "DELETING"
            addon.modified_at = self._later_than(addon.modified_at)
            return addon.describe()

    def arn_and_tags(self, scope: Scope, cluster: str, name: str) -> tuple[str, dict[str, str]] | None:
        """An add-on's ARN and tags, or None when there is no such add-on (or cluster)."""
        with self._lock:
            try:
                addon = self._addon(scope, cluster, name)
            except EksError:
                return None
            return addon.arn, dict(addon.tags)

    # -- control API (tests put add-ons in place) ---------------------------

    def put(
        self,
        scope: Scope,
        cluster: str,
        name: str,
        *,
        status: str,
        version: str | None = None,
        service_account_role_arn: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Creates the add-on in `status`, or moves an existing one to it.

        An existing add-on keeps its ARN and createdAt, as an add-on that
        EKS updates does; values not given stay as they were."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        with self._lock:
            bucket = self._cluster(scope, cluster)
            addon = bucket.addons.get(name)
            if addon is None:
                addon = self._new(scope, cluster, name, status, version or DEFAULT_VERSION)
                bucket.addons[name] = addon
            else:
                addon.status = status
                addon.version = version or addon.version
                addon.modified_at = self._later_than(addon.modified_at)
            if service_account_role_arn is not None:
                addon.service_account_role_arn = service_account_role_arn
            if tags is not None:
                addon.tags = dict(tags)
            return addon.describe()

    def remove(self, scope: Scope, cluster: str, name: str) -> dict[str, Any] | None:
        """Forgets the add-on at once; what it was, or None if there was none."""
        with self._lock:
            addon = self._cluster(scope, cluster).addons.pop(name, None)
            return None if addon is None else addon.describe()

    # -- internals ----------------------------------------------------------

    def _new(self, scope: Scope, cluster: str, name: str, status: str, version: str) -> Addon:
        now = self._now()
        arn = f"{addon_arn_prefix(scope, cluster, name)}{self._make_id()}"
        return Addon(
            name=name,
            cluster_name=cluster,
            status=status,
            version=version,
            arn=arn,
            created_at=now,
            modified_at=now,
        )

    def _now(self) -> float:
        return now_ms(self._clock)

    def _later_than(self, moment: float) -> float:
        # Strictly later, so a caller can always tell the change happened.
        return max(self._now(), round(moment + 0.001, 3))

    def _cluster(self, scope: Scope, name: str) -> _Cluster:
        return self._clusters.of(scope, name)

    def _addon(self, scope: Scope, cluster: str, name: str) -> Addon:
        addon = self._cluster(scope, cluster).addons.get(name)
        if addon is None:
            raise addon_not_found(cluster, name)
        return addon


# -- request validation --------------------------------------------------------


def _optional_str(request: Mapping[str, Any], key: str, cluster: str, addon: str) -> str | None:
    value = request.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{key} must be a string", cluster, addon)
    return value


def _encode_token(after_name: str) -> str:
    return encode_token(after_name)


def _decode_token(token: str, cluster: str) -> str:
    return decode_token(
        token, lambda after: isinstance(after, str), lambda: invalid("The nextToken is not valid", cluster)
    )
