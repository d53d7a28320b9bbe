//! No hot loops: an object whose error only a person can fix (AccessDenied,
//! MalformedPolicyDocument, LimitExceeded, a guardrail violation) shows its
//! reason within seconds, costs at most 12 AWS calls an hour, and recovers
//! within seconds of the fix when the spec changes.
//!
//! Measured with the terminal schedule scaled down 300 times (first wait
//! 2 s instead of 10 min, cap 12 s instead of 1 h), so one "hour" is 12 s.
//! Each cause has its own operator, whose AWS access key the emulator's
//! fault rule and call log tell apart, so the four run side by side.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::operator::{Launched, eventually, install, start_as};
use support::{Harness, harness, isa_manifest};

/// One scaled hour: `--terminal-retry-cap-seconds`.
const HOUR: Duration = Duration::from_secs(12);
const SCALE: u32 = 300;
/// Hours of steady state measured, after the first.
const STEADY_HOURS: u32 = 2;

struct Cause {
    name: &'static str,
    reason: &'static str,
    /// The emulator rule that makes AWS refuse, for this cause's operator.
    refusal: Option<serde_json::Value>,
    spec: &'static str,
    /// The fix: a new spec, or `None` when the fix is made in AWS alone
    /// (the operator's permission granted) and only the slow retry, scaled
    /// here, can notice it.
    fixed_spec: Option<&'static str>,
}

const SA: &str = "  serviceAccount: {create: true}\n";
const POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}]}"#;

fn causes() -> Vec<Cause> {
    vec![
        Cause {
            name: "access-denied",
            reason: "AccessDenied",
            refusal: Some(
                json!({"service": "iam", "operation": "CreateRole", "fault": "error",
                "code": "AccessDenied", "status": 403,
                "message": "User: arn:aws:sts::123456789012:assumed-role/iam-operator/x is not authorized to perform: iam:CreateRole"}),
            ),
            spec: "  policies: {managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]}\n",
            fixed_spec: None,
        },
        Cause {
            name: "malformed",
            reason: "MalformedPolicyDocument",
            refusal: Some(
                json!({"service": "iam", "operation": "PutRolePolicy", "fault": "error",
                "code": "MalformedPolicyDocument", "status": 400,
                "message": "Policy document should not specify a principal."}),
            ),
            spec: "  policies:\n    inline:\n      reader: {POLICY}\n",
            fixed_spec: Some("  policies:\n    inline:\n      reader-fixed: {POLICY}\n"),
        },
        Cause {
            name: "limit",
            reason: "LimitExceeded",
            refusal: Some(
                json!({"service": "iam", "operation": "AttachRolePolicy", "fault": "error",
                "code": "LimitExceeded", "status": 409,
                "message": "Cannot exceed quota for PoliciesPerRole: 10"}),
            ),
            spec: "  policies: {managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]}\n",
            fixed_spec: Some(
                "  policies: {managed: [arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess]}\n",
            ),
        },
        Cause {
            name: "guardrail",
            reason: "GuardrailViolation",
            refusal: None,
            spec: "  policies: {managed: [arn:aws:iam::aws:policy/AdministratorAccess]}\n",
            fixed_spec: Some("  policies: {managed: [arn:aws:iam::aws:policy/ReadOnlyAccess]}\n"),
        },
    ]
}

fn ready_reason(h: &Harness, ns: &str, name: &str) -> Option<(String, String)> {
    let object = h.kubectl_json(&["-n", ns, "get", "isa", name]);
    let ready = object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?
        .clone();
    Some((
        ready["status"].as_str()?.to_string(),
        ready["reason"].as_str()?.to_string(),
    ))
}

struct Running {
    cause: Cause,
    ns: String,
    operator: Launched,
}

#[tokio::test]
async fn a_terminal_error_costs_a_few_calls_an_hour_and_recovers_at_once_on_a_fix() {
    let Some(h) = harness() else { return };
    install(h);
    let emulator = h.emulator();
    let cap = HOUR.as_secs().to_string();
    let mut running: Vec<Running> = causes()
        .into_iter()
        .map(|cause| {
            let ns = h.fresh_namespace(&format!("hot-{}", cause.name));
            let operator = start_as(
                h,
                &format!("hot-{}", cause.name),
                &[
                    "--watch-namespaces",
                    &ns,
                    "--terminal-retry-seconds",
                    "2",
                    "--terminal-retry-cap-seconds",
                    &cap,
                ],
            );
            Running {
                cause,
                ns,
                operator,
            }
        })
        .collect();
    let rules: Vec<serde_json::Value> = running
        .iter()
        .filter_map(|r| {
            let mut rule = r.cause.refusal.clone()?;
            rule["accessKeyId"] = json!(r.operator.access_key);
            Some(rule)
        })
        .collect();
    emulator.set_faults(json!({ "rules": rules }));
    let mark = emulator.mark();
    let applied = Instant::now();
    let applied_wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    for r in &running {
        let spec = format!("{SA}{}", r.cause.spec.replace("{POLICY}", POLICY));
        h.apply(&r.ns, &isa_manifest("app", &spec));
    }

    // The reason, within seconds.
    let mut shown_after = Vec::new();
    for r in &running {
        let took = eventually(
            &format!("{} shown", r.cause.reason),
            Duration::from_secs(30),
            || {
                let (status, reason) = ready_reason(h, &r.ns, "app")?;
                (status == "False" && reason == r.cause.reason).then(|| applied.elapsed())
            },
        );
        shown_after.push(took);
    }

    // From the failure on: calls in its first scaled hour (the retries;
    // the attempt that failed is the change's own work) and in the steady
    // hours after it.
    let latest_shown = shown_after.iter().max().copied().unwrap_or_default();
    let end = applied + latest_shown + HOUR * (1 + STEADY_HOURS) + Duration::from_secs(1);
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    let calls = emulator.calls_since(mark);
    let mut lines = Vec::new();
    let mut per_hour = Vec::new();
    for (r, shown) in running.iter().zip(&shown_after) {
        let mine: Vec<&support::Call> = calls
            .iter()
            .filter(|c| c.access_key.as_deref() == Some(r.operator.access_key.as_str()))
            .collect();
        // The call log's clock is the wall clock.
        let failed_at = mine
            .iter()
            .find(|c| c.fault.as_deref() == Some("error"))
            .map_or(applied_wall + shown.as_secs_f64(), |c| c.time);
        let hour = HOUR.as_secs_f64();
        let in_window = |from: f64, to: f64| {
            mine.iter()
                .filter(|c| c.time > failed_at + from && c.time <= failed_at + to)
                .count()
        };
        let in_first_hour = in_window(0.0, hour);
        let steady_per_hour =
            in_window(hour, hour * f64::from(1 + STEADY_HOURS)) as f64 / f64::from(STEADY_HOURS);
        per_hour.push((
            r.cause.name,
            in_first_hour,
            steady_per_hour,
            r.cause.refusal.is_some(),
        ));
        lines.push(format!(
            "{} shown after {:.1} s, then {} calls in its first hour and {:.1} an hour after",
            r.cause.reason,
            shown.as_secs_f64(),
            in_first_hour,
            steady_per_hour
        ));
    }

    // The fix: AWS stops refusing, the spec changes; Ready within seconds,
    // not at the next (up to an hour) retry.
    emulator.clear_faults();
    let mut recovered = Vec::new();
    let fixed = Instant::now();
    for r in &running {
        if let Some(fixed_spec) = r.cause.fixed_spec {
            let spec = format!("{SA}{}", fixed_spec.replace("{POLICY}", POLICY));
            let changed = Instant::now();
            h.apply(&r.ns, &isa_manifest("app", &spec));
            h.wait_ready("isa/app", &r.ns);
            recovered.push((r.cause.reason, changed.elapsed(), true));
        }
    }
    // Fixed in AWS alone: noticed at the next slow retry, within the cap.
    for r in running.iter().filter(|r| r.cause.fixed_spec.is_none()) {
        h.wait_ready("isa/app", &r.ns);
        recovered.push((r.cause.reason, fixed.elapsed(), false));
    }
    support::figure(&format!(
        "terminal errors (schedule scaled 1/{SCALE}, one hour = {} s): {}; ready after the fix: {}",
        HOUR.as_secs(),
        lines.join("; "),
        recovered
            .iter()
            .map(|(reason, took, by_spec)| format!(
                "{reason} {:.1} s ({})",
                took.as_secs_f64(),
                if *by_spec {
                    "spec changed"
                } else {
                    "fixed in AWS only"
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (reason, took, by_spec) in &recovered {
        // A spec change skips the slow timer; a fix in AWS waits for it.
        let bound = if *by_spec {
            Duration::from_secs(10)
        } else {
            HOUR * 2
        };
        assert!(*took < bound, "{reason}: Ready {took:?} after the fix");
    }
    for (name, first_hour, rate, refused_by_aws) in per_hour {
        assert!(
            first_hour <= 12,
            "{name}: {first_hour} AWS calls in the first hour"
        );
        assert!(rate <= 12.0, "{name}: {rate} AWS calls an hour");
        // Slow, not never: a fix made in AWS must be noticed.
        if refused_by_aws {
            assert!(rate >= 1.0, "{name}: never tried again");
        }
    }
    for shown in shown_after {
        assert!(
            shown < Duration::from_secs(10),
            "reason shown after {shown:?}"
        );
    }
    for r in &mut running {
        let _ = r.operator.child.kill();
        let _ = r.operator.child.wait();
    }
}
