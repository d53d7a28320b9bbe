//! The conditions GitOps tools read (kstatus: `Reconciling`, `Stalled`,
//! `observedGeneration`) next to `Ready`, on the real API server: an object
//! the operator has not seen reads as behind, a new generation is announced
//! before the first AWS call, and each end state carries exactly the
//! conditions kstatus needs to call it Current, InProgress or Failed.

mod support;

use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::watcher;
use serde_json::Value;

use iam_operator::api::IamServiceAccount;
use support::operator::ensure_operator;
use support::{harness, is_write, isa_manifest};

fn condition_types(status: &Value) -> Vec<(String, String, String)> {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("type"), text("status"), text("reason"))
        })
        .collect()
}

fn triples(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[tokio::test]
async fn conditions_follow_kstatus_for_every_state() {
    let Some(h) = harness() else { return };
    let watched = h.fresh_namespace("kstatus");
    let outside = h.fresh_namespace("kstatus-outside");
    ensure_operator(h, &["--watch-namespaces", &watched]);

    // Never looked at (outside the watched namespace): the CRD's status
    // default puts it behind its generation, which kstatus reads as
    // InProgress rather than Current.
    h.apply(
        &outside,
        &isa_manifest("untouched", "  serviceAccount: {create: true}\n"),
    );
    let untouched = h.kubectl_json(&["get", "isa", "untouched", "-n", &outside]);
    assert_eq!(untouched["metadata"]["generation"], 1);
    assert_eq!(untouched["status"]["observedGeneration"], 0, "{untouched}");
    assert!(condition_types(&untouched["status"]).is_empty());

    h.apply(
        &watched,
        &isa_manifest("good", "  serviceAccount: {create: true}\n"),
    );
    h.apply(
        &watched,
        &isa_manifest(
            "admin",
            "  serviceAccount: {create: true}\n  policies: {managed: [arn:aws:iam::aws:policy/AdministratorAccess]}\n",
        ),
    );
    h.apply(
        &watched,
        &isa_manifest("orphan", "  serviceAccount: {name: missing}\n"),
    );
    h.wait_ready("isa/good", &watched);
    h.wait_for_reason("isa/admin", &watched, "GuardrailViolation");
    h.wait_for_reason("isa/orphan", &watched, "ServiceAccountNotFound");
    let status_of =
        |name: &str| h.kubectl_json(&["get", "isa", name, "-n", &watched])["status"].clone();
    assert_eq!(
        condition_types(&status_of("good")),
        triples(&[("Ready", "True", "Synced")])
    );
    assert_eq!(
        condition_types(&status_of("admin")),
        triples(&[
            ("Ready", "False", "GuardrailViolation"),
            ("Stalled", "True", "GuardrailViolation")
        ])
    );
    assert_eq!(
        condition_types(&status_of("orphan")),
        triples(&[
            ("Ready", "False", "ServiceAccountNotFound"),
            ("Reconciling", "True", "ServiceAccountNotFound")
        ])
    );

    // A new generation: watched from before the change, the object must
    // pass through Ready=Unknown + Reconciling=True at generation 2, and
    // that status must be written before the first AWS write of the change.
    let client = h.kube_client().await;
    let api: Api<IamServiceAccount> = Api::namespaced(client, &watched);
    let config = watcher::Config::default().fields("metadata.name=good");
    let mut stream = watcher::watcher(api, config).boxed();
    // The watch must be established before the change: a stream is lazy,
    // and one started after the operator's writes would list only the end.
    loop {
        match stream.next().await.expect("watch open").expect("watch") {
            watcher::Event::InitDone => break,
            _ => continue,
        }
    }
    let audit_mark = h.audit_mark();
    let emulator_mark = h.emulator().mark();
    h.apply(
        &watched,
        &isa_manifest(
            "good",
            "  serviceAccount: {create: true}\n  policies: {managed: [arn:aws:iam::aws:policy/ReadOnlyAccess]}\n",
        ),
    );
    let mut seen = Vec::new();
    let settled = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(event) = stream.next().await {
            let objects = match event.expect("watch") {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => vec![o],
                _ => Vec::new(),
            };
            for isa in objects {
                let status = serde_json::to_value(&isa.status).expect("status");
                let generation = status["observedGeneration"].as_i64();
                seen.push((generation, condition_types(&status)));
                if generation == Some(2) && condition_types(&status)[0].1 == "True" {
                    return;
                }
            }
        }
    })
    .await;
    assert!(settled.is_ok(), "never Ready at generation 2: {seen:?}");
    assert!(
        seen.contains(&(
            Some(2),
            triples(&[
                ("Ready", "Unknown", "Reconciling"),
                ("Reconciling", "True", "Reconciling")
            ])
        )),
        "no Reconciling status for generation 2: {seen:?}"
    );
    assert_eq!(
        seen.last().map(|(_, c)| c.clone()),
        Some(triples(&[("Ready", "True", "Synced")]))
    );

    let first_aws_write = h
        .emulator()
        .calls_since(emulator_mark)
        .into_iter()
        .find(is_write)
        .expect("the change made an AWS write");
    let first_status_write = h
        .audit_events_since(audit_mark)
        .into_iter()
        .find(|e| {
            e["user"]["username"] == h.operator_user.as_str()
                && e["verb"] == "patch"
                && e["objectRef"]["name"] == "good"
                && e["objectRef"]["subresource"] == "status"
        })
        .expect("a status write for generation 2");
    let received: k8s_openapi::jiff::Timestamp = first_status_write["requestReceivedTimestamp"]
        .as_str()
        .expect("timestamp")
        .parse()
        .expect("RFC 3339");
    let received = received.as_millisecond() as f64 / 1000.0;
    assert!(
        received < first_aws_write.time,
        "the Reconciling status ({received}) came after the first AWS write {first_aws_write:?}"
    );
}
