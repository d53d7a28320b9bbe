"""The emulator's own JSON API under /_emulator/, for tests and the harness.

GET    /_emulator/health
POST   /_emulator/clusters   {"name", "region"?, "issuer"?, "version"?, "endpoint"?, "accountId"?}
POST   /_emulator/reset
GET    /_emulator/faults
PUT    /_emulator/faults     {"rules": [...], "seed"?}
DELETE /_emulator/faults
GET    /_emulator/calls?since=<seq>
GET    /_emulator/calls/last
DELETE /_emulator/calls
GET    /_emulator/propagation
PUT    /_emulator/propagation {"roleVisibleToEksAfterMs"?: n, "roleVisibleToIamAfterMs"?: n}
PUT    /_emulator/clusters/{name}/addons/{addon}
       {"status", "addonVersion"?, "serviceAccountRoleArn"?, "tags"?, "region"?, "accountId"?}
DELETE /_emulator/clusters/{name}/addons/{addon}  {"region"?, "accountId"?}
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from . import moto_bridge
from .addons import STATUSES, AddonStore
from .aws_errors import EksError, Response
from .faults import CallLog, FaultInjector, FaultRule
from .iam_visibility import IamVisibility
from .pod_identity import PodIdentityStore, Scope, parse_tags

PREFIX = "/_emulator"
DEFAULT_REGION = "us-east-1"
DEFAULT_VERSION = "1.37"
ROLE_VISIBLE_TO_EKS_AFTER_MS = "roleVisibleToEksAfterMs"
ROLE_VISIBLE_TO_IAM_AFTER_MS = "roleVisibleToIamAfterMs"
# PATH_INFO is already percent-decoded; EKS names never hold a slash.
ADDON_PATH = re.compile(r"^/clusters/(?P<cluster>[^/]+)/addons/(?P<addon>[^/]+)$")
ADDON_FIELDS = ("status", "addonVersion", "serviceAccountRoleArn", "tags", "region", "accountId")


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _reply(status: int, payload: object) -> Response:
    return Response(status, [("Content-Type", "application/json")], json.dumps(payload).encode())


class ControlApi:
    def __init__(
        self,
        *,
        moto_app: Callable[..., Any],
        store: PodIdentityStore,
        addons: AddonStore,
        faults: FaultInjector,
        calls: CallLog,
        iam_visibility: IamVisibility,
    ) -> None:
        self._moto_app = moto_app
        self._store = store
        self._addons = addons
        self._faults = faults
        self._calls = calls
        self._iam_visibility = iam_visibility
        self._routes: dict[tuple[str, str], Callable[[dict[str, Any], bytes], Response]] = {
            ("GET", "/health"): lambda env, body: _reply(200, {"status": "ok"}),
            ("POST", "/clusters"): self._create_cluster,
            ("POST", "/reset"): self._reset,
            ("GET", "/faults"): lambda env, body: _reply(200, self._faults.snapshot()),
            ("PUT", "/faults"): self._put_faults,
            ("DELETE", "/faults"): self._clear_faults,
            ("GET", "/calls"): self._get_calls,
            # Where the log ends, without reading it: after a long run the
            # whole log is many megabytes.
            ("GET", "/calls/last"): lambda env, body: _reply(200, {"seq": self._calls.last_seq()}),
            ("DELETE", "/calls"): self._clear_calls,
            ("GET", "/propagation"): lambda env, body: self._propagation(),
            ("PUT", "/propagation"): self._put_propagation,
        }
        # Routes with names in the path, by method.
        self._addon_routes: dict[str, Callable[..., Response]] = {
            "PUT": self._put_addon,
            "DELETE": self._remove_addon,
        }

    def handle(self, environ: dict[str, Any], body: bytes) -> Response:
        path = environ.get("PATH_INFO", "")[len(PREFIX) :].rstrip("/") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            return self._handler(method, path)(environ, body)
        except ControlError as err:
            return _reply(err.status, {"error": str(err)})

    def _handler(self, method: str, path: str) -> Callable[[dict[str, Any], bytes], Response]:
        handler = self._routes.get((method, path))
        if handler is not None:
            return handler
        addon_path = ADDON_PATH.match(path)
        if addon_path is not None and method in self._addon_routes:
            return functools.partial(
                self._addon_routes[method], cluster=addon_path["cluster"], addon=addon_path["addon"]
            )
        if addon_path is not None or any(p == path for (_, p) in self._routes):
            raise ControlError(405, f"{method} not allowed on {PREFIX}{path}")
        raise ControlError(404, f"no control endpoint {PREFIX}{path}")

    # -- handlers -----------------------------------------------------------

    def _create_cluster(self, environ: dict[str, Any], body: bytes) -> Response:
        req = _json_object(body)
        name = _string(req, "name", required=True)
        region = _string(req, "region") or DEFAULT_REGION
        account_id = _string(req, "accountId") or moto_bridge.DEFAULT_ACCOUNT_ID
        try:
            moto_bridge.upsert_cluster(
                account_id=account_id,
                region=region,
                name=name,
                version=_string(req, "version") or DEFAULT_VERSION,
                issuer=_string(req, "issuer"),
                endpoint=_string(req, "endpoint"),
            )
        except ValueError as err:
            raise ControlError(400, str(err)) from None
        described = moto_bridge.describe_cluster(self._moto_app, account_id, region, name)
        # 200 whether created or updated: seeding is an idempotent upsert.
        return _reply(200, described)

    def _reset(self, environ: dict[str, Any], body: bytes) -> Response:
        # Faults first, so nothing injected hits the requests that follow.
        self._faults.clear()
        moto_bridge.reset()
        self._store.reset()  # also sets the EKS propagation delay back to 0
        self._addons.reset()
        self._iam_visibility.set_delay_ms(0)
        self._calls.clear()
        return _reply(200, {"status": "ok"})

    def _put_faults(self, environ: dict[str, Any], body: bytes) -> Response:
        req = _json_object(body)
        raw_rules = req.get("rules", [])
        if not isinstance(raw_rules, list):
            raise ControlError(400, "rules must be a list")
        seed = req.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ControlError(400, "seed must be an integer")
        try:
            rules = [FaultRule.from_json(r) for r in raw_rules]
        except ValueError as err:
            raise ControlError(400, str(err)) from None
        self._faults.configure(rules, seed)
        return _reply(200, self._faults.snapshot())

    def _clear_faults(self, environ: dict[str, Any], body: bytes) -> Response:
        self._faults.clear()
        return _reply(200, self._faults.snapshot())

    def _get_calls(self, environ: dict[str, Any], body: bytes) -> Response:
        raw = parse_qs(environ.get("QUERY_STRING", "")).get("since", ["0"])[0]
        try:
            since = int(raw)
        except ValueError:
            raise ControlError(400, f"since must be an integer, got {raw!r}") from None
        return _reply(200, {"calls": self._calls.since(since)})

    def _clear_calls(self, environ: dict[str, Any], body: bytes) -> Response:
        self._calls.clear()
        return _reply(200, {"calls": []})

    def _propagation(self) -> Response:
        return _reply(
            200,
            {
                ROLE_VISIBLE_TO_EKS_AFTER_MS: self._store.role_visible_after_ms,
                ROLE_VISIBLE_TO_IAM_AFTER_MS: self._iam_visibility.delay_ms,
            },
        )

    def _put_propagation(self, environ: dict[str, Any], body: bytes) -> Response:
        req = _json_object(body)
        known = (ROLE_VISIBLE_TO_EKS_AFTER_MS, ROLE_VISIBLE_TO_IAM_AFTER_MS)
        unknown = sorted(set(req) - set(known))
        if unknown:
            # A misspelt key must not silently leave the delay unchanged.
            raise ControlError(400, f"unknown fields: {', '.join(unknown)}")
        if not req:
            raise ControlError(400, f"{' or '.join(known)} is required")
        for key, delay_ms in req.items():
            if isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or delay_ms < 0:
                raise ControlError(400, f"{key} must be a non-negative integer")
        # Validated in full first: a bad body changes neither setting.
        if ROLE_VISIBLE_TO_EKS_AFTER_MS in req:
            self._store.set_role_visible_after_ms(req[ROLE_VISIBLE_TO_EKS_AFTER_MS])
        if ROLE_VISIBLE_TO_IAM_AFTER_MS in req:
            self._iam_visibility.set_delay_ms(req[ROLE_VISIBLE_TO_IAM_AFTER_MS])
        return self._propagation()

    def _put_addon(self, environ: dict[str, Any], body: bytes, *, cluster: str, addon: str) -> Response:
        req = _json_object(body)
        unknown = sorted(set(req) - set(ADDON_FIELDS))
        if unknown:
            # A misspelt key must not silently leave the add-on other than asked.
            raise ControlError(400, f"unknown fields: {', '.join(unknown)}")
        status = _string(req, "status", required=True)
        if status not in STATUSES:
            raise ControlError(400, f"status must be one of {', '.join(STATUSES)}")
        scope = _scope(req)
        try:
            tags = parse_tags(req.get("tags"), cluster) if "tags" in req else None
            described = self._addons.put(
                scope,
                cluster,
                addon,
                status=status,
                version=_string(req, "addonVersion"),
                service_account_role_arn=_string(req, "serviceAccountRoleArn"),
                tags=tags,
            )
        except EksError as err:
            raise ControlError(err.status, err.message) from None
        # DescribeAddon's {"addon": ...}, timestamps in epoch seconds as on the wire.
        return _reply(200, {"addon": described})

    def _remove_addon(self, environ: dict[str, Any], body: bytes, *, cluster: str, addon: str) -> Response:
        req = _json_object(body)
        unknown = sorted(set(req) - {"region", "accountId"})
        if unknown:
            raise ControlError(400, f"unknown fields: {', '.join(unknown)}")
        try:
            removed = self._addons.remove(_scope(req), cluster, addon)
        except EksError as err:
            raise ControlError(err.status, err.message) from None
        # Removing an absent add-on is no error: tests clean up without asking first.
        return _reply(200, {"addon": removed})


def _scope(req: dict[str, Any]) -> Scope:
    """Where a control request acts: the body's region and account, else the defaults."""
    region = _string(req, "region") or DEFAULT_REGION
    return Scope(_string(req, "accountId") or moto_bridge.DEFAULT_ACCOUNT_ID, region)


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        raise ControlError(400, "body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ControlError(400, "body must be a JSON object")
    return parsed


def _string(req: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = req.get(key)
    if value is None:
        if required:
            raise ControlError(400, f"{key} is required")
        return None
    if not isinstance(value, str) or not value:
        raise ControlError(400, f"{key} must be a non-empty string")
    return value
