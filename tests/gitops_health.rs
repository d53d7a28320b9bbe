//! Health as GitOps tools read it, proven with their own code: objects in
//! every state are applied Flux-style with Flux's apply-and-wait library
//! (`e2e/gitops/cmd/flux-apply`: fluxcd/pkg/ssa and its kstatus poller),
//! a second apply must find no drift, and the live objects are then judged
//! by kstatus, by the CEL health checks of `config/gitops/flux-kustomization.yaml`
//! (Flux's own evaluator) and by the Argo CD Lua scripts of `config/gitops/`
//! (`e2e/gitops/cmd/lua-health`: gopher-lua, as Argo CD runs them).
//!
//! The emulator's propagation delay is global, and this binary is its only
//! user, so one test holds it.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;
use support::operator::ensure_operator;
use support::{Harness, harness, repo_dir};

/// One script for both kinds: they report alike.
const LUA: &str = "config/gitops/argocd-health.lua";
const ARGOCD_CM: &str = "config/gitops/argocd-cm.yaml";
const FLUX_KUSTOMIZATION: &str = "config/gitops/flux-kustomization.yaml";

/// How long Flux waits (a Kustomization's `spec.timeout`), and how long a
/// new role stays invisible to EKS: the delay outlasts the wait and the
/// second apply by a margin, so the binding is still waiting when judged.
const FLUX_TIMEOUT_S: u64 = 15;
const PROPAGATION_MS: u64 = 35_000;

#[test]
fn argocd_cm_embeds_the_lua_scripts_verbatim() {
    let cm: Value =
        serde_yaml::from_str(&read(ARGOCD_CM)).expect("config/gitops/argocd-cm.yaml is YAML");
    let data = cm["data"].as_object().expect("argocd-cm has data");
    let want = BTreeMap::from([
        (
            "resource.customizations.health.iam-operator.io_IamServiceAccount".to_string(),
            read(LUA),
        ),
        (
            "resource.customizations.health.iam-operator.io_PodIdentityBinding".to_string(),
            read(LUA),
        ),
    ]);
    let got: BTreeMap<String, String> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(
        got, want,
        "argocd-cm.yaml must embed exactly the .lua file beside it"
    );
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
}

#[test]
fn flux_and_argo_cd_read_every_state_right() {
    let Some(h) = harness() else { return };
    ensure_operator(h, &[]);
    let tools = Tools::build();
    let ns = h.fresh_namespace("gitops");
    let emulator = h.emulator();
    emulator.set_propagation_delay(PROPAGATION_MS);
    let _reset = ResetPropagation(h);

    let manifest = manifests(&ns);
    let file = h.dir.join(format!("gitops-{ns}.yaml"));
    std::fs::write(&file, &manifest).expect("write the manifest");
    let lines = tools.flux_apply(
        h,
        &[
            "--file",
            path(&file),
            "--namespace",
            &ns,
            "--timeout",
            &format!("{FLUX_TIMEOUT_S}s"),
            "--interval",
            "1s",
            "--reapply",
        ],
    );

    let by_phase = |phase: &str| -> BTreeMap<String, FluxLine> {
        lines
            .iter()
            .filter(|l| l.phase == phase)
            .map(|l| (format!("{}/{}", l.kind, l.name), l.clone()))
            .collect()
    };
    let applied = by_phase("apply");
    let statuses = by_phase("status");
    let reapplied = by_phase("reapply");
    let objects = [
        "ServiceAccount/app",
        "IamServiceAccount/app",
        "IamServiceAccount/created",
        "IamServiceAccount/no-sa",
        "PodIdentityBinding/propagating",
        "PodIdentityBinding/missing-role",
        "IamServiceAccount/admin",
    ];
    for object in objects {
        assert_eq!(
            applied.get(object).map(|l| l.action.as_str()),
            Some("created"),
            "{object} applied: {lines:#?}"
        );
    }

    // Conditions first, so that a wrong verdict below points at its cause.
    let live = |kind: &str, name: &str| h.kubectl_json(&["get", kind, name, "-n", &ns]);
    assert_conditions(&live("isa", "app"), "True", None, None);
    assert_conditions(&live("isa", "created"), "True", None, None);
    assert_conditions(
        &live("isa", "no-sa"),
        "False",
        Some("ServiceAccountNotFound"),
        None,
    );
    assert_conditions(
        &live("pib", "propagating"),
        "False",
        Some("WaitingForPropagation"),
        None,
    );
    assert_conditions(
        &live("pib", "missing-role"),
        "False",
        None,
        Some("RoleNotFound"),
    );
    assert_conditions(
        &live("isa", "admin"),
        "False",
        None,
        Some("GuardrailViolation"),
    );

    let expected_flux = [
        ("ServiceAccount/app", "Current"),
        ("IamServiceAccount/app", "Current"),
        ("IamServiceAccount/created", "Current"),
        ("IamServiceAccount/no-sa", "InProgress"),
        ("PodIdentityBinding/propagating", "InProgress"),
        ("PodIdentityBinding/missing-role", "Failed"),
        ("IamServiceAccount/admin", "Failed"),
    ];
    for (object, want) in expected_flux {
        let got = statuses.get(object);
        assert_eq!(
            got.map(|l| l.status.as_str()),
            Some(want),
            "Flux's verdict on {object}: {got:?}"
        );
    }
    let wait = lines
        .iter()
        .find(|l| l.phase == "wait")
        .expect("a wait line");
    // Flux's wait ends in one of two ways, both a failed Kustomization: at
    // the timeout, naming what still waits, or earlier, once ssa's poller
    // has a round where every status it holds is Current or Failed (it
    // polls objects one by one), naming what stalled.
    let error = wait.error.as_deref().unwrap_or_default();
    let timed_out = error.starts_with("timeout waiting for")
        && error.contains("no-sa")
        && error.contains("propagating");
    let failed_early = error.starts_with("failed early due to stalled resources")
        && error.contains("missing-role")
        && error.contains("admin")
        && !error.contains("no-sa")
        && !error.contains("propagating");
    assert!(
        timed_out || failed_early,
        "Flux's wait must fail on the waiting or the stalled objects: {wait:?}"
    );

    // The second apply is Flux's next interval: the operator's annotations
    // on the ServiceAccount Flux applied, and every status, are not drift.
    for object in objects {
        assert_eq!(
            reapplied.get(object).map(|l| l.action.as_str()),
            Some("unchanged"),
            "{object} drifted on the second apply: {lines:#?}"
        );
    }
    let sa = h.kubectl_json(&["get", "sa", "app", "-n", &ns]);
    assert!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
            .as_str()
            .is_some_and(|arn| arn.starts_with("arn:aws:iam::")),
        "the operator annotated the ServiceAccount Flux applied: {sa}"
    );

    // Each state as the three readers judge it, on the objects themselves.
    let work = h.dir.join(format!("gitops-objects-{ns}"));
    std::fs::create_dir_all(&work).expect("objects dir");
    // (state, object, [kstatus, Flux CEL, Argo CD], what Argo CD's message names)
    let mut cases: Vec<(String, Value, [&str; 3], &str)> = vec![
        (
            "ready (ServiceAccount from Git)".into(),
            live("isa", "app"),
            ["Current", "Current", "Healthy"],
            "Synced",
        ),
        (
            "ready (ServiceAccount created)".into(),
            live("isa", "created"),
            ["Current", "Current", "Healthy"],
            "Synced",
        ),
        (
            "ServiceAccountNotFound".into(),
            live("isa", "no-sa"),
            ["InProgress", "InProgress", "Progressing"],
            "ServiceAccountNotFound",
        ),
        (
            "WaitingForPropagation".into(),
            live("pib", "propagating"),
            ["InProgress", "InProgress", "Progressing"],
            "WaitingForPropagation",
        ),
        (
            "RoleNotFound".into(),
            live("pib", "missing-role"),
            ["Failed", "Failed", "Degraded"],
            "RoleNotFound",
        ),
        (
            "GuardrailViolation".into(),
            live("isa", "admin"),
            ["Failed", "Failed", "Degraded"],
            "GuardrailViolation",
        ),
    ];
    // An object as the API server stores it before the operator sees it:
    // a server-side dry-run create is the real apiserver's answer (CRD
    // defaults included) with no controller having looked at it.
    let unseen = dry_run_create(h, &ns, &isa("unseen", "serviceAccount: {create: true}"));
    assert_eq!(
        unseen["status"]["observedGeneration"], 0,
        "the CRD defaults status.observedGeneration to 0: {unseen}"
    );
    assert_eq!(unseen["metadata"]["generation"], 1, "{unseen}");
    cases.push((
        "not seen yet (dry-run create)".into(),
        unseen,
        ["InProgress", "InProgress", "Progressing"],
        "waiting for iam-operator",
    ));
    // Synthetic: a ready object whose spec just changed (generation bumped
    // by hand, status untouched), and one being deleted.
    let mut bumped = live("isa", "app");
    bumped["metadata"]["generation"] = (bumped["metadata"]["generation"]
        .as_i64()
        .expect("generation")
        + 1)
    .into();
    cases.push((
        "synthetic: new generation".into(),
        bumped,
        ["InProgress", "InProgress", "Progressing"],
        "waiting for iam-operator",
    ));
    let mut deleting = live("isa", "app");
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
    cases.push((
        "synthetic: being deleted".into(),
        deleting,
        // kstatus's own word for it; Flux waits on it as not Current.
        ["Terminating", "InProgress", "Progressing"],
        "being deleted",
    ));

    let mut summary = Vec::new();
    let mut wrong = Vec::new();
    for (i, (state, object, want, names)) in cases.iter().enumerate() {
        let file = work.join(format!("{i}.json"));
        std::fs::write(&file, object.to_string()).expect("write object");
        let got = tools.judge(&file, object);
        summary.push(format!(
            "{state} → kstatus {}, Flux CEL {}, Argo CD {}",
            got.kstatus, got.cel, got.argo.status
        ));
        if [
            got.kstatus.as_str(),
            got.cel.as_str(),
            got.argo.status.as_str(),
        ] != *want
        {
            wrong.push(format!("{state}: want {want:?}, got {got:?}"));
        }
        // What a person reads in Argo CD's UI says why.
        if !got.argo.message.contains(names) {
            wrong.push(format!(
                "{state}: Argo CD's message {:?} does not name {names:?}",
                got.argo.message
            ));
        }
    }
    println!("gitops health: {}", summary.join("; "));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The wait was a wait: once IAM has propagated, the binding becomes
    // ready without anyone touching it, and reads Current and Healthy.
    h.wait_ready("pib/propagating", &ns);
    let settled = live("pib", "propagating");
    let file = work.join("settled.json");
    std::fs::write(&file, settled.to_string()).expect("write object");
    let got = tools.judge(&file, &settled);
    assert_eq!(
        [
            got.kstatus.as_str(),
            got.cel.as_str(),
            got.argo.status.as_str()
        ],
        ["Current", "Current", "Healthy"],
        "{settled}"
    );
    println!(
        "gitops health: WaitingForPropagation, settled → kstatus {}, Flux CEL {}, Argo CD {}",
        got.kstatus, got.cel, got.argo.status
    );
}

/// Every state in one Kustomization, as a team would commit it.
fn manifests(ns: &str) -> String {
    let docs = [
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app}\n".to_string(),
        isa(
            "app",
            "policies: {managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]}",
        ),
        isa(
            "created",
            "serviceAccount: {create: true}\n  policies: {managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]}",
        ),
        // Waits until someone creates the ServiceAccount: in progress.
        isa(
            "no-sa",
            "serviceAccount: {name: not-created-yet, create: false}",
        ),
        // Waits until IAM has shown the new role to EKS: in progress.
        pib(
            "propagating",
            "serviceAccountName: propagating\n  role: {}\n  policies: {managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]}",
        ),
        // Only a change of the spec, or of AWS, can help: failed.
        pib(
            "missing-role",
            &format!(
                "serviceAccountName: missing-role\n  roleArn: arn:aws:iam::123456789012:role/no-such-role-{ns}"
            ),
        ),
        isa(
            "admin",
            "policies: {managed: [arn:aws:iam::aws:policy/AdministratorAccess]}",
        ),
    ];
    docs.join("---\n")
}

fn isa(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {{name: {name}}}\nspec:\n  {spec}\n"
    )
}

fn pib(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {{name: {name}}}\nspec:\n  {spec}\n"
    )
}

/// Ready's status, and the reasons of Reconciling and Stalled when each is
/// expected True (absent otherwise), as the kstatus contract has them.
fn assert_conditions(
    object: &Value,
    ready: &str,
    reconciling: Option<&str>,
    stalled: Option<&str>,
) {
    let conditions = object["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let find = |t: &str| conditions.iter().find(|c| c["type"] == t);
    let name = &object["metadata"]["name"];
    assert_eq!(
        find("Ready").map(|c| c["status"].clone()),
        Some(ready.into()),
        "{name} Ready: {object}"
    );
    for (kind, want) in [("Reconciling", reconciling), ("Stalled", stalled)] {
        let got = find(kind);
        match want {
            None => assert!(got.is_none(), "{name} has no {kind}: {object}"),
            Some(reason) => assert!(
                got.is_some_and(|c| c["status"] == "True" && c["reason"] == reason),
                "{name} {kind}=True with reason {reason}: {object}"
            ),
        }
    }
    assert_eq!(
        object["status"]["observedGeneration"], object["metadata"]["generation"],
        "{name} observed its generation: {object}"
    );
}

fn dry_run_create(h: &Harness, ns: &str, yaml: &str) -> Value {
    let out = h.kubectl_output(
        &[
            "create",
            "--dry-run=server",
            "-n",
            ns,
            "-o",
            "json",
            "-f",
            "-",
        ],
        Some(yaml),
    );
    assert!(
        out.status.success(),
        "dry-run create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("kubectl printed JSON")
}

struct ResetPropagation<'a>(&'a Harness);

impl Drop for ResetPropagation<'_> {
    fn drop(&mut self) {
        self.0.emulator().set_propagation_delay(0);
    }
}

#[derive(Debug, Clone, Deserialize)]
struct FluxLine {
    phase: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ArgoHealth {
    status: String,
    message: String,
}

#[derive(Debug)]
struct Verdicts {
    kstatus: String,
    cel: String,
    argo: ArgoHealth,
}

/// The Go programs of `e2e/gitops`, built (or found in `.cache/`) by the
/// harness.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tools {
    flux_apply: PathBuf,
    lua_health: PathBuf,
}

impl Tools {
    fn build() -> Tools {
        serde_json::from_value(support::harness_tools("gitops-tools"))
            .expect("gitops-tools names both tools")
    }

    fn flux_apply(&self, h: &Harness, args: &[&str]) -> Vec<FluxLine> {
        let out = Command::new(&self.flux_apply)
            .arg("--kubeconfig")
            .arg(&h.kubeconfig)
            .args(args)
            .output()
            .expect("run flux-apply");
        assert!(
            out.status.success(),
            "flux-apply {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// kstatus's generic rules, the shipped Flux CEL checks, and the
    /// shipped Argo CD script of the object's kind, each on `file`.
    fn judge(&self, file: &Path, object: &Value) -> Verdicts {
        let status_of = |extra: &[&str]| -> String {
            let out = Command::new(&self.flux_apply)
                .arg("--status-of")
                .arg(file)
                .args(extra)
                .output()
                .expect("run flux-apply --status-of");
            assert!(
                out.status.success(),
                "flux-apply --status-of {}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let line: FluxLine = serde_json::from_slice(&out.stdout).expect("one JSON line");
            line.status
        };
        let kstatus = status_of(&[]);
        let flux_kustomization = repo_dir().join(FLUX_KUSTOMIZATION);
        let cel = status_of(&["--health-check-exprs", path(&flux_kustomization)]);
        assert!(
            matches!(
                object["kind"].as_str(),
                Some("IamServiceAccount" | "PodIdentityBinding")
            ),
            "no Argo CD script for {:?}",
            object["kind"]
        );
        let out = Command::new(&self.lua_health)
            .arg(repo_dir().join(LUA))
            .arg(file)
            .output()
            .expect("run lua-health");
        assert!(
            out.status.success(),
            "lua-health {LUA}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let argo = serde_json::from_slice(&out.stdout).expect("lua-health prints JSON");
        Verdicts { kstatus, cel, argo }
    }
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_dir().join(relative))
        .unwrap_or_else(|e| panic!("read {relative}: {e}"))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
