//! Taking over a role made by eksctl or Terraform (issue 14): explicit
//! (`adoptRole` with the role's name), only where the guardrails grant the
//! namespace `adoptRoles`, and only of a role whose trust admits exactly
//! this ServiceAccount. Once adopted the role is the operator's: tags and
//! policies become the spec's, and deleting the object deletes it.

mod support;

use std::collections::BTreeSet;

use support::aws::{attached, get_role, role_exists};
use support::operator::{install, start_as, test_guardrails};
use support::{harness, is_write};

const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";
const S3_FULL: &str = "arn:aws:iam::aws:policy/AmazonS3FullAccess";

fn adopting(role: &str) -> String {
    format!(
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {{name: app}}\nspec:\n  serviceAccount: {{create: true}}\n  adoptRole: true\n  role: {{name: {role}}}\n  policies:\n    managed: [{READ_ONLY}]\n"
    )
}

#[tokio::test]
async fn a_role_made_elsewhere_is_taken_over_only_when_asked_granted_and_exactly_trusted() {
    let Some(h) = harness() else { return };
    install(h);
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    let emulator = h.emulator();
    let granted = h.fresh_namespace("adopt");
    let denied = h.fresh_namespace("adopt-denied");
    // The test guardrails, plus the grant for one namespace.
    let guardrails = h.dir.join("adoption-guardrails.yaml");
    let base = std::fs::read_to_string(test_guardrails()).expect("test guardrails");
    std::fs::write(
        &guardrails,
        format!("{base}  - names: [{granted}]\n    adoptRoles: true\n"),
    )
    .expect("write guardrails");
    let provider = iam_operator::policy::oidc_provider_arn("aws", &h.account_id, &h.issuer);
    let trust = |subject_condition: serde_json::Value| {
        let host = iam_operator::policy::issuer_host_path(&h.issuer).to_string();
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringLike": {format!("{host}:sub"): subject_condition},
                    "StringEquals": {format!("{host}:aud"): "sts.amazonaws.com"},
                },
            }],
        })
        .to_string()
    };
    // Made by "Terraform": a trust for the whole namespace, a tag and a
    // policy of its own.
    let name = format!("terraform-{granted}");
    iam.create_role()
        .role_name(&name)
        .assume_role_policy_document(trust(serde_json::json!(format!(
            "system:serviceaccount:{granted}:*"
        ))))
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("made-by")
                .value("terraform")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("CreateRole");
    iam.attach_role_policy()
        .role_name(&name)
        .policy_arn(S3_FULL)
        .send()
        .await
        .expect("AttachRolePolicy");
    let mark = emulator.mark();
    let mut operator = start_as(
        h,
        "adoption",
        &[
            "--watch-namespaces",
            &format!("{granted},{denied}"),
            "--guardrails-file",
            guardrails.to_str().expect("UTF-8 path"),
        ],
    );
    let writes_to_role = |since: u64| -> Vec<String> {
        emulator
            .calls_since(since)
            .into_iter()
            .filter(|c| is_write(c) && c.target.as_deref() == Some(name.as_str()))
            .map(|c| c.operation)
            .collect()
    };

    // Where the guardrails do not grant it: refused before any read.
    h.apply(&denied, &adopting(&name));
    let (_, _, message) = h.until_reason("isa/app", &denied, "GuardrailViolation", true);
    assert!(message.contains("adoptRoles"), "{message}");

    // Granted, but the trust admits every ServiceAccount of the namespace.
    h.apply(&granted, &adopting(&name));
    let (_, _, message) = h.until_reason("isa/app", &granted, "AdoptionRefused", true);
    for words in [
        "admits other ServiceAccounts too",
        "nothing was written",
        name.as_str(),
    ] {
        assert!(message.contains(words), "{words:?} not in {message}");
    }
    assert!(
        writes_to_role(mark).is_empty(),
        "{:?}",
        writes_to_role(mark)
    );

    // Its maker narrows the trust to this ServiceAccount: taken over.
    iam.update_assume_role_policy()
        .role_name(&name)
        .policy_document(trust(serde_json::json!(format!(
            "system:serviceaccount:{granted}:app"
        ))))
        .send()
        .await
        .expect("UpdateAssumeRolePolicy");
    let (status, _, message) = h.until_reason("isa/app", &granted, "Synced", false);
    assert_eq!(status, "True");
    assert!(
        message.contains("adoptRole: whoever made it") && message.contains("exactly this object's"),
        "{message}"
    );
    let writes = writes_to_role(mark);
    assert_eq!(
        writes.first().map(String::as_str),
        Some("UpdateAssumeRolePolicy"),
        "the test's own"
    );
    assert_eq!(
        writes.get(1).map(String::as_str),
        Some("TagRole"),
        "adoption starts with the tags: {writes:?}"
    );
    let role = get_role(&iam, &name).await;
    let tags: BTreeSet<(String, String)> = role
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert!(
        tags.contains(&("iam-operator.io/namespace".into(), granted.clone()))
            && tags.contains(&("iam-operator.io/name".into(), "app".into())),
        "{tags:?}"
    );
    assert!(
        !tags.iter().any(|(k, _)| k == "made-by"),
        "its tags are the spec's now: {tags:?}"
    );
    assert_eq!(
        attached(&iam, &name).await,
        BTreeSet::from([READ_ONLY.to_string()]),
        "its policies are exactly the spec's"
    );
    let sa = h.kubectl_json(&["get", "sa", "app", "-n", &granted]);
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        role.arn()
    );

    // The operator's now: deleting the object deletes it.
    h.kubectl(&[
        "delete",
        "isa",
        "app",
        "-n",
        &granted,
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(!role_exists(&iam, &name).await, "the adopted role was kept");
    support::figure(&format!(
        "adoption: refused without a grant and with a namespace-wide trust (0 writes); taken over with {} writes once the trust was exact",
        writes.len() - 1
    ));
    let _ = operator.child.kill();
    let _ = operator.child.wait();
}
