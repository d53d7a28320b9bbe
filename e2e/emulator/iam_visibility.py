"""IAM's read-after-create lag: a role just created may not be found yet by IAM reads.

Real IAM is eventually consistent: a GetRole right after CreateRole can
answer NoSuchEntity. With a delay n > 0 the emulator answers the role-reading
calls below that way for a role moto created less than n ms ago. Writes and
ListRoles are never affected. 0, the default, turns it off.
"""

from __future__ import annotations

import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable
from typing import Any

from . import moto_bridge
from .aws_errors import Response, query_error
from .classify import AwsRequest

# The IAM reads that name one role (RoleName) and fail with NoSuchEntity
# when IAM does not know it.
ROLE_READS = frozenset(
    {
        "GetRole",
        "GetRolePolicy",
        "ListAttachedRolePolicies",
        "ListInstanceProfilesForRole",
        "ListRolePolicies",
        "ListRoleTags",
    }
)


def visible(created_at: float, now: float, delay_ms: int) -> bool:
    """Whether a role created at `created_at` (POSIX seconds) is visible at `now`."""
    if delay_ms == 0:
        return True
    # Whole microseconds (moto's resolution): a float of epoch seconds is
    # off by ~0.1 us, which must not decide the boundary.
    age_us = round((now - created_at) * 1_000_000)
    return age_us >= delay_ms * 1000


def role_not_found(role_name: str) -> Response:
    # IAM's own wording, naming the role as the request spelt it.
    message = f"The role with name {role_name} cannot be found."
    return query_error("iam", 404, "NoSuchEntity", message, sender=True)


class IamVisibility:
    def __init__(
        self,
        created_at: Callable[[str, str | None, str], float | None] = moto_bridge.iam_role_created_at,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._created_at = created_at
        self._clock = clock
        self._lock = threading.Lock()
        self._delay_ms = 0

    @property
    def delay_ms(self) -> int:
        with self._lock:
            return self._delay_ms

    def set_delay_ms(self, delay_ms: int) -> None:
        if delay_ms < 0:
            raise ValueError("delay_ms must not be negative")
        with self._lock:
            self._delay_ms = delay_ms

    def check(self, environ: dict[str, Any], request: AwsRequest, body: bytes) -> Response | None:
        """NoSuchEntity when the call reads a role too young to be seen; else None."""
        delay_ms = self.delay_ms
        if delay_ms == 0 or request.operation not in ROLE_READS:
            return None
        try:
            return self._check(environ, request, body, delay_ms)
        except Exception:  # a bug here must still reach the SDK as an AWS error
            traceback.print_exc()
            return query_error(
                "iam", 500, "ServiceFailure", "Internal error in the e2e emulator", sender=False
            )

    def _check(
        self, environ: dict[str, Any], request: AwsRequest, body: bytes, delay_ms: int
    ) -> Response | None:
        if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            return None
        asked = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("RoleName")
        if not asked:
            return None
        account = moto_bridge.account_for(environ, request.access_key)
        created = self._created_at(account, request.region, asked[0])
        if created is None or visible(created, self._clock(), delay_ms):
            return None  # a role that does not exist at all, moto answers itself
        return role_not_found(asked[0])
