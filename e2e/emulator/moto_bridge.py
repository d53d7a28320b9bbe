"""Every use of moto's internals, kept in one file so a moto upgrade breaks only here.

Importing this module imports moto: callers must have set moto's environment
(MOTO_IAM_LOAD_MANAGED_POLICIES, ...) before.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.base_backend import BackendDict, BaseBackend, backend_lock
from moto.core.model_instances import reset_model_data
from moto.eks.models import eks_backends
from moto.iam.exceptions import NotFoundException as IamNotFound
from moto.iam.models import IAMBackend, get_account_id_from, iam_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.utilities.utils import get_partition
from werkzeug.test import Client

from .pod_identity import Scope

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "IamRole",
    "MotoDirectory",
    "MotoRequestHandler",
    "account_for",
    "build_app",
    "describe_cluster",
    "find_iam_role",
    "iam_role_created_at",
    "oidc_client_ids",
    "posix_seconds",
    "reset",
    "role_facts",
    "set_oidc_client_ids",
    "upsert_cluster",
    "warm_up",
]

WsgiApp = Callable[..., Any]

# moto only needs the SigV4 credential scope to route a request and pick its
# region; it does not check signatures.
_FAKE_SIGV4 = (
    "AWS4-HMAC-SHA256 Credential={key}/20240101/{region}/{service}/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
FAKE_ACCESS_KEY = "AKIAEMULATOREXAMPLE"


def build_app() -> WsgiApp:
    """moto's whole multi-service WSGI app, as `moto_server` builds it."""
    return DomainDispatcherApplication(create_backend_app)


def account_for(environ: dict[str, Any], access_key: str | None) -> str:
    """The account moto attributes a request to, by moto's own precedence."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    header = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if header:
        return header
    return get_account_id_from(access_key or "AKIAEXAMPLE")


def _eks_backend(account_id: str, region: str) -> Any | None:
    try:
        return eks_backends[account_id][region]
    except KeyError:
        return None


class MotoDirectory:
    """pod_identity.Directory backed by moto's EKS and IAM state."""

    def cluster_incarnation(self, scope: Scope, cluster: str) -> str | None:
        backend = _eks_backend(scope.account_id, scope.region)
        found = backend.clusters.get(cluster) if backend is not None else None
        if found is None:
            return None
        return f"{found.arn}@{found.created_at.isoformat()}"

    def role_created_at(self, account_id: str, partition: str, role_arn: str) -> float | None:
        try:
            role = iam_backends[account_id][partition].get_role_by_arn(role_arn)
        except (IamNotFound, KeyError):
            return None
        return posix_seconds(role.create_date)


@dataclass(frozen=True)
class IamRole:
    """A snapshot of what iam_rules needs to know about a role."""

    name: str
    attached_policy_arns: frozenset[str]
    inline_policies: dict[str, str]  # name -> document, as sent


def find_iam_role(account_id: str, region: str | None, role_name: str) -> IamRole | None:
    """The role IAM means by role_name, which it matches regardless of case.

    moto matches exactly, so should it ever hold two roles differing only in
    case, the exact one wins.
    """
    role = _find_role(account_id, region, role_name)
    if role is None:
        return None
    return IamRole(
        name=role.name,
        attached_policy_arns=frozenset(role.managed_policies),
        inline_policies=dict(role.policies),
    )


def iam_role_created_at(account_id: str, region: str | None, role_name: str) -> float | None:
    """When IAM created the role role_name means (matched regardless of case,
    as IAM does), in POSIX seconds; None when there is none."""
    role = _find_role(account_id, region, role_name)
    return None if role is None else posix_seconds(role.create_date)


@dataclass(frozen=True)
class RoleFacts:
    """What a policy simulator needs to know of a role: its ARN and tags."""

    arn: str
    tags: dict[str, str]


def role_facts(account_id: str, region: str | None, role_name: str) -> RoleFacts | None:
    """The ARN and tags of the role IAM means by role_name (matched
    regardless of case, as IAM does), or None when there is none."""
    role = _find_role(account_id, region, role_name)
    if role is None:
        return None
    tags = {tag["Key"]: tag["Value"] for tag in (role.tags or [])}
    return RoleFacts(arn=role.arn, tags=tags)


def _oidc_provider(account_id: str, region: str | None, arn: str) -> Any:
    backend = iam_backends[account_id][get_partition(region or "us-east-1")]
    return backend.open_id_providers.get(arn)


def oidc_client_ids(account_id: str, region: str | None, arn: str) -> list[str] | None:
    """The client IDs (audiences) of an IAM OIDC provider, or None when there is no such provider."""
    provider = _oidc_provider(account_id, region, arn)
    return None if provider is None else list(provider.client_id_list)


def oidc_provider_tags(account_id: str, region: str | None, arn: str) -> dict[str, str] | None:
    """An IAM OIDC provider's tags, or None when there is no such provider."""
    provider = _oidc_provider(account_id, region, arn)
    if provider is None:
        return None
    return {tag["Key"]: tag["Value"] for tag in provider.tags.values()}


def set_oidc_client_ids(account_id: str, region: str | None, arn: str, client_ids: list[str]) -> bool:
    """Replaces an OIDC provider's client IDs, where moto's GetOpenIDConnectProvider
    reads them; False when the provider is gone."""
    provider = _oidc_provider(account_id, region, arn)
    if provider is None:
        return False
    provider.client_id_list = list(client_ids)
    return True


def posix_seconds(moment: datetime) -> float:
    """POSIX time of a moto timestamp.

    moto keeps UTC in *naive* datetimes (moto.core.utils.utcnow), and a naive
    datetime's timestamp() reads it as local time: off by the host's UTC
    offset. An aware one (should moto switch) converts as it is.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def upsert_cluster(
    *,
    account_id: str,
    region: str,
    name: str,
    version: str,
    issuer: str | None,
    endpoint: str | None,
) -> bool:
    """Creates the cluster unless it exists, then applies issuer/endpoint. True if created."""
    backend = _eks_backend(account_id, region)
    if backend is None:
        raise ValueError(f"unknown EKS region: {region}")
    cluster = backend.clusters.get(name)
    created = cluster is None
    if created:
        cluster = backend.create_cluster(
            name=name,
            # moto checks only the shape of this ARN; the role need not exist.
            role_arn=f"arn:{backend.partition}:iam::{account_id}:role/eks-cluster-role",
            resources_vpc_config={
                "subnetIds": [],
                "securityGroupIds": [],
                "endpointPublicAccess": True,
                "endpointPrivateAccess": False,
                "publicAccessCidrs": ["0.0.0.0/0"],
            },
            version=version,
        )
    else:
        cluster.version = version
    if issuer is not None:
        cluster.identity = {"oidc": {"issuer": issuer}}
    if endpoint is not None:
        cluster.endpoint = endpoint
    return created


def describe_cluster(moto_app: WsgiApp, account_id: str, region: str, name: str) -> dict[str, Any]:
    """DescribeCluster's response, produced by moto itself so it matches byte for byte."""
    response = Client(moto_app).get(
        f"/clusters/{name}",
        headers={
            "Authorization": _FAKE_SIGV4.format(key=FAKE_ACCESS_KEY, region=region, service="eks"),
            "x-moto-account-id": account_id,
        },
    )
    if response.status_code != 200:
        raise RuntimeError(f"DescribeCluster {name}: {response.status} {response.get_data(as_text=True)}")
    return json.loads(response.get_data())


def warm_up(moto_app: WsgiApp) -> None:
    """Pays moto's one-off costs before the first real request does.

    moto builds each service's Flask app on first use, and the first IAM call
    of an account creates an IAM backend per partition, each loading the AWS
    managed policies: about a second in all.
    """
    client = Client(moto_app)
    for service, path, body in (
        ("iam", "/", "Action=ListRoles&Version=2010-05-08"),
        ("sts", "/", "Action=GetCallerIdentity&Version=2011-06-15"),
        ("eks", "/clusters", None),
    ):
        headers = {
            "Authorization": _FAKE_SIGV4.format(key=FAKE_ACCESS_KEY, region="us-east-1", service=service),
        }
        if body is None:
            client.get(path, headers=headers)
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            client.post(path, data=body, headers=headers)


def reset() -> None:
    """Forgets every backend of every account, like moto's POST /moto-api/reset.

    moto's own reset re-creates each backend and then throws it away; for IAM
    that means re-loading ~1,600 managed policies per partition, close to a
    second per reset. Only backends that override reset() (to stop threads,
    close files) need the call, so the rest are simply dropped.
    """
    with backend_lock:
        for backend_dict in BackendDict._instances:
            for account_backends in backend_dict.values():
                for backend in account_backends.values():
                    if type(backend).reset is not BaseBackend.reset:
                        backend.reset()
            backend_dict.clear()
        BackendDict._instances.clear()
    reset_model_data()


def _find_role(account_id: str, region: str | None, role_name: str) -> Any:
    """moto's role that IAM means by role_name: matched regardless of case,
    the exact spelling first, should moto ever hold two."""
    backend = iam_backends[account_id][get_partition(region or "us-east-1")]
    return backend.roles.named(role_name)


class _RolesByName(dict):
    """moto's role store (role id -> role), also kept by name.

    moto finds a role by walking every role, several times per request: at
    10,000 roles a GetRole took 8 ms and the emulator, not the operator,
    set the pace of the benchmark's long mode. IAM roles are never renamed,
    so the index follows the store's own insertions and deletions.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # lower-cased name -> {name as stored -> role}
        self._by_name: dict[str, dict[str, Any]] = {}
        # Request threads may create and delete one name at the same moment
        # (a killed client's request still in flight): each change of the
        # store and its index happens whole.
        self._changing = threading.Lock()
        for role in self.values():
            self._by_name.setdefault(role.name.lower(), {})[role.name] = role

    def __setitem__(self, role_id: str, role: Any) -> None:
        with self._changing:
            super().__setitem__(role_id, role)
            self._by_name.setdefault(role.name.lower(), {})[role.name] = role

    def __delitem__(self, role_id: str) -> None:
        with self._changing:
            role = self[role_id]
            super().__delitem__(role_id)
            same = self._by_name.get(role.name.lower(), {})
            if same.get(role.name) is role:
                del same[role.name]
            if not same:
                self._by_name.pop(role.name.lower(), None)

    def named(self, role_name: str, exact: bool = False) -> Any:
        same = self._by_name.get(role_name.lower(), {})
        if role_name in same or exact:
            return same.get(role_name)
        return next(iter(same.values()), None)


def _index_roles_by_name() -> None:
    """Makes every IAM backend keep its roles in a _RolesByName, and moto's
    own lookups by name and ARN use it (same answers, same errors)."""
    original_init = IAMBackend.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.roles = _RolesByName(self.roles)

    def get_role(self: Any, role_name: str) -> Any:
        role = self.roles.named(role_name, exact=True)
        if role is None:
            raise IamNotFound(f"Role {role_name} not found")
        return role

    def get_role_by_arn(self: Any, arn: str) -> Any:
        role = self.roles.named(arn.rsplit("/", 1)[-1], exact=True)
        if role is None or role.arn != arn:
            raise IamNotFound(f"Role {arn} not found")
        return role

    # CreateRole's own duplicate check walks get_roles(), its only remaining
    # caller: while a thread creates a role, that walk sees just the roles
    # of the same name (the check compares names exactly, so it answers the
    # same).
    creating = threading.local()
    original_create_role = IAMBackend.create_role
    original_get_roles = IAMBackend.get_roles

    def create_role(self: Any, role_name: str, *args: Any, **kwargs: Any) -> Any:
        creating.name = role_name
        try:
            return original_create_role(self, role_name, *args, **kwargs)
        finally:
            creating.name = None

    def get_roles(self: Any) -> Any:
        name = getattr(creating, "name", None)
        if name is None:
            return original_get_roles(self)
        role = self.roles.named(name, exact=True)
        return [] if role is None else [role]

    IAMBackend.__init__ = init
    IAMBackend.get_role = get_role
    IAMBackend.get_role_by_arn = get_role_by_arn
    IAMBackend.create_role = create_role
    IAMBackend.get_roles = get_roles


_index_roles_by_name()
