//! State bugs the typed plan closes, each shown against the real apiserver
//! and the emulator (which treats role names and policy quotas as IAM does):
//! a foreign token audience, case-only renames, policy swaps at IAM's
//! quotas, and a losing claim giving its annotations back. (Renames whose
//! deletes fail are in `rename_leaks.rs`: their fault would reach these.)

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::aws::{attached, role_exists};
use support::operator::{ensure_operator, eventually};
use support::{Harness, harness, isa_manifest};

const ROLE_ARN: &str = "eks.amazonaws.com/role-arn";
const AUDIENCE: &str = "eks.amazonaws.com/audience";

fn setup() -> Option<&'static Harness> {
    let h = harness()?;
    ensure_operator(h, &[]);
    Some(h)
}

async fn iam(h: &Harness) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&h.aws_config().await)
}

fn delete(h: &Harness, ns: &str, what: &str) {
    h.kubectl(&["delete", what, "-n", ns, "--wait=true", "--timeout=120s"]);
}

#[tokio::test]
async fn bug1_a_foreign_token_audience_is_refused_by_name_until_removed() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("audience");
    h.kubectl(&["create", "serviceaccount", "app", "-n", &ns]);
    h.kubectl(&[
        "annotate",
        "sa",
        "app",
        "-n",
        &ns,
        &format!("{AUDIENCE}=sts.amazon.com"),
    ]);
    let role = format!("aud-{ns}");
    h.apply(
        &ns,
        &isa_manifest("app", &format!("  role: {{name: {role}}}\n")),
    );
    h.wait_for_reason("isa/app", &ns, "ServiceAccountAudienceMismatch");
    let iam = iam(h).await;
    assert!(
        !role_exists(&iam, &role).await,
        "nothing is written while refused"
    );

    h.kubectl(&["annotate", "sa", "app", "-n", &ns, &format!("{AUDIENCE}-")]);
    h.wait_ready("isa/app", &ns);
    let sa = h.kubectl_json(&["get", "sa", "app", "-n", &ns]);
    assert_eq!(
        sa["metadata"]["annotations"][AUDIENCE], "sts.amazonaws.com",
        "{sa}"
    );
}

#[tokio::test]
async fn bug3_a_case_only_rename_keeps_the_live_role() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("case");
    h.kubectl(&["create", "serviceaccount", "app", "-n", &ns]);
    let upper = format!("CaseRole-{ns}");
    h.apply(
        &ns,
        &isa_manifest("app", &format!("  role: {{name: {upper}}}\n")),
    );
    h.wait_isa_ready_at(&ns, "app", 1);
    let mark = h.emulator().mark();
    h.apply(
        &ns,
        &isa_manifest(
            "app",
            &format!("  role: {{name: {}}}\n", upper.to_lowercase()),
        ),
    );
    h.wait_isa_ready_at(&ns, "app", 2);
    let iam = iam(h).await;
    assert!(role_exists(&iam, &upper).await, "the live role was deleted");
    let deletes: Vec<_> = h
        .emulator()
        .calls_since(mark)
        .into_iter()
        .filter(|c| c.operation == "DeleteRole")
        .filter(|c| {
            c.target
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(&upper))
        })
        .collect();
    assert!(deletes.is_empty(), "{deletes:?}");
    let sa = h.kubectl_json(&["get", "sa", "app", "-n", &ns]);
    assert!(
        sa["metadata"]["annotations"][ROLE_ARN]
            .as_str()
            .is_some_and(|arn| arn.ends_with(&format!("/{upper}"))),
        "{sa}"
    );
}

const READ_ONLY: [&str; 12] = [
    "ReadOnlyAccess",
    "AmazonS3ReadOnlyAccess",
    "AmazonEC2ReadOnlyAccess",
    "AmazonRoute53ReadOnlyAccess",
    "AmazonDynamoDBReadOnlyAccess",
    "AmazonSQSReadOnlyAccess",
    "AmazonSNSReadOnlyAccess",
    "CloudWatchReadOnlyAccess",
    "AmazonRDSReadOnlyAccess",
    "IAMReadOnlyAccess",
    "AmazonVPCReadOnlyAccess",
    "AWSCloudTrail_ReadOnlyAccess",
];

fn policies(managed: &[&str], inline_name: &str) -> String {
    let arns: Vec<String> = managed
        .iter()
        .map(|p| format!("arn:aws:iam::aws:policy/{p}"))
        .collect();
    // About 6,000 characters: two of them do not fit IAM's 10,240.
    let bucket = "b".repeat(5900);
    format!(
        "  policies:\n    managed: {arns:?}\n    inline:\n      {inline_name}: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: 's3:GetObject', Resource: 'arn:aws:s3:::{bucket}'}}]}}\n"
    )
}

#[tokio::test]
async fn bug4_policy_swaps_at_iams_quotas_succeed() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("quota");
    h.kubectl(&["create", "serviceaccount", "app", "-n", &ns]);
    let role = format!("quota-{ns}");
    let spec = |managed: &[&str], inline: &str| {
        isa_manifest(
            "app",
            &format!("  role: {{name: {role}}}\n{}", policies(managed, inline)),
        )
    };
    h.apply(&ns, &spec(&READ_ONLY[..10], "first"));
    h.wait_isa_ready_at(&ns, "app", 1);
    h.apply(&ns, &spec(&READ_ONLY[2..], "second"));
    h.wait_isa_ready_at(&ns, "app", 2);
    let iam = iam(h).await;
    let expected: BTreeSet<String> = READ_ONLY[2..]
        .iter()
        .map(|p| format!("arn:aws:iam::aws:policy/{p}"))
        .collect();
    assert_eq!(attached(&iam, &role).await, expected);
    let inline = iam
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .expect("ListRolePolicies");
    assert_eq!(inline.policy_names(), ["second"]);
}

#[tokio::test]
async fn bug5_a_losing_claim_leaves_only_the_winners_annotations() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("claims");
    h.kubectl(&["create", "serviceaccount", "shared", "-n", &ns]);
    // Applied one after the other, usually within one second: then the name
    // decides, and the second one applied may win after the first annotated.
    for name in ["b-second", "a-first"] {
        h.apply(
            &ns,
            &isa_manifest(name, "  serviceAccount: {name: shared}\n"),
        );
    }
    let objects = h.kubectl_json(&["get", "isa", "-n", &ns]);
    let mut claims: Vec<(String, String, String)> = objects["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| {
            (
                o["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    claims.sort();
    let (winner, loser) = (&claims[0], &claims[1]);
    h.wait_ready(&format!("isa/{}", winner.1), &ns);
    h.wait_for_reason(&format!("isa/{}", loser.1), &ns, "ServiceAccountConflict");
    let winner_role = h.kubectl_json(&["get", "isa", &winner.1, "-n", &ns])["status"]["roleArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    eventually(
        "only the winner's annotations",
        Duration::from_secs(60),
        || {
            let sa = h.kubectl_json(&["get", "sa", "shared", "-n", &ns]);
            let loser_fields = sa["metadata"]["managedFields"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["manager"] == format!("iam-operator/{}", loser.2));
            (sa["metadata"]["annotations"][ROLE_ARN] == winner_role.as_str() && !loser_fields)
                .then_some(())
        },
    );
    delete(h, &ns, &format!("isa/{}", loser.1));
    delete(h, &ns, &format!("isa/{}", winner.1));
}

#[tokio::test]
async fn bug8_waiting_is_told_as_a_normal_event_and_a_refusal_as_a_warning() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("events");
    h.apply(&ns, &isa_manifest("late", "  policies: {}\n"));
    h.wait_for_reason("isa/late", &ns, "ServiceAccountNotFound");
    let waiting = eventually("the waiting Event", Duration::from_secs(30), || {
        Some(h.event_types(&ns, "late", "ServiceAccountNotFound")).filter(|e| !e.is_empty())
    });
    assert!(waiting.iter().all(|t| t == "Normal"), "{waiting:?}");

    h.kubectl(&["create", "serviceaccount", "taken", "-n", &ns]);
    h.kubectl(&[
        "annotate",
        "sa",
        "taken",
        "-n",
        &ns,
        &format!("{AUDIENCE}=sts.amazon.com"),
    ]);
    h.apply(
        &ns,
        &isa_manifest("refused", "  serviceAccount: {name: taken}\n"),
    );
    h.wait_for_reason("isa/refused", &ns, "ServiceAccountAudienceMismatch");
    let refused = eventually("the refusal Event", Duration::from_secs(30), || {
        Some(h.event_types(&ns, "refused", "ServiceAccountAudienceMismatch"))
            .filter(|e| !e.is_empty())
    });
    assert!(refused.iter().all(|t| t == "Warning"), "{refused:?}");
}
