//! AWS's eventual consistency, shown as waiting and never as failure, with
//! a bounded wait: IAM answering `NoSuchEntity` for a role it has just
//! created, EKS refusing a role IAM has just created, and a role deleted
//! behind the operator's back and made again under the same name (a new
//! unique ID).
//!
//! The emulator's lag settings are global: the tests hold `SERIAL`.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::operator::{Launched, install, start_as};
use support::{Harness, harness, isa_manifest};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LAG_MS: u64 = 6000;
/// Reasons that say "waiting", which Ready may show while AWS catches up.
const WAITING: [&str; 3] = [
    "WaitingForPropagation",
    "Reconciling",
    "ServiceAccountNotFound",
];

fn pib(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}}}\n---\napiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {{name: {name}}}\nspec:\n  serviceAccountName: {name}\n  role: {{}}\n  policies:\n    managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]\n"
    )
}

fn isa(name: &str) -> String {
    isa_manifest(
        name,
        "  serviceAccount: {create: true}\n  policies:\n    managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]\n",
    )
}

/// Everything Ready said, and whether Stalled was ever True, while
/// `resource` went to Ready; the object is poked (annotated) every half
/// second meanwhile, so the operator looks again and again inside the lag.
struct Watched {
    said: BTreeSet<String>,
    stalled: bool,
    ready_after: Duration,
}

fn watch_until_ready(h: &Harness, ns: &str, resource: &str, timeout: Duration) -> Watched {
    let started = Instant::now();
    let mut said = BTreeSet::new();
    let mut stalled = false;
    let mut pokes = 0;
    loop {
        let object = h.kubectl_json(&["-n", ns, "get", resource]);
        let conditions = object["status"]["conditions"].as_array().cloned();
        let condition = |kind: &str| {
            conditions
                .iter()
                .flatten()
                .find(|c| c["type"] == kind)
                .cloned()
        };
        if let Some(ready) = condition("Ready") {
            let status = ready["status"].as_str().unwrap_or_default();
            let reason = ready["reason"].as_str().unwrap_or_default();
            if status == "True"
                && object["status"]["observedGeneration"] == object["metadata"]["generation"]
                && started.elapsed() > Duration::from_millis(LAG_MS)
            {
                return Watched {
                    said,
                    stalled,
                    ready_after: started.elapsed(),
                };
            }
            said.insert(format!("{status} {reason}"));
        }
        stalled |= condition("Stalled").is_some_and(|c| c["status"] == "True");
        assert!(
            started.elapsed() < timeout,
            "{resource} not Ready after {timeout:?}; Ready said {said:?}"
        );
        if started.elapsed() > Duration::from_millis(500 * (pokes + 1)) {
            pokes += 1;
            h.kubectl(&[
                "-n",
                ns,
                "annotate",
                "--overwrite",
                resource,
                &format!("poke={pokes}"),
            ]);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn only_waiting(watched: &Watched) -> bool {
    watched
        .said
        .iter()
        .all(|said| said.starts_with("True") || WAITING.iter().any(|reason| said.ends_with(reason)))
}

fn operator(h: &Harness, ns: &str, name: &str) -> Launched {
    start_as(h, name, &["--watch-namespaces", ns])
}

#[tokio::test]
async fn a_new_role_iam_and_eks_do_not_see_yet_is_waited_for() {
    let Some(h) = harness() else { return };
    let _serial = SERIAL.lock().await;
    install(h);
    let emulator = h.emulator();
    let ns = h.fresh_namespace("lag-new");
    let mut operator = operator(h, &ns, "lag-new");
    // Make sure the operator is up before the lag starts: its own start
    // reads nothing a lag would change, but the test should time the
    // objects, not the start.
    std::thread::sleep(Duration::from_secs(2));
    emulator.set_iam_read_lag(LAG_MS);
    emulator.set_propagation_delay(LAG_MS);
    let mark = emulator.mark();
    h.apply(&ns, &isa("fresh-irsa"));
    h.apply(&ns, &pib("fresh-pod-identity"));
    let isa = watch_until_ready(h, &ns, "isa/fresh-irsa", Duration::from_secs(90));
    let pib = watch_until_ready(h, &ns, "pib/fresh-pod-identity", Duration::from_secs(90));
    emulator.set_iam_read_lag(0);
    emulator.set_propagation_delay(0);
    let calls = emulator.calls_since(mark);
    let created: Vec<&support::Call> = calls
        .iter()
        .filter(|c| c.operation == "CreateRole" && c.status == 200)
        .collect();
    let lagged_reads = calls
        .iter()
        .filter(|c| c.operation == "GetRole" && c.status == 404)
        .count();
    support::figure(&format!(
        "eventual consistency, new roles ({LAG_MS} ms lag): IamServiceAccount Ready after \
         {:.1} s, saying {:?}; PodIdentityBinding Ready after {:.1} s, saying {:?}; {} roles \
         created, {lagged_reads} GetRole answered NoSuchEntity meanwhile",
        isa.ready_after.as_secs_f64(),
        isa.said,
        pib.ready_after.as_secs_f64(),
        pib.said,
        created.len(),
    ));
    for watched in [&isa, &pib] {
        assert!(only_waiting(watched), "{:?}", watched.said);
        assert!(!watched.stalled);
    }
    assert_eq!(created.len(), 2, "one role per object, made once");
    assert!(lagged_reads > 0, "the lag was never met");
    let _ = operator.child.kill();
    let _ = operator.child.wait();
}

#[tokio::test]
async fn a_role_deleted_behind_its_back_is_made_again_with_a_new_id_while_waiting() {
    let Some(h) = harness() else { return };
    let _serial = SERIAL.lock().await;
    install(h);
    let emulator = h.emulator();
    let ns = h.fresh_namespace("lag-recreated");
    // A test that failed before may have left a lag behind.
    emulator.set_iam_read_lag(0);
    emulator.set_propagation_delay(0);
    let mut operator = operator(h, &ns, "lag-recreated");
    h.apply(&ns, &isa("again"));
    h.wait_ready("isa/again", &ns);
    let role = h.field("isa/again", &ns, "{.status.roleName}");
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    let before = support::aws::get_role(&iam, &role).await;
    support::aws::delete_role_by_hand(&iam, &role).await;
    emulator.set_iam_read_lag(LAG_MS);
    let mark = emulator.mark();
    let watched = watch_until_ready(h, &ns, "isa/again", Duration::from_secs(90));
    emulator.set_iam_read_lag(0);
    // The lag met head on: IAM said "no such role", and the CreateRole
    // that followed "it exists" (IamCatchingUp, not a failure).
    let creates: Vec<u16> = emulator
        .calls_since(mark)
        .iter()
        .filter(|c| c.operation == "CreateRole" && c.target.as_deref() == Some(role.as_str()))
        .map(|c| c.status)
        .collect();
    let after = support::aws::get_role(&iam, &role).await;
    support::figure(&format!(
        "eventual consistency, role {role} deleted behind the operator's back: made again \
         (id {} -> {}), Ready after {:.1} s, saying {:?}; CreateRole answered {creates:?}",
        before.role_id(),
        after.role_id(),
        watched.ready_after.as_secs_f64(),
        watched.said
    ));
    assert_ne!(before.role_id(), after.role_id());
    assert_eq!(
        creates.iter().filter(|s| **s == 200).count(),
        1,
        "{creates:?}"
    );
    assert!(
        creates.contains(&409),
        "EntityAlreadyExists never met: {creates:?}"
    );
    assert!(only_waiting(&watched), "{:?}", watched.said);
    assert!(!watched.stalled);
    assert_eq!(
        support::aws::attached(&iam, &role).await,
        BTreeSet::from(["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".to_string()])
    );
    let _ = operator.child.kill();
    let _ = operator.child.wait();
}
