//! `/readyz` says ready only once every controller runs: an operator started
//! before its CRDs (same Git sync) stays unready until they exist.

mod support;

use std::time::Duration;

use support::operator::{eventually, start};
use support::{harness, repo_dir};

fn probe(port: u16, path: &str) -> Option<u16> {
    match ureq::get(format!("http://127.0.0.1:{port}{path}")).call() {
        Ok(response) => Some(response.status().as_u16()),
        Err(ureq::Error::StatusCode(code)) => Some(code),
        Err(_) => None,
    }
}

#[test]
fn not_ready_until_the_crds_exist() {
    let Some(h) = harness() else { return };
    let port = support::free_port();
    let address = format!("127.0.0.1:{port}");
    let mut operator = start(h, &["--metrics-address", &address]);

    eventually(
        "the operator serving /healthz",
        Duration::from_secs(60),
        || (probe(port, "/healthz") == Some(200)).then_some(()),
    );
    // Alive, and waiting for CRDs that are not there: not ready, for as long
    // as they are missing.
    for _ in 0..20 {
        assert_eq!(probe(port, "/readyz"), Some(503));
        std::thread::sleep(Duration::from_millis(100));
    }
    let crds = repo_dir().join("crds");
    h.kubectl(&[
        "apply",
        "--server-side",
        "-f",
        crds.to_str().expect("utf-8 path"),
    ]);
    eventually("ready once the CRDs exist", Duration::from_secs(60), || {
        (probe(port, "/readyz") == Some(200)).then_some(())
    });
    let _ = operator.kill();
    let _ = operator.wait();
}
