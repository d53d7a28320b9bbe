//! PodIdentityBinding when things go wrong around it: IAM propagating a new
//! role to EKS, the operator killed between creating the role and the
//! association, and a cluster name that does not exist.
//!
//! Each test runs its own operator, watching only its own namespace, and
//! the emulator's fault and propagation settings are global: the tests hold
//! `SERIAL` so that one test's settings never reach another's calls.

mod support;

use std::process::Child;
use std::time::Duration;

use serde_json::json;
use support::operator::{eventually, install, start};
use support::{Harness, generated_role_name, harness};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An operator for `ns` alone, killed when the test ends.
struct Operator(Child);

impl Operator {
    fn start(h: &Harness, ns: &str, extra_args: &[&str]) -> Self {
        let mut args = vec!["--watch-namespaces", ns];
        args.extend_from_slice(extra_args);
        Operator(start(h, &args))
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    fn is_running(&mut self) -> bool {
        self.0.try_wait().expect("operator status").is_none()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

fn setup() -> Option<&'static Harness> {
    let h = harness()?;
    install(h);
    Some(h)
}

async fn eks(h: &Harness) -> aws_sdk_eks::Client {
    aws_sdk_eks::Client::new(&h.aws_config().await)
}

async fn association_ids(
    h: &Harness,
    eks: &aws_sdk_eks::Client,
    ns: &str,
    sa: &str,
) -> Vec<String> {
    support::aws::association_ids(eks, &h.cluster_name, ns, sa).await
}

fn binding(name: &str) -> String {
    format!(
        "apiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {{name: {name}}}\nspec:\n  serviceAccountName: {name}\n  role: {{}}\n  policies:\n    managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]\n"
    )
}

#[tokio::test]
async fn a_role_eks_cannot_see_yet_is_waited_for_then_associated() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let emulator = h.emulator();
    let ns = h.fresh_namespace("pib-propagation");
    let _operator = Operator::start(h, &ns, &[]);
    emulator.set_propagation_delay(8_000);
    let mark = emulator.mark();

    h.apply(&ns, &binding("fresh"));
    h.wait_for_reason("pib/fresh", &ns, "WaitingForPropagation");
    h.wait_ready("pib/fresh", &ns);
    emulator.set_propagation_delay(0);

    let calls = emulator.calls_since(mark);
    let creates: Vec<u16> = calls
        .iter()
        .filter(|c| c.operation == "CreatePodIdentityAssociation")
        .map(|c| c.status)
        .collect();
    assert!(creates.len() >= 2, "{creates:?}");
    assert_eq!(creates.last(), Some(&200), "{creates:?}");
    assert!(
        creates[..creates.len() - 1].iter().all(|s| *s == 400),
        "{creates:?}"
    );
    // The role was made once: waiting never re-creates it.
    let role = generated_role_name(h, &ns, "fresh_pod-identity");
    let role_creates = calls
        .iter()
        .filter(|c| c.operation == "CreateRole" && c.target.as_deref() == Some(&role))
        .count();
    assert_eq!(role_creates, 1);
    let eks = eks(h).await;
    assert_eq!(association_ids(h, &eks, &ns, "fresh").await.len(), 1);
    h.kubectl(&["delete", "pib/fresh", "-n", &ns, "--timeout=90s"]);
}

/// Kills the operator while EKS or IAM holds `operation` of a new
/// binding's first reconcile, lets the held call finish without its caller,
/// restarts the operator and checks that there is one role and one
/// association.
async fn killed_during(h: &Harness, service: &str, operation: &str, name: &str) {
    let emulator = h.emulator();
    let ns = h.fresh_namespace("pib-crash");
    let mut operator = Operator::start(h, &ns, &[]);
    emulator.set_faults(json!({"rules": [{
        "service": service,
        "operation": operation,
        "fault": "delay",
        "delayMs": 3000,
        "count": 1
    }]}));
    let mark = emulator.mark();
    h.apply(&ns, &binding(name));
    eventually(
        &format!("{operation} in flight"),
        Duration::from_secs(60),
        || (emulator.faults_fired() == [1]).then_some(()),
    );
    operator.kill();
    eventually(
        "the held call to finish without its caller",
        Duration::from_secs(30),
        || {
            emulator
                .calls_since(mark)
                .iter()
                .any(|c| c.operation == operation)
                .then_some(())
        },
    );
    emulator.clear_faults();

    let _restarted = Operator::start(h, &ns, &[]);
    h.wait_ready(&format!("pib/{name}"), &ns);
    let role = generated_role_name(h, &ns, &format!("{name}_pod-identity"));
    let calls = emulator.calls_since(mark);
    let role_creates = calls
        .iter()
        .filter(|c| c.operation == "CreateRole" && c.target.as_deref() == Some(&role))
        .count();
    assert_eq!(role_creates, 1, "the restart made the role again");
    let eks = eks(h).await;
    let ids = association_ids(h, &eks, &ns, name).await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    let status = h.kubectl_json(&["get", "pib", name, "-n", &ns])["status"].clone();
    assert_eq!(status["associationId"].as_str(), Some(ids[0].as_str()));
    assert_eq!(
        status["roleArn"].as_str(),
        Some(format!("arn:aws:iam::123456789012:role/{role}").as_str())
    );
    h.kubectl(&["delete", &format!("pib/{name}"), "-n", &ns, "--timeout=90s"]);
    assert!(association_ids(h, &eks, &ns, name).await.is_empty());
}

#[tokio::test]
async fn killed_after_create_role_before_the_association_it_makes_one_of_each() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    // The role exists; the association was never asked for.
    killed_during(h, "iam", "AttachRolePolicy", "after-role").await;
}

#[tokio::test]
async fn killed_while_the_association_is_created_it_makes_one_of_each() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    // EKS makes the association, and its answer reaches no one.
    killed_during(h, "eks", "CreatePodIdentityAssociation", "lost-answer").await;
}

#[tokio::test]
async fn a_cluster_that_does_not_exist_is_a_named_reason_not_a_crash() {
    let Some(h) = setup() else { return };
    let _serial = SERIAL.lock().await;
    let emulator = h.emulator();
    let ns = h.fresh_namespace("pib-no-cluster");
    let mut operator = Operator::start(h, &ns, &["--cluster-name", "no-such-cluster"]);
    let mark = emulator.mark();
    h.apply(&ns, &binding("lost"));
    h.apply(
        &ns,
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: lost-irsa}\nspec:\n  serviceAccount: {create: true}\n",
    );
    h.wait_for_reason("pib/lost", &ns, "ClusterNotFound");
    h.wait_for_reason("isa/lost-irsa", &ns, "ClusterNotFound");
    let message = h.kubectl(&[
        "get",
        "pib",
        "lost",
        "-n",
        &ns,
        "-o",
        "jsonpath={.status.conditions[0].message}",
    ]);
    assert!(message.contains("no-such-cluster"), "{message}");
    assert!(message.contains(&h.region), "{message}");
    assert!(operator.is_running(), "the operator exited");
    let writes: Vec<String> = emulator
        .calls_since(mark)
        .iter()
        .filter(|c| support::is_write(c))
        .map(|c| c.operation.clone())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    // Nothing was made, so deleting needs nothing from the missing cluster.
    h.kubectl(&[
        "delete",
        "pib/lost",
        "isa/lost-irsa",
        "-n",
        &ns,
        "--timeout=90s",
    ]);
}
