//! Throttling and outages: the same workload twice, once with a fault-free
//! AWS and once while the emulator throttles the operator by request rate
//! (as AWS does), then refuses every call briefly, then answers half the
//! IAM writes with 5xx. No object turns terminal, all are Ready soon after,
//! nothing is deleted, an object already converged never flips to not
//! Ready, and beyond the attempts AWS refused the work costs at most 1.1
//! times the fault-free run's calls (the plain ratio is printed).
//!
//! Two operators: one creates objects in three waves during the faults
//! (its calls are the work compared between the runs); the other keeps
//! converged objects and resyncs them every 5 s through the faults (its
//! calls depend on how long the run lasts, so they are only reported).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::json;
use support::operator::{Launched, install, start_as};
use support::{Harness, harness, isa_manifest};

const WINDOW: Duration = Duration::from_secs(30);
const RESYNC_SECONDS: &str = "5";

const IAM_WRITES: [&str; 7] = [
    "CreateRole",
    "TagRole",
    "AttachRolePolicy",
    "PutRolePolicy",
    "DetachRolePolicy",
    "DeleteRolePolicy",
    "UpdateAssumeRolePolicy",
];

fn isa(name: &str) -> String {
    isa_manifest(
        name,
        "  serviceAccount: {create: true}\n  policies:\n    managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]\n    inline:\n      reader: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"sqs:ReceiveMessage\", Resource: \"arn:aws:sqs:us-east-1:123456789012:q\"}]}\n",
    )
}

fn pib(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}}}\n---\napiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {{name: {name}}}\nspec:\n  serviceAccountName: {name}\n  role: {{}}\n  policies:\n    managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]\n"
    )
}

/// Two of each kind; returns how many objects it applied.
fn apply_wave(h: &Harness, ns: &str, wave: &str) -> usize {
    for i in 0..2 {
        h.apply(ns, &isa(&format!("{wave}-isa-{i}")));
        h.apply(ns, &pib(&format!("{wave}-pib-{i}")));
    }
    4
}

/// Per object: (Ready status, its reason, whether Stalled is True).
fn states(h: &Harness, ns: &str) -> Vec<(String, String, String, bool)> {
    let mut out = Vec::new();
    for resource in ["isa", "pib"] {
        let list = h.kubectl_json(&["-n", ns, "get", resource]);
        for item in list["items"].as_array().into_iter().flatten() {
            let conditions = item["status"]["conditions"].as_array();
            let condition = |kind: &str| {
                conditions
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == kind)
                    .cloned()
            };
            let ready = condition("Ready");
            out.push((
                format!(
                    "{resource}/{}",
                    item["metadata"]["name"].as_str().unwrap_or("")
                ),
                ready
                    .as_ref()
                    .and_then(|c| c["status"].as_str())
                    .unwrap_or("")
                    .to_string(),
                ready
                    .as_ref()
                    .and_then(|c| c["reason"].as_str())
                    .unwrap_or("")
                    .to_string(),
                condition("Stalled").is_some_and(|c| c["status"] == "True"),
            ));
        }
    }
    out
}

fn wait_all_ready(h: &Harness, ns: &str, count: usize, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let states = states(h, ns);
        if states.len() == count && states.iter().all(|s| s.1 == "True") {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "not all Ready after {timeout:?}: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

struct Run {
    calls: usize,
    /// Calls AWS answered (not refused), per operation: where the work
    /// beyond the refusals differs between the runs.
    answered: BTreeMap<String, usize>,
    throttled: usize,
    server_errors: usize,
    /// Of the calls while the rate limit alone was on, the share throttled.
    throttled_share_while_limited: f64,
    steady_calls: usize,
    deletes: usize,
    /// Converged objects seen not Ready during the window.
    flipped: BTreeSet<String>,
    /// Objects ever seen Stalled (terminal).
    stalled: BTreeSet<String>,
    ready_after_window: Duration,
}

const WAVES: [Duration; 3] = [
    Duration::from_secs(0),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// (from, rules): the rate limit, everything refused, the limit again, 5xx
/// on half the IAM writes, then nothing; each rule once per operator, so
/// each has a rate budget of its own (AWS's are per account, but here the
/// two operators stand for two workloads measured apart).
fn phases(keys: &[&str]) -> Vec<(Duration, serde_json::Value)> {
    let per_operator = |rule: serde_json::Value| -> serde_json::Value {
        keys.iter()
            .map(|key| {
                let mut rule = rule.clone();
                rule["accessKeyId"] = json!(key);
                rule
            })
            .collect()
    };
    let limited = per_operator(json!({"fault": "throttle", "limitPerSecond": LIMIT_PER_SECOND}));
    vec![
        (Duration::from_secs(0), limited.clone()),
        (
            Duration::from_secs(8),
            per_operator(json!({"fault": "throttle"})),
        ),
        (Duration::from_secs(11), limited),
        (
            Duration::from_secs(16),
            per_operator(
                json!({"service": "iam", "operation": IAM_WRITES, "fault": "server_error", "rate": 0.5}),
            ),
        ),
        (Duration::from_secs(24), json!([])),
    ]
}

const LIMIT_PER_SECOND: f64 = 2.0;

fn run(h: &Harness, label: &str, faults: bool) -> Run {
    let emulator = h.emulator();
    let steady_ns = h.fresh_namespace(&format!("steady-{label}"));
    let work_ns = h.fresh_namespace(&format!("work-{label}"));
    let mut steady: Launched = start_as(
        h,
        &format!("steady-{label}"),
        &[
            "--watch-namespaces",
            &steady_ns,
            "--resync-seconds",
            RESYNC_SECONDS,
        ],
    );
    let mut work: Launched = start_as(
        h,
        &format!("work-{label}"),
        &["--watch-namespaces", &work_ns],
    );
    let converged = apply_wave(h, &steady_ns, "steady");
    wait_all_ready(h, &steady_ns, converged, Duration::from_secs(60));
    let mark = emulator.mark();

    let phases = phases(&[&steady.access_key, &work.access_key]);
    let window = Instant::now();
    let mut next_phase = 0;
    let mut next_wave = 0;
    let mut created = 0;
    let mut flipped = BTreeSet::new();
    let mut stalled = BTreeSet::new();
    let mut limited_spans: Vec<(f64, f64)> = Vec::new();
    while window.elapsed() < WINDOW {
        if faults
            && let Some((at, rules)) = phases.get(next_phase)
            && window.elapsed() >= *at
        {
            emulator.set_faults(json!({ "rules": rules }));
            let now = wall_clock();
            if let Some(span) = limited_spans.last_mut()
                && span.1 == f64::INFINITY
            {
                span.1 = now;
            }
            if rules.to_string().contains("limitPerSecond") {
                limited_spans.push((now, f64::INFINITY));
            }
            next_phase += 1;
        }
        if let Some(at) = WAVES.get(next_wave)
            && window.elapsed() >= *at
        {
            created += apply_wave(h, &work_ns, &format!("wave{next_wave}"));
            next_wave += 1;
        }
        for (object, ready, reason, is_stalled) in states(h, &steady_ns) {
            if ready != "True" {
                flipped.insert(format!("{object} {ready} {reason}"));
            }
            if is_stalled {
                stalled.insert(format!("{object} {reason}"));
            }
        }
        for (object, _, reason, is_stalled) in states(h, &work_ns) {
            if is_stalled {
                stalled.insert(format!("{object} {reason}"));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    emulator.clear_faults();
    let ready_after_window = wait_all_ready(h, &work_ns, created, Duration::from_secs(180));
    let calls = emulator.calls_since(mark);
    let of = |key: &str| -> Vec<&support::Call> {
        calls
            .iter()
            .filter(|c| c.access_key.as_deref() == Some(key))
            .collect()
    };
    let work_calls = of(&work.access_key);
    let while_limited: Vec<&&support::Call> = work_calls
        .iter()
        .filter(|c| {
            limited_spans
                .iter()
                .any(|(from, to)| c.time >= *from && c.time < *to)
        })
        .collect();
    let throttled_share_while_limited = while_limited
        .iter()
        .filter(|c| c.fault.as_deref() == Some("throttle"))
        .count() as f64
        / while_limited.len().max(1) as f64;
    let mut answered = BTreeMap::new();
    for call in work_calls.iter().filter(|c| c.fault.is_none()) {
        *answered.entry(call.operation.clone()).or_insert(0) += 1;
    }
    let run = Run {
        calls: work_calls.len(),
        answered,
        throttled: work_calls
            .iter()
            .filter(|c| c.fault.as_deref() == Some("throttle"))
            .count(),
        server_errors: work_calls
            .iter()
            .filter(|c| c.fault.as_deref() == Some("server_error"))
            .count(),
        throttled_share_while_limited,
        steady_calls: of(&steady.access_key).len(),
        deletes: work_calls
            .iter()
            .chain(of(&steady.access_key).iter())
            .filter(|c| c.operation.starts_with("Delete") || c.operation == "DetachRolePolicy")
            .count(),
        flipped,
        stalled,
        ready_after_window,
    };
    for operator in [&mut steady, &mut work] {
        let _ = operator.child.kill();
        let _ = operator.child.wait();
    }
    run
}

fn wall_clock() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

#[tokio::test]
async fn throttling_and_5xx_bursts_cost_little_and_break_nothing() {
    let Some(h) = harness() else { return };
    install(h);
    let fault_free = run(h, "fault-free", false);
    let faulted = run(h, "faulted", true);
    let ratio = faulted.calls as f64 / fault_free.calls as f64;
    support::figure(&format!(
        "throttling: {} objects created in 3 waves during the faults; work: fault-free {} AWS \
         calls, faulted {} ({} throttled, {:.0} % while rate-limited to {LIMIT_PER_SECOND}/s; \
         {} answered 5xx), ratio {ratio:.2}; all Ready {:.1} s after the faults ended; \
         converged objects resyncing every {RESYNC_SECONDS} s: {} calls fault-free, {} faulted, \
         {} ever not Ready; {} deletes; {} ever Stalled",
        4 * WAVES.len(),
        fault_free.calls,
        faulted.calls,
        faulted.throttled,
        100.0 * faulted.throttled_share_while_limited,
        faulted.server_errors,
        faulted.ready_after_window.as_secs_f64(),
        fault_free.steady_calls,
        faulted.steady_calls,
        faulted.flipped.len(),
        faulted.deletes,
        faulted.stalled.len(),
    ));
    assert!(
        faulted.stalled.is_empty(),
        "terminal: {:?}",
        faulted.stalled
    );
    assert!(
        faulted.flipped.is_empty(),
        "converged objects flipped: {:?}",
        faulted.flipped
    );
    assert_eq!(faulted.deletes, 0, "nothing is deleted");
    assert!(faulted.throttled > 0 && faulted.server_errors > 0);
    // Every attempt AWS refused has to be made again: those are the faults'
    // cost, set mostly by this schedule (each object's first call in a
    // fault phase is refused before the shared rate adapts): 8 to 14
    // attempts in five runs against 56 fault-free calls, so the plain ratio
    // (printed above, 1.14 to 1.27) sits within a few refusals of 1.3 and
    // is not what this test judges. What the operator adds beyond them is
    // bounded tightly (no extra rounds of reads), and a retry storm would
    // show as most calls refused while rate-limited.
    let refused = faulted.throttled + faulted.server_errors;
    let operations: BTreeSet<&String> = fault_free
        .answered
        .keys()
        .chain(faulted.answered.keys())
        .collect();
    let answered_differently: Vec<String> = operations
        .into_iter()
        .filter_map(|operation| {
            let before = fault_free.answered.get(operation).copied().unwrap_or(0);
            let after = faulted.answered.get(operation).copied().unwrap_or(0);
            (after != before).then(|| format!("{operation} {before}->{after}"))
        })
        .collect();
    let beyond_refusals = (faulted.calls - refused) as f64 / fault_free.calls as f64;
    assert!(
        beyond_refusals <= 1.1,
        "{beyond_refusals:.2} times the fault-free run's calls, the {refused} refused attempts \
         left out (ratio {ratio:.2} with them); answered calls that differ: \
         {answered_differently:?}"
    );
    assert!(
        faulted.throttled_share_while_limited <= 0.5,
        "{:.0} % of the calls made while rate-limited were throttled",
        100.0 * faulted.throttled_share_while_limited
    );
}
