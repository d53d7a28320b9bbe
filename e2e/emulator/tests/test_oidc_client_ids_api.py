"""OIDC provider client IDs (AddClientID / RemoveClientID), which moto answered with a bare 500."""

from __future__ import annotations

import urllib.parse
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError
from conftest import ACCOUNT, Emulator, unique

THUMBPRINT = "0" * 40


@pytest.fixture
def iam(emu: Emulator):
    return emu.client("iam")


def new_provider(iam, client_ids: list[str]) -> str:
    url = f"https://{unique('oidc')}.example.com/id/ABC"
    created = iam.create_open_id_connect_provider(
        Url=url, ClientIDList=client_ids, ThumbprintList=[THUMBPRINT]
    )
    return created["OpenIDConnectProviderArn"]


@pytest.fixture
def provider(iam) -> str:
    return new_provider(iam, ["sts.amazonaws.com"])


def client_ids(iam, arn: str) -> list[str]:
    return iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"]


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str, str]:
    response = info.value.response
    error = response["Error"]
    return response["ResponseMetadata"]["HTTPStatusCode"], error["Type"], error["Code"], error["Message"]


def raw_call(emu: Emulator, **params: str) -> tuple[int, dict[str, str], bytes]:
    body = urllib.parse.urlencode({"Version": "2010-05-08", **params})
    headers = {**emu.sigv4_headers("iam"), "Content-Type": "application/x-www-form-urlencoded"}
    return emu.http("POST", "/", body, headers=headers)


def test_add_answers_the_query_protocol_not_a_500(emu: Emulator, iam, provider):
    # moto has no handler for it: its server used to answer an HTML 500.
    status, headers, raw = raw_call(
        emu, Action="AddClientIDToOpenIDConnectProvider", OpenIDConnectProviderArn=provider, ClientID="x"
    )
    assert status == 200 and headers["content-type"] == "text/xml"
    root = ET.fromstring(raw)
    assert root.tag == "{https://iam.amazonaws.com/doc/2010-05-08/}AddClientIDToOpenIDConnectProviderResponse"
    assert root.find(".//{*}RequestId").text == headers["x-amzn-requestid"]
    assert client_ids(iam, provider) == ["sts.amazonaws.com", "x"]


def test_add_then_remove_shows_in_get(iam, provider):
    iam.add_client_id_to_open_id_connect_provider(
        OpenIDConnectProviderArn=provider, ClientID="sts.amazon.com"
    )
    assert client_ids(iam, provider) == ["sts.amazonaws.com", "sts.amazon.com"]
    iam.remove_client_id_from_open_id_connect_provider(
        OpenIDConnectProviderArn=provider, ClientID="sts.amazonaws.com"
    )
    assert client_ids(iam, provider) == ["sts.amazon.com"]


def test_adding_a_registered_client_id_is_a_no_op(iam, provider):
    for _ in range(2):
        iam.add_client_id_to_open_id_connect_provider(
            OpenIDConnectProviderArn=provider, ClientID="sts.amazonaws.com"
        )
    assert client_ids(iam, provider) == ["sts.amazonaws.com"]


def test_removing_an_absent_client_id_is_a_no_op(iam, provider):
    iam.remove_client_id_from_open_id_connect_provider(
        OpenIDConnectProviderArn=provider, ClientID="never-added"
    )
    assert client_ids(iam, provider) == ["sts.amazonaws.com"]


@pytest.mark.parametrize(
    "call", ["add_client_id_to_open_id_connect_provider", "remove_client_id_from_open_id_connect_provider"]
)
def test_unknown_provider_is_no_such_entity(iam, call):
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{unique('gone')}.example.com"
    with pytest.raises(iam.exceptions.NoSuchEntityException) as info:
        getattr(iam, call)(OpenIDConnectProviderArn=arn, ClientID="sts.amazonaws.com")
    message = f"OpenIDConnect Provider not found for arn {arn}"
    assert error_of(info) == (404, "Sender", "NoSuchEntity", message)


def test_deleted_provider_is_no_such_entity(iam, provider):
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=provider)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=provider, ClientID="x")


def test_client_id_of_255_characters_is_the_longest(iam, provider):
    longest = "a" * 255
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=provider, ClientID=longest)
    assert client_ids(iam, provider) == ["sts.amazonaws.com", longest]

    too_long = "b" * 256
    with pytest.raises(ClientError) as info:
        iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=provider, ClientID=too_long)
    assert error_of(info) == (
        400,
        "Sender",
        "ValidationError",
        f"1 validation error detected: Value '{too_long}' at 'clientID' failed to satisfy constraint: "
        "Member must have length less than or equal to 255",
    )
    assert client_ids(iam, provider) == ["sts.amazonaws.com", longest]


@pytest.mark.parametrize(
    "params, clauses",
    [
        (
            {"ClientID": ""},
            [
                "Value '' at 'clientID' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1"
            ],
        ),
        ({}, ["Value null at 'clientID' failed to satisfy constraint: Member must not be null"]),
        (
            {"ClientID": "x", "OpenIDConnectProviderArn": "arn:short"},
            [
                "Value 'arn:short' at 'openIDConnectProviderArn' failed to satisfy constraint: "
                "Member must have length greater than or equal to 20"
            ],
        ),
    ],
)
def test_out_of_range_members_are_validation_errors(emu: Emulator, provider, params, clauses):
    # boto3 checks these lengths itself, so send them raw as another SDK might.
    request = {"OpenIDConnectProviderArn": provider, **params}
    status, _, raw = raw_call(emu, Action="RemoveClientIDFromOpenIDConnectProvider", **request)
    assert status == 400
    error = ET.fromstring(raw).find("{*}Error")
    assert error.find("{*}Type").text == "Sender" and error.find("{*}Code").text == "ValidationError"
    assert error.find("{*}Message").text == "1 validation error detected: " + "; ".join(clauses)


def test_every_invalid_member_is_named(emu: Emulator):
    status, _, raw = raw_call(emu, Action="AddClientIDToOpenIDConnectProvider")
    assert status == 400
    assert ET.fromstring(raw).find(".//{*}Message").text.startswith("2 validation errors detected: ")


def test_a_malformed_arn_is_invalid_input(iam):
    with pytest.raises(iam.exceptions.InvalidInputException) as info:
        iam.add_client_id_to_open_id_connect_provider(
            OpenIDConnectProviderArn="not-an-arn-at-all-really", ClientID="x"
        )
    assert error_of(info) == (400, "Sender", "InvalidInput", "ARN not-an-arn-at-all-really is not valid.")


def test_a_hundred_client_ids_is_the_quota(iam):
    full = [f"client-{n}" for n in range(100)]
    arn = new_provider(iam, full)
    with pytest.raises(iam.exceptions.LimitExceededException) as info:
        iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="one-more")
    quota = "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100"
    assert error_of(info) == (409, "Sender", "LimitExceeded", quota)
    # Already registered: still a no-op success at the quota.
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="client-7")
    assert client_ids(iam, arn) == full


def test_calls_are_logged_and_faulted_like_any_other(emu: Emulator, iam, provider):
    emu.ok(
        "PUT",
        "/faults",
        {
            "rules": [
                {
                    "service": "iam",
                    "operation": "AddClientIDToOpenIDConnectProvider",
                    "fault": "error",
                    "code": "ConcurrentModification",
                    "status": 409,
                    "count": 1,
                }
            ]
        },
    )
    with pytest.raises(ClientError) as info:
        iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=provider, ClientID="x")
    assert error_of(info)[:3] == (409, "Sender", "ConcurrentModification")
    assert client_ids(iam, provider) == ["sts.amazonaws.com"]  # a faulted call is not served
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=provider, ClientID="x")

    calls = [c for c in emu.calls() if c["operation"] == "AddClientIDToOpenIDConnectProvider"]
    outcomes = [(c["service"], c["status"], c["fault"]) for c in calls]
    assert outcomes == [("iam", 409, "error"), ("iam", 200, None)]
    assert all(c["resource"] == provider and c["target"] == provider for c in calls)
