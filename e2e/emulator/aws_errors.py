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

# The EKS error shapes with a clusterName member (the EKS model's).
EKS_ERRORS_NAMING_CLUSTER = frozenset(
    {
        "ClientException",
        "InvalidParameterException",
        "InvalidRequestException",
        "InvalidStateException",
        "ResourceInUseException",
        "ResourceLimitExceededException",
        "ResourceNotFoundException",
        "ServerException",
        "ThrottlingException",
        "UnsupportedAvailabilityZoneException",
    }
)

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


def error_response(
    service: str | None, code: str, status: int, message: str, cluster_name: str | None = None
) -> Response:
    """An AWS error as `service` would answer it: query XML for IAM and STS,
    REST-JSON (as EKS) for everything else.

    clusterName is sent only with the EKS errors whose shape has it: an SDK
    ignores unknown members, but a test comparing bodies should not have to.
    """
    if service in QUERY_NAMESPACES:
        return query_error(service, status, code, message, sender=status < 500)
    if code not in EKS_ERRORS_NAMING_CLUSTER:
        cluster_name = None
    return rest_json_error(code, message, status, clusterName=cluster_name)


def fault_response(service: str | None, fault: str, cluster_name: str | None = None) -> Response:
    """The response an injected `throttle` or `server_error` fault sends."""
    if service in QUERY_NAMESPACES:
        if fault == "throttle":
            # IAM and STS throttle with a 400 "Throttling" sender fault, which
            # SDKs classify as a throttling error and retry with backoff.
            return error_response(service, "Throttling", 400, THROTTLE_MESSAGE)
        # IAM's modeled 500 is ServiceFailure(Exception); STS models none, and
        # InternalFailure is the common AWS server error.
        code = "ServiceFailure" if service == "iam" else "InternalFailure"
        return error_response(service, code, 500, SERVER_ERROR_MESSAGE)
    # Everything else is answered REST-JSON style, as EKS does.
    if fault == "throttle":
        return error_response(service, "ThrottlingException", 429, THROTTLE_MESSAGE, cluster_name)
    return error_response(service, "ServerException", 500, SERVER_ERROR_MESSAGE, cluster_name)
