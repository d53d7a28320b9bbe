//! Pods that started before their ServiceAccount was bound hold no
//! credentials for it (issue 14): the object is not Ready while they run,
//! names them and says to restart them, and is Ready once they were
//! replaced. The harness has no kubelet and no EKS webhook: pods are
//! written as the webhook leaves them (with its variables, or without for
//! a pod made before the binding), and a "restart" replaces one by another.

mod support;

use std::time::Instant;

use support::operator::{install, start_as};
use support::{Harness, generated_role_name, harness};

const STALE: &str = "PodsNeedRestart";
const POD_IDENTITY_URI: &str = "http://169.254.170.23/v1/credentials";

/// A pod of ServiceAccount `sa`, with `env` in its one container.
fn pod(name: &str, sa: &str, env: &[(&str, &str)]) -> String {
    let env: String = env
        .iter()
        .map(|(k, v)| format!("\n      - {{name: {k}, value: \"{v}\"}}"))
        .collect();
    let env = match env.is_empty() {
        true => String::new(),
        false => format!("\n    env:{env}"),
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  serviceAccountName: {sa}\n  containers:\n  - name: app\n    image: registry.example/app:1{env}\n"
    )
}

/// Waits for Synced after replacing `old` by `new`, as a rollout would.
fn restart(h: &Harness, ns: &str, resource: &str, old: &str, new: &str) -> f64 {
    let restarted = Instant::now();
    h.kubectl(&["delete", "pod", old, "-n", ns, "--wait=false"]);
    h.apply(ns, new);
    h.until_reason(resource, ns, "Synced", false);
    restarted.elapsed().as_secs_f64()
}

#[tokio::test]
async fn pods_started_before_the_binding_are_named_until_restarted() {
    let Some(h) = harness() else { return };
    install(h);
    let ns = h.fresh_namespace("stale");
    let mut operator = start_as(h, "stale-pods", &["--watch-namespaces", &ns]);

    // IRSA: one pod from before the annotation, one made after it.
    let role_arn = format!(
        "arn:aws:iam::{}:role/{}",
        h.account_id,
        generated_role_name(h, &ns, "app")
    );
    h.kubectl(&["create", "serviceaccount", "app", "-n", &ns]);
    h.apply(&ns, &pod("app-before", "app", &[]));
    h.apply(
        &ns,
        &pod("app-after", "app", &[("AWS_ROLE_ARN", &role_arn)]),
    );
    h.apply(
        &ns,
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: app}\nspec: {}\n",
    );
    let (status, _, message) = h.until_reason("isa/app", &ns, STALE, true);
    assert_eq!(status, "False");
    for words in [
        "1 pod of ServiceAccount app (app-before)",
        role_arn.as_str(),
        "AWS_ROLE_ARN",
        "kubectl rollout restart",
    ] {
        assert!(message.contains(words), "{words:?} not in {message}");
    }
    assert!(!message.contains("app-after"), "{message}");
    assert!(
        h.event_types(&ns, "app", STALE)
            .contains(&"Warning".to_string()),
        "a Warning Event says to restart them"
    );
    let sa = h.kubectl_json(&["get", "sa", "app", "-n", &ns]);
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        role_arn.as_str(),
        "the binding is made all the same, for new pods"
    );
    let irsa_ready = restart(
        h,
        &ns,
        "isa/app",
        "app-before",
        &pod("app-restarted", "app", &[("AWS_ROLE_ARN", &role_arn)]),
    );

    // Pod Identity: a pod without the agent's variables.
    h.kubectl(&["create", "serviceaccount", "bound", "-n", &ns]);
    h.apply(&ns, &pod("bound-before", "bound", &[]));
    h.apply(
        &ns,
        "apiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {name: bound}\nspec:\n  serviceAccountName: bound\n  role: {}\n",
    );
    let (_, _, message) = h.until_reason("pib/bound", &ns, STALE, true);
    assert!(
        message.contains("bound-before") && message.contains("Pod Identity credentials"),
        "{message}"
    );
    let pib_ready = restart(
        h,
        &ns,
        "pib/bound",
        "bound-before",
        &pod(
            "bound-restarted",
            "bound",
            &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", POD_IDENTITY_URI)],
        ),
    );
    support::figure(&format!(
        "stale pods: named until replaced; Ready {irsa_ready:.1} s (IamServiceAccount) and {pib_ready:.1} s (PodIdentityBinding) after the restart"
    ));
    let _ = operator.child.kill();
    let _ = operator.child.wait();
}

/// Waits until the Ready message of `resource` contains `words`.
fn until_message(h: &Harness, ns: &str, resource: &str, words: &str) -> String {
    let started = Instant::now();
    loop {
        let (_, _, message) = h.ready_of(resource, ns);
        if message.contains(words) {
            return message;
        }
        assert!(
            started.elapsed().as_secs() < 120,
            "{resource} never said {words:?}: {message}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[tokio::test]
async fn a_workload_whose_pods_predate_the_binding_is_restarted_once_when_asked() {
    let Some(h) = harness() else { return };
    install(h);
    let ns = h.fresh_namespace("restart");
    // What the chart grants with restartStalePods: true, here for this
    // namespace only.
    let (sa_namespace, sa_name) = h
        .operator_user
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .expect("the operator runs as a ServiceAccount");
    h.apply(
        &ns,
        &format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: restart-workloads}}\nrules:\n- apiGroups: [apps]\n  resources: [replicasets]\n  verbs: [get]\n- apiGroups: [apps]\n  resources: [deployments, statefulsets, daemonsets]\n  verbs: [get, patch]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: restart-workloads}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: restart-workloads}}\nsubjects:\n- {{kind: ServiceAccount, name: {sa_name}, namespace: {sa_namespace}}}\n"
        ),
    );
    let mut operator = start_as(
        h,
        "restart-pods",
        &[
            "--watch-namespaces",
            &ns,
            "--restart-stale-pods",
            "--resync-seconds",
            "5",
        ],
    );
    // A Deployment, its ReplicaSet and a pod of it from before the binding,
    // written as their controllers would (the harness runs none).
    h.kubectl(&["create", "serviceaccount", "web", "-n", &ns]);
    let template = "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      serviceAccountName: web\n      containers: [{name: app, image: registry.example/app:1}]\n";
    h.apply(
        &ns,
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n{template}"
        ),
    );
    let uid = |kind: &str, name: &str| {
        h.kubectl_json(&["get", kind, name, "-n", &ns])["metadata"]["uid"]
            .as_str()
            .expect("uid")
            .to_string()
    };
    let owned_by = |kind: &str, name: &str, uid: &str| {
        format!(
            "  ownerReferences: [{{apiVersion: apps/v1, kind: {kind}, name: {name}, uid: {uid}, controller: true}}]\n"
        )
    };
    h.apply(
        &ns,
        &format!(
            "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: web-1\n{}spec:\n{template}",
            owned_by("Deployment", "web", &uid("deployment", "web"))
        ),
    );
    h.apply(
        &ns,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1-old\n{}spec:\n  serviceAccountName: web\n  containers: [{{name: app, image: registry.example/app:1}}]\n",
            owned_by("ReplicaSet", "web-1", &uid("replicaset", "web-1"))
        ),
    );
    h.apply(
        &ns,
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: web}\nspec: {restartStalePods: true}\n",
    );
    // Not in the reconcile that annotates the ServiceAccount: pods started
    // then could miss the annotation and be counted as restarted.
    let (status, _, message) = h.until_reason("isa/web", &ns, STALE, true);
    assert_eq!(status, "False");
    assert!(message.contains("at the next look"), "{message}");
    until_message(h, &ns, "isa/web", "restarting Deployment/web");
    let role_arn = format!(
        "arn:aws:iam::{}:role/{}",
        h.account_id,
        generated_role_name(h, &ns, "web")
    );
    let annotations = |h: &Harness| {
        h.kubectl_json(&["get", "deployment", "web", "-n", &ns])["spec"]["template"]["metadata"]
            ["annotations"]
            .clone()
    };
    let restarted = annotations(h);
    assert_eq!(
        restarted["iam-operator.io/restarted-for"],
        role_arn.as_str()
    );
    assert!(
        restarted["kubectl.kubernetes.io/restartedAt"].is_string(),
        "{restarted}"
    );
    // Looked at again while the rollout runs: not restarted a second time.
    until_message(h, &ns, "isa/web", "was asked already");
    assert_eq!(annotations(h), restarted, "restarted again");

    // The rollout replaces the pod.
    let ready = restart(
        h,
        &ns,
        "isa/web",
        "web-1-old",
        &pod("web-2-new", "web", &[("AWS_ROLE_ARN", &role_arn)]),
    );
    support::figure(&format!(
        "stale pods: Deployment restarted once (restartStalePods); Ready {ready:.1} s after its pod was replaced"
    ));
    let _ = operator.child.kill();
    let _ = operator.child.wait();
}
