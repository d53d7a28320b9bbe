//! Leader election with two real operator processes on one harness, sharing
//! a Lease: only the holder reconciles (AWS calls, Events); the other stands
//! by, Ready; SIGKILL the leader and the standby takes over once the lease
//! has expired, not before; a leader whose lease is taken stops at once; a
//! leader stopped by SIGTERM gives the lease back.

mod support;

use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use serde_json::Value;
use support::operator::{Launched, eventually, install, start_as};
use support::{Harness, harness, isa_manifest};

/// The operator's defaults (`--leader-election-lease-duration-seconds`,
/// `--leader-election-renew-grace-seconds`), which the test runs with.
const LEASE_DURATION: Duration = Duration::from_secs(15);

/// kube-lease-manager, finding the lease expired, clears it and waits up to
/// this long at random before taking it, so that standbys seldom collide.
const RELEASE_WAIT_MAX: Duration = Duration::from_secs(1);

const ACQUIRED: &str = "acquired the lease";
const STANDING_BY: &str = "standing by";

fn probe(port: u16, path: &str) -> Option<u16> {
    match ureq::get(format!("http://127.0.0.1:{port}{path}")).call() {
        Ok(response) => Some(response.status().as_u16()),
        Err(ureq::Error::StatusCode(code)) => Some(code),
        Err(_) => None,
    }
}

fn log_of(operator: &Launched) -> String {
    std::fs::read_to_string(&operator.log).unwrap_or_default()
}

/// Fails at once, with its log, when an operator has exited (a missing
/// RBAC rule ends it at start) instead of waiting out a timeout.
fn assert_running(operator: &mut Launched) {
    if let Some(status) = operator.child.try_wait().expect("operator status") {
        panic!(
            "{} exited with {status}:\n{}",
            operator.pod_name,
            log_of(operator)
        );
    }
}

fn lease(h: &Harness, ns: &str, name: &str) -> Lease {
    serde_json::from_value(h.kubectl_json(&["get", "lease", name, "-n", ns]))
        .expect("a Lease as JSON")
}

fn holder(lease: &Lease) -> Option<String> {
    lease.spec.as_ref()?.holder_identity.clone()
}

fn time_of(time: &Option<MicroTime>) -> SystemTime {
    time.as_ref().expect("a lease time").0.into()
}

/// AWS calls made with `access_key` since `seq`, as `operation`s.
fn aws_calls_by(h: &Harness, seq: u64, access_key: &str) -> Vec<String> {
    let body: Value = ureq::get(format!("{}/_emulator/calls?since={seq}", h.emulator_url))
        .call()
        .expect("GET call log")
        .body_mut()
        .read_json()
        .expect("call log JSON");
    body["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|call| call["accessKeyId"] == access_key)
        .map(|call| call["operation"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The reporting instances of the Events about object `name`.
fn event_reporters(h: &Harness, ns: &str, name: &str) -> Vec<String> {
    let list = h.kubectl_json(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        &format!("involvedObject.name={name}"),
    ]);
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            e["reportingInstance"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn exit_within(operator: &mut Launched, what: &str, timeout: Duration) -> ExitStatus {
    eventually(what, timeout, || {
        operator.child.try_wait().expect("operator status")
    })
}

fn election_args<'a>(ns: &'a str, lease: &'a str, metrics: &'a str) -> Vec<&'a str> {
    vec![
        "--watch-namespaces",
        ns,
        "--leader-election-lease-name",
        lease,
        "--metrics-address",
        metrics,
    ]
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over_after_sigkill() {
    let Some(h) = harness() else { return };
    install(h);
    let ns = h.fresh_namespace("leader");
    let lease_name = "iam-operator";
    let ports = [support::free_port(), support::free_port()];
    let addresses = ports.map(|p| format!("127.0.0.1:{p}"));
    // Started together, so both reach for the free lease at once.
    let mut operators = [
        start_as(
            h,
            "operator-a",
            &election_args(&ns, lease_name, &addresses[0]),
        ),
        start_as(
            h,
            "operator-b",
            &election_args(&ns, lease_name, &addresses[1]),
        ),
    ];
    let (leader, standby) = eventually(
        "one operator leading and the other standing by",
        Duration::from_secs(60),
        || {
            operators.iter_mut().for_each(assert_running);
            let logs = operators.each_ref().map(log_of);
            match logs
                .each_ref()
                .map(|l| (l.contains(ACQUIRED), l.contains(STANDING_BY)))
            {
                [(true, false), (false, true)] => Some((0, 1)),
                [(false, true), (true, false)] => Some((1, 0)),
                _ => None,
            }
        },
    );
    let current = lease(h, &h.operator_namespace, lease_name);
    assert_eq!(holder(&current), Some(operators[leader].pod_name.clone()));
    // A rollout starts the new pod and waits for it to be Ready before it
    // stops the old one: the standby must be Ready, or no rollout ends.
    eventually("the standby Ready", Duration::from_secs(10), || {
        (probe(ports[standby], "/readyz") == Some(200)).then_some(())
    });
    assert_eq!(probe(ports[standby], "/healthz"), Some(200));

    let mark = h.emulator().mark();
    h.apply(
        &ns,
        &isa_manifest("first", "  serviceAccount: {create: true}\n"),
    );
    h.wait_ready("isa/first", &ns);
    let by_leader = aws_calls_by(h, mark, &operators[leader].access_key);
    assert!(
        by_leader.iter().any(|op| op == "CreateRole"),
        "the leader made the role: {by_leader:?}"
    );
    let reporters = event_reporters(h, &ns, "first");
    assert!(!reporters.is_empty(), "no Events about isa/first");
    assert!(
        reporters.iter().all(|r| *r == operators[leader].pod_name),
        "Events from {reporters:?}, not only from the leader"
    );
    let by_standby = aws_calls_by(h, mark, &operators[standby].access_key);
    assert!(
        by_standby.is_empty(),
        "the standby called AWS: {by_standby:?}"
    );
    assert!(!log_of(&operators[standby]).contains("reconcile{"));

    operators[leader].child.kill().expect("SIGKILL the leader");
    operators[leader].child.wait().expect("reap the leader");
    let killed = Instant::now();
    // Read after the kill: the last renewal the dead leader made.
    let dead = lease(h, &h.operator_namespace, lease_name);
    let dead_spec = dead.spec.as_ref().expect("lease spec");
    assert_eq!(
        dead_spec.lease_duration_seconds,
        Some(LEASE_DURATION.as_secs() as i32)
    );
    let expiry = time_of(&dead_spec.renew_time) + LEASE_DURATION;

    let mark = h.emulator().mark();
    h.apply(
        &ns,
        &isa_manifest("second", "  serviceAccount: {create: true}\n"),
    );
    h.wait_ready("isa/second", &ns);
    let takeover = killed.elapsed();
    println!("leader takeover: {:.1} s", takeover.as_secs_f64());

    let taken = lease(h, &h.operator_namespace, lease_name);
    assert_eq!(holder(&taken), Some(operators[standby].pod_name.clone()));
    let acquired = time_of(&taken.spec.as_ref().expect("lease spec").acquire_time);
    // Never while the dead leader's lease was valid: that is the whole
    // point of a lease.
    assert!(
        acquired >= expiry,
        "taken {:?} before the lease expired",
        expiry.duration_since(acquired).unwrap_or_default()
    );
    // And at once after: the standby sleeps until the expiry it read, then
    // clears the lease and waits at most RELEASE_WAIT_MAX; two seconds more
    // for the requests and a loaded machine.
    let late = acquired.duration_since(expiry).unwrap_or_default();
    assert!(
        late <= RELEASE_WAIT_MAX + Duration::from_secs(2),
        "taken {late:?} after the lease expired"
    );
    // From the kill: at most the lease duration (the dead leader renewed
    // before it died), the wait above, then starting the controllers and
    // one reconcile (a third of a second in scripts/bench), with five
    // seconds for a loaded 2-core machine. A standby that missed the
    // expiry, or stood by for a second lease term, fails this.
    let bound = LEASE_DURATION + RELEASE_WAIT_MAX + Duration::from_secs(5);
    assert!(takeover <= bound, "takeover {takeover:?} over {bound:?}");
    let new_leader_log = log_of(&operators[standby]);
    assert_eq!(new_leader_log.matches(ACQUIRED).count(), 1);
    let by_new_leader = aws_calls_by(h, mark, &operators[standby].access_key);
    assert!(
        by_new_leader.iter().any(|op| op == "CreateRole"),
        "the new leader made the role: {by_new_leader:?}"
    );
    let reporters = event_reporters(h, &ns, "second");
    assert!(
        !reporters.is_empty() && reporters.iter().all(|r| *r == operators[standby].pod_name),
        "Events about isa/second from {reporters:?}"
    );

    // SIGTERM: the controllers drain, then the lease is given back so a
    // standby need not wait out its term.
    let pid = operators[standby].child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    let status = exit_within(
        &mut operators[standby],
        "the leader to stop on SIGTERM",
        Duration::from_secs(30),
    );
    assert!(status.success(), "stopped with {status}");
    assert_eq!(holder(&lease(h, &h.operator_namespace, lease_name)), None);
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_stops_at_once() {
    let Some(h) = harness() else { return };
    install(h);
    let ns = h.fresh_namespace("leader-lost");
    // No lease namespace given: POD_NAMESPACE, the operator's own, as in
    // the chart's Deployment.
    let (lease_ns, lease_name) = (h.operator_namespace.as_str(), "leader-lost");
    let mut operator = start_as(
        h,
        "operator-c",
        &[
            "--watch-namespaces",
            &ns,
            "--leader-election-lease-name",
            lease_name,
        ],
    );
    eventually("the lease acquired", Duration::from_secs(60), || {
        assert_running(&mut operator);
        log_of(&operator).contains(ACQUIRED).then_some(())
    });
    h.apply(
        &ns,
        &isa_manifest("held", "  serviceAccount: {create: true}\n"),
    );
    h.wait_ready("isa/held", &ns);

    // Another holder, as a partitioned leader would find on coming back:
    // the operator must stop, not carry on beside it.
    let now = serde_json::to_value(MicroTime(k8s_openapi::jiff::Timestamp::now()))
        .expect("a MicroTime as JSON");
    let patch = serde_json::json!({"spec": {
        "holderIdentity": "intruder",
        "acquireTime": now,
        "renewTime": now,
    }});
    let taken = Instant::now();
    h.kubectl(&[
        "patch",
        "lease",
        lease_name,
        "-n",
        lease_ns,
        "--type",
        "merge",
        "-p",
        &patch.to_string(),
    ]);
    // The leader reads its lease back every second (a quarter of the
    // default grace, at most one second), each read bounded by the same.
    let status = exit_within(&mut operator, "the leader to stop", Duration::from_secs(10));
    let stopped = taken.elapsed();
    println!(
        "stopped {:.1} s after losing the lease",
        stopped.as_secs_f64()
    );
    assert!(
        !status.success(),
        "a lost lease must end the process in failure"
    );
    assert!(
        stopped <= Duration::from_secs(4),
        "stopped after {stopped:?}"
    );
    let log = log_of(&operator);
    assert!(log.contains("lost the lease"), "{log}");
}
