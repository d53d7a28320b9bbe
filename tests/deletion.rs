//! Deletion never sticks silently: a role already gone, a spec that was
//! never valid, a role something else still holds (DeleteConflict), no
//! permission to delete, and a namespace being deleted. Each deletion
//! finishes, or keeps its finalizer with a Ready reason and a message that
//! says what to do, and finishes once that is done.

mod support;

use std::time::Duration;

use serde_json::json;
use support::operator::{Launched, eventually, install, start_as};
use support::{Harness, harness, is_write, isa_manifest};

/// Faults are global; each test's operator has its own key, but the tests
/// also read the call log as a whole.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SPEC: &str = "  serviceAccount: {create: true}\n  policies:\n    managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]\n";

fn operator(h: &Harness, ns: &str, name: &str) -> Launched {
    start_as(
        h,
        name,
        &[
            "--watch-namespaces",
            ns,
            "--terminal-retry-seconds",
            "2",
            "--terminal-retry-cap-seconds",
            "4",
        ],
    )
}

fn stop(mut operator: Launched) {
    let _ = operator.child.kill();
    let _ = operator.child.wait();
}

fn gone(h: &Harness, ns: &str, name: &str) -> bool {
    let out = h.kubectl_output(&["-n", ns, "get", "isa", name, "-o", "name"], None);
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound")
}

fn wait_gone(h: &Harness, ns: &str, name: &str, timeout: Duration) {
    eventually(&format!("isa/{name} deleted"), timeout, || {
        gone(h, ns, name).then_some(())
    });
}

/// The Ready condition of an object still held by its finalizer.
fn held_by_finalizer(h: &Harness, ns: &str, name: &str) -> (String, String) {
    let object = h.kubectl_json(&["-n", ns, "get", "isa", name]);
    assert!(object["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        object["metadata"]["finalizers"],
        json!(["iam-operator.io/cleanup"])
    );
    let ready = support::ready_condition(&object);
    (
        ready["reason"].as_str().unwrap_or_default().to_string(),
        ready["message"].as_str().unwrap_or_default().to_string(),
    )
}

async fn iam(h: &Harness) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&h.aws_config().await)
}

#[tokio::test]
async fn a_role_already_gone_or_a_spec_never_valid_deletes_at_once() {
    let Some(h) = harness() else { return };
    let _serial = SERIAL.lock().await;
    install(h);
    let ns = h.fresh_namespace("delete-gone");
    let operator = operator(h, &ns, "delete-gone");
    h.apply(&ns, &isa_manifest("gone", SPEC));
    h.wait_ready("isa/gone", &ns);
    let role = h.field("isa/gone", &ns, "{.status.roleName}");
    let iam = iam(h).await;
    support::aws::delete_role_by_hand(&iam, &role).await;
    h.kubectl(&["-n", &ns, "delete", "isa", "gone", "--timeout=60s"]);

    // Never valid: refused before anything was made, so nothing to undo.
    h.apply(
        &ns,
        &isa_manifest(
            "refused",
            "  serviceAccount: {create: true}\n  policies: {managed: [arn:aws:iam::aws:policy/AdministratorAccess]}\n",
        ),
    );
    h.wait_for_reason("isa/refused", &ns, "GuardrailViolation");
    h.apply(
        &ns,
        &isa_manifest(
            "invalid",
            "  serviceAccount: {create: true}\n  policies: {managed: ['arn:aws:s3:::bucket']}\n",
        ),
    );
    h.wait_for_reason("isa/invalid", &ns, "InvalidSpec");
    let mark = h.emulator().mark();
    h.kubectl(&[
        "-n",
        &ns,
        "delete",
        "isa",
        "refused",
        "invalid",
        "--timeout=60s",
    ]);
    let writes: Vec<String> = h
        .emulator()
        .calls_since(mark)
        .iter()
        .filter(|c| is_write(c))
        .map(|c| c.operation.clone())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    stop(operator);
}

#[tokio::test]
async fn a_role_held_by_an_instance_profile_says_so_and_finishes_once_freed() {
    let Some(h) = harness() else { return };
    let _serial = SERIAL.lock().await;
    install(h);
    let ns = h.fresh_namespace("delete-conflict");
    let operator = operator(h, &ns, "delete-conflict");
    h.apply(&ns, &isa_manifest("held", SPEC));
    h.wait_ready("isa/held", &ns);
    let role = h.field("isa/held", &ns, "{.status.roleName}");
    let iam = iam(h).await;
    let profile = format!("{ns}-profile");
    iam.create_instance_profile()
        .instance_profile_name(&profile)
        .send()
        .await
        .expect("CreateInstanceProfile");
    iam.add_role_to_instance_profile()
        .instance_profile_name(&profile)
        .role_name(&role)
        .send()
        .await
        .expect("AddRoleToInstanceProfile");
    h.kubectl(&["-n", &ns, "delete", "isa", "held", "--wait=false"]);
    let (reason, message) = eventually("the conflict named", Duration::from_secs(30), || {
        let (reason, message) = held_by_finalizer(h, &ns, "held");
        (reason == "DeleteConflict").then_some((reason, message))
    });
    assert!(
        message.contains("instance profile")
            && message.contains(&format!("--role-name {role}"))
            && message.contains("deletionPolicy: Retain"),
        "{reason}: {message}"
    );
    iam.remove_role_from_instance_profile()
        .instance_profile_name(&profile)
        .role_name(&role)
        .send()
        .await
        .expect("RemoveRoleFromInstanceProfile");
    // Retried with the transient backoff (at most 5 minutes apart; the
    // first few within seconds).
    wait_gone(h, &ns, "held", Duration::from_secs(90));
    assert!(!support::aws::role_exists(&iam, &role).await);
    support::figure(&format!(
        "deletion held by an instance profile: Ready said {reason}: {message}"
    ));
    stop(operator);
}

#[tokio::test]
async fn no_permission_to_delete_says_so_and_finishes_once_granted() {
    let Some(h) = harness() else { return };
    let _serial = SERIAL.lock().await;
    install(h);
    let emulator = h.emulator();
    let ns = h.fresh_namespace("delete-denied");
    let operator = operator(h, &ns, "delete-denied");
    h.apply(&ns, &isa_manifest("denied", SPEC));
    h.wait_ready("isa/denied", &ns);
    let role = h.field("isa/denied", &ns, "{.status.roleName}");
    emulator.set_faults(json!({"rules": [{
        "service": "iam", "operation": "DeleteRole", "fault": "error", "code": "AccessDenied",
        "status": 403, "accessKeyId": operator.access_key,
        "message": format!("User: iam-operator is not authorized to perform: iam:DeleteRole on resource: role {role}"),
    }]}));
    h.kubectl(&["-n", &ns, "delete", "isa", "denied", "--wait=false"]);
    let (_, message) = eventually("the refusal named", Duration::from_secs(30), || {
        let (reason, message) = held_by_finalizer(h, &ns, "denied");
        (reason == "AccessDenied").then_some((reason, message))
    });
    assert!(
        message.contains("iam:DeleteRole") && message.contains("--print-aws-policy"),
        "{message}"
    );
    emulator.clear_faults();
    // The terminal schedule, scaled down here to 2 s then 4 s.
    wait_gone(h, &ns, "denied", Duration::from_secs(30));
    assert!(!support::aws::role_exists(&iam(h).await, &role).await);
    stop(operator);
}

#[tokio::test]
async fn an_object_in_a_namespace_being_deleted_is_cleaned_up() {
    let Some(h) = harness() else { return };
    let _serial = SERIAL.lock().await;
    install(h);
    let ns = h.fresh_namespace("delete-namespace");
    let operator = operator(h, &ns, "delete-namespace");
    h.apply(&ns, &isa_manifest("leaving", SPEC));
    h.wait_ready("isa/leaving", &ns);
    let role = h.field("isa/leaving", &ns, "{.status.roleName}");
    // The harness runs no namespace controller: the namespace stays
    // Terminating and the deletion of its objects is asked for by hand, as
    // that controller would.
    h.kubectl(&["delete", "namespace", &ns, "--wait=false"]);
    eventually("the namespace terminating", Duration::from_secs(10), || {
        let phase = h.kubectl_json(&["get", "namespace", &ns])["status"]["phase"].clone();
        (phase == "Terminating").then_some(())
    });
    h.kubectl(&["-n", &ns, "delete", "isa", "leaving", "--wait=false"]);
    wait_gone(h, &ns, "leaving", Duration::from_secs(60));
    assert!(!support::aws::role_exists(&iam(h).await, &role).await);
    let left = h.kubectl(&["-n", &ns, "get", "serviceaccounts", "-o", "name"]);
    assert!(!left.contains("serviceaccount/leaving"), "{left}");
    stop(operator);
}
