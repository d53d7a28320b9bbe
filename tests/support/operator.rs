//! The operator binary, run against the harness with the credentials of the
//! ServiceAccount the chart's default rendering installs (the harness
//! applies config/base and mints a token), so a missing RBAC rule fails a
//! test.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{Harness, repo_dir};

static OPERATOR: OnceLock<Mutex<Option<Child>>> = OnceLock::new();

/// CRDs applied, and one operator running for this test binary.
pub fn ensure_operator(h: &Harness, extra_args: &[&str]) {
    OPERATOR.get_or_init(|| {
        install(h);
        Mutex::new(Some(start(h, extra_args)))
    });
}

/// The kernel's parent-death signal follows the *thread* that spawned the
/// child, and each test runs on a thread of its own that ends with the test:
/// operators are therefore spawned from one thread that lives as long as the
/// test binary.
fn spawn_from_long_lived_thread(command: Command) -> Child {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut command = command;
        let _ = sender.send(command.spawn());
        loop {
            std::thread::park();
        }
    });
    receiver
        .recv()
        .expect("spawner thread answered")
        .expect("start the operator")
}

/// The CRDs; the harness has installed the operator's RBAC already.
pub fn install(h: &Harness) {
    let crds = repo_dir().join("crds");
    h.kubectl(&[
        "apply",
        "--server-side",
        "-f",
        crds.to_str().expect("utf-8 path"),
    ]);
    h.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/iamserviceaccounts.iam-operator.io",
        "crd/podidentitybindings.iam-operator.io",
    ]);
}

pub fn start(h: &Harness, extra_args: &[&str]) -> Child {
    start_against(h, &h.emulator_url, extra_args)
}

/// An operator for `h`'s apiserver and region whose AWS is the emulator at
/// `emulator_url` (another harness's, so that two clusters share one account).
pub fn start_against(h: &Harness, emulator_url: &str, extra_args: &[&str]) -> Child {
    launch(h, emulator_url, None, None, extra_args).child
}

/// Who the operator is in Kubernetes: a kubeconfig and the namespace of
/// its ServiceAccount (`POD_NAMESPACE`).
pub struct Identity<'a> {
    pub kubeconfig: &'a std::path::Path,
    pub namespace: &'a str,
}

/// An operator with other Kubernetes credentials than the harness's
/// install (another rendering of the chart).
pub fn start_with_identity(h: &Harness, identity: &Identity, extra_args: &[&str]) -> Launched {
    launch(h, &h.emulator_url, None, Some(identity), extra_args)
}

/// An operator started with what tells its acts from another's.
pub struct Launched {
    pub child: Child,
    /// Its `POD_NAME`: its lease identity and its Events' reporting instance.
    pub pod_name: String,
    /// Its own AWS access key, as the emulator's call log shows it.
    pub access_key: String,
    pub log: std::path::PathBuf,
}

/// An operator whose `POD_NAME` is `pod_name`, on `h`'s emulator.
pub fn start_as(h: &Harness, pod_name: &str, extra_args: &[&str]) -> Launched {
    launch(h, &h.emulator_url, Some(pod_name), None, extra_args)
}

fn launch(
    h: &Harness,
    emulator_url: &str,
    pod_name: Option<&str>,
    identity: Option<&Identity>,
    extra_args: &[&str],
) -> Launched {
    let installed = Identity {
        kubeconfig: &h.operator_kubeconfig,
        namespace: &h.operator_namespace,
    };
    let identity = identity.unwrap_or(&installed);
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    let launch = STARTED.fetch_add(1, Ordering::Relaxed);
    let log_path = h.dir.join("logs").join(format!("operator-{launch}.log"));
    let log = std::fs::File::create(&log_path).expect("operator log file");
    eprintln!("operator log: {}", log_path.display());
    let mut command = Command::new("python3");
    // A test may name another cluster or address; clap refuses a flag given
    // twice.
    if !extra_args.contains(&"--cluster-name") {
        command.env("IAM_OPERATOR_CLUSTER_NAME", &h.cluster_name);
    }
    command
        .arg(repo_dir().join("e2e/die-with-parent.py"))
        .arg(env!("CARGO_BIN_EXE_iam-operator"));
    if !extra_args.contains(&"--metrics-address") {
        command.args(["--metrics-address", "127.0.0.1:0"]);
    }
    if !extra_args.contains(&"--guardrails-file") {
        command.arg("--guardrails-file").arg(test_guardrails());
    }
    // Leader election stays on, as in a cluster, but each launch is a
    // deployment of its own unless the test names a lease: a test that
    // kills an operator and starts another never waits for the dead one's
    // lease to expire.
    if !extra_args.contains(&"--leader-election-lease-name") {
        command.args([
            "--leader-election-lease-name",
            &format!("iam-operator-test-{launch}"),
        ]);
    }
    // As the chart's Deployment sets it, so the Lease goes where the
    // chart's Role allows; never the test runner's own (a CI job in a pod
    // has both).
    command
        .env("POD_NAMESPACE", identity.namespace)
        .env_remove("POD_NAME");
    if let Some(pod_name) = pod_name {
        command.env("POD_NAME", pod_name);
    }
    let access_key = record_launch(h, launch, extra_args);
    command
        .args(extra_args)
        .env("KUBECONFIG", identity.kubeconfig)
        .env("AWS_ENDPOINT_URL", emulator_url)
        .env("AWS_ACCESS_KEY_ID", &access_key)
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", &h.region)
        .env("RUST_LOG", "info,iam_operator=debug,kube=warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log);
    Launched {
        child: spawn_from_long_lived_thread(command),
        pod_name: pod_name.unwrap_or_default().to_string(),
        access_key,
        log: log_path,
    }
}

/// The guardrails tests run under unless they bring their own: the
/// built-in rules, with existing roles granted everywhere.
pub fn test_guardrails() -> std::path::PathBuf {
    repo_dir().join("e2e/guardrails/tests.yaml")
}

/// Where the test command collects the emulator's call logs and the
/// operator launches they belong to (e2e/policy-proof reads both).
pub const POLICY_PROOF_DIR_ENV: &str = "IAM_OPERATOR_POLICY_PROOF_DIR";

/// An access key of the operator's own for this launch, so the emulator's
/// call log tells its calls from the tests' own set-up calls (which use
/// `testing`); moto puts any key it has not issued in its default account,
/// the harness's. When the test command collects call logs, the launch's
/// flags are written beside them, keyed by the access key, so the policy
/// this operator needs can be rendered for exactly these flags.
fn record_launch(h: &Harness, launch: usize, extra_args: &[&str]) -> String {
    // 20 characters, as AWS access key ids are.
    let key_for = |attempt: usize| {
        format!(
            "AKIAOPERATOR{:04X}{:04X}",
            (std::process::id() as usize + attempt) & 0xFFFF,
            launch & 0xFFFF
        )
    };
    let Some(dir) = std::env::var_os(POLICY_PROOF_DIR_ENV) else {
        return key_for(0);
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("policy proof directory");
    // Process ids come round again in a long test run (two test binaries
    // once shared one, and the proof judged one's calls by the other's
    // flags): a key is claimed by creating its launch record, so no two
    // launches of the run share it.
    let (key, mut record_file) = (0..)
        .find_map(|attempt| {
            let key = key_for(attempt);
            let path = dir.join(format!("launch-{key}.json"));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(file) => Some((key, file)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                Err(e) => panic!("create the launch record: {e}"),
            }
        })
        .expect("a free access key");
    let cluster = extra_args
        .iter()
        .position(|a| *a == "--cluster-name")
        .and_then(|i| extra_args.get(i + 1))
        .map_or(h.cluster_name.as_str(), |c| *c);
    let record = serde_json::json!({
        "accessKeyId": key,
        "clusterName": cluster,
        "region": h.region,
        "accountId": h.account_id,
        "args": launch_args(extra_args, &dir, &key),
    });
    std::io::Write::write_all(
        &mut record_file,
        serde_json::to_string_pretty(&record)
            .expect("launch record serialises")
            .as_bytes(),
    )
    .expect("write the launch record");
    key
}

/// The flags that decide the operator's AWS policy, as this launch has
/// them: the test's own, and the default guardrails when it brings none. A
/// test's own guardrails file is copied as it is at launch: the test may
/// edit it later, and its harness directory is gone when the proof runs.
fn launch_args(extra_args: &[&str], dir: &std::path::Path, key: &str) -> Vec<String> {
    let mut args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
    if let Some(i) = args.iter().position(|a| a == "--guardrails-file")
        && let Some(path) = args.get_mut(i + 1)
    {
        let copy = dir.join(format!("guardrails-{key}.yaml"));
        std::fs::copy(&*path, &copy).expect("copy the launch's guardrails");
        *path = copy.display().to_string();
    }
    if !extra_args.contains(&"--guardrails-file") {
        args.push("--guardrails-file".into());
        args.push(test_guardrails().display().to_string());
    }
    args
}

/// Polls `condition` until it holds; for facts no watch can wait on (the
/// emulator's call log). Bounded, so a broken operator fails the test.
pub fn eventually<T>(what: &str, timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
