//! A role trusts one OIDC issuer; the API server signs the cluster's tokens
//! with one (issue 14). When the issuer the operator would write differs
//! from the one the API server names in its discovery document, the object
//! is not Ready, says which two differ and how to fix it, and nothing is
//! written: from a stale `--oidc-issuer`, or from EKS reporting another
//! issuer for `--cluster-name` while the operator runs (read again, not
//! only at start).
//!
//! The second test changes the issuer EKS reports for the harness's
//! cluster: this file's tests hold `SERIAL`, and it is put back however
//! the test ends.

mod support;

use std::time::Instant;

use support::aws::{get_role, role_exists};
use support::operator::{Launched, install, start_as};
use support::{Harness, generated_role_name, harness, is_write};

const MISMATCH: &str = "ServiceAccountIssuerMismatch";

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Kills the operator and gives EKS the harness's issuer back.
struct Cleanup<'a> {
    h: &'a Harness,
    operator: Option<Launched>,
}

impl Cleanup<'_> {
    fn stop(&mut self) {
        if let Some(mut operator) = self.operator.take() {
            let _ = operator.child.kill();
            let _ = operator.child.wait();
        }
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.stop();
        self.h.emulator().set_cluster_issuer(self.h, &self.h.issuer);
    }
}

fn service_account_with_role(name: &str) -> String {
    format!(
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {{name: {name}}}\nspec:\n  serviceAccount: {{create: true}}\n  policies:\n    managed: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]\n"
    )
}

/// An issuer of the shape EKS gives, not the one this cluster signs with.
fn other_issuer(h: &Harness) -> String {
    format!(
        "https://oidc.eks.{}.amazonaws.com/id/5C3D0C0FFEE0000000000000000RECRE",
        h.region
    )
}

#[tokio::test]
async fn a_configured_issuer_the_api_server_does_not_sign_with_writes_nothing() {
    let Some(h) = harness() else { return };
    install(h);
    let _serial = SERIAL.lock().await;
    let ns = h.fresh_namespace("issuer-flag");
    let metrics_address = format!("127.0.0.1:{}", support::free_port());
    let stale = other_issuer(h);
    let mark = h.emulator().mark();
    let mut cleanup = Cleanup {
        h,
        operator: Some(start_as(
            h,
            "issuer-flag",
            &[
                "--watch-namespaces",
                &ns,
                "--oidc-issuer",
                &stale,
                "--metrics-address",
                &metrics_address,
            ],
        )),
    };
    let access_key = cleanup
        .operator
        .as_ref()
        .expect("running")
        .access_key
        .clone();

    h.apply(&ns, &service_account_with_role("app"));
    let (status, _, message) = h.until_reason("isa/app", &ns, MISMATCH, true);
    assert_eq!(status, "False");
    for words in [
        format!("signs ServiceAccount tokens with issuer {}", h.issuer),
        format!("--oidc-issuer is {stale}"),
        format!("Set --oidc-issuer to {}", h.issuer),
        "no role was written".to_string(),
    ] {
        assert!(message.contains(&words), "{words:?} not in {message:?}");
    }
    assert!(
        h.event_types(&ns, "app", MISMATCH)
            .contains(&"Warning".to_string()),
        "a Warning Event says why"
    );
    let wide = h.kubectl(&["-n", &ns, "get", "isa", "app", "-o", "wide"]);
    assert!(wide.contains(MISMATCH), "kubectl get -o wide: {wide}");
    let failures = support::series_value(
        &support::scrape(&metrics_address),
        r#"iam_operator_reconcile_failures_total{kind="IamServiceAccount",reason="ServiceAccountIssuerMismatch"}"#,
    );
    assert!(
        failures.is_some_and(|n| n >= 1.0),
        "failures by reason: {failures:?}"
    );
    let writes: Vec<_> = h
        .emulator()
        .calls_since(mark)
        .into_iter()
        .filter(|call| call.access_key.as_deref() == Some(access_key.as_str()) && is_write(call))
        .map(|call| call.operation)
        .collect();
    assert!(writes.is_empty(), "written to AWS: {writes:?}");
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    assert!(!role_exists(&iam, &generated_role_name(h, &ns, "app")).await);

    // The fix: the flag left out on EKS, so the issuer comes from there.
    cleanup.stop();
    let fixed = Instant::now();
    cleanup.operator = Some(start_as(
        h,
        "issuer-flag-fixed",
        &["--watch-namespaces", &ns],
    ));
    h.until_reason("isa/app", &ns, "Synced", false);
    support::figure(&format!(
        "issuer check: a stale --oidc-issuer refused with 0 AWS writes; Ready {:.1} s after the operator restarted without it",
        fixed.elapsed().as_secs_f64()
    ));
}

#[tokio::test]
async fn an_issuer_eks_reports_anew_is_read_again_and_checked() {
    let Some(h) = harness() else { return };
    install(h);
    let _serial = SERIAL.lock().await;
    let emulator = h.emulator();
    let ns = h.fresh_namespace("issuer-eks");
    let mut cleanup = Cleanup {
        h,
        operator: Some(start_as(
            h,
            "issuer-eks",
            &["--watch-namespaces", &ns, "--resync-seconds", "5"],
        )),
    };
    h.apply(&ns, &service_account_with_role("app"));
    h.until_reason("isa/app", &ns, "Synced", false);
    let role = generated_role_name(h, &ns, "app");
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    let trust_before = get_role(&iam, &role)
        .await
        .assume_role_policy_document()
        .unwrap_or_default()
        .to_string();

    // EKS now reports another issuer for --cluster-name (the name points at
    // a cluster made again elsewhere); the API server still signs with ours.
    let other = other_issuer(h);
    emulator.set_cluster_issuer(h, &other);
    let changed = Instant::now();
    let (status, _, message) = h.until_reason("isa/app", &ns, MISMATCH, false);
    let noticed = changed.elapsed();
    assert_eq!(status, "False");
    for words in [
        format!(
            "EKS cluster {} in {} reports OIDC issuer {other}",
            h.cluster_name, h.region
        ),
        format!("signs ServiceAccount tokens with issuer {}", h.issuer),
        "--cluster-name".to_string(),
    ] {
        assert!(message.contains(&words), "{words:?} not in {message:?}");
    }
    assert_eq!(
        get_role(&iam, &role)
            .await
            .assume_role_policy_document()
            .unwrap_or_default(),
        trust_before,
        "the running role's trust was rewritten for an issuer that signs nothing here"
    );

    // The fix: EKS reports this cluster's issuer again.
    emulator.set_cluster_issuer(h, &h.issuer);
    let fixed = Instant::now();
    h.until_reason("isa/app", &ns, "Synced", false);
    support::figure(&format!(
        "issuer check: another issuer from EKS seen {:.1} s after it changed (believed 60 s); Ready {:.1} s after the fix",
        noticed.as_secs_f64(),
        fixed.elapsed().as_secs_f64()
    ));
    cleanup.stop();
}
