"""The /_emulator control API: cluster seeding, reset and the call log."""

from __future__ import annotations

import pytest
from conftest import Emulator, make_role, unique


def test_health(emu: Emulator):
    assert emu.ok("GET", "/health") == {"status": "ok"}


def test_seeded_cluster_has_the_given_issuer(emu: Emulator):
    name = unique("seeded")
    issuer = "https://127.0.0.1:6443"
    seeded = emu.ok(
        "POST", "/clusters", {"name": name, "region": "us-east-1", "issuer": issuer, "version": "1.37"}
    )
    assert seeded["cluster"]["identity"]["oidc"]["issuer"] == issuer

    described = emu.client("eks").describe_cluster(name=name)["cluster"]
    assert described["identity"]["oidc"]["issuer"] == issuer
    assert (described["name"], described["version"], described["status"]) == (name, "1.37", "ACTIVE")
    assert described["arn"] == f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"
    assert seeded["cluster"]["arn"] == described["arn"]
    assert name in emu.client("eks").list_clusters()["clusters"]


def test_seeding_again_updates_in_place(emu: Emulator):
    name = unique("seeded")
    emu.ok("POST", "/clusters", {"name": name, "issuer": "https://one.example"})
    again = emu.ok(
        "POST",
        "/clusters",
        {"name": name, "issuer": "https://two.example", "endpoint": "https://127.0.0.1:6443"},
    )
    assert again["cluster"]["identity"]["oidc"]["issuer"] == "https://two.example"
    described = emu.client("eks").describe_cluster(name=name)["cluster"]
    assert described["endpoint"] == "https://127.0.0.1:6443"
    assert emu.client("eks").list_clusters()["clusters"].count(name) == 1


def test_seeding_in_another_region(emu: Emulator):
    name = unique("west")
    emu.ok("POST", "/clusters", {"name": name, "region": "eu-west-1", "issuer": "https://west.example"})
    west = emu.client("eks", region="eu-west-1")
    assert west.describe_cluster(name=name)["cluster"]["identity"]["oidc"]["issuer"] == "https://west.example"
    with pytest.raises(emu.client("eks").exceptions.ResourceNotFoundException):
        emu.client("eks").describe_cluster(name=name)


@pytest.mark.parametrize(
    "body,status",
    [({}, 400), ({"name": ""}, 400), ({"name": "x", "region": "mars-north-1"}, 400), ({"name": 3}, 400)],
)
def test_seeding_validation(emu: Emulator, body, status):
    assert emu.control("POST", "/clusters", body)[0] == status


def test_control_api_errors(emu: Emulator):
    assert emu.control("GET", "/nope")[0] == 404
    assert emu.control("PATCH", "/faults")[0] == 405
    status, _, raw = emu.http("PUT", "/_emulator/faults", b"{not json")
    assert status == 400


def test_call_log(emu: Emulator, cluster, role_arn):
    start = emu.calls()[-1]["seq"]  # the role fixture's CreateRole
    eks = emu.client("eks")
    emu.client("sts").get_caller_identity()
    eks.describe_cluster(name=cluster)
    assoc = eks.create_pod_identity_association(
        clusterName=cluster, namespace="ns", serviceAccount="sa", roleArn=role_arn
    )["association"]
    with pytest.raises(eks.exceptions.ResourceInUseException):
        eks.create_pod_identity_association(
            clusterName=cluster, namespace="ns", serviceAccount="sa", roleArn=role_arn
        )
    eks.list_pod_identity_associations(clusterName=cluster)
    eks.describe_pod_identity_association(clusterName=cluster, associationId=assoc["associationId"])
    eks.update_pod_identity_association(
        clusterName=cluster, associationId=assoc["associationId"], roleArn=role_arn
    )
    eks.delete_pod_identity_association(clusterName=cluster, associationId=assoc["associationId"])
    eks.list_clusters()
    emu.ok("GET", "/health")  # control calls are not AWS calls

    calls = emu.calls(since=start)
    assert [(c["service"], c["operation"], c["status"]) for c in calls] == [
        ("sts", "GetCallerIdentity", 200),
        ("eks", "DescribeCluster", 200),
        ("eks", "CreatePodIdentityAssociation", 200),
        ("eks", "CreatePodIdentityAssociation", 409),
        ("eks", "ListPodIdentityAssociations", 200),
        ("eks", "DescribePodIdentityAssociation", 200),
        ("eks", "UpdatePodIdentityAssociation", 200),
        ("eks", "DeletePodIdentityAssociation", 200),
        ("eks", "ListClusters", 200),
    ]
    seqs = [c["seq"] for c in calls]
    assert seqs == sorted(seqs) and seqs[0] == start + 1
    assert all(c["fault"] is None and c["region"] == "us-east-1" for c in calls)
    assert all(isinstance(c["time"], float) for c in calls)
    assert [c["seq"] for c in emu.calls(since=seqs[-2])] == [seqs[-1]]
    assert emu.ok("GET", "/calls/last") == {"seq": seqs[-1]}

    emu.ok("DELETE", "/calls")
    assert emu.calls() == []
    assert emu.ok("GET", "/calls/last") == {"seq": seqs[-1]}, "clearing keeps where the log ended"
    emu.client("iam").list_roles()
    (after_clear,) = emu.calls()
    assert after_clear["seq"] > seqs[-1]  # seq never restarts
    assert emu.ok("GET", "/calls/last") == {"seq": after_clear["seq"]}


def test_moto_api_passes_through_unlogged(emu: Emulator):
    status, _, _ = emu.http("POST", "/moto-api/seed?a=42")
    assert status == 200
    assert emu.calls() == []


def test_reset_forgets_everything(emu: Emulator, cluster, role_arn):
    iam = emu.client("iam")
    eks = emu.client("eks")
    eks.create_pod_identity_association(
        clusterName=cluster, namespace="ns", serviceAccount="sa", roleArn=role_arn
    )
    emu.ok("PUT", f"/clusters/{cluster}/addons/eks-pod-identity-agent", {"status": "ACTIVE"})
    emu.ok(
        "PUT",
        "/faults",
        {
            "rules": [
                {"service": "eks", "operation": "ListClusters", "fault": "throttle"},
                {"service": "iam", "operation": ["GetRole", "CreateRole"], "fault": "hold", "delayMs": 5000},
                {"service": "iam", "fault": "error", "code": "AccessDenied", "status": 403, "after": 1},
            ]
        },
    )
    emu.ok("PUT", "/propagation", {"roleVisibleToEksAfterMs": 5000, "roleVisibleToIamAfterMs": 5000})

    emu.ok("POST", "/reset")

    assert emu.ok("GET", "/faults")["rules"] == []
    assert emu.ok("GET", "/propagation") == {"roleVisibleToEksAfterMs": 0, "roleVisibleToIamAfterMs": 0}
    assert emu.calls() == []
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role_arn.rsplit("/", 1)[1])
    assert eks.list_clusters()["clusters"] == []
    # AWS-managed policies come back with the fresh IAM backend.
    policy = iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")["Policy"]
    assert policy["PolicyName"] == "AmazonS3ReadOnlyAccess"
    # A cluster of the same name starts without the old associations and add-ons.
    emu.ok("POST", "/clusters", {"name": cluster})
    assert eks.list_pod_identity_associations(clusterName=cluster)["associations"] == []
    assert eks.list_addons(clusterName=cluster)["addons"] == []
    new_role = make_role(emu, "after-reset")
    # With the propagation delays gone, a brand-new role is usable at once.
    eks.create_pod_identity_association(
        clusterName=cluster, namespace="ns", serviceAccount="sa", roleArn=new_role
    )
    role_name = new_role.rsplit("/", 1)[1]
    iam.get_role(RoleName=role_name)
    iam.attach_role_policy(RoleName=role_name, PolicyArn=policy["Arn"])
    attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [policy["Arn"]]
