"""IAM rules that real IAM enforces and moto does not.

- Role names are case-insensitive: a request naming `myrole` acts on a stored
  `MyRole`, and CreateRole refuses a name that differs from an existing one
  only in case.
- At most 10 managed policies attached to a role (IAM's default quota).
- At most 10,240 characters of inline policy per role, all documents together,
  whitespace not counted.

Only form-encoded request bodies are looked at: every SDK sends IAM calls that
way.
"""

from __future__ import annotations

import contextlib
import io
import threading
import traceback
import urllib.parse
from typing import Any

from . import moto_bridge
from .aws_errors import Response, query_error
from .classify import AwsRequest

MANAGED_POLICIES_PER_ROLE = 10
INLINE_POLICY_CHARS_PER_ROLE = 10_240

# The checks below read moto's state and then let moto act on it; these
# operations run one at a time so that two concurrent requests cannot both
# pass a check that only one of them should.
_CHECKED = frozenset({"CreateRole", "AttachRolePolicy", "PutRolePolicy"})


def policy_size(document: str) -> int:
    return sum(1 for c in document if not c.isspace())


def _refuse(code: str, message: str) -> Response:
    return query_error("iam", 409, code, message, sender=True)


class IamRules:
    def __init__(self) -> None:
        self._lock = threading.Lock()

    def exclusive(self, operation: str) -> contextlib.AbstractContextManager[Any]:
        """Hold around check() and moto's handling of the same request."""
        return self._lock if operation in _CHECKED else contextlib.nullcontext()

    def check(self, environ: dict[str, Any], request: AwsRequest, body: bytes) -> Response | None:
        """The error IAM would answer, or None after pointing the request at the stored role name."""
        try:
            return self._check(environ, request, body)
        except Exception:  # a bug here must still reach the SDK as an AWS error
            traceback.print_exc()
            return query_error(
                "iam", 500, "ServiceFailure", "Internal error in the e2e emulator", sender=False
            )

    def _check(self, environ: dict[str, Any], request: AwsRequest, body: bytes) -> Response | None:
        if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            return None
        params = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        form = dict(params)
        asked = form.get("RoleName")
        if asked is None:
            return None
        account = moto_bridge.account_for(environ, request.access_key)
        role = moto_bridge.find_iam_role(account, request.region, asked)
        if request.operation == "CreateRole":
            if role is None:
                return None
            return _refuse("EntityAlreadyExists", f"Role with name {asked} already exists.")
        if role is None:
            return None  # moto answers NoSuchEntity
        if role.name != asked:
            _replace_body(environ, [(k, role.name if k == "RoleName" else v) for k, v in params])
        if request.operation == "AttachRolePolicy":
            return _check_attach(role, form.get("PolicyArn", ""))
        if request.operation == "PutRolePolicy":
            return _check_inline(role, form.get("PolicyName", ""), form.get("PolicyDocument", ""))
        return None


def _check_attach(role: moto_bridge.IamRole, policy_arn: str) -> Response | None:
    # Re-attaching is a no-op in IAM, even at the quota.
    if policy_arn in role.attached_policy_arns or len(role.attached_policy_arns) < MANAGED_POLICIES_PER_ROLE:
        return None
    return _refuse("LimitExceeded", f"Cannot exceed quota for PoliciesPerRole: {MANAGED_POLICIES_PER_ROLE}")


def _check_inline(role: moto_bridge.IamRole, name: str, document: str) -> Response | None:
    others = sum(policy_size(doc) for other, doc in role.inline_policies.items() if other != name)
    if others + policy_size(document) <= INLINE_POLICY_CHARS_PER_ROLE:
        return None
    return _refuse(
        "LimitExceeded",
        f"Maximum policy size of {INLINE_POLICY_CHARS_PER_ROLE} bytes exceeded for role {role.name}",
    )


def _replace_body(environ: dict[str, Any], params: list[tuple[str, str]]) -> None:
    body = urllib.parse.urlencode(params).encode()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))

