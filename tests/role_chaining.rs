//! Role chaining declared on the object (issue 15): `policies.assumeRoles`
//! on both kinds, and a Pod Identity `targetRoleArn`, become exactly those
//! `sts:AssumeRole` grants in an inline policy of the operator's own, only
//! where the guardrails grant the namespace the ARNs. The grant follows the
//! spec (gone with the last ARN) and goes with the role. Applies the two
//! cross-account examples.

mod support;

use iam_operator::policy::PolicyDocument;
use iam_operator::policy::chain::CHAIN_POLICY_NAME;
use serde_json::{Value, json};
use support::aws::role_exists;
use support::operator::{install, start_as, test_guardrails};
use support::{harness, is_write, repo_dir};

const REMOTE: &str = "arn:aws:iam::210987654321:role/elb-describer";
const TARGET: &str = "arn:aws:iam::210987654321:role/shared-reports-writer";

/// The one statement of the operator's chain policy on `role`, without its
/// Sid; `None` when the role has no such policy.
async fn chain_statement(iam: &aws_sdk_iam::Client, role: &str) -> Option<Value> {
    let listed = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("ListRolePolicies");
    if !listed.policy_names().iter().any(|n| n == CHAIN_POLICY_NAME) {
        return None;
    }
    let text = iam
        .get_role_policy()
        .role_name(role)
        .policy_name(CHAIN_POLICY_NAME)
        .send()
        .await
        .expect("GetRolePolicy")
        .policy_document()
        .to_string();
    let document = PolicyDocument::parse(&text).expect("a policy document");
    let statements: Vec<_> = document.statements().collect();
    assert_eq!(statements.len(), 1, "{text}");
    let one = statements[0];
    Some(json!({"Effect": one["Effect"], "Action": one["Action"], "Resource": one["Resource"]}))
}

fn example(name: &str) -> String {
    std::fs::read_to_string(repo_dir().join("examples").join(name)).expect("example")
}

#[tokio::test]
async fn chained_roles_are_granted_exactly_and_only_where_the_guardrails_say() {
    let Some(h) = harness() else { return };
    install(h);
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    let emulator = h.emulator();
    let granted = h.fresh_namespace("chain");
    let denied = h.fresh_namespace("chain-denied");
    let guardrails = h.dir.join("chain-guardrails.yaml");
    let base = std::fs::read_to_string(test_guardrails()).expect("test guardrails");
    std::fs::write(
        &guardrails,
        format!(
            "{base}  - names: [{granted}]\n    assumeRoles: ['arn:aws:iam::210987654321:role/*']\n"
        ),
    )
    .expect("write guardrails");
    let _operator = start_as(
        h,
        "chaining",
        &[
            "--watch-namespaces",
            &format!("{granted},{denied}"),
            "--guardrails-file",
            guardrails.to_str().expect("UTF-8 path"),
        ],
    );
    let irsa = example("irsa-cross-account.yaml");
    let writes_since = |mark: u64| -> Vec<String> {
        emulator
            .calls_since(mark)
            .into_iter()
            .filter(is_write)
            .map(|c| c.operation)
            .collect()
    };
    // AWS calls about one object's role (and, for Pod Identity, its
    // association on the cluster) since `mark`: (calls, writes).
    let calls_for = |mark: u64, role: &str| -> (usize, usize) {
        let calls: Vec<_> = emulator
            .calls_since(mark)
            .into_iter()
            .filter(|c| c.target.as_deref() == Some(role) || c.service == "eks")
            .collect();
        (calls.len(), calls.iter().filter(|c| is_write(c)).count())
    };

    // Where the guardrails grant no chain: refused, nothing made.
    let mark = emulator.mark();
    h.apply(&denied, &irsa);
    let (_, _, message) = h.until_reason("isa/lb-inventory", &denied, "GuardrailViolation", true);
    for words in [
        "deny-ungranted-assume-roles",
        "spec.policies.assumeRoles[0]",
        REMOTE,
    ] {
        assert!(message.contains(words), "{words:?} not in {message}");
    }
    let writes = writes_since(mark);
    assert!(writes.is_empty(), "{writes:?}");

    // The same reach written by hand, to an account not granted: refused
    // by the same rule, pointing at the statement.
    h.apply(
        &granted,
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: by-hand}\nspec:\n  serviceAccount: {create: true}\n  policies:\n    inline:\n      hop:\n        Version: '2012-10-17'\n        Statement:\n        - {Effect: Allow, Action: 'sts:AssumeRole', Resource: 'arn:aws:iam::333333333333:role/admin'}\n",
    );
    let (_, _, message) = h.until_reason("isa/by-hand", &granted, "GuardrailViolation", true);
    assert!(
        message.contains("spec.policies.inline.hop.Statement[0].Resource")
            && message.contains("namespaces[].assumeRoles"),
        "{message}"
    );

    // Granted: exactly the declared role, and no session tags for IRSA.
    let mark = emulator.mark();
    h.apply(&granted, &irsa);
    h.wait_ready("isa/lb-inventory", &granted);
    let role = h.field("isa/lb-inventory", &granted, "{.status.roleName}");
    let (irsa_calls, irsa_writes) = calls_for(mark, &role);
    assert_eq!(
        chain_statement(&iam, &role).await,
        Some(json!({"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": [REMOTE]}))
    );

    // Pod Identity with a target: EKS's two hops need AssumeRole and
    // TagSession on the target, granted without a policy written by hand.
    let mark = emulator.mark();
    h.apply(&granted, &example("pod-identity-cross-account.yaml"));
    h.wait_ready("pib/report-exporter", &granted);
    let pib_role = h.field("pib/report-exporter", &granted, "{.status.roleName}");
    let (pib_calls, pib_writes) = calls_for(mark, &pib_role);
    support::figure(&format!(
        "role chaining, AWS calls per create: IamServiceAccount with assumeRoles {irsa_calls} \
         ({irsa_writes} writes), PodIdentityBinding with targetRoleArn {pib_calls} ({pib_writes} \
         writes)"
    ));
    assert_eq!(
        chain_statement(&iam, &pib_role).await,
        Some(json!({
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Resource": [TARGET],
        }))
    );

    // The last ARN taken out: the grant goes, the role stays.
    let mark = emulator.mark();
    h.kubectl(&[
        "patch",
        "isa/lb-inventory",
        "-n",
        &granted,
        "--type=merge",
        "-p",
        r#"{"spec":{"policies":{"assumeRoles":null}}}"#,
    ]);
    h.wait_isa_ready_at(&granted, "lb-inventory", 2);
    assert_eq!(chain_statement(&iam, &role).await, None);
    let writes = writes_since(mark);
    assert_eq!(writes, ["DeleteRolePolicy"]);

    // Deleting the objects deletes their roles, chain policy and all.
    for object in ["isa/lb-inventory", "pib/report-exporter", "isa/by-hand"] {
        h.kubectl(&["delete", object, "-n", &granted, "--wait=true"]);
    }
    for name in [&role, &pib_role] {
        assert!(!role_exists(&iam, name).await, "{name} left behind");
    }
    h.kubectl(&["delete", "isa/lb-inventory", "-n", &denied, "--wait=true"]);
}
