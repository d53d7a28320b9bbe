//! The guardrails file is the platform team's, kept in Git and mounted from
//! a ConfigMap: edits reach a running operator and every object is judged
//! again, a broken edit changes nothing, and a refused object costs no AWS
//! write.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::operator::{ensure_operator, eventually};
use support::{Harness, harness, is_write, isa_manifest};

const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

fn guardrails_path(h: &Harness) -> PathBuf {
    h.dir.join("reload-guardrails.yaml")
}

/// Written whole and renamed into place, as a ConfigMap update swaps it.
fn write_guardrails(h: &Harness, yaml: &str) {
    let path = guardrails_path(h);
    let staging = path.with_extension("staging");
    std::fs::write(&staging, yaml).expect("write guardrails");
    std::fs::rename(&staging, &path).expect("swap guardrails");
}

const READY_REASON: &str = "{.status.conditions[?(@.type==\"Ready\")].reason}";
const READY_MESSAGE: &str = "{.status.conditions[?(@.type==\"Ready\")].message}";

async fn boundary_of(iam: &aws_sdk_iam::Client, role: &str) -> Option<String> {
    let found = iam.get_role().role_name(role).send().await.expect("role");
    found
        .role()?
        .permissions_boundary()?
        .permissions_boundary_arn()
        .map(str::to_string)
}

#[tokio::test]
async fn edits_reach_the_running_operator_and_judge_every_object_again() {
    let Some(h) = harness() else { return };
    write_guardrails(h, "# built-in rules only\n");
    let path = guardrails_path(h);
    ensure_operator(
        h,
        &["--guardrails-file", path.to_str().expect("utf-8 path")],
    );
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    let boundary = iam
        .create_policy()
        .policy_name("apps-boundary")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        )
        .send()
        .await
        .expect("boundary policy")
        .policy()
        .and_then(|p| p.arn())
        .expect("boundary ARN")
        .to_string();

    let ns = h.fresh_namespace("reload");
    let names = ["first", "second"];
    for name in names {
        h.apply(
            &ns,
            &isa_manifest(
                name,
                &format!(
                    "  serviceAccount: {{create: true}}\n  policies: {{managed: [{READ_ONLY}]}}\n"
                ),
            ),
        );
    }
    for name in names {
        h.wait_ready(&format!("isa/{name}"), &ns);
    }
    let roles: Vec<String> = names
        .iter()
        .map(|n| h.field(&format!("isa/{n}"), &ns, "{.status.roleName}"))
        .collect();

    // A boundary added to the guardrails reaches every existing role.
    write_guardrails(h, &format!("roles:\n  permissionsBoundary: {boundary}\n"));
    for role in &roles {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let found = boundary_of(&iam, role).await;
            if found.as_deref() == Some(boundary.as_str()) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{role} never got the guardrails' boundary (has {found:?})"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // Denying what both use turns both not Ready, by rule and item, with a
    // Warning, and writes nothing to their roles.
    let mark = h.emulator().mark();
    write_guardrails(
        h,
        &format!(
            "roles:\n  permissionsBoundary: {boundary}\nmanagedPolicies:\n  deny: ['{READ_ONLY}']\n"
        ),
    );
    for name in names {
        h.wait_for_reason(&format!("isa/{name}"), &ns, "GuardrailViolation");
        let message = h.field(&format!("isa/{name}"), &ns, READY_MESSAGE);
        assert!(
            message.contains("managedPolicies.deny") && message.contains(READ_ONLY),
            "{message}"
        );
        eventually(
            "a Warning Event for the violation",
            Duration::from_secs(30),
            || {
                let types = h.event_types(&ns, name, "GuardrailViolation");
                types.iter().any(|t| t == "Warning").then_some(())
            },
        );
    }

    // A broken edit is not applied: the last good guardrails stay in force.
    write_guardrails(h, "managedPolicies: [this, is, not, a, map]\n");
    tokio::time::sleep(Duration::from_secs(8)).await;
    for name in names {
        let reason = h.field(&format!("isa/{name}"), &ns, READY_REASON);
        assert_eq!(reason, "GuardrailViolation", "{name}");
    }
    let writes: Vec<_> = h
        .emulator()
        .calls_since(mark)
        .into_iter()
        .filter(is_write)
        .collect();
    assert!(
        writes.is_empty(),
        "refused objects cost AWS writes: {writes:?}"
    );

    // Lifting the denial makes them Ready again without a restart; the
    // boundary stays, as the operator never removes one.
    write_guardrails(h, "# built-in rules only\n");
    for name in names {
        h.wait_ready(&format!("isa/{name}"), &ns);
    }
    for role in &roles {
        assert_eq!(
            boundary_of(&iam, role).await.as_deref(),
            Some(boundary.as_str())
        );
    }
}
