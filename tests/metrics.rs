//! `/metrics` on a running operator: what Prometheus scrapes counts the
//! reconciles, the refusals by reason, every AWS attempt (a throttled one and
//! the SDK's retry of it included) and the objects by Ready state.

mod support;

use std::time::Duration;

use serde_json::json;
use support::operator::{ensure_operator, eventually};
use support::{harness, isa_manifest};

fn scrape(port: u16) -> String {
    support::scrape(&format!("127.0.0.1:{port}"))
}

#[tokio::test]
async fn metrics_count_reconciles_attempts_retries_and_states() {
    let Some(h) = harness() else { return };
    // A free port for this operator's endpoints, so the test can scrape it.
    let port = support::free_port();
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
        (support::series_value(
            &text,
            r#"iam_operator_objects{kind="IamServiceAccount",ready="true"}"#,
        ) == Some(1.0)
            && support::series_value(
                &text,
                r#"iam_operator_objects{kind="IamServiceAccount",ready="false"}"#,
            ) == Some(1.0))
        .then_some(text)
    });
    let at_least = |series: &str, minimum: f64| {
        let found = support::series_value(&text, series);
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
        support::series_value(
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
            support::series_value(
                &text,
                r#"iam_operator_objects{kind="IamServiceAccount",ready="false"}"#,
            )
            .is_none()
            .then_some(())
        },
    );
}
