//! Renames whose old role cannot be deleted, then a status removed by hand,
//! then deletion: no role is leaked. In a binary of its own, because the
//! fault it injects (every DeleteRole failing) would reach other tests.

mod support;

use std::time::Duration;

use serde_json::json;
use support::aws::role_exists;
use support::operator::{ensure_operator, eventually};
use support::{Harness, harness, isa_manifest};

const ROLE_ARN: &str = "eks.amazonaws.com/role-arn";

fn setup() -> Option<&'static Harness> {
    let h = harness()?;
    ensure_operator(h, &[]);
    Some(h)
}

#[tokio::test]
async fn bug2_and_7_renames_with_failing_deletes_and_a_lost_status_leak_no_role() {
    let Some(h) = setup() else { return };
    let ns = h.fresh_namespace("renames");
    h.kubectl(&["create", "serviceaccount", "app", "-n", &ns]);
    let names: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| format!("{n}-{ns}"))
        .collect();
    h.apply(
        &ns,
        &isa_manifest("app", &format!("  role: {{name: {}}}\n", names[0])),
    );
    h.wait_isa_ready_at(&ns, "app", 1);

    let emulator = h.emulator();
    // DeleteRole keeps failing for these renames only: this test's roles.
    emulator.set_faults(json!({"rules": [
        {"service": "iam", "operation": "DeleteRole", "fault": "server_error"}
    ]}));
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    for (i, name) in names.iter().enumerate().skip(1) {
        h.apply(
            &ns,
            &isa_manifest("app", &format!("  role: {{name: {name}}}\n")),
        );
        eventually(
            &format!("role {name} made"),
            Duration::from_secs(60),
            || {
                let sa = h.kubectl_json(&["get", "sa", "app", "-n", &ns]);
                (sa["metadata"]["annotations"][ROLE_ARN]
                    .as_str()
                    .is_some_and(|arn| arn.ends_with(&format!("/{name}"))))
                .then_some(())
            },
        );
        assert!(role_exists(&iam, &names[i - 1]).await);
    }
    // Status removed by hand: cleanup must not depend on it.
    h.kubectl(&[
        "patch",
        "isa",
        "app",
        "-n",
        &ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":null}"#,
    ]);
    h.kubectl(&["delete", "isa", "app", "-n", &ns, "--wait=false"]);
    std::thread::sleep(Duration::from_secs(2));
    emulator.clear_faults();
    eventually("the object gone", Duration::from_secs(360), || {
        let out = h.kubectl_output(&["get", "isa", "app", "-n", &ns], None);
        (!out.status.success()).then_some(())
    });
    for name in &names {
        assert!(!role_exists(&iam, name).await, "role {name} leaked");
    }
}
