"""What an IAM policy simulator needs to judge a call, read before it is served.

For each AWS request this names the IAM action, the caller's access key and
account, the resource ARN, and the condition keys AWS would set: request tags
(`aws:RequestTag/*`), the resource's tags as they were before the call
(`aws:ResourceTag/*`), `aws:TagKeys`, `iam:PermissionsBoundary`, and the
`iam:PassRole` that EKS checks on the caller when an association names a role
(with `iam:PassedToService`). e2e/policy-proof evaluates the operator's own
policy against these.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from . import moto_bridge
from .addons import AddonStore, addon_arn_prefix
from .classify import AwsRequest
from .pod_identity import ASSOCIATION_ARN, PodIdentityStore, Scope, partition_of

POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"

# IAM calls that name a role: the role is their resource.
_ROLE_PARAMETER = "RoleName"
# EKS calls whose resource is the cluster rather than an association.
_CLUSTER_OPERATIONS = frozenset(
    {
        "DescribeCluster",
        "CreatePodIdentityAssociation",
        "ListPodIdentityAssociations",
        "DeleteCluster",
        "CreateAddon",
        "ListAddons",
    }
)
_ASSOCIATION_OPERATIONS = frozenset(
    {"DescribePodIdentityAssociation", "UpdatePodIdentityAssociation", "DeletePodIdentityAssociation"}
)
# EKS calls whose resource is one add-on.
_ADDON_OPERATIONS = frozenset({"DescribeAddon", "UpdateAddon", "DeleteAddon"})
# EKS calls whose body may carry `tags` for the new resource.
_TAGGING_OPERATIONS = frozenset({"CreatePodIdentityAssociation", "CreateAddon", "TagResource"})


def _form(body: bytes, query_string: str) -> dict[str, list[str]]:
    params = urllib.parse.parse_qs(query_string)
    params.update(urllib.parse.parse_qs(body.decode("utf-8", errors="replace")))
    return params


def _members(form: dict[str, list[str]], prefix: str) -> list[tuple[int, str, str]]:
    """`Tags.member.N.Key` style lists of the query protocol, in N order."""
    found = []
    for key, values in form.items():
        if key.startswith(prefix + ".member."):
            rest = key[len(prefix) + len(".member.") :]
            number, _, field = rest.partition(".")
            if number.isdigit():
                found.append((int(number), field, values[0]))
    return sorted(found)


def _query_tags(form: dict[str, list[str]]) -> dict[str, str]:
    by_number: dict[int, dict[str, str]] = {}
    for number, field, value in _members(form, "Tags"):
        by_number.setdefault(number, {})[field] = value
    return {t["Key"]: t.get("Value", "") for _, t in sorted(by_number.items()) if "Key" in t}


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def describe(
    request: AwsRequest,
    body: bytes,
    environ: dict[str, Any],
    store: PodIdentityStore,
    addons: AddonStore,
) -> dict[str, Any]:
    """The call as a policy simulator sees it. Never raises: a call that
    cannot be described is still served and logged, with what is known."""
    account_id = moto_bridge.account_for(environ, request.access_key)
    region = request.region or "us-east-1"
    context: dict[str, Any] = {
        "action": f"{request.service}:{request.operation}" if request.service else None,
        "accessKeyId": request.access_key,
        "accountId": account_id,
        "resource": None,
        "requestTags": None,
        "resourceTags": None,
        "tagKeys": None,
        "permissionsBoundary": None,
        "implied": [],
    }
    try:
        if request.service == "iam":
            _describe_iam(context, request, body, environ, account_id, region)
        elif request.service == "sts":
            context["resource"] = "*"
        elif request.service == "eks":
            _describe_eks(context, request, body, environ, store, addons, Scope(account_id, region))
    except Exception as err:  # noqa: BLE001 - describing must never fail the call
        context["describeError"] = f"{type(err).__name__}: {err}"
    return context


def _describe_iam(
    context: dict[str, Any],
    request: AwsRequest,
    body: bytes,
    environ: dict[str, Any],
    account_id: str,
    region: str,
) -> None:
    form = _form(body, environ.get("QUERY_STRING", ""))
    first = {key: values[0] for key, values in form.items() if values}
    operation = request.operation
    if "OpenIDConnectProviderArn" in first:
        context["resource"] = first["OpenIDConnectProviderArn"]
        context["resourceTags"] = moto_bridge.oidc_provider_tags(account_id, region, context["resource"]) or {}
    if operation == "CreateOpenIDConnectProvider" and "Url" in first:
        # IAM names a provider by its URL without the scheme.
        host_path = first["Url"].split("://", 1)[-1].rstrip("/")
        context["resource"] = f"arn:{partition_of(region)}:iam::{account_id}:oidc-provider/{host_path}"
        context["resourceTags"] = {}
    if operation in ("CreateOpenIDConnectProvider", "TagOpenIDConnectProvider"):
        context["requestTags"] = _query_tags(form)
        context["tagKeys"] = sorted(context["requestTags"])
    role_name = first.get(_ROLE_PARAMETER)
    if role_name is not None:
        facts = moto_bridge.role_facts(account_id, region, role_name)
        if facts is not None:
            context["resource"] = facts.arn
            context["resourceTags"] = facts.tags
        else:
            # Not there (yet): the ARN it has, or would have, on its path.
            path = first.get("Path", "/") if operation == "CreateRole" else "/"
            context["resource"] = f"arn:{partition_of(region)}:iam::{account_id}:role{path}{role_name}"
            context["resourceTags"] = {}
    if operation in ("CreateRole", "TagRole"):
        context["requestTags"] = _query_tags(form)
        context["tagKeys"] = sorted(context["requestTags"])
    if operation == "UntagRole":
        context["tagKeys"] = [value for _, _, value in _members(form, "TagKeys")]
    if operation in ("CreateRole", "PutRolePermissionsBoundary"):
        context["permissionsBoundary"] = first.get("PermissionsBoundary")


def _subject(
    operation: str,
    params: dict[str, str],
    body: bytes,
    environ: dict[str, Any],
    store: PodIdentityStore,
    scope: Scope,
) -> str | None:
    """`namespace/serviceAccount` an association call is about, so that a
    reader of the log (the benchmark's floor) can tell whose call it was."""
    if operation == "CreatePodIdentityAssociation":
        payload = _json_body(body)
        namespace, account = payload.get("namespace"), payload.get("serviceAccount")
    elif operation == "ListPodIdentityAssociations":
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        namespace, account = (query.get(key, [None])[0] for key in ("namespace", "serviceAccount"))
    elif operation in _ASSOCIATION_OPERATIONS and params.get("name") and params.get("associationId"):
        return store.subject_or_none(scope, params["name"], params["associationId"])
    else:
        return None
    if isinstance(namespace, str) and isinstance(account, str):
        return f"{namespace}/{account}"
    return None


def _describe_eks(
    context: dict[str, Any],
    request: AwsRequest,
    body: bytes,
    environ: dict[str, Any],
    store: PodIdentityStore,
    addons: AddonStore,
    scope: Scope,
) -> None:
    params = request.path_params
    operation = request.operation
    cluster = params.get("name")
    context["subject"] = _subject(operation, params, body, environ, store, scope)
    if operation in _CLUSTER_OPERATIONS and cluster:
        context["resource"] = f"arn:{scope.partition}:eks:{scope.region}:{scope.account_id}:cluster/{cluster}"
    if operation in _ASSOCIATION_OPERATIONS and cluster and params.get("associationId"):
        arn = (
            f"arn:{scope.partition}:eks:{scope.region}:{scope.account_id}:"
            f"podidentityassociation/{cluster}/{params['associationId']}"
        )
        context["resource"] = arn
        context["resourceTags"] = store.tags_or_none(scope, arn)
    if operation in _ADDON_OPERATIONS and cluster and params.get("addonName"):
        found = addons.arn_and_tags(scope, cluster, params["addonName"])
        if found is not None:
            context["resource"], context["resourceTags"] = found
        else:
            # EKS authorizes against the add-on's ARN, whose last part is an
            # id only an existing add-on has: left a wildcard, which a policy
            # granting the add-on by name (".../addon/CLUSTER/NAME/*") still matches.
            context["resource"] = addon_arn_prefix(scope, cluster, params["addonName"]) + "*"
    if operation in ("TagResource", "UntagResource"):
        arn = params.get("resourceArn")
        context["resource"] = arn
        if arn and ASSOCIATION_ARN.match(arn):
            context["resourceTags"] = store.tags_or_none(scope, arn)
    payload = _json_body(body) if operation in _TAGGING_OPERATIONS else {}
    if isinstance(payload.get("tags"), dict):
        context["requestTags"] = {str(k): str(v) for k, v in payload["tags"].items()}
        context["tagKeys"] = sorted(context["requestTags"])
    if operation in ("CreatePodIdentityAssociation", "UpdatePodIdentityAssociation"):
        role_arn = _json_body(body).get("roleArn")
        # EKS checks the caller may pass the role it is handed.
        if isinstance(role_arn, str) and role_arn:
            context["implied"].append(
                {
                    "action": "iam:PassRole",
                    "resource": role_arn,
                    "passedToService": POD_IDENTITY_SERVICE,
                }
            )
