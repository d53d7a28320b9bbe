"""The client IDs (audiences) of IAM OpenID Connect providers, which moto cannot change.

moto serves CreateOpenIDConnectProvider and GetOpenIDConnectProvider but has
no AddClientIDToOpenIDConnectProvider nor RemoveClientIDFromOpenIDConnectProvider:
its dispatcher raises NotImplementedError for them, which its server answers
with an HTML 500 that no SDK can read. The emulator serves both itself, on
moto's provider, so moto's GetOpenIDConnectProvider lists the change.

Both are idempotent in IAM: adding a client ID already there, or removing one
that is not, succeeds and changes nothing.
"""

from __future__ import annotations

import re
import threading
import traceback
import urllib.parse
from typing import Any

from . import moto_bridge
from .aws_errors import QUERY_NAMESPACES, Response, new_request_id, query_error
from .classify import AwsRequest

ADD = "AddClientIDToOpenIDConnectProvider"
REMOVE = "RemoveClientIDFromOpenIDConnectProvider"
OPERATIONS = frozenset({ADD, REMOVE})

# Length constraints of the IAM API reference for both operations.
CLIENT_ID_LENGTH = (1, 255)
PROVIDER_ARN_LENGTH = (20, 2048)
# IAM's quota "ClientIdsPerOpenIdConnectProvider" (the same moto enforces on create).
CLIENT_IDS_PER_PROVIDER = 100

_ARN = re.compile(r"^arn:[^:]+:[^:]*:[^:]*:[^:]*:.+$")


def handles(request: AwsRequest) -> bool:
    return request.service == "iam" and request.operation in OPERATIONS


def _params(environ: dict[str, Any], body: bytes) -> dict[str, str]:
    # The query protocol allows the parameters in the URL as well as the form.
    pairs = urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        pairs += urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def _length_problem(member: str, value: str | None, bounds: tuple[int, int]) -> str | None:
    """One clause of IAM's ValidationError message, or None when value fits."""
    low, high = bounds
    if value is None:
        return f"Value null at '{member}' failed to satisfy constraint: Member must not be null"
    if len(value) > high:
        constraint = f"Member must have length less than or equal to {high}"
    elif len(value) < low:
        constraint = f"Member must have length greater than or equal to {low}"
    else:
        return None
    return f"Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"


def validation_error(problems: list[str]) -> Response:
    # IAM checks every member against the model first and names all that fail.
    plural = "s" if len(problems) > 1 else ""
    message = f"{len(problems)} validation error{plural} detected: " + "; ".join(problems)
    return query_error("iam", 400, "ValidationError", message, sender=True)


def no_such_provider(arn: str) -> Response:
    # IAM's wording, the same moto uses for the provider operations it serves.
    message = f"OpenIDConnect Provider not found for arn {arn}"
    return query_error("iam", 404, "NoSuchEntity", message, sender=True)


def _quota_exceeded() -> Response:
    message = f"Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {CLIENT_IDS_PER_PROVIDER}"
    return query_error("iam", 409, "LimitExceeded", message, sender=True)


def _done(operation: str) -> Response:
    """The empty success answer of a query-protocol operation with no result members."""
    namespace = QUERY_NAMESPACES["iam"]
    request_id = new_request_id()
    body = (
        f'<{operation}Response xmlns="{namespace}">'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{operation}Response>"
    ).encode()
    return Response(200, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body)


class OidcClientIds:
    def __init__(self) -> None:
        # Each call reads the list, then writes it back: one at a time, so
        # two concurrent adds cannot each drop the other's client ID.
        self._lock = threading.Lock()

    def serve(self, environ: dict[str, Any], request: AwsRequest, body: bytes) -> Response:
        try:
            return self._serve(environ, request, body)
        except Exception:  # a bug here must still reach the SDK as an AWS error
            traceback.print_exc()
            return query_error(
                "iam", 500, "ServiceFailure", "Internal error in the e2e emulator", sender=False
            )

    def _serve(self, environ: dict[str, Any], request: AwsRequest, body: bytes) -> Response:
        params = _params(environ, body)
        arn = params.get("OpenIDConnectProviderArn")
        client_id = params.get("ClientID")
        problems = [
            problem
            for problem in (
                _length_problem("clientID", client_id, CLIENT_ID_LENGTH),
                _length_problem("openIDConnectProviderArn", arn, PROVIDER_ARN_LENGTH),
            )
            if problem is not None
        ]
        if problems:
            return validation_error(problems)
        assert arn is not None and client_id is not None  # checked just above
        if not _ARN.match(arn):
            return query_error("iam", 400, "InvalidInput", f"ARN {arn} is not valid.", sender=True)

        account = moto_bridge.account_for(environ, request.access_key)
        with self._lock:
            client_ids = moto_bridge.oidc_client_ids(account, request.region, arn)
            if client_ids is None:
                return no_such_provider(arn)
            if request.operation == ADD:
                if client_id in client_ids:
                    return _done(ADD)  # already registered: a no-op
                if len(client_ids) >= CLIENT_IDS_PER_PROVIDER:
                    return _quota_exceeded()
                updated = client_ids + [client_id]
            else:
                updated = [c for c in client_ids if c != client_id]
            # A DeleteOpenIDConnectProvider (served by moto, not under this
            # lock) may have won the race; IAM would then not find it either.
            if not moto_bridge.set_oidc_client_ids(account, request.region, arn, updated):
                return no_such_provider(arn)
        return _done(request.operation)
