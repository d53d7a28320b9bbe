//! PodIdentityBinding end to end: the operator binary against the real
//! kube-apiserver and the AWS emulator's EKS Pod Identity, driven with
//! kubectl.
//!
//! Every test here holds `SERIAL`: EKS calls in the emulator's log carry the
//! cluster, not the namespace, so counting one test's calls needs the others
//! quiet. Each test deletes its objects before it lets go.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_eks::types::PodIdentityAssociation;
use iam_operator::policy::trust::{PodIdentityScope, scoped_pod_identity_trust_policy};
use iam_operator::policy::{PolicyDocument, pod_identity_trust_policy};
use serde_json::{Value, json};
use support::aws::{attached, get_role};
use support::operator::{ensure_operator, eventually};
use support::{Call, Harness, generated_role_name, harness, is_write};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ACCOUNT: &str = "123456789012";

fn setup() -> Option<&'static Harness> {
    let h = harness()?;
    ensure_operator(h, &[]);
    Some(h)
}

struct Aws {
    iam: aws_sdk_iam::Client,
    eks: aws_sdk_eks::Client,
}

async fn aws(h: &Harness) -> Aws {
    let config = h.aws_config().await;
    Aws {
        iam: aws_sdk_iam::Client::new(&config),
        eks: aws_sdk_eks::Client::new(&config),
    }
}

fn status(h: &Harness, ns: &str, name: &str) -> Value {
    h.kubectl_json(&["get", "pib", name, "-n", ns])["status"].clone()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn ready_message(h: &Harness, ns: &str, name: &str) -> String {
    text(&status(h, ns, name)["conditions"][0]["message"])
}

async fn associations(h: &Harness, aws: &Aws, ns: &str, sa: &str) -> Vec<PodIdentityAssociation> {
    support::aws::associations(&aws.eks, &h.cluster_name, ns, sa).await
}

async fn the_association(h: &Harness, aws: &Aws, ns: &str, sa: &str) -> PodIdentityAssociation {
    let mut found = associations(h, aws, ns, sa).await;
    assert_eq!(found.len(), 1, "{ns}/{sa}: {found:?}");
    found.remove(0)
}

async fn role_exists(aws: &Aws, name: &str) -> bool {
    support::aws::role_exists(&aws.iam, name).await
}

/// A role made outside the operator, as Terraform or another team would.
async fn make_role(aws: &Aws, name: &str, trust: &PolicyDocument) -> String {
    aws.iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_json())
        .send()
        .await
        .expect("CreateRole")
        .role
        .expect("role")
        .arn()
        .to_string()
}

fn ops(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.operation.as_str()).collect()
}

fn writes(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| is_write(c))
        .map(|c| c.operation.clone())
        .collect()
}

fn count(calls: &[Call], operation: &str) -> usize {
    calls.iter().filter(|c| c.operation == operation).count()
}

/// Triggers a reconcile (an annotation does not bump the generation) and
/// waits until the operator has listed the associations again.
fn resync(h: &Harness, ns: &str, name: &str, round: u32) {
    let emulator = h.emulator();
    let mark = emulator.mark();
    h.kubectl(&[
        "annotate",
        "--overwrite",
        "pib",
        name,
        "-n",
        ns,
        &format!("test/resync={round}"),
    ]);
    eventually(
        "a resync listing associations",
        Duration::from_secs(60),
        || {
            emulator
                .calls_since(mark)
                .iter()
                .any(|c| c.operation == "ListPodIdentityAssociations")
                .then_some(())
        },
    );
}

fn patch(h: &Harness, ns: &str, name: &str, patch: Value) {
    h.kubectl(&[
        "patch",
        "pib",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
}

/// Waits until the object is Ready for its current generation.
fn wait_synced_generation(h: &Harness, ns: &str, name: &str) {
    eventually(
        "Ready at the new generation",
        Duration::from_secs(60),
        || {
            let object = h.kubectl_json(&["get", "pib", name, "-n", ns]);
            let generation = object["metadata"]["generation"].as_i64();
            let condition = &object["status"]["conditions"][0];
            (condition["reason"] == "Synced"
                && condition["observedGeneration"].as_i64() == generation)
                .then_some(())
        },
    );
}

fn delete(h: &Harness, ns: &str, resource: &str) {
    h.kubectl(&["delete", resource, "-n", ns, "--timeout=90s"]);
}

#[tokio::test]
async fn example_creates_role_and_association_resyncs_without_writes_and_deletes_in_order() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let aws = aws(h).await;
    let ns = h.fresh_namespace("pib-example");
    let example =
        std::fs::read_to_string(support::repo_dir().join("examples/pod-identity-basic.yaml"))
            .expect("example");
    let emulator = h.emulator();
    let mark = emulator.mark();
    h.apply(&ns, &example);
    h.wait_ready("pib/s3-reader", &ns);

    let status = status(h, &ns, "s3-reader");
    let role = text(&status["roleName"]);
    assert_eq!(role, generated_role_name(h, &ns, "s3-reader_pod-identity"));
    assert_eq!(
        text(&status["roleArn"]),
        format!("arn:aws:iam::{ACCOUNT}:role/{role}")
    );
    assert_eq!(status["observedGeneration"], 1);
    let created = get_role(&aws.iam, &role).await;
    let trust = PolicyDocument::parse(created.assume_role_policy_document().expect("trust"))
        .expect("trust parses");
    // Scoped to this cluster, namespace and ServiceAccount by the session
    // tags EKS sets, so no other association can use the role.
    assert_eq!(
        trust,
        scoped_pod_identity_trust_policy(&PodIdentityScope {
            account: ACCOUNT,
            cluster_arn: &format!(
                "arn:aws:eks:{}:{ACCOUNT}:cluster/{}",
                h.region, h.cluster_name
            ),
            namespace: &ns,
            service_account: "s3-reader",
            session_tags: true,
        })
    );
    assert_eq!(
        attached(&aws.iam, &role).await,
        BTreeSet::from(["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".to_string()])
    );

    let association = the_association(h, &aws, &ns, "s3-reader").await;
    assert_eq!(association.role_arn(), status["roleArn"].as_str());
    assert_eq!(
        association.association_id(),
        status["associationId"].as_str()
    );
    assert_eq!(
        association.association_arn(),
        status["associationArn"].as_str()
    );
    assert_eq!(association.disable_session_tags(), Some(false));
    let tags = association.tags().expect("tags");
    assert_eq!(
        tags.get("iam-operator.io/kind").map(String::as_str),
        Some("PodIdentityBinding")
    );
    assert_eq!(tags.get("iam-operator.io/namespace"), Some(&ns), "{tags:?}");

    let calls = emulator.calls_since(mark);
    assert_eq!(
        writes(&calls),
        [
            "CreateRole",
            "AttachRolePolicy",
            "CreatePodIdentityAssociation"
        ],
        "{:?}",
        ops(&calls)
    );
    eprintln!(
        "figures: AWS calls for one create: {} ({} writes): {:?}",
        calls.len(),
        writes(&calls).len(),
        ops(&calls)
    );

    // A resync in sync writes nothing, in AWS or in Kubernetes.
    let mark = emulator.mark();
    let audit = h.audit_mark();
    resync(h, &ns, "s3-reader", 1);
    resync(h, &ns, "s3-reader", 2);
    let calls = emulator.calls_since(mark);
    assert!(writes(&calls).is_empty(), "{:?}", ops(&calls));
    assert_eq!(
        h.writes_since(audit, &h.operator_user, &ns),
        Vec::<String>::new()
    );

    // Deletion: the association, then the policy, then the role.
    let mark = emulator.mark();
    delete(h, &ns, "pib/s3-reader");
    let calls = emulator.calls_since(mark);
    let written = writes(&calls);
    assert_eq!(
        written,
        [
            "DeletePodIdentityAssociation",
            "DetachRolePolicy",
            "DeleteRole"
        ],
        "{:?}",
        ops(&calls)
    );
    assert!(associations(h, &aws, &ns, "s3-reader").await.is_empty());
    assert!(!role_exists(&aws, &role).await);
}

#[tokio::test]
async fn changes_update_the_association_in_place_and_a_new_service_account_recreates_it() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let aws = aws(h).await;
    let ns = h.fresh_namespace("pib-update");
    let emulator = h.emulator();
    h.apply(
        &ns,
        r#"
apiVersion: iam-operator.io/v1alpha1
kind: PodIdentityBinding
metadata: {name: app}
spec:
  serviceAccountName: app-a
  role: {}
"#,
    );
    h.wait_ready("pib/app", &ns);
    let first = the_association(h, &aws, &ns, "app-a").await;
    let id = first.association_id().expect("id").to_string();
    let created_role = text(&status(h, &ns, "app")["roleName"]);

    // Each change is one UpdatePodIdentityAssociation on the same association.
    let existing_name = format!("existing-{ns}");
    let existing_arn = make_role(&aws, &existing_name, &pod_identity_trust_policy()).await;
    let target = "arn:aws:iam::210987654321:role/shared-reader";
    let changes = [
        (
            "session tags",
            json!({"spec": {"disableSessionTags": true}}),
        ),
        ("target role", json!({"spec": {"targetRoleArn": target}})),
        (
            "role",
            json!({"spec": {"role": null, "roleArn": existing_arn}}),
        ),
    ];
    for (what, change) in changes {
        let mark = emulator.mark();
        patch(h, &ns, "app", change);
        wait_synced_generation(h, &ns, "app");
        let calls = emulator.calls_since(mark);
        assert_eq!(
            count(&calls, "UpdatePodIdentityAssociation"),
            1,
            "{what}: {:?}",
            ops(&calls)
        );
        assert_eq!(count(&calls, "CreatePodIdentityAssociation"), 0, "{what}");
        assert_eq!(count(&calls, "DeletePodIdentityAssociation"), 0, "{what}");
    }
    let updated = the_association(h, &aws, &ns, "app-a").await;
    assert_eq!(updated.association_id(), Some(id.as_str()));
    assert_eq!(updated.disable_session_tags(), Some(true));
    assert_eq!(updated.target_role_arn(), Some(target));
    assert_eq!(updated.role_arn(), Some(existing_arn.as_str()));
    // The role the operator made is gone once nothing points at it; the
    // existing one is the status's role now, and not the operator's to own.
    assert!(!role_exists(&aws, &created_role).await);
    let status_now = status(h, &ns, "app");
    assert_eq!(text(&status_now["roleArn"]), existing_arn);
    assert!(status_now.get("roleName").is_none(), "{status_now}");

    // Another ServiceAccount: a new association, then the old one goes.
    let mark = emulator.mark();
    patch(
        h,
        &ns,
        "app",
        json!({"spec": {"serviceAccountName": "app-b"}}),
    );
    wait_synced_generation(h, &ns, "app");
    let calls = emulator.calls_since(mark);
    let order: Vec<String> = writes(&calls);
    assert_eq!(
        order,
        [
            "CreatePodIdentityAssociation",
            "DeletePodIdentityAssociation"
        ],
        "{:?}",
        ops(&calls)
    );
    assert!(associations(h, &aws, &ns, "app-a").await.is_empty());
    let moved = the_association(h, &aws, &ns, "app-b").await;
    assert_ne!(moved.association_id(), Some(id.as_str()));
    assert_eq!(
        moved.association_id(),
        status(h, &ns, "app")["associationId"].as_str()
    );
    assert_eq!(moved.target_role_arn(), Some(target));

    // Deleting removes the association and leaves the existing role alone.
    delete(h, &ns, "pib/app");
    assert!(associations(h, &aws, &ns, "app-b").await.is_empty());
    assert!(role_exists(&aws, &existing_name).await);
}

#[tokio::test]
async fn an_association_someone_else_made_is_a_conflict_and_is_never_touched() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let aws = aws(h).await;
    let ns = h.fresh_namespace("pib-foreign");
    let emulator = h.emulator();
    let theirs = make_role(&aws, &format!("theirs-{ns}"), &pod_identity_trust_policy()).await;
    let foreign = aws
        .eks
        .create_pod_identity_association()
        .cluster_name(&h.cluster_name)
        .namespace(&ns)
        .service_account("taken")
        .role_arn(&theirs)
        .send()
        .await
        .expect("CreatePodIdentityAssociation")
        .association
        .expect("association");

    let mark = emulator.mark();
    h.apply(
        &ns,
        r#"
apiVersion: iam-operator.io/v1alpha1
kind: PodIdentityBinding
metadata: {name: mine}
spec:
  serviceAccountName: taken
  role: {}
  policies:
    managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]
"#,
    );
    h.wait_for_reason("pib/mine", &ns, "AssociationConflict");
    let message = ready_message(h, &ns, "mine");
    assert!(
        message.contains(foreign.association_id().expect("id")),
        "{message}"
    );
    assert!(
        message.contains("delete-pod-identity-association"),
        "{message}"
    );
    resync(h, &ns, "mine", 1);
    let calls = emulator.calls_since(mark);
    assert!(writes(&calls).is_empty(), "{:?}", ops(&calls));
    let still = the_association(h, &aws, &ns, "taken").await;
    assert_eq!(still.role_arn(), Some(theirs.as_str()));

    // Deleting the refused object touches the foreign association neither.
    delete(h, &ns, "pib/mine");
    assert_eq!(
        the_association(h, &aws, &ns, "taken")
            .await
            .association_id(),
        foreign.association_id()
    );
}

#[tokio::test]
async fn an_existing_role_must_exist_and_trust_pod_identity() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let aws = aws(h).await;
    let ns = h.fresh_namespace("pib-existing");
    let emulator = h.emulator();
    let name = format!("billing-{ns}");
    let ec2_only = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    )
    .expect("policy");
    let arn = make_role(&aws, &name, &ec2_only).await;

    let mark = emulator.mark();
    let binding = |role_arn: &str| {
        format!(
            "apiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {{name: billing}}\nspec:\n  serviceAccountName: billing\n  roleArn: {role_arn}\n"
        )
    };
    h.apply(
        &ns,
        &binding(&format!("arn:aws:iam::{ACCOUNT}:role/missing-{ns}")),
    );
    h.wait_for_reason("pib/billing", &ns, "RoleNotFound");
    h.apply(&ns, &binding(&arn));
    h.wait_for_reason("pib/billing", &ns, "RoleDoesNotTrustPodIdentity");
    let message = ready_message(h, &ns, "billing");
    assert!(
        message.contains("pods.eks.amazonaws.com to sts:AssumeRole and sts:TagSession"),
        "{message}"
    );
    let calls = emulator.calls_since(mark);
    assert!(writes(&calls).is_empty(), "{:?}", ops(&calls));
    assert!(associations(h, &aws, &ns, "billing").await.is_empty());

    // Fixed outside Kubernetes, noticed on the next look.
    aws.iam
        .update_assume_role_policy()
        .role_name(&name)
        .policy_document(pod_identity_trust_policy().to_json())
        .send()
        .await
        .expect("UpdateAssumeRolePolicy");
    resync(h, &ns, "billing", 1);
    h.wait_ready("pib/billing", &ns);
    assert_eq!(
        the_association(h, &aws, &ns, "billing").await.role_arn(),
        Some(arn.as_str())
    );

    delete(h, &ns, "pib/billing");
    assert!(associations(h, &aws, &ns, "billing").await.is_empty());
    // The existing role is kept, untouched.
    let kept = get_role(&aws.iam, &name).await;
    assert!(
        kept.tags().is_empty(),
        "the operator tagged a role it does not own: {:?}",
        kept.tags()
    );
}

#[tokio::test]
async fn an_irsa_annotation_on_the_service_account_is_warned_about_until_removed() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let aws = aws(h).await;
    let ns = h.fresh_namespace("pib-irsa");
    let irsa_role = format!("arn:aws:iam::{ACCOUNT}:role/old-irsa-role");
    h.apply(
        &ns,
        &format!(
            r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: worker
  annotations: {{eks.amazonaws.com/role-arn: "{irsa_role}"}}
---
apiVersion: iam-operator.io/v1alpha1
kind: PodIdentityBinding
metadata: {{name: worker}}
spec:
  serviceAccountName: worker
  role: {{}}
"#
        ),
    );
    h.wait_for_reason("pib/worker", &ns, "IRSARoleTakesPrecedence");
    let message = ready_message(h, &ns, "worker");
    assert!(message.contains(&irsa_role), "{message}");
    assert!(
        message
            .contains("web identity credentials (IRSA) before the container credential provider"),
        "{message}"
    );
    let events = h.kubectl_json(&[
        "get",
        "events",
        "-n",
        &ns,
        "--field-selector",
        "reason=IRSARoleTakesPrecedence",
    ]);
    let items = events["items"].as_array().expect("events");
    assert!(items.iter().any(|e| e["type"] == "Warning"), "{events}");
    // The association is made anyway: removing the annotation is the switch.
    let association = the_association(h, &aws, &ns, "worker").await;

    h.kubectl(&[
        "annotate",
        "serviceaccount",
        "worker",
        "-n",
        &ns,
        "eks.amazonaws.com/role-arn-",
    ]);
    h.wait_ready("pib/worker", &ns);
    assert_eq!(
        the_association(h, &aws, &ns, "worker")
            .await
            .association_id(),
        association.association_id()
    );
    delete(h, &ns, "pib/worker");
}

#[tokio::test]
async fn the_older_of_two_bindings_for_one_service_account_wins() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let aws = aws(h).await;
    let ns = h.fresh_namespace("pib-claims");
    let binding = |name: &str| {
        format!(
            "apiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {{name: {name}}}\nspec:\n  serviceAccountName: shared\n  role: {{}}\n"
        )
    };
    h.apply(&ns, &binding("first"));
    h.wait_ready("pib/first", &ns);
    h.apply(&ns, &binding("second"));
    h.wait_for_reason("pib/second", &ns, "ServiceAccountConflict");
    assert!(
        ready_message(h, &ns, "second").contains("PodIdentityBinding first"),
        "{}",
        ready_message(h, &ns, "second")
    );
    let association = the_association(h, &aws, &ns, "shared").await;
    assert_eq!(
        association.association_id(),
        status(h, &ns, "first")["associationId"].as_str()
    );
    // The loser made nothing, so deleting it removes nothing of the winner's.
    let second_role = generated_role_name(h, &ns, "second_pod-identity");
    assert!(!role_exists(&aws, &second_role).await);
    delete(h, &ns, "pib/second");
    assert_eq!(
        the_association(h, &aws, &ns, "shared")
            .await
            .association_id(),
        association.association_id()
    );
    delete(h, &ns, "pib/first");
    assert!(associations(h, &aws, &ns, "shared").await.is_empty());
}

#[tokio::test]
async fn an_association_deleted_behind_the_operators_back_is_made_again() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let aws = aws(h).await;
    let ns = h.fresh_namespace("pib-deleted");
    h.apply(
        &ns,
        "apiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {name: app}\nspec:\n  serviceAccountName: app\n  role: {}\n",
    );
    h.wait_ready("pib/app", &ns);
    let first = the_association(h, &aws, &ns, "app").await;
    aws.eks
        .delete_pod_identity_association()
        .cluster_name(&h.cluster_name)
        .association_id(first.association_id().expect("id"))
        .send()
        .await
        .expect("DeletePodIdentityAssociation");

    // The same spec again: the create must not be answered with a replay of
    // the first one, whose association is gone.
    resync(h, &ns, "app", 1);
    let again = eventually("a new association", Duration::from_secs(60), || {
        let id = text(&status(h, &ns, "app")["associationId"]);
        (!id.is_empty() && Some(id.as_str()) != first.association_id()).then_some(id)
    });
    h.wait_ready("pib/app", &ns);
    let found = the_association(h, &aws, &ns, "app").await;
    assert_eq!(found.association_id(), Some(again.as_str()));
    delete(h, &ns, "pib/app");
    assert!(associations(h, &aws, &ns, "app").await.is_empty());
}

#[tokio::test]
async fn a_renamed_role_replaces_the_old_one_and_retain_keeps_both() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let aws = aws(h).await;
    let ns = h.fresh_namespace("pib-rename");
    let emulator = h.emulator();
    let first = format!("first-{ns}");
    h.apply(
        &ns,
        &format!(
            "apiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {{name: app}}\nspec:\n  serviceAccountName: app\n  deletionPolicy: Retain\n  role:\n    name: {first}\n"
        ),
    );
    h.wait_ready("pib/app", &ns);
    let id = text(&status(h, &ns, "app")["associationId"]);

    let second = format!("second-{ns}");
    let mark = emulator.mark();
    patch(h, &ns, "app", json!({"spec": {"role": {"name": second}}}));
    wait_synced_generation(h, &ns, "app");
    let calls = emulator.calls_since(mark);
    assert_eq!(
        writes(&calls),
        ["CreateRole", "UpdatePodIdentityAssociation", "DeleteRole"],
        "the new role, the association moved to it, then the old role: {:?}",
        ops(&calls)
    );
    assert!(!role_exists(&aws, &first).await);
    let status_now = status(h, &ns, "app");
    assert_eq!(text(&status_now["roleName"]), second);
    assert_eq!(text(&status_now["associationId"]), id);

    // A roleArn naming the role the operator made keeps it: it is in use.
    let arn = text(&status_now["roleArn"]);
    patch(
        h,
        &ns,
        "app",
        json!({"spec": {"role": null, "roleArn": arn}}),
    );
    wait_synced_generation(h, &ns, "app");
    assert!(role_exists(&aws, &second).await);
    assert_eq!(
        the_association(h, &aws, &ns, "app").await.role_arn(),
        Some(arn.as_str())
    );

    // Retain: deleting the object leaves the association and the role.
    let mark = emulator.mark();
    delete(h, &ns, "pib/app");
    let calls = emulator.calls_since(mark);
    assert!(writes(&calls).is_empty(), "{:?}", ops(&calls));
    assert_eq!(
        the_association(h, &aws, &ns, "app").await.association_id(),
        Some(id.as_str())
    );
    assert!(role_exists(&aws, &second).await);
}

#[tokio::test]
async fn an_older_binding_moved_onto_a_taken_service_account_takes_it_over() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let aws = aws(h).await;
    let ns = h.fresh_namespace("pib-takeover");
    let binding = |name: &str, sa: &str| {
        format!(
            "apiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {{name: {name}}}\nspec:\n  serviceAccountName: {sa}\n  role: {{}}\n"
        )
    };
    // Creation times have whole seconds; on a tie the name decides, and
    // alpha sorts first, so alpha is the older claim either way.
    h.apply(&ns, &binding("alpha", "sa-x"));
    h.wait_ready("pib/alpha", &ns);
    h.apply(&ns, &binding("beta", "sa-y"));
    h.wait_ready("pib/beta", &ns);

    // alpha now claims sa-y: beta gives up its association there
    // instead of leaving both stuck on each other's.
    patch(
        h,
        &ns,
        "alpha",
        json!({"spec": {"serviceAccountName": "sa-y"}}),
    );
    h.wait_for_reason("pib/beta", &ns, "ServiceAccountConflict");
    wait_synced_generation(h, &ns, "alpha");
    let taken = the_association(h, &aws, &ns, "sa-y").await;
    assert_eq!(
        taken.association_id(),
        status(h, &ns, "alpha")["associationId"].as_str()
    );
    assert!(associations(h, &aws, &ns, "sa-x").await.is_empty());
    assert!(status(h, &ns, "beta").get("associationId").is_none());
    delete(h, &ns, "pib/beta");
    delete(h, &ns, "pib/alpha");
    assert!(associations(h, &aws, &ns, "sa-y").await.is_empty());
}

#[tokio::test]
async fn a_role_made_for_another_namespaces_binding_is_never_borrowed() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let aws = aws(h).await;
    let owner_ns = h.fresh_namespace("pib-lender");
    h.apply(
        &owner_ns,
        "apiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {name: app}\nspec:\n  serviceAccountName: app\n  role: {}\n",
    );
    h.wait_ready("pib/app", &owner_ns);
    let lent = text(&status(h, &owner_ns, "app")["roleArn"]);

    let ns = h.fresh_namespace("pib-borrower");
    let mark = h.emulator().mark();
    h.apply(
        &ns,
        &format!(
            "apiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {{name: app}}\nspec:\n  serviceAccountName: app\n  roleArn: {lent}\n"
        ),
    );
    h.wait_for_reason("pib/app", &ns, "BorrowedRole");
    assert!(ready_message(h, &ns, "app").contains(&owner_ns));
    assert!(associations(h, &aws, &ns, "app").await.is_empty());
    // Other tests write beside this one: the lent role is what must not be
    // written (the association side is checked above).
    let lent_name = lent.rsplit('/').next().unwrap_or_default().to_string();
    let writes: Vec<String> = h
        .emulator()
        .calls_since(mark)
        .iter()
        .filter(|c| is_write(c) && c.target.as_deref() == Some(lent_name.as_str()))
        .map(|c| c.operation.clone())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    h.kubectl(&["delete", "pib/app", "-n", &ns, "--timeout=60s"]);
    h.kubectl(&["delete", "pib/app", "-n", &owner_ns, "--timeout=60s"]);
}
