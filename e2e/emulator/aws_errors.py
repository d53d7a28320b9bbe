"""AWS error responses, rendered the way each wire protocol carries them.

SDKs (botocore, aws-sdk-rust) map an error to a modeled exception only when
the status, the code's location and the body shape match the protocol, so
every error this emulator makes up itself goes through here.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

# Query-protocol services answer errors in their own XML namespace
# (the model's metadata.xmlNamespace).
QUERY_NAMESPACES = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}

# HTTP status of each EKS error shape, from the EKS model's "error" traits.
EKS_ERROR_STATUS = {
    "BadRequestException": 400,
    "InvalidParameterException": 400,
    "InvalidRequestException": 400,
    "NotFoundException": 404,
    "ResourceInUseException": 409,
    "ResourceNotFoundException": 404,
    "ServerException": 500,
    "ThrottlingException": 429,
}

THROTTLE_MESSAGE = "Rate exceeded"
# Injected server errors say so, so a log reader does not hunt for a real bug.
SERVER_ERROR_MESSAGE = "Internal failure (injected by the e2e emulator)"


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class EksError(Exception):
    """A modeled EKS error; `extra` holds the shape's other members (clusterName...)."""

    code: str
    message: str
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.message}")

    @property
    def status(self) -> int:
        return EKS_ERROR_STATUS[self.code]


def new_request_id() -> str:
    return str(uuid.uuid4())


def json_response(status: int, payload: object) -> Response:
    return Response(
        status,
        [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", new_request_id()),
        ],
        json.dumps(payload).encode(),
    )


def rest_json_error(code: str, message: str, status: int, **extra: str | None) -> Response:
    # The code travels in x-amzn-ErrorType; the body holds the shape's members.
    body: dict[str, str] = {"message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(
        status,
        [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", new_request_id()),
            ("x-amzn-ErrorType", code),
        ],
        json.dumps(body).encode(),
    )


def eks_error_response(err: EksError) -> Response:
    return rest_json_error(err.code, err.message, err.status, **err.extra)


def query_error(service: str, status: int, code: str, message: str, sender: bool) -> Response:
    namespace = QUERY_NAMESPACES.get(service, QUERY_NAMESPACES["iam"])
    request_id = new_request_id()
    body = (
        f'<ErrorResponse xmlns="{namespace}">'
        f"<Error><Type>{'Sender' if sender else 'Receiver'}</Type>"
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return Response(
        status,
        [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)],
        body,
    )


def fault_response(service: str | None, fault: str, cluster_name: str | None = None) -> Response:
    """The response an injected `throttle` or `server_error` fault sends."""
    if service in QUERY_NAMESPACES:
        if fault == "throttle":
            # IAM and STS throttle with a 400 "Throttling" sender fault, which
            # SDKs classify as a throttling error and retry with backoff.
            return query_error(service, 400, "Throttling", THROTTLE_MESSAGE, sender=True)
        if service == "iam":
            # IAM's modeled 500 (ServiceFailureException).
            return query_error(
                service,
                500,
                "ServiceFailure",
                SERVER_ERROR_MESSAGE,
                sender=False,
            )
        # STS models no 500; InternalFailure is the common AWS server error.
        return query_error(
            service,
            500,
            "InternalFailure",
            SERVER_ERROR_MESSAGE,
            sender=False,
        )
    # Everything else is answered REST-JSON style, as EKS does.
    if fault == "throttle":
        return rest_json_error("ThrottlingException", THROTTLE_MESSAGE, 429, clusterName=cluster_name)
    return rest_json_error(
        "ServerException",
        SERVER_ERROR_MESSAGE,
        500,
        clusterName=cluster_name,
    )
