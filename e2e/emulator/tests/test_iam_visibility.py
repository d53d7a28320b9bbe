"""IAM's read-after-create lag, in-process: which calls it hides and when."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from emulator.classify import AwsRequest
from emulator.iam_visibility import IamVisibility, visible

CREATED = 1_700_000_000.123456
NS = {"a": "https://iam.amazonaws.com/doc/2010-05-08/"}
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def test_visible_boundary_is_exact_to_the_microsecond():
    assert visible(CREATED, CREATED, 0)
    assert not visible(CREATED, CREATED + 0.299999, 300)
    assert visible(CREATED, CREATED + 0.3, 300)
    assert visible(CREATED, CREATED + 5, 300)


class Roles:
    """A stand-in for moto: role name (any case) -> creation time."""

    def __init__(self, **created: float) -> None:
        self.created = {name.lower(): at for name, at in created.items()}
        self.asked: list[tuple[str, str | None, str]] = []

    def __call__(self, account: str, region: str | None, name: str) -> float | None:
        self.asked.append((account, region, name))
        return self.created.get(name.lower())


def check(visibility: IamVisibility, operation: str, body: str, content_type: str = FORM):
    request = AwsRequest("iam", "us-east-1", "AKIAEXAMPLE", operation)
    environ = {"CONTENT_TYPE": content_type}
    return visibility.check(environ, request, body.encode())


@pytest.fixture
def now():
    return [CREATED + 0.1]


@pytest.fixture
def visibility(now):
    v = IamVisibility(created_at=Roles(Fresh=CREATED), clock=lambda: now[0])
    v.set_delay_ms(300)
    return v


def test_a_young_role_is_not_found(visibility, now):
    refusal = check(visibility, "GetRole", "Action=GetRole&RoleName=fresh")
    assert refusal.status == 404
    root = ET.fromstring(refusal.body)
    assert root.findtext("a:Error/a:Code", namespaces=NS) == "NoSuchEntity"
    assert root.findtext("a:Error/a:Type", namespaces=NS) == "Sender"
    assert root.findtext("a:Error/a:Message", namespaces=NS) == "The role with name fresh cannot be found."
    now[0] = CREATED + 0.3
    assert check(visibility, "GetRole", "Action=GetRole&RoleName=fresh") is None


@pytest.mark.parametrize(
    "operation",
    [
        "GetRole",
        "GetRolePolicy",
        "ListAttachedRolePolicies",
        "ListInstanceProfilesForRole",
        "ListRolePolicies",
        "ListRoleTags",
    ],
)
def test_role_reads_are_hidden(visibility, operation):
    assert check(visibility, operation, f"Action={operation}&RoleName=Fresh") is not None


@pytest.mark.parametrize("operation", ["ListRoles", "PutRolePolicy", "DeleteRole", "TagRole", "CreateRole"])
def test_writes_and_listing_are_not(visibility, operation):
    assert check(visibility, operation, f"Action={operation}&RoleName=Fresh") is None


def test_what_it_leaves_to_moto(visibility):
    assert check(visibility, "GetRole", "Action=GetRole&RoleName=unknown") is None  # moto's NoSuchEntity
    assert check(visibility, "GetRole", "Action=GetRole") is None  # moto's validation error
    assert check(visibility, "GetRole", '{"RoleName": "Fresh"}', "application/json") is None


def test_off_by_default_and_at_zero():
    roles = Roles(Fresh=CREATED)
    visibility = IamVisibility(created_at=roles, clock=lambda: CREATED)
    assert visibility.delay_ms == 0
    assert check(visibility, "GetRole", "Action=GetRole&RoleName=Fresh") is None
    assert roles.asked == []  # off: moto is not even consulted
    with pytest.raises(ValueError):
        visibility.set_delay_ms(-1)
