//! The local control plane and AWS emulator for integration tests, started
//! once per test binary through the project's one start command
//! (`e2e/harness.py up`), and the small clients tests use on it.
//!
//! The harness runs with `--exit-on-stdin-eof` and its stdin is a pipe held
//! by this process, so it stops and removes its files when the test binary
//! exits for any reason, a panic or a kill included.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use serde::Deserialize;
use serde_json::Value;

pub mod aws;
pub mod operator;

pub const E2E_ENV: &str = "IAM_OPERATOR_E2E";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Harness {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    /// A TokenRequest token of the ServiceAccount config/base (the chart's
    /// default rendering) installs, bound by its RBAC and nothing else.
    pub operator_kubeconfig: PathBuf,
    /// How the operator's requests appear in the audit log.
    pub operator_user: String,
    /// The namespace of that ServiceAccount, where its Lease may live.
    pub operator_namespace: String,
    pub kubectl: PathBuf,
    /// The apiserver's audit log (one JSON event per request).
    pub audit_log: PathBuf,
    pub apiserver_url: String,
    pub issuer: String,
    pub emulator_url: String,
    pub cluster_name: String,
    pub region: String,
    pub account_id: String,
    pub oidc_provider_arn: Option<String>,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();
static HARNESS_PROCESS: Mutex<Vec<Child>> = Mutex::new(Vec::new());
static HARNESS_ARGS: OnceLock<Vec<String>> = OnceLock::new();

/// The role name the operator generates for an object in this harness's
/// cluster (`name` with the kind's marker, such as `_pod-identity`).
pub fn generated_role_name(h: &Harness, namespace: &str, name: &str) -> String {
    iam_operator::policy::role_name(
        "",
        &format!("{}-{}", h.cluster_name, h.region),
        namespace,
        name,
    )
}

/// Tools the harness builds and caches: `e2e/harness.py <command>` prints
/// their paths as JSON.
pub fn harness_tools(command: &str) -> Value {
    let out = Command::new("python3")
        .arg(repo_dir().join("e2e/harness.py"))
        .arg(command)
        .output()
        .unwrap_or_else(|e| panic!("run e2e/harness.py {command}: {e}"));
    assert!(
        out.status.success(),
        "e2e/harness.py {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("e2e/harness.py {command} prints JSON: {e}"))
}

/// Prints a measured figure and, in the test command, keeps it for the
/// summary it prints after the run (a passing test's output is hidden).
pub fn figure(line: &str) {
    println!("{line}");
    if let Some(dir) = std::env::var_os(operator::POLICY_PROOF_DIR_ENV) {
        use std::io::Write;
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(&dir).join("figures.txt"))
        {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// An IamServiceAccount manifest: `spec_lines` indented under `spec:`.
pub fn isa_manifest(name: &str, spec_lines: &str) -> String {
    format!(
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {{name: {name}}}\nspec:\n{spec_lines}"
    )
}

pub fn repo_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Extra `harness.py up` flags for this test binary; call before the first
/// `harness()`.
pub fn harness_args(args: &[&str]) {
    let _ = HARNESS_ARGS.set(args.iter().map(|a| a.to_string()).collect());
}

/// The shared harness, or `None` (with a note on stderr) when integration
/// tests were not asked for. The test command always asks for them.
pub fn harness() -> Option<&'static Harness> {
    if std::env::var_os(E2E_ENV).is_none() {
        eprintln!(
            "skipped: set {E2E_ENV}=1 (the test command does) to run tests against the harness"
        );
        return None;
    }
    Some(HARNESS.get_or_init(|| start_harness(&HARNESS_ARGS.get().cloned().unwrap_or_default())))
}

/// Another harness beside the shared one (its own apiserver and emulator),
/// stopped when the test binary exits.
pub fn another_harness(args: &[&str]) -> Harness {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    start_harness(&args)
}

fn start_harness(args: &[String]) -> Harness {
    let mut child = Command::new("python3")
        .arg(repo_dir().join("e2e/harness.py"))
        .args(["up", "--exit-on-stdin-eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start e2e/harness.py");
    let stdout = child.stdout.take().expect("harness stdout");
    let mut lines = BufReader::new(stdout).lines();
    let info_path = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(path) = line.strip_prefix("harness ready ") {
                    break PathBuf::from(path);
                }
            }
            _ => panic!("harness exited before it was ready: {:?}", child.wait()),
        }
    };
    let text = std::fs::read_to_string(&info_path).expect("read harness.json");
    let harness: Harness = serde_json::from_str(&text).expect("parse harness.json");
    HARNESS_PROCESS.lock().expect("harness lock").push(child);
    harness
}

impl Harness {
    /// Runs the harness's kubectl as admin; panics with its stderr on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args, None);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        let Some(input) = stdin else {
            return cmd.output().expect("run kubectl");
        };
        use std::io::Write;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("kubectl stdin")
            .write_all(input.as_bytes())
            .expect("write kubectl stdin");
        child.wait_with_output().expect("wait for kubectl")
    }

    pub fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl printed JSON")
    }

    /// A namespace of its own for one test: without a controller-manager,
    /// deleted namespaces never finish terminating, so tests never share or
    /// delete them.
    pub fn fresh_namespace(&self, prefix: &str) -> String {
        let suffix: u32 = std::process::id()
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .subsec_nanos());
        let name = format!("{prefix}-{suffix:x}");
        self.kubectl(&["create", "namespace", &name]);
        name
    }

    pub async fn kube_client(&self) -> kube::Client {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kubeconfig to config");
        kube::Client::try_from(config).expect("kube client")
    }

    pub async fn aws_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.emulator_url)
            .region(aws_config::Region::new(self.region.clone()))
            .credentials_provider(aws_sdk_iam::config::Credentials::new(
                "testing", "testing", None, None, "harness",
            ))
            .load()
            .await
    }

    pub fn emulator(&self) -> Emulator {
        Emulator {
            url: self.emulator_url.clone(),
        }
    }
}

/// The emulator's control endpoints (faults and the call log).
pub struct Emulator {
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Call {
    pub seq: u64,
    pub service: String,
    pub operation: String,
    pub status: u16,
    pub fault: Option<String>,
    /// The IAM role name, or EKS cluster, the call was about.
    pub target: Option<String>,
    /// When the emulator received it (seconds since the epoch).
    #[serde(default)]
    pub time: f64,
    /// Whose call it was: each operator launch signs with its own key.
    #[serde(default, rename = "accessKeyId")]
    pub access_key: Option<String>,
}

impl Emulator {
    pub fn calls_since(&self, seq: u64) -> Vec<Call> {
        let body: Value = ureq::get(format!("{}/_emulator/calls?since={seq}", self.url))
            .call()
            .expect("GET call log")
            .body_mut()
            .read_json()
            .expect("call log JSON");
        serde_json::from_value(body["calls"].clone()).expect("call log entries")
    }

    /// The sequence number of the last logged call, to read only later ones.
    pub fn mark(&self) -> u64 {
        let body: Value = ureq::get(format!("{}/_emulator/calls/last", self.url))
            .call()
            .expect("GET last call")
            .body_mut()
            .read_json()
            .expect("last call JSON");
        body["seq"].as_u64().expect("seq")
    }

    pub fn set_faults(&self, rules: Value) {
        ureq::put(format!("{}/_emulator/faults", self.url))
            .send_json(rules)
            .expect("PUT faults");
    }

    pub fn clear_faults(&self) {
        ureq::delete(format!("{}/_emulator/faults", self.url))
            .call()
            .expect("DELETE faults");
    }

    /// How often each fault rule has fired; a delayed request counts as
    /// soon as it arrives, while it is still in flight.
    pub fn faults_fired(&self) -> Vec<u64> {
        let body: Value = ureq::get(format!("{}/_emulator/faults", self.url))
            .call()
            .expect("GET faults")
            .body_mut()
            .read_json()
            .expect("faults JSON");
        body["rules"]
            .as_array()
            .map(|rules| rules.iter().filter_map(|r| r["fired"].as_u64()).collect())
            .unwrap_or_default()
    }

    /// Makes IAM's own reads of a new role answer NoSuchEntity for `ms`
    /// milliseconds after it was created, as IAM's eventual consistency may.
    pub fn set_iam_read_lag(&self, ms: u64) {
        ureq::put(format!("{}/_emulator/propagation", self.url))
            .send_json(serde_json::json!({ "roleVisibleToIamAfterMs": ms }))
            .expect("PUT propagation");
    }

    /// Puts add-on `addon` of the harness's cluster in `status` (an EKS
    /// `AddonStatus`), installing it when absent.
    pub fn put_addon(&self, h: &Harness, addon: &str, status: &str) {
        ureq::put(format!(
            "{}/_emulator/clusters/{}/addons/{addon}",
            self.url, h.cluster_name
        ))
        .send_json(serde_json::json!({ "status": status, "region": h.region }))
        .expect("PUT add-on");
    }

    /// Removes add-on `addon` of the harness's cluster.
    pub fn remove_addon(&self, h: &Harness, addon: &str) {
        ureq::delete(format!(
            "{}/_emulator/clusters/{}/addons/{addon}",
            self.url, h.cluster_name
        ))
        .force_send_body()
        .send_json(serde_json::json!({ "region": h.region }))
        .expect("DELETE add-on");
    }

    /// Makes EKS report `issuer` as the harness's cluster's OIDC issuer, as
    /// it would for a cluster of the same name made again.
    pub fn set_cluster_issuer(&self, h: &Harness, issuer: &str) {
        ureq::post(format!("{}/_emulator/clusters", self.url))
            .send_json(serde_json::json!({
                "name": h.cluster_name,
                "region": h.region,
                "issuer": issuer,
            }))
            .expect("POST cluster");
    }

    /// Makes a new IAM role invisible to EKS for `ms` milliseconds, as IAM
    /// propagation does.
    pub fn set_propagation_delay(&self, ms: u64) {
        ureq::put(format!("{}/_emulator/propagation", self.url))
            .send_json(serde_json::json!({ "roleVisibleToEksAfterMs": ms }))
            .expect("PUT propagation");
    }
}

/// The object's `Ready` condition, or `null` when it has none yet.
pub fn ready_condition(object: &Value) -> Value {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap_or_default()
}

/// A port nothing listens on now, for an operator's endpoints.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// What `/metrics` at `address` (`host:port`) shows now.
pub fn scrape(address: &str) -> String {
    ureq::get(format!("http://{address}/metrics"))
        .call()
        .expect("GET /metrics")
        .body_mut()
        .read_to_string()
        .expect("metrics text")
}

/// The value of one series, by its full name and labels.
pub fn series_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// IAM calls that change something (everything but reads).
pub fn is_write(call: &Call) -> bool {
    !(call.operation.starts_with("Get")
        || call.operation.starts_with("List")
        || call.operation.starts_with("Describe"))
}

impl Harness {
    pub fn apply(&self, namespace: &str, yaml: &str) {
        let out = self.kubectl_output(&["apply", "-n", namespace, "-f", "-"], Some(yaml));
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Polls until the IamServiceAccount `name` is Ready at `generation`.
    pub fn wait_isa_ready_at(&self, namespace: &str, name: &str, generation: i64) {
        operator::eventually(
            &format!("isa/{name} Ready at generation {generation}"),
            std::time::Duration::from_secs(90),
            || {
                let s = &self.kubectl_json(&["get", "isa", name, "-n", namespace])["status"];
                (s["observedGeneration"] == generation && s["conditions"][0]["status"] == "True")
                    .then_some(())
            },
        );
    }

    /// Waits on a watch (kubectl wait) for the Ready condition's reason.
    /// The types (`Normal`, `Warning`) of the Events of `reason` about the
    /// object `name`.
    pub fn event_types(&self, namespace: &str, name: &str, reason: &str) -> Vec<String> {
        let list = self.kubectl_json(&[
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            &format!("involvedObject.name={name},reason={reason}"),
        ]);
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["type"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// One field of an object, by JSONPath.
    pub fn field(&self, resource: &str, namespace: &str, jsonpath: &str) -> String {
        self.kubectl(&[
            "get",
            resource,
            "-n",
            namespace,
            "-o",
            &format!("jsonpath={jsonpath}"),
        ])
        .trim()
        .to_string()
    }

    pub fn wait_for_reason(&self, resource: &str, namespace: &str, reason: &str) {
        let condition =
            format!("--for=jsonpath={{.status.conditions[?(@.type==\"Ready\")].reason}}={reason}");
        let out = self.kubectl_output(
            &[
                "wait",
                &condition,
                "--timeout=90s",
                "-n",
                namespace,
                resource,
            ],
            None,
        );
        if !out.status.success() {
            let current =
                self.kubectl_output(&["get", "-n", namespace, resource, "-o", "yaml"], None);
            panic!(
                "{resource} never reached reason {reason}: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&current.stdout)
            );
        }
    }

    pub fn wait_ready(&self, resource: &str, namespace: &str) {
        self.wait_for_reason(resource, namespace, "Synced");
    }

    /// The Ready condition of `resource` (`kind/name`) as (status, reason,
    /// message).
    pub fn ready_of(&self, resource: &str, namespace: &str) -> (String, String, String) {
        let condition = ready_condition(&self.kubectl_json(&["-n", namespace, "get", resource]));
        let text = |key: &str| condition[key].as_str().unwrap_or_default().to_string();
        (text("status"), text("reason"), text("message"))
    }

    /// Waits up to two minutes until Ready has `reason`; with
    /// `never_ready`, fails if Ready is True on the way.
    pub fn until_reason(
        &self,
        resource: &str,
        namespace: &str,
        reason: &str,
        never_ready: bool,
    ) -> (String, String, String) {
        let started = std::time::Instant::now();
        loop {
            let seen = self.ready_of(resource, namespace);
            if seen.1 == reason {
                return seen;
            }
            assert!(
                !(never_ready && seen.0 == "True"),
                "{resource} Ready while waiting for {reason}: {seen:?}"
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(120),
                "{resource} never reached {reason}: {seen:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }
}

impl Harness {
    /// How `user` read the objects that existed when each of its watches
    /// started, since `mark`: (resource, "streamed" or "listed"), from the
    /// API server's audit log.
    pub fn initial_reads_since(&self, mark: usize, user: &str) -> Vec<(String, String)> {
        self.audit_events_since(mark)
            .into_iter()
            .filter(|event| event["user"]["username"] == user)
            .filter_map(|event| {
                let uri = event["requestURI"].as_str().unwrap_or_default();
                let how = match event["verb"].as_str().unwrap_or_default() {
                    "watch" if uri.contains("sendInitialEvents=true") => "streamed",
                    // A list of one is the start's check that the CRD
                    // is installed, not a watch's initial state.
                    "list" if !uri.contains("limit=1&") && !uri.ends_with("limit=1") => "listed",
                    _ => return None,
                };
                let resource = event["objectRef"]["resource"].as_str().unwrap_or_default();
                Some((resource.to_string(), how.to_string()))
            })
            .collect()
    }

    /// Every request the API server logged since `mark` (`audit_mark`).
    pub fn audit_events_since(&self, mark: usize) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.audit_log).expect("read audit log");
        text[mark..]
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .collect()
    }

    /// Where the audit log ends now; pass to `writes_since`.
    pub fn audit_mark(&self) -> usize {
        std::fs::read_to_string(&self.audit_log).map_or(0, |t| t.len())
    }

    /// Write requests (`verb objectRef`) `user` made in `namespace` since
    /// `mark`, from the apiserver's own audit log.
    pub fn writes_since(&self, mark: usize, user: &str, namespace: &str) -> Vec<String> {
        self.audit_events_since(mark)
            .into_iter()
            .filter(|event| {
                event["user"]["username"] == user && event["objectRef"]["namespace"] == namespace
            })
            .filter(|event| {
                ["create", "update", "patch", "delete"]
                    .contains(&event["verb"].as_str().unwrap_or_default())
            })
            .map(|event| {
                format!(
                    "{} {}/{} {}",
                    event["verb"].as_str().unwrap_or_default(),
                    event["objectRef"]["resource"].as_str().unwrap_or_default(),
                    event["objectRef"]["name"].as_str().unwrap_or_default(),
                    event["objectRef"]["subresource"]
                        .as_str()
                        .unwrap_or_default()
                )
            })
            .collect()
    }
}
