"""The REST-JSON face of what moto lacks in EKS: Pod Identity (and tagging of
associations) and add-ons.

URIs and member names follow the EKS service model that botocore ships;
classify.py has already matched the route, so this only moves values
between HTTP and PodIdentityStore or AddonStore.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from .addons import AddonStore
from .aws_errors import EksError, Response, eks_error_response, json_response
from .classify import AwsRequest
from .pod_identity import ASSOCIATION_ARN, PodIdentityStore, Scope

POD_IDENTITY_OPERATIONS = frozenset(
    {
        "CreatePodIdentityAssociation",
        "DescribePodIdentityAssociation",
        "ListPodIdentityAssociations",
        "UpdatePodIdentityAssociation",
        "DeletePodIdentityAssociation",
    }
)
ADDON_OPERATIONS = frozenset({"CreateAddon", "DescribeAddon", "ListAddons", "DeleteAddon"})
TAG_OPERATIONS = frozenset({"TagResource", "UntagResource", "ListTagsForResource"})


def handles(request: AwsRequest) -> bool:
    """True for the EKS calls this module answers instead of moto."""
    if request.service != "eks":
        return False
    if request.operation in POD_IDENTITY_OPERATIONS or request.operation in ADDON_OPERATIONS:
        return True
    # Cluster tags stay with moto; only association ARNs are ours.
    return request.operation in TAG_OPERATIONS and bool(
        ASSOCIATION_ARN.match(request.path_params.get("resourceArn", ""))
    )


def dispatch(
    store: PodIdentityStore,
    addons: AddonStore,
    scope: Scope,
    request: AwsRequest,
    query_string: str,
    body: bytes,
) -> Response:
    try:
        query, payload = parse_qs(query_string), _json_body(body)
        if request.operation in ADDON_OPERATIONS:
            result = _call_addons(addons, scope, request, query, payload)
        else:
            result = _call(store, scope, request, query, payload)
    except EksError as err:
        return eks_error_response(err)
    return json_response(200, result)


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        raise EksError("InvalidParameterException", "The request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise EksError("InvalidParameterException", "The request body must be a JSON object")
    return parsed


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _max_results(query: dict[str, list[str]], cluster: str) -> int | None:
    raw_max = _first(query, "maxResults")
    try:
        return int(raw_max) if raw_max is not None else None
    except ValueError:
        raise EksError(
            "InvalidParameterException",
            f"maxResults must be an integer, got {raw_max!r}",
            {"clusterName": cluster},
        ) from None


def _call(
    store: PodIdentityStore,
    scope: Scope,
    request: AwsRequest,
    query: dict[str, list[str]],
    body: dict[str, Any],
) -> dict[str, Any]:
    op = request.operation
    params = request.path_params
    cluster = params.get("name", "")

    if op == "CreatePodIdentityAssociation":
        return {"association": store.create(scope, cluster, body)}
    if op == "DescribePodIdentityAssociation":
        return {"association": store.describe(scope, cluster, params["associationId"])}
    if op == "UpdatePodIdentityAssociation":
        return {"association": store.update(scope, cluster, params["associationId"], body)}
    if op == "DeletePodIdentityAssociation":
        return {"association": store.delete(scope, cluster, params["associationId"])}
    if op == "ListPodIdentityAssociations":
        return store.list(
            scope,
            cluster,
            namespace=_first(query, "namespace"),
            service_account=_first(query, "serviceAccount"),
            max_results=_max_results(query, cluster),
            next_token=_first(query, "nextToken"),
        )

    arn = params["resourceArn"]
    if op == "TagResource":
        store.tag(scope, arn, body.get("tags"))
        return {}
    if op == "UntagResource":
        store.untag(scope, arn, query.get("tagKeys", []))
        return {}
    if op == "ListTagsForResource":
        return {"tags": store.tags_of(scope, arn)}
    raise AssertionError(f"eks_api cannot handle {op}")


def _call_addons(
    addons: AddonStore,
    scope: Scope,
    request: AwsRequest,
    query: dict[str, list[str]],
    body: dict[str, Any],
) -> dict[str, Any]:
    op = request.operation
    cluster = request.path_params.get("name", "")
    if op == "CreateAddon":
        return {"addon": addons.create(scope, cluster, body)}
    if op == "DescribeAddon":
        return {"addon": addons.describe(scope, cluster, request.path_params["addonName"])}
    if op == "DeleteAddon":
        # `preserve` would leave the software on the cluster; there is none here.
        return {"addon": addons.delete(scope, cluster, request.path_params["addonName"])}
    if op == "ListAddons":
        return addons.list(
            scope, cluster, max_results=_max_results(query, cluster), next_token=_first(query, "nextToken")
        )
    raise AssertionError(f"eks_api cannot handle {op}")
