//! `/metrics` on a running operator: what Prometheus scrapes counts the
//! reconciles, the refusals by reason, every AWS attempt (a throttled one and
//! the SDK's retry of it included) and the objects by Ready state.

mod support;

use std::time::Duration;

use serde_json::json;
use support::operator::{ensure_operator, eventually};
use support::{harness, isa_manifest};

fn scrape(port: u16) -> String {
    ureq::get(format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .expect("GET /metrics")
        .body_mut()
        .read_to_string()
        .expect("metrics text")
}

/// The value of one series, by its full name and labels.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_reconciles_attempts_retries_and_states() {
    let Some(h) = harness() else { return };
    // A free port for this operator's endpoints, so the test can scrape it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let address = format!("127.0.0.1:{port}");
    ensure_operator(h, &["--metrics-address", &address]);
    let ns = h.fresh_namespace("metrics");
    // The first GetRole is throttled once; the SDK retries it by itself.
    h.emulator().set_faults(json!({"rules": [{
        "service": "iam",
        "operation": "GetRole",
        "fault": "throttle",
        "count": 1
    }]}));
    h.apply(
        &ns,
        &isa_manifest("good", "  serviceAccount: {create: true}\n"),
    );
    h.apply(
        &ns,
        &isa_manifest(
            "refused",
            "  serviceAccount: {create: true}\n  policies: {managed: [arn:aws:iam::aws:policy/IAMFullAccess]}\n",
        ),
    );
    h.wait_ready("isa/good", &ns);
    h.wait_for_reason("isa/refused", &ns, "GuardrailViolation");
    h.emulator().clear_faults();

    let text = eventually("the states in /metrics", Duration::from_secs(30), || {
        let text = scrape(port);
        (value(
            &text,
            r#"iam_operator_objects{kind="IamServiceAccount",ready="true"}"#,
        ) == Some(1.0)
            && value(
                &text,
                r#"iam_operator_objects{kind="IamServiceAccount",ready="false"}"#,
            ) == Some(1.0))
        .then_some(text)
    });
    let at_least = |series: &str, minimum: f64| {
        let found = value(&text, series);
        assert!(
            found.is_some_and(|v| v >= minimum),
            "{series} = {found:?}, want at least {minimum}\n{text}"
        );
    };
    at_least(
        r#"iam_operator_reconciles_total{kind="IamServiceAccount"}"#,
        2.0,
    );
    at_least(
        r#"iam_operator_reconcile_failures_total{kind="IamServiceAccount",reason="GuardrailViolation"}"#,
        1.0,
    );
    at_least(
        r#"iam_operator_aws_attempts_total{service="iam",operation="GetRole",outcome="throttled"}"#,
        1.0,
    );
    at_least(
        r#"iam_operator_aws_retries_total{service="iam",operation="GetRole"}"#,
        1.0,
    );
    at_least(
        r#"iam_operator_aws_attempt_duration_seconds_count{service="iam",operation="CreateRole"}"#,
        1.0,
    );
    at_least(
        r#"iam_operator_reconcile_duration_seconds_count{kind="IamServiceAccount"}"#,
        2.0,
    );
    // One role made: exactly one successful CreateRole, and none refused.
    assert_eq!(
        value(
            &text,
            r#"iam_operator_aws_attempts_total{service="iam",operation="CreateRole",outcome="ok"}"#
        ),
        Some(1.0),
        "{text}"
    );

    // A deleted object is no longer counted.
    h.kubectl(&[
        "delete",
        "isa",
        "refused",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=60s",
    ]);
    eventually(
        "the deleted object leaves /metrics",
        Duration::from_secs(30),
        || {
            let text = scrape(port);
            value(
                &text,
                r#"iam_operator_objects{kind="IamServiceAccount",ready="false"}"#,
            )
            .is_none()
            .then_some(())
        },
    );
}
