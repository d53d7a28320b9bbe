"""Names an incoming AWS request: service, region, caller and operation.

The service and region come from the SigV4 credential scope, as AWS front
ends route them. The operation comes from where each protocol puts it: the
Action parameter (query: IAM, STS), X-Amz-Target (JSON), or the method and
path matched against the botocore model's URIs (REST: EKS).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from botocore.loaders import create_loader

UNKNOWN = "Unknown"

_SCOPE = re.compile(r"Credential=(?P<key>[^/,\s]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
# STS calls that carry no signature: the token in the body is the credential.
_UNSIGNED_STS_ACTIONS = frozenset({"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"})
_LABEL = re.compile(r"\{(?P<name>[A-Za-z0-9_]+)(?P<greedy>\+?)\}")


@dataclass(frozen=True)
class AwsRequest:
    service: str | None
    region: str | None
    access_key: str | None
    operation: str
    path_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    pattern: re.Pattern[str]
    literal_chars: int


def _compile(uri_path: str) -> tuple[re.Pattern[str], int]:
    parts, pos, literal = [], 0, 0
    for m in _LABEL.finditer(uri_path):
        text = uri_path[pos : m.start()]
        parts.append(re.escape(text))
        literal += len(text)
        parts.append(f"(?P<{m['name']}>{'.+' if m['greedy'] else '[^/]+'})")
        pos = m.end()
    parts.append(re.escape(uri_path[pos:]))
    literal += len(uri_path) - pos
    return re.compile("^" + "".join(parts) + "/?$"), literal


@functools.cache
def rest_routes(service: str) -> tuple[_Route, ...]:
    """The REST routes of a service's botocore model, most specific first."""
    model = create_loader().load_service_model(service, "service-2")
    routes = []
    for name, op in model["operations"].items():
        path = op["http"]["requestUri"].split("?", 1)[0]
        pattern, literal = _compile(path)
        routes.append(_Route(name, op["http"]["method"], pattern, literal))
    return tuple(sorted(routes, key=lambda r: -r.literal_chars))


def match_rest(service: str, method: str, raw_path: str) -> tuple[str, dict[str, str]]:
    """The operation and URI labels (percent-decoded) of a REST request."""
    for route in rest_routes(service):
        if route.method != method:
            continue
        m = route.pattern.match(raw_path)
        if m:
            return route.operation, {k: unquote(v) for k, v in m.groupdict().items()}
    return UNKNOWN, {}


def raw_path(environ: dict[str, Any]) -> str:
    # Labels such as an ARN in /tags/{resourceArn} carry encoded slashes that
    # PATH_INFO has already decoded; the request line still has them.
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return raw.split("?", 1)[0]
    path = environ.get("PATH_INFO", "")
    return quote(path.encode("latin-1").decode("utf-8", "replace"))


def _query_action(environ: dict[str, Any], body: bytes) -> str | None:
    params = parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params.update(parse_qs(body.decode("utf-8", "replace")))
    values = params.get("Action")
    return values[0] if values else None


def _credential_scope(environ: dict[str, Any]) -> re.Match[str] | None:
    found = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found is None:
        # Presigned URLs carry the scope in the query string instead.
        presigned = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
        if presigned:
            found = _SCOPE.search("Credential=" + presigned[0])
    return found


def classify(environ: dict[str, Any], body: bytes) -> AwsRequest:
    scope = _credential_scope(environ)
    service = scope["service"].lower() if scope else None
    region = scope["region"] if scope else None
    access_key = scope["key"] if scope else None

    target = environ.get("HTTP_X_AMZ_TARGET")
    action = _query_action(environ, body)
    if service is None and action in _UNSIGNED_STS_ACTIONS:
        service = "sts"
    path_params: dict[str, str] = {}
    if action:
        operation = action
    elif target:
        operation = target.rsplit(".", 1)[-1]
    elif service == "eks":
        operation, path_params = match_rest("eks", environ.get("REQUEST_METHOD", "GET"), raw_path(environ))
    else:
        operation = UNKNOWN
    return AwsRequest(service, region, access_key, operation, path_params)
