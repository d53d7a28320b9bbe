//! IamServiceAccount end to end: the operator binary against the real
//! kube-apiserver and the AWS emulator, driven with kubectl.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use iam_operator::policy::PolicyDocument;
use serde_json::json;
use support::aws::{attached, get_role, role_exists};
use support::operator::{ensure_operator, eventually};
use support::{Harness, generated_role_name, harness, is_write};

const ROLE_ARN: &str = "eks.amazonaws.com/role-arn";

fn setup() -> Option<&'static Harness> {
    let h = harness()?;
    ensure_operator(h, &[]);
    Some(h)
}

async fn iam(h: &Harness) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&h.aws_config().await)
}

fn status(h: &Harness, ns: &str, name: &str) -> serde_json::Value {
    h.kubectl_json(&["get", "isa", name, "-n", ns])["status"].clone()
}

/// One string field of an IamServiceAccount's status ("" when unset).
fn status_field(h: &Harness, ns: &str, name: &str, field: &str) -> String {
    status(h, ns, name)[field]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn ready_message(h: &Harness, ns: &str, name: &str) -> String {
    status(h, ns, name)["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Triggers a reconcile (a metadata change does not bump the generation),
/// waits until the operator has read the role again, and returns the
/// object's resourceVersion as our annotation left it.
fn resync(h: &Harness, ns: &str, name: &str, role: &str, round: u32) -> String {
    let emulator = h.emulator();
    let mark = emulator.mark();
    let version = h.kubectl(&[
        "annotate",
        "--overwrite",
        "isa",
        name,
        "-n",
        ns,
        &format!("test/resync={round}"),
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    eventually("a resync reading the role", Duration::from_secs(60), || {
        emulator
            .calls_since(mark)
            .iter()
            .any(|c| c.operation == "ListRolePolicies" && c.target.as_deref() == Some(role))
            .then_some(())
    });
    version
}

#[tokio::test]
async fn example_creates_role_policies_and_service_account_then_resyncs_without_writes() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("isa-example");
    let example = std::fs::read_to_string(support::repo_dir().join("examples/irsa-basic.yaml"))
        .expect("example");
    let mark = h.emulator().mark();
    let audit_start = h.audit_mark();
    h.apply(&ns, &example);
    h.wait_ready("isa/external-dns", &ns);
    // The audit log sees the operator's writes (so its silence later means something).
    let created = h.writes_since(audit_start, &h.operator_user, &ns);
    assert!(
        created
            .iter()
            .any(|w| w == "patch iamserviceaccounts/external-dns status"),
        "{created:?}"
    );
    assert!(
        created
            .iter()
            .any(|w| w.starts_with("patch serviceaccounts/external-dns")),
        "{created:?}"
    );

    let status = status(h, &ns, "external-dns");
    let role = status["roleName"].as_str().expect("roleName").to_string();
    let arn = status["roleArn"].as_str().expect("roleArn").to_string();
    assert_eq!(role, generated_role_name(h, &ns, "external-dns"));
    assert_eq!(arn, format!("arn:aws:iam::123456789012:role/{role}"));
    assert_eq!(status["serviceAccount"], "external-dns");
    assert_eq!(
        status["oidcProviderArn"].as_str(),
        h.oidc_provider_arn.as_deref()
    );
    assert_eq!(status["observedGeneration"], 1);

    // The role as IAM has it: trust for exactly this ServiceAccount.
    let iam = iam(h).await;
    let got = get_role(&iam, &role).await;
    let trust = PolicyDocument::parse(got.assume_role_policy_document().expect("trust"))
        .expect("valid trust");
    let issuer = h.issuer.trim_start_matches("https://");
    let expected = PolicyDocument::from_value(&json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": h.oidc_provider_arn.clone().expect("provider")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{issuer}:sub"): format!("system:serviceaccount:{ns}:external-dns"),
                format!("{issuer}:aud"): "sts.amazonaws.com"
            }}
        }]
    }))
    .expect("expected trust");
    assert_eq!(trust, expected);
    assert_eq!(
        got.description(),
        Some("external-dns updates Route 53 records")
    );
    let tags: std::collections::BTreeMap<_, _> =
        got.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags.get("team"), Some(&"dns"));
    assert_eq!(
        tags.get("iam-operator.io/managed-by"),
        Some(&"iam-operator")
    );
    assert_eq!(tags.get("iam-operator.io/namespace"), Some(&ns.as_str()));
    assert_eq!(tags.get("iam-operator.io/kind"), Some(&"IamServiceAccount"));
    assert_eq!(
        attached(&iam, &role).await,
        BTreeSet::from(["arn:aws:iam::aws:policy/AmazonRoute53ReadOnlyAccess".to_string()])
    );
    let inline = iam
        .get_role_policy()
        .role_name(&role)
        .policy_name("route53-changes")
        .send()
        .await
        .expect("inline policy");
    let inline = PolicyDocument::parse(inline.policy_document()).expect("inline document");
    assert!(
        inline
            .to_json()
            .contains("route53:ChangeResourceRecordSets")
    );

    // The ServiceAccount was created, owned by the IamServiceAccount, annotated.
    let sa = h.kubectl_json(&["get", "serviceaccount", "external-dns", "-n", &ns]);
    assert_eq!(sa["metadata"]["annotations"][ROLE_ARN], arn.as_str());
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/sts-regional-endpoints"],
        "true"
    );
    assert_eq!(
        sa["metadata"]["ownerReferences"][0]["kind"],
        "IamServiceAccount"
    );

    // Creating took exactly these writes on the role.
    let writes: Vec<String> = h
        .emulator()
        .calls_since(mark)
        .iter()
        .filter(|c| c.target.as_deref() == Some(role.as_str()) && is_write(c))
        .map(|c| c.operation.clone())
        .collect();
    assert_eq!(writes, ["CreateRole", "AttachRolePolicy", "PutRolePolicy"]);
    // And one round of reads: the annotation the operator wrote on the
    // ServiceAccount does not wake the object for a second look at a role
    // it has just made (which would list its policies). A wake would come
    // within milliseconds of that write; two seconds leave it every chance.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let second_look: Vec<String> = h
        .emulator()
        .calls_since(mark)
        .iter()
        .filter(|c| c.target.as_deref() == Some(role.as_str()))
        .filter(|c| c.operation == "ListRolePolicies")
        .map(|c| c.operation.clone())
        .collect();
    assert!(
        second_look.is_empty(),
        "a second round of reads after create: {second_look:?}"
    );

    // Resyncs in sync: zero AWS writes, zero Kubernetes writes. The
    // controller runs one reconcile of an object at a time, so when round
    // N+1 has read the role, round N has finished, writes and all.
    resync(h, &ns, "external-dns", &role, 1);
    resync(h, &ns, "external-dns", &role, 2);
    let mark = h.emulator().mark();
    let audit = h.audit_mark();
    resync(h, &ns, "external-dns", &role, 3);
    resync(h, &ns, "external-dns", &role, 4);
    resync(h, &ns, "external-dns", &role, 5);
    let calls = h.emulator().calls_since(mark);
    let role_calls: Vec<_> = calls
        .iter()
        .filter(|c| c.target.as_deref() == Some(role.as_str()))
        .collect();
    assert!(
        role_calls.iter().all(|c| !is_write(c)),
        "AWS writes on resync: {role_calls:?}"
    );
    let kube_writes = h.writes_since(audit, &h.operator_user, &ns);
    assert!(
        kube_writes.is_empty(),
        "Kubernetes writes on resync: {kube_writes:?}"
    );
    println!(
        "figures: create writes=3, resync calls per round={}",
        role_calls.len() / 3
    );
}

#[tokio::test]
async fn spec_changes_make_exactly_the_needed_calls_and_delete_removes_everything() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("isa-change");
    h.kubectl(&["create", "serviceaccount", "app", "-n", &ns]);
    let manifest = |description: &str, managed: &[&str]| {
        format!(
            "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {{name: app}}\nspec:\n  role: {{description: {description}}}\n  policies:\n    managed: {managed:?}\n    inline:\n      read: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: 's3:GetObject', Resource: '*'}}]}}\n"
        )
    };
    h.apply(
        &ns,
        &manifest("first", &["arn:aws:iam::aws:policy/ReadOnlyAccess"]),
    );
    h.wait_ready("isa/app", &ns);
    let role = status_field(h, &ns, "app", "roleName");

    let mark = h.emulator().mark();
    h.apply(
        &ns,
        &manifest(
            "second",
            &["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
        ),
    );
    eventually("generation 2 observed", Duration::from_secs(60), || {
        let s = status(h, &ns, "app");
        (s["observedGeneration"] == 2 && s["conditions"][0]["reason"] == "Synced").then_some(())
    });
    let writes: Vec<String> = h
        .emulator()
        .calls_since(mark)
        .iter()
        .filter(|c| c.target.as_deref() == Some(role.as_str()) && is_write(c))
        .map(|c| c.operation.clone())
        .collect();
    assert_eq!(
        writes,
        ["UpdateRole", "AttachRolePolicy", "DetachRolePolicy"]
    );
    let iam = iam(h).await;
    assert_eq!(
        attached(&iam, &role).await,
        BTreeSet::from(["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".to_string()])
    );
    let got = get_role(&iam, &role).await;
    assert_eq!(got.description(), Some("second"));

    // The user's ServiceAccount keeps everything but our annotation.
    h.kubectl(&["label", "sa", "app", "-n", &ns, "team=web"]);
    h.kubectl(&[
        "delete",
        "isa",
        "app",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(
        !role_exists(&iam, &role).await,
        "role {role} survived deletion"
    );
    let sa = h.kubectl_json(&["get", "sa", "app", "-n", &ns]);
    assert!(
        sa["metadata"]["annotations"].get(ROLE_ARN).is_none(),
        "{sa}"
    );
    assert_eq!(sa["metadata"]["labels"]["team"], "web");
}

#[tokio::test]
async fn retain_keeps_the_role_and_created_service_account_goes() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("isa-retain");
    h.apply(
        &ns,
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: kept}\nspec:\n  deletionPolicy: Retain\n  serviceAccount: {create: true}\n",
    );
    h.wait_ready("isa/kept", &ns);
    let role = status_field(h, &ns, "kept", "roleName");
    h.kubectl(&[
        "delete",
        "isa",
        "kept",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(role_exists(&iam(h).await, &role).await);
    let out = h.kubectl_output(&["get", "sa", "kept", "-n", &ns], None);
    assert!(
        !out.status.success(),
        "the ServiceAccount the operator created should be gone"
    );
}

#[tokio::test]
async fn a_foreign_role_at_our_name_is_reported_and_never_written() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("isa-foreign");
    let iam = iam(h).await;
    let name = format!("foreign-{ns}");
    iam.create_role()
        .role_name(&name)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .expect("someone else's role");
    let mark = h.emulator().mark();
    h.kubectl(&["create", "serviceaccount", "app", "-n", &ns]);
    h.apply(
        &ns,
        &format!("apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {{name: app}}\nspec:\n  role: {{name: {name}}}\n  policies: {{managed: [arn:aws:iam::aws:policy/ReadOnlyAccess]}}\n"),
    );
    h.wait_for_reason("isa/app", &ns, "RoleNotOwned");
    let message = ready_message(h, &ns, "app");
    assert!(message.contains("not created by iam-operator"), "{message}");
    let writes: Vec<_> = h
        .emulator()
        .calls_since(mark)
        .into_iter()
        .filter(|c| c.target.as_deref() == Some(name.as_str()) && is_write(c))
        .collect();
    assert!(writes.is_empty(), "wrote to a foreign role: {writes:?}");
    assert!(attached(&iam, &name).await.is_empty());
    // Deleting our object leaves their role alone.
    h.kubectl(&[
        "delete",
        "isa",
        "app",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(role_exists(&iam, &name).await);
}

#[tokio::test]
async fn second_claim_on_a_service_account_is_a_conflict() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("isa-conflict");
    h.kubectl(&["create", "serviceaccount", "shared", "-n", &ns]);
    h.apply(
        &ns,
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: first}\nspec: {serviceAccount: {name: shared}}\n",
    );
    h.wait_ready("isa/first", &ns);
    h.apply(
        &ns,
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: second}\nspec: {serviceAccount: {name: shared}}\n",
    );
    h.wait_for_reason("isa/second", &ns, "ServiceAccountConflict");
    let message = ready_message(h, &ns, "second");
    assert!(message.contains("first"), "{message}");
    let first_arn = status_field(h, &ns, "first", "roleArn");
    let sa = h.kubectl_json(&["get", "sa", "shared", "-n", &ns]);
    assert_eq!(sa["metadata"]["annotations"][ROLE_ARN], first_arn.as_str());
    // The loser goes away without taking the winner's annotation with it.
    h.kubectl(&[
        "delete",
        "isa",
        "second",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=60s",
    ]);
    let sa = h.kubectl_json(&["get", "sa", "shared", "-n", &ns]);
    assert_eq!(sa["metadata"]["annotations"][ROLE_ARN], first_arn.as_str());
}

#[tokio::test]
async fn someone_elses_role_annotation_is_reported_then_recovered() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("isa-mismatch");
    h.kubectl(&["create", "serviceaccount", "app", "-n", &ns]);
    h.kubectl(&[
        "annotate",
        "sa",
        "app",
        "-n",
        &ns,
        &format!("{ROLE_ARN}=arn:aws:iam::123456789012:role/hand-made"),
    ]);
    h.apply(&ns, "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: app}\nspec: {}\n");
    h.wait_for_reason("isa/app", &ns, "ServiceAccountAnnotationMismatch");
    let message = ready_message(h, &ns, "app");
    assert!(
        message.contains("Not authorized to perform sts:AssumeRoleWithWebIdentity"),
        "{message}"
    );
    assert!(message.contains("hand-made"), "{message}");
    h.kubectl(&["annotate", "sa", "app", "-n", &ns, &format!("{ROLE_ARN}-")]);
    h.wait_ready("isa/app", &ns);
    let arn = status_field(h, &ns, "app", "roleArn");
    let sa = h.kubectl_json(&["get", "sa", "app", "-n", &ns]);
    assert_eq!(sa["metadata"]["annotations"][ROLE_ARN], arn.as_str());
}

#[tokio::test]
async fn a_deleted_service_account_is_recreated_and_a_missing_one_waited_for() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("isa-sa-watch");
    h.apply(&ns, "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: late}\nspec: {}\n");
    h.wait_for_reason("isa/late", &ns, "ServiceAccountNotFound");
    h.kubectl(&["create", "serviceaccount", "late", "-n", &ns]);
    h.wait_ready("isa/late", &ns);
    let arn = status_field(h, &ns, "late", "roleArn");
    eventually(
        "annotation on the new ServiceAccount",
        Duration::from_secs(30),
        || {
            let sa = h.kubectl_json(&["get", "sa", "late", "-n", &ns]);
            (sa["metadata"]["annotations"][ROLE_ARN] == arn.as_str()).then_some(())
        },
    );
    // Removed by hand: the ServiceAccount watch puts it back.
    h.kubectl(&["annotate", "sa", "late", "-n", &ns, &format!("{ROLE_ARN}-")]);
    eventually("annotation repaired", Duration::from_secs(30), || {
        let sa = h.kubectl_json(&["get", "sa", "late", "-n", &ns]);
        (sa["metadata"]["annotations"][ROLE_ARN] == arn.as_str()).then_some(())
    });

    // A ServiceAccount the operator creates: deleted, it comes back owned;
    // repaired, it stays owned.
    h.apply(
        &ns,
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: made}\nspec: {serviceAccount: {create: true}}\n",
    );
    h.wait_ready("isa/made", &ns);
    let uid = h.kubectl(&[
        "get",
        "isa",
        "made",
        "-n",
        &ns,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    h.kubectl(&["delete", "sa", "made", "-n", &ns]);
    eventually(
        "the ServiceAccount re-created",
        Duration::from_secs(30),
        || {
            let out = h.kubectl_output(
                &[
                    "get",
                    "sa",
                    "made",
                    "-n",
                    &ns,
                    "-o",
                    "jsonpath={.metadata.ownerReferences[0].uid}",
                ],
                None,
            );
            (String::from_utf8_lossy(&out.stdout) == uid).then_some(())
        },
    );
    h.kubectl(&["annotate", "sa", "made", "-n", &ns, &format!("{ROLE_ARN}-")]);
    eventually(
        "annotation repaired, owner kept",
        Duration::from_secs(30),
        || {
            let sa = h.kubectl_json(&["get", "sa", "made", "-n", &ns]);
            (sa["metadata"]["annotations"].get(ROLE_ARN).is_some()
                && sa["metadata"]["ownerReferences"][0]["uid"] == uid.as_str())
            .then_some(())
        },
    );
    h.kubectl(&[
        "delete",
        "isa",
        "made",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(
        !h.kubectl_output(&["get", "sa", "made", "-n", &ns], None)
            .status
            .success()
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_any_aws_write() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("isa-bad");
    // Caught by the operator: named reason, nothing written in AWS.
    let operator_refuses = [
        (
            "bad-doc",
            "policies: {inline: {p: {Statement: not-a-list}}}",
            "spec.policies.inline.p",
            "InvalidPolicy",
        ),
        (
            "bad-arn",
            "policies: {managed: ['arn:aws:s3:::bucket']}",
            "spec.policies.managed[0]",
            "InvalidSpec",
        ),
        (
            "bad-boundary",
            "role: {permissionsBoundary: not-an-arn}",
            "permissionsBoundary",
            "InvalidSpec",
        ),
    ];
    let mark = h.emulator().mark();
    for (name, spec, field, reason) in operator_refuses {
        h.apply(
            &ns,
            &format!("apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {{name: {name}}}\nspec: {{{spec}}}\n"),
        );
        h.wait_for_reason(&format!("isa/{name}"), &ns, reason);
        let message = ready_message(h, &ns, name);
        assert!(message.contains(field), "{name}: {message}");
    }
    let writes: Vec<_> = h
        .emulator()
        .calls_since(mark)
        .into_iter()
        .filter(|c| c.target.as_deref().is_some_and(|t| t.contains(&ns)) && is_write(c))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    // Caught by the CRD schema and CEL rules at apply time.
    let schema_refuses = [
        (
            "role: {maxSessionDurationSeconds: 100}",
            "maxSessionDurationSeconds",
        ),
        ("role: {name: 'has space'}", "spec.role.name"),
        ("role: {tags: {'aws:x': 'v'}}", "reserved"),
        ("tokenExpirationSeconds: 5", "tokenExpirationSeconds"),
    ];
    for (spec, field) in schema_refuses {
        let out = h.kubectl_output(
            &["apply", "-n", &ns, "-f", "-"],
            Some(&format!("apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {{name: refused}}\nspec: {{{spec}}}\n")),
        );
        assert!(!out.status.success(), "{spec} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(field), "{spec}: {stderr}");
    }

    // Cleanup works for an invalid spec too.
    h.kubectl(&[
        "delete",
        "isa",
        "bad-doc",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=60s",
    ]);
}

#[tokio::test]
async fn an_existing_role_is_bound_only_once_its_trust_admits_the_service_account() {
    let Some(h) = setup() else { return };
    let iam = iam(h).await;
    let emulator = h.emulator();
    let ns = h.fresh_namespace("isa-existing");
    // A role made by hand (or by eksctl, or Terraform), trusting another
    // ServiceAccount of the namespace.
    let name = format!("hand-made-{ns}");
    let provider = iam_operator::policy::oidc_provider_arn("aws", &h.account_id, &h.issuer);
    let trust_for = |service_account: &str| {
        iam_operator::policy::irsa_trust_policy(
            &provider,
            &h.issuer,
            &ns,
            service_account,
            "sts.amazonaws.com",
        )
    };
    let arn = iam
        .create_role()
        .role_name(&name)
        .path("/shared/")
        .assume_role_policy_document(trust_for("other").to_string())
        .send()
        .await
        .expect("CreateRole")
        .role()
        .map(|r| r.arn().to_string())
        .expect("role");
    let mark = emulator.mark();
    let example =
        std::fs::read_to_string(support::repo_dir().join("examples/irsa-existing-role.yaml"))
            .expect("example");
    h.apply(
        &ns,
        &example.replace("arn:aws:iam::123456789012:role/shared/reports-irsa", &arn),
    );
    let (status, _, message) =
        h.until_reason("isa/reports", &ns, "RoleDoesNotTrustServiceAccount", true);
    assert_eq!(status, "False");
    for words in [
        format!("does not admit system:serviceaccount:{ns}:reports"),
        format!("admits system:serviceaccount:{ns}:other only"),
        "Not authorized to perform sts:AssumeRoleWithWebIdentity".to_string(),
        "add this statement to the role's trust policy".to_string(),
    ] {
        assert!(message.contains(&words), "{words:?} not in {message}");
    }
    assert!(
        !h.kubectl_output(&["get", "sa", "reports", "-n", &ns], None)
            .status
            .success(),
        "the ServiceAccount was made for a role that would refuse its tokens"
    );

    // The fix, made in IAM as a person would: the statement the message gives.
    let statement: serde_json::Value = serde_json::from_str(
        message
            .rsplit("trust policy: ")
            .next()
            .expect("the statement"),
    )
    .expect("the statement is JSON");
    let mut fixed = trust_for("other").as_value().clone();
    fixed["Statement"]
        .as_array_mut()
        .expect("statements")
        .push(statement);
    iam.update_assume_role_policy()
        .role_name(&name)
        .policy_document(fixed.to_string())
        .send()
        .await
        .expect("UpdateAssumeRolePolicy");
    h.wait_ready("isa/reports", &ns);
    let sa = h.kubectl_json(&["get", "sa", "reports", "-n", &ns]);
    assert_eq!(sa["metadata"]["annotations"][ROLE_ARN], arn.as_str());
    assert_eq!(status_field(h, &ns, "reports", "roleArn"), arn);
    assert_eq!(
        status_field(h, &ns, "reports", "roleName"),
        "",
        "no role of ours"
    );
    assert!(ready_message(h, &ns, "reports").contains(&arn));

    // Deleting the object gives the ServiceAccount back (it made it, so it
    // goes) and leaves the role as it was: only the test ever wrote to it.
    h.kubectl(&[
        "delete",
        "isa",
        "reports",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(
        role_exists(&iam, &name).await,
        "the existing role was deleted"
    );
    let role = get_role(&iam, &name).await;
    assert!(role.tags().is_empty(), "tagged: {:?}", role.tags());
    assert!(attached(&iam, &name).await.is_empty());
    let writes: Vec<String> = emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| is_write(c) && c.target.as_deref() == Some(name.as_str()))
        .map(|c| c.operation)
        .collect();
    assert_eq!(
        writes,
        ["UpdateAssumeRolePolicy"],
        "writes to the existing role"
    );
}
