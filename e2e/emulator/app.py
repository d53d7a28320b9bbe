"""The WSGI app in front of moto: control API, faults, call log, what moto lacks (Pod Identity,
EKS add-ons, OIDC client IDs), IAM rules and read lag."""

from __future__ import annotations

import io
import os
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from . import call_context, eks_api, iam_oidc, moto_bridge
from .addons import AddonStore
from .aws_errors import Response, error_response, fault_response, rest_json_error
from .classify import AwsRequest, classify
from .control import PREFIX, ControlApi
from .faults import CallLog, FaultDecision, FaultInjector
from .iam_rules import IamRules
from .iam_visibility import IamVisibility
from .pod_identity import PodIdentityStore, Scope

StartResponse = Callable[..., Any]


def read_body(environ: dict[str, Any]) -> bytes:
    """Reads the request body and puts an unread copy back for the next app."""
    stream = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH") or ""
    if stream is None:
        body = b""
    elif length.isdigit():
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()  # chunked upload: the server marks the end
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def call_target(request: AwsRequest, body: bytes) -> str | None:
    """What a call is about (an IAM role name, an EKS cluster), so that tests
    running side by side can each count only their own calls."""
    if request.service in ("iam", "sts"):
        form = urllib.parse.parse_qs(body.decode("utf-8", errors="replace"))
        for key in ("RoleName", "OpenIDConnectProviderArn", "PolicyArn"):
            if key in form:
                return form[key][0]
        return None
    return request.path_params.get("name")


def _send(response: Response, start_response: StartResponse) -> Iterable[bytes]:
    phrase = HTTPStatus(response.status).phrase
    headers = response.headers + [("Content-Length", str(len(response.body)))]
    start_response(f"{response.status} {phrase}", headers)
    return [response.body]


def _injected(request: AwsRequest, decision: FaultDecision) -> Response:
    cluster = request.path_params.get("name")
    if decision.error is not None:
        err = decision.error
        return error_response(request.service, err.code, err.status, err.message, cluster)
    return fault_response(request.service, decision.fault, cluster)


class _Buffered:
    """A WSGI app's whole response, captured so it can be sent later."""

    def __init__(self) -> None:
        self.status_line = "500 Internal Server Error"
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []

    @property
    def status(self) -> int:
        return int(self.status_line.split(" ", 1)[0])

    def run(self, app: Callable[[StartResponse], Iterable[bytes]]) -> None:
        def capture(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
            self.status_line, self.headers = status, list(headers)
            return self.chunks.append  # WSGI's legacy write()

        result = app(capture)
        try:
            # Drained here: an app may call start_response only once iterated.
            self.chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


class EmulatorApp:
    def __init__(self, moto_app: Callable[..., Any] | None = None) -> None:
        self.moto_app = moto_app or moto_bridge.build_app()
        directory = moto_bridge.MotoDirectory()
        self.store = PodIdentityStore(directory)
        self.addons = AddonStore(directory)
        self.faults = FaultInjector()
        self.calls = CallLog(os.environ.get("EMULATOR_CALL_LOG_FILE") or None)
        self.iam_rules = IamRules()
        self.iam_visibility = IamVisibility()
        self.oidc_client_ids = iam_oidc.OidcClientIds()
        self.control = ControlApi(
            moto_app=self.moto_app,
            store=self.store,
            addons=self.addons,
            faults=self.faults,
            calls=self.calls,
            iam_visibility=self.iam_visibility,
        )

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return _send(self.control.handle(environ, read_body(environ)), start_response)
        if path.startswith("/moto-api"):
            # moto's own dashboard and reset: not AWS, so not logged or faulted.
            return self.moto_app(environ, start_response)
        return self._serve_aws(environ, start_response)

    def _serve_aws(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.time()
        body = read_body(environ)
        request = classify(environ, body)
        decision = self.faults.decide(request.service, request.operation, request.access_key)
        # Read before the call: aws:ResourceTag is what the resource carried
        # when AWS decided, not what the call left.
        context = call_context.describe(request, body, environ, self.store, self.addons)

        def record(status: int) -> None:
            self.calls.record(
                started=started,
                service=request.service,
                region=request.region,
                operation=request.operation,
                status=status,
                fault=decision.fault if decision else None,
                target=call_target(request, body),
                context=context,
            )

        if decision is not None and decision.fault == "hold":
            return self._serve_then_hold(decision, environ, request, body, start_response, record)

        statuses: list[int] = []

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, exc_info)

        try:
            if decision is not None and decision.fault == "delay":
                time.sleep(decision.delay_ms / 1000.0)
            if decision is not None and decision.fault in ("throttle", "server_error", "error"):
                return _send(_injected(request, decision), recording_start_response)
            return self._serve(environ, request, body, recording_start_response)
        finally:
            record(statuses[-1] if statuses else 500)

    def _serve(
        self, environ: dict[str, Any], request: AwsRequest, body: bytes, start_response: StartResponse
    ) -> Iterable[bytes]:
        if eks_api.handles(request):
            return _send(self._eks(environ, request, body), start_response)
        if request.service == "iam":
            hidden = self.iam_visibility.check(environ, request, body)
            if hidden is not None:
                return _send(hidden, start_response)
            if iam_oidc.handles(request):
                return _send(self.oidc_client_ids.serve(environ, request, body), start_response)
            with self.iam_rules.exclusive(request.operation):
                refusal = self.iam_rules.check(environ, request, body)
                if refusal is not None:
                    return _send(refusal, start_response)
                return self.moto_app(environ, start_response)
        return self.moto_app(environ, start_response)

    def _serve_then_hold(
        self,
        decision: FaultDecision,
        environ: dict[str, Any],
        request: AwsRequest,
        body: bytes,
        start_response: StartResponse,
        record: Callable[[int], None],
    ) -> Iterable[bytes]:
        """Serves the request in full, then sits on the answer: AWS did the
        work but the client has not heard back (and may give up first)."""
        served = _Buffered()
        try:
            served.run(lambda capture: self._serve(environ, request, body, capture))
        finally:
            record(served.status)
        # After the call is logged, so a test that saw `fired` grow finds it there.
        self.faults.hold_began(decision)
        # Outside the IAM rules' lock: a held CreateRole must not stall others.
        time.sleep(decision.delay_ms / 1000.0)
        # A client that gave up meanwhile makes the write fail; werkzeug
        # treats that as a dropped connection and the thread ends normally.
        start_response(served.status_line, served.headers)
        return served.chunks

    def _eks(self, environ: dict[str, Any], request: AwsRequest, body: bytes) -> Response:
        """The EKS calls moto lacks: Pod Identity and add-ons."""
        try:
            scope = Scope(moto_bridge.account_for(environ, request.access_key), request.region or "us-east-1")
            return eks_api.dispatch(
                self.store, self.addons, scope, request, environ.get("QUERY_STRING", ""), body
            )
        except Exception:  # a bug here must still reach the SDK as an AWS error
            traceback.print_exc()
            return rest_json_error("ServerException", "Internal error in the e2e emulator", 500)
