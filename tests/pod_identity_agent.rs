//! Pod Identity gives pods credentials only where the EKS Pod Identity Agent
//! runs (issue 14): a binding is not Ready while the eks-pod-identity-agent
//! add-on is absent or not ACTIVE, says how to fix it in its condition and
//! a Warning Event, and is Ready soon after the fix. An operator told the
//! agent is self-managed does not ask EKS at all.
//!
//! The add-on is the harness's cluster's, shared by this file's tests:
//! they hold `SERIAL` and put it back ACTIVE when they end.

mod support;

use std::time::Instant;

use support::operator::{Launched, install, start_as};
use support::{Harness, harness};

const AGENT: &str = "eks-pod-identity-agent";
const NOT_READY: &str = "PodIdentityAgentNotReady";

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Kills the operator and gives the cluster its agent back, however the
/// test ends.
struct Cleanup<'a> {
    h: &'a Harness,
    operator: Launched,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.operator.child.kill();
        let _ = self.operator.child.wait();
        self.h.emulator().put_addon(self.h, AGENT, "ACTIVE");
    }
}

fn binding(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}}}\n---\napiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {{name: {name}}}\nspec:\n  serviceAccountName: {name}\n  role: {{}}\n  policies:\n    managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]\n"
    )
}

fn until_reason(
    h: &Harness,
    ns: &str,
    name: &str,
    reason: &str,
    never_ready: bool,
) -> (String, String, String) {
    h.until_reason(&format!("pib/{name}"), ns, reason, never_ready)
}

async fn association_count(h: &Harness, ns: &str, sa: &str) -> usize {
    let eks = aws_sdk_eks::Client::new(&h.aws_config().await);
    support::aws::association_ids(&eks, &h.cluster_name, ns, sa)
        .await
        .len()
}

#[tokio::test]
async fn a_binding_is_ready_only_while_the_agent_addon_is_active() {
    let Some(h) = harness() else { return };
    install(h);
    let _serial = SERIAL.lock().await;
    let emulator = h.emulator();
    let ns = h.fresh_namespace("agent");
    emulator.remove_addon(h, AGENT);
    let metrics_address = format!("127.0.0.1:{}", support::free_port());
    // Resyncs seconds apart, so an add-on that breaks under a Ready binding
    // is seen soon after the half minute an active add-on is believed.
    let _cleanup = Cleanup {
        h,
        operator: start_as(
            h,
            "agent-addon",
            &[
                "--watch-namespaces",
                &ns,
                "--resync-seconds",
                "5",
                "--metrics-address",
                &metrics_address,
            ],
        ),
    };

    h.apply(&ns, &binding("app"));
    let (status, _, message) = until_reason(h, &ns, "app", NOT_READY, true);
    assert_eq!(status, "False");
    for words in [
        "not installed in cluster",
        "aws eks create-addon",
        "--addon-name eks-pod-identity-agent",
        "--pod-identity-agent=self-managed",
    ] {
        assert!(message.contains(words), "{words:?} not in {message:?}");
    }
    assert!(
        h.event_types(&ns, "app", NOT_READY)
            .contains(&"Warning".to_string()),
        "a Warning Event says why"
    );
    let wide = h.kubectl(&["-n", &ns, "get", "pib", "app", "-o", "wide"]);
    assert!(wide.contains(NOT_READY), "kubectl get -o wide: {wide}");
    let metrics = support::scrape(&metrics_address);
    let failures = support::series_value(
        &metrics,
        r#"iam_operator_reconcile_failures_total{kind="PodIdentityBinding",reason="PodIdentityAgentNotReady"}"#,
    )
    .unwrap_or(0.0);
    assert!(failures >= 1.0, "no failure counted by reason: {metrics}");
    assert_eq!(
        association_count(h, &ns, "app").await,
        1,
        "the association is made anyway, to work once the agent runs"
    );

    // The fix: the add-on installed, as `aws eks create-addon` would.
    let fixed = Instant::now();
    emulator.put_addon(h, AGENT, "ACTIVE");
    let (status, reason, _) = until_reason(h, &ns, "app", "Synced", false);
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Synced"));
    support::figure(&format!(
        "pod identity agent: missing -> Ready {:.1} s after the add-on became ACTIVE",
        fixed.elapsed().as_secs_f64()
    ));

    // An add-on that degrades under a Ready binding takes it out of Ready.
    emulator.put_addon(h, AGENT, "DEGRADED");
    let degraded = Instant::now();
    let (status, _, message) = until_reason(h, &ns, "app", NOT_READY, false);
    let noticed = degraded.elapsed();
    assert_eq!(status, "False");
    assert!(
        message.contains("is DEGRADED, not ACTIVE") && message.contains("aws eks describe-addon"),
        "{message}"
    );
    emulator.put_addon(h, AGENT, "ACTIVE");
    until_reason(h, &ns, "app", "Synced", false);
    support::figure(&format!(
        "pod identity agent: a Ready binding out of Ready {:.1} s after its add-on turned DEGRADED",
        noticed.as_secs_f64()
    ));
}

#[tokio::test]
async fn a_self_managed_agent_is_not_asked_of_eks() {
    let Some(h) = harness() else { return };
    install(h);
    let _serial = SERIAL.lock().await;
    let emulator = h.emulator();
    let ns = h.fresh_namespace("agent-self");
    emulator.remove_addon(h, AGENT);
    let mark = emulator.mark();
    let cleanup = Cleanup {
        h,
        operator: start_as(
            h,
            "agent-self-managed",
            &[
                "--watch-namespaces",
                &ns,
                "--pod-identity-agent",
                "self-managed",
            ],
        ),
    };
    h.apply(&ns, &binding("app"));
    h.wait_ready("pib/app", &ns);
    let asked: Vec<String> = emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| c.access_key.as_deref() == Some(cleanup.operator.access_key.as_str()))
        .map(|c| c.operation)
        .collect();
    assert!(
        asked.contains(&"CreatePodIdentityAssociation".to_string()),
        "{asked:?}"
    );
    assert!(
        !asked.iter().any(|op| op == "DescribeAddon"),
        "self-managed: EKS is not asked: {asked:?}"
    );
}
