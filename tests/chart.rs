//! The Helm chart (charts/iam-operator) and the kustomize base (config/base),
//! rendered by helm and kustomize built from their Go modules (e2e/helm):
//! `helm lint` passes, every rendering is accepted by the harness's real API
//! server (applied, not only dry-run; the Deployment never runs, there is no
//! kubelet), and the kustomize base equals the chart's default rendering.
//! The harness runs every e2e test's operator with a token of the
//! ServiceAccount of that base, so its RBAC is proven by all of them; the
//! namespaced rendering is proven here the same way.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use support::operator::{Identity, install, start_with_identity};
use support::{Harness, harness, isa_manifest, repo_dir};

struct Tools {
    helm: PathBuf,
    kustomize: PathBuf,
}

fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let paths = support::harness_tools("chart-tools");
        let path = |key: &str| PathBuf::from(paths[key].as_str().expect("tool path"));
        Tools {
            helm: path("helm"),
            kustomize: path("kustomize"),
        }
    })
}

fn chart_dir() -> PathBuf {
    repo_dir().join("charts/iam-operator")
}

fn run(program: &Path, args: &[&str]) -> String {
    // helm keeps caches and config under HOME; a scratch HOME keeps the
    // test from reading or writing the user's.
    let home = std::env::temp_dir().join("iam-operator-chart-test-home");
    std::fs::create_dir_all(&home).expect("scratch HOME");
    let out = Command::new(program)
        .args(args)
        .env("HOME", &home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {} failed:\n{}{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `helm template` of the chart, CRDs included, as a release `release` in
/// `namespace` with these `--set` values and values files.
fn render(release: &str, namespace: &str, sets: &[&str], files: &[&Path]) -> String {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        release,
        chart.to_str().expect("UTF-8 path"),
        "--namespace",
        namespace,
        "--include-crds",
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    for file in files {
        args.extend(["--values", file.to_str().expect("UTF-8 path")]);
    }
    run(&tools().helm, &args)
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).expect("YAML");
            serde_json::to_value(value).expect("YAML as JSON")
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn key(doc: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        s(&doc["kind"]),
        s(&doc["metadata"]["namespace"]),
        s(&doc["metadata"]["name"]),
    )
}

/// Whole numbers as integers: the generated CRDs say `maximum: 43200.0`
/// and kustomize writes it back as `43200`, which is the same schema.
fn whole_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15) {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// The first place two documents differ, as a path and both values.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let null = Value::Null;
                first_difference(
                    &format!("{path}.{k}"),
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(&format!("{path}[{i}]"), p, q)),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} != {b}")),
    }
}

/// Documents sorted by kind, namespace and name, without the two labels only
/// Helm sets, so a Helm rendering and a kustomize build can be compared.
fn normalised(mut docs: Vec<Value>) -> Vec<Value> {
    docs.iter_mut().for_each(whole_numbers);
    for doc in &mut docs {
        if let Some(labels) = doc["metadata"]["labels"].as_object_mut() {
            labels.remove("helm.sh/chart");
            labels.remove("app.kubernetes.io/managed-by");
        }
    }
    docs.sort_by_key(key);
    docs
}

fn kinds(docs: &[Value]) -> Vec<(String, String, String)> {
    docs.iter().map(key).collect()
}

fn apply(h: &Harness, yaml: &str) {
    // Server-side apply: the API server validates every object against its
    // schema (and the CRDs the harness already has are re-applied unchanged).
    let out = h.kubectl_output(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=chart-test",
            "-f",
            "-",
        ],
        Some(yaml),
    );
    assert!(
        out.status.success(),
        "kubectl apply of the rendered chart failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn to_yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_yaml::to_string(d).expect("YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// (apiGroup, resource, verb) triples a set of RBAC rules grants, names
/// ignored (a rule limited to one Lease still grants the verb on leases).
fn grants(rules: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in rules.as_array().expect("rules") {
        let list = |field: &str| -> Vec<String> {
            rule[field]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().expect("string").to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        for group in list("apiGroups") {
            for resource in list("resources") {
                for verb in list("verbs") {
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

#[test]
fn chart_lints_renders_applies_and_matches_kustomize_and_rbac() {
    let Some(h) = harness() else { return };
    let chart = chart_dir();
    let chart = chart.to_str().expect("UTF-8 path");

    run(
        &tools().helm,
        &["lint", "--strict", chart, "--set", "clusterName=my-cluster"],
    );

    // The default rendering, as README's install names it.
    let default = documents(&render(
        "iam-operator",
        "iam-operator",
        &["clusterName=my-cluster"],
        &[],
    ));
    // Restarting workloads is granted only when asked for.
    let restart_grants: BTreeSet<(String, String, String)> = [
        ("apps", "replicasets", "get"),
        ("apps", "deployments", "patch"),
        ("apps", "statefulsets", "patch"),
        ("apps", "daemonsets", "patch"),
    ]
    .iter()
    .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
    .collect();
    let role_grants = |docs: &[Value]| -> BTreeSet<(String, String, String)> {
        docs.iter()
            .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
            .flat_map(|d| grants(&d["rules"]))
            .collect()
    };
    assert!(role_grants(&default).is_disjoint(&restart_grants));
    let restarting = documents(&render(
        "iam-operator",
        "iam-operator",
        &["clusterName=my-cluster", "restartStalePods=true"],
        &[],
    ));
    assert!(
        role_grants(&restarting).is_superset(&restart_grants),
        "restartStalePods=true grants what restarting needs"
    );

    // config/base builds to the same objects, plus its Namespace (Helm's
    // --create-namespace makes that one).
    let base = repo_dir().join("config/base");
    let built = documents(&run(
        &tools().kustomize,
        &["build", base.to_str().expect("UTF-8 path")],
    ));
    let (namespaces, built): (Vec<Value>, Vec<Value>) =
        built.into_iter().partition(|d| d["kind"] == "Namespace");
    assert_eq!(namespaces.len(), 1, "config/base has one Namespace");
    assert_eq!(namespaces[0]["metadata"]["name"], "iam-operator");
    let (default, built) = (normalised(default.clone()), normalised(built));
    assert_eq!(
        kinds(&built),
        kinds(&default),
        "config/base and the chart render different objects"
    );
    for (b, d) in built.iter().zip(&default) {
        if let Some(difference) = first_difference("", b, d) {
            panic!(
                "config/base differs from the chart in {:?} at {difference}",
                key(d)
            );
        }
    }

    for binding in default
        .iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding" || d["kind"] == "RoleBinding")
    {
        for subject in binding["subjects"].as_array().expect("subjects") {
            assert_eq!(subject["kind"], "ServiceAccount", "{binding}");
        }
    }

    // The default rendering, applied for real in a namespace of its own.
    let ns = h.fresh_namespace("chart");
    apply(h, &render(&ns, &ns, &["clusterName=my-cluster"], &[]));
    let deployment = h.kubectl_json(&[
        "-n",
        &ns,
        "get",
        "deployment",
        &format!("{ns}-iam-operator"),
    ]);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );

    // Every option at once: one watched namespace (Roles there), IRSA for
    // the operator, three replicas (a PodDisruptionBudget), the example
    // guardrails, a ServiceMonitor, each flag's value.
    let watched = h.fresh_namespace("chart-watched");
    let release = h.fresh_namespace("chart-full");
    let guardrails =
        std::fs::read_to_string(repo_dir().join("examples/guardrails.yaml")).expect("guardrails");
    let guardrails: serde_yaml::Value = serde_yaml::from_str(&guardrails).expect("guardrails YAML");
    let mut values = serde_yaml::Mapping::new();
    values.insert("guardrails".into(), guardrails);
    let values_file = std::env::temp_dir().join(format!("{release}-values.yaml"));
    std::fs::write(&values_file, serde_yaml::to_string(&values).expect("YAML")).expect("values");
    let watch = format!("watchNamespaces[0]={watched}");
    let full = render(
        &release,
        &release,
        &[
            "clusterName=my-cluster",
            "awsRegion=eu-west-1",
            "oidcIssuer=https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE",
            "awsAccountId=123456789012",
            "roleNamePrefix=apps-",
            "rolePath=/apps/",
            "permissionsBoundary=arn:aws:iam::123456789012:policy/apps-boundary",
            "resyncSeconds=300",
            "terminalRetrySeconds=60",
            "terminalRetryCapSeconds=900",
            "maxConcurrentReconciles=4",
            "logFormat=json",
            "podIdentityAgent=self-managed",
            "manageOidcProvider=true",
            &watch,
            "replicas=3",
            "serviceAccount.roleArn=arn:aws:iam::123456789012:role/iam-operator",
            "metrics.serviceMonitor.enabled=true",
            "leaderElection.leaseName=iam-operator-test",
        ],
        &[&values_file],
    );
    let docs = documents(&full);
    let has = |kind: &str, namespace: &str| {
        docs.iter()
            .any(|d| d["kind"] == kind && d["metadata"]["namespace"] == namespace)
    };
    assert!(has("Role", &watched) && has("RoleBinding", &watched));
    assert!(has("Role", &release), "the Lease Role");
    assert!(has("PodDisruptionBudget", &release));
    assert!(has("ServiceMonitor", &release));
    // Moved into Roles, not dropped: the same grants as the default.
    let all_grants = |docs: &[Value]| -> BTreeSet<_> {
        docs.iter()
            .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
            .flat_map(|d| grants(&d["rules"]))
            .collect()
    };
    assert_eq!(all_grants(&docs), all_grants(&default));
    let cluster_role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("ClusterRole");
    assert_eq!(
        grants(&cluster_role["rules"]),
        BTreeSet::from([("".into(), "namespaces".into(), "get".into())]),
        "with one watched namespace only Namespace reads stay cluster-wide"
    );
    // The harness has no Prometheus Operator CRDs; everything else applies.
    let applicable: Vec<Value> = docs
        .into_iter()
        .filter(|d| d["kind"] != "ServiceMonitor")
        .collect();
    apply(h, &to_yaml(&applicable));
    let sa = h.kubectl_json(&[
        "-n",
        &release,
        "get",
        "serviceaccount",
        &format!("{release}-iam-operator"),
    ]);
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/iam-operator"
    );
    let cm = h.kubectl_json(&[
        "-n",
        &release,
        "get",
        "configmap",
        &format!("{release}-iam-operator-guardrails"),
    ]);
    let rendered_guardrails = cm["data"]["guardrails.yaml"].as_str().expect("guardrails");
    iam_operator::policy::guardrails::Guardrails::parse(rendered_guardrails)
        .expect("the rendered guardrails parse as the operator reads them");
    let _ = std::fs::remove_file(values_file);

    // The operator itself takes the Deployment's environment: every flag's
    // twin parses and validates (--print-aws-policy parses them all, reads
    // the guardrails, and exits without calling AWS or Kubernetes).
    let deployment = applicable
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("Deployment");
    let guardrails_file = std::env::temp_dir().join(format!("{release}-guardrails.yaml"));
    std::fs::write(&guardrails_file, rendered_guardrails).expect("guardrails file");
    let mut operator = Command::new(env!("CARGO_BIN_EXE_iam-operator"));
    operator.env_clear().arg("--print-aws-policy");
    for var in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
    {
        let name = var["name"].as_str().expect("env name");
        let Some(value) = var["value"].as_str() else {
            continue; // downward API: only the kubelet fills these
        };
        let value = match name {
            "IAM_OPERATOR_GUARDRAILS_FILE" => guardrails_file.to_str().expect("UTF-8").into(),
            _ => value.replace("$(POD_IP)", "10.0.0.7"),
        };
        operator.env(name, value);
    }
    let out = operator.output().expect("run iam-operator");
    assert!(
        out.status.success(),
        "iam-operator refused the chart's environment: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy: Value = serde_json::from_slice(&out.stdout).expect("the policy is JSON");
    assert!(
        policy.to_string().contains("role/apps/apps-"),
        "the chart's rolePath and roleNamePrefix reach the operator: {policy}"
    );
    assert!(
        !policy.to_string().contains("eks:DescribeAddon"),
        "podIdentityAgent=self-managed reaches the operator, whose policy then reads no add-on: {policy}"
    );
    assert!(
        policy
            .to_string()
            .contains("oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE")
            && policy
                .to_string()
                .contains("iam:CreateOpenIDConnectProvider"),
        "manageOidcProvider and oidcIssuer reach the operator, whose policy then creates exactly that provider: {policy}"
    );
    let _ = std::fs::remove_file(guardrails_file);
}

#[test]
fn chart_default_guardrails_parse() {
    // The ConfigMap's default document is what the operator reads when the
    // platform sets no guardrails: it must mean the built-in rules only.
    if harness().is_none() {
        return;
    }
    let docs = documents(&render(
        "iam-operator",
        "iam-operator",
        &["clusterName=my-cluster"],
        &[],
    ));
    let cm = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("ConfigMap");
    let text = cm["data"]["guardrails.yaml"]
        .as_str()
        .expect("guardrails.yaml");
    iam_operator::policy::guardrails::Guardrails::parse(text).expect("default guardrails parse");
}

/// With one watched namespace the chart grants Roles there instead of a
/// ClusterRole: an operator holding a token of that rendering's
/// ServiceAccount, and nothing else, creates, annotates, reports and
/// deletes as it does with the default rendering.
#[test]
fn the_namespaced_charts_credentials_are_enough() {
    let Some(h) = harness() else { return };
    install(h);
    let watched = h.fresh_namespace("chart-creds-watched");
    let release = h.fresh_namespace("chart-creds");
    let cluster = format!("clusterName={}", h.cluster_name);
    let watch = format!("watchNamespaces[0]={watched}");
    apply(h, &render(&release, &release, &[&cluster, &watch], &[]));
    let service_account = format!("{release}-iam-operator");
    let token = h.kubectl(&[
        "create",
        "token",
        &service_account,
        "-n",
        &release,
        "--duration=1h",
    ]);
    let mut kubeconfig: Value = serde_json::from_str(
        &std::fs::read_to_string(&h.operator_kubeconfig).expect("operator kubeconfig"),
    )
    .expect("kubeconfig JSON");
    kubeconfig["users"][0]["user"] = serde_json::json!({ "token": token.trim() });
    let kubeconfig_path = h.dir.join(format!("{release}.kubeconfig"));
    std::fs::write(&kubeconfig_path, kubeconfig.to_string()).expect("write kubeconfig");

    let mut operator = start_with_identity(
        h,
        &Identity {
            kubeconfig: &kubeconfig_path,
            namespace: &release,
        },
        // The chart's Lease Role names the one Lease of a deployment.
        &[
            "--watch-namespaces",
            &watched,
            "--leader-election-lease-name",
            "iam-operator",
        ],
    );
    h.apply(
        &watched,
        &isa_manifest("scoped", "  serviceAccount: {create: true}\n"),
    );
    h.wait_ready("isa/scoped", &watched);
    let sa = h.kubectl_json(&["-n", &watched, "get", "serviceaccount", "scoped"]);
    assert!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
            .as_str()
            .is_some_and(|arn| arn.contains(":role/")),
        "{sa}"
    );
    assert!(
        !h.event_types(&watched, "scoped", "CreateRole").is_empty(),
        "the operator wrote its Events"
    );
    h.kubectl(&["-n", &watched, "delete", "isa", "scoped", "--timeout=60s"]);
    let left = h.kubectl(&["-n", &watched, "get", "serviceaccounts", "-o", "name"]);
    assert!(!left.contains("serviceaccount/scoped"), "{left}");

    let _ = operator.child.kill();
    let _ = operator.child.wait();
    let log = std::fs::read_to_string(&operator.log).expect("operator log");
    assert!(!log.contains("forbidden"), "a request was refused:\n{log}");
}
