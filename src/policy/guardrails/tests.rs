//! Tables of (guardrails, spec) → violations.

use serde_json::{Value, json};

use super::*;

const NS: &str = "apps";

fn inline(statements: Value) -> BTreeMap<String, InlineDocument> {
    BTreeMap::from([(
        "p".to_string(),
        json!({"Version": "2012-10-17", "Statement": statements}).into(),
    )])
}

#[derive(Clone)]
struct Spec {
    name: &'static str,
    path: &'static str,
    spec_name: Option<&'static str>,
    spec_path: Option<&'static str>,
    managed: BTreeSet<String>,
    inline: BTreeMap<String, InlineDocument>,
    existing: Vec<(&'static str, &'static str)>,
    namespace: &'static str,
    labels: Option<BTreeMap<String, String>>,
    adopt: bool,
    assume_roles: Vec<String>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            name: "prod-us-east-1-apps-web",
            path: "/",
            spec_name: None,
            spec_path: None,
            managed: BTreeSet::new(),
            inline: BTreeMap::new(),
            existing: Vec::new(),
            namespace: NS,
            labels: None,
            adopt: false,
            assume_roles: Vec::new(),
        }
    }
}

fn judge(guardrails: &Guardrails, spec: &Spec) -> Vec<Violation> {
    guardrails.judge(&Tenancy {
        namespace: spec.namespace,
        namespace_labels: spec.labels.as_ref(),
        created_role: Some(CreatedRole {
            name: spec.name,
            path: spec.path,
            spec_name: spec.spec_name,
            adopt: spec.adopt,
            spec_path: spec.spec_path,
            managed_policies: &spec.managed,
            inline_policies: &spec.inline,
            assume_roles: &spec.assume_roles,
        }),
        existing_roles: spec.existing.clone(),
    })
}

fn rules_broken(guardrails: &Guardrails, spec: &Spec) -> Vec<String> {
    judge(guardrails, spec)
        .into_iter()
        .map(|v| v.rule)
        .collect()
}

fn allow(action: Value, resource: Value) -> Value {
    json!([{"Effect": "Allow", "Action": action, "Resource": resource}])
}

fn with_inline(statements: Value) -> Spec {
    Spec {
        inline: inline(statements),
        ..Spec::default()
    }
}

fn managed(arns: &[&str]) -> Spec {
    Spec {
        managed: arns.iter().map(|a| a.to_string()).collect(),
        ..Spec::default()
    }
}

#[test]
fn defaults_deny_the_managed_policies_that_hand_out_the_account() {
    let defaults = Guardrails::default();
    for arn in [
        "arn:aws:iam::aws:policy/AdministratorAccess",
        "arn:aws:iam::aws:policy/AdministratorAccess-Amplify",
        "arn:aws-cn:iam::aws:policy/IAMFullAccess",
        "arn:aws:iam::aws:policy/PowerUserAccess",
        "arn:aws:iam::aws:policy/AWSOrganizationsFullAccess",
    ] {
        let found = judge(&defaults, &managed(&[arn]));
        assert_eq!(found.len(), 1, "{arn}: {found:?}");
        assert_eq!(found[0].rule, DENY_ADMIN_MANAGED_POLICIES);
        assert_eq!(found[0].item, arn);
        assert_eq!(found[0].field, "spec.policies.managed");
    }
    for arn in [
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
        "arn:aws:iam::123456789012:policy/AdministratorAccess",
    ] {
        assert_eq!(
            rules_broken(&defaults, &managed(&[arn])),
            Vec::<String>::new(),
            "{arn}"
        );
    }
}

#[test]
fn defaults_deny_dangerous_inline_statements_and_name_rule_and_item() {
    let defaults = Guardrails::default();
    let cases: Vec<(Value, &str)> = vec![
        (allow(json!("*"), json!("*")), DENY_SERVICE_WILDCARDS),
        (allow(json!("s3:*"), json!("*")), DENY_SERVICE_WILDCARDS),
        (
            allow(json!("ec2:*"), json!("arn:*:*:*:*:*")),
            DENY_SERVICE_WILDCARDS,
        ),
        (
            allow(json!("iam:CreateUser"), json!("arn:aws:iam::1:user/x")),
            DENY_IAM_WRITES,
        ),
        (
            allow(json!("iam:Put*"), json!("arn:aws:iam::1:role/x")),
            DENY_IAM_WRITES,
        ),
        (
            allow(
                json!("IAM:attachrolepolicy"),
                json!("arn:aws:iam::1:role/x"),
            ),
            DENY_IAM_WRITES,
        ),
        (
            allow(json!("iam:PassRole"), json!("*")),
            DENY_PASS_ROLE_ON_ALL,
        ),
        (allow(json!("iam:Pass*"), json!("*")), DENY_PASS_ROLE_ON_ALL),
        (allow(json!("sts:AssumeRole"), json!("*")), DENY_STS_ON_ALL),
        (
            allow(
                json!("organizations:LeaveOrganization"),
                json!("arn:aws:organizations::1:account/o-1/2"),
            ),
            DENY_ORGANIZATIONS_WRITES,
        ),
        (
            allow(
                json!("account:PutAlternateContact"),
                json!("arn:aws:account::1:account"),
            ),
            DENY_ACCOUNT_WRITES,
        ),
        (
            json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}]),
            DENY_NOT_ACTION_ALLOW,
        ),
        (
            json!([{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}]),
            DENY_NOT_RESOURCE_ALLOW,
        ),
    ];
    for (statements, rule) in cases {
        let found = judge(&defaults, &with_inline(statements.clone()));
        assert!(
            found.iter().any(|v| v.rule == rule),
            "{statements} should break {rule}: {found:?}"
        );
        let message = found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        assert!(message.contains(rule), "{message}");
        assert!(
            message.contains("spec.policies.inline.p.Statement[0]"),
            "{message}"
        );
    }
}

#[test]
fn defaults_allow_what_an_app_needs() {
    let defaults = Guardrails::default();
    for statements in [
        allow(
            json!(["s3:GetObject", "s3:PutObject"]),
            json!("arn:aws:s3:::bucket/*"),
        ),
        allow(json!("s3:*"), json!("arn:aws:s3:::bucket/*")),
        allow(json!("dynamodb:Query"), json!("*")),
        allow(json!(["iam:GetRole", "iam:List*"]), json!("*")),
        allow(json!("*:Get*"), json!("arn:aws:s3:::b")),
        allow(json!("sts:GetCallerIdentity"), json!("*")),
        allow(json!("iam:PassRole"), json!("arn:aws:iam::1:role/app-task")),
        json!([{"Effect": "Deny", "NotAction": "s3:*", "NotResource": "*"}]),
        json!([{"Effect": "Deny", "Action": "*", "Resource": "*"}]),
    ] {
        assert_eq!(
            rules_broken(&defaults, &with_inline(statements.clone())),
            Vec::<String>::new(),
            "{statements}"
        );
    }
}

#[test]
fn not_action_is_as_wide_as_every_action_for_the_other_rules() {
    let found = rules_broken(
        &Guardrails::default(),
        &with_inline(json!([{"Effect": "Allow", "NotAction": "s3:DeleteBucket", "Resource": "*"}])),
    );
    assert!(
        found.contains(&DENY_NOT_ACTION_ALLOW.to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&DENY_SERVICE_WILDCARDS.to_string()),
        "{found:?}"
    );
    assert!(found.contains(&DENY_IAM_WRITES.to_string()), "{found:?}");
}

#[test]
fn statements_are_numbered_as_the_user_wrote_them() {
    let found = judge(
        &Guardrails::default(),
        &with_inline(json!([
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": "arn:aws:iam::1:role/x"}
        ])),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "spec.policies.inline.p.Statement[1].Action");
    let single = judge(
        &Guardrails::default(),
        &with_inline(
            json!({"Effect": "Allow", "Action": "iam:*", "Resource": "arn:aws:iam::1:role/x"}),
        ),
    );
    assert_eq!(
        single[0].field,
        "spec.policies.inline.p.Statement[0].Action"
    );
}

#[test]
fn managed_policy_names_match_without_case_as_iam_finds_them() {
    let found = rules_broken(
        &Guardrails::default(),
        &managed(&["arn:aws:iam::aws:policy/administratoraccess"]),
    );
    assert_eq!(found, [DENY_ADMIN_MANAGED_POLICIES]);
}

#[test]
fn every_violation_is_reported_at_once() {
    let spec = Spec {
        managed: ["arn:aws:iam::aws:policy/AdministratorAccess".to_string()].into(),
        inline: inline(json!([
            {"Effect": "Allow", "Action": "iam:CreateUser", "Resource": "arn:aws:iam::1:user/x"},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
        ])),
        existing: vec![("spec.targetRoleArn", "arn:aws:iam::1:role/x")],
        ..Spec::default()
    };
    let found = rules_broken(&Guardrails::default(), &spec);
    assert_eq!(found.len(), 4, "{found:?}");
}

#[test]
fn existing_roles_need_a_grant_for_the_namespace() {
    let guardrails = Guardrails::parse(
        "namespaces:\n- names: [platform]\n  roleArns: ['arn:aws:iam::123456789012:role/shared/*']\n\
         - selector: {matchLabels: {team: payments}}\n  roleArns: ['arn:aws:iam::*:role/payments-*']\n",
    )
    .unwrap();
    let existing = |namespace, labels: Option<BTreeMap<String, String>>, arn| Spec {
        existing: vec![("spec.roleArn", arn)],
        namespace,
        labels,
        ..Spec::default()
    };
    let payments = Some(BTreeMap::from([(
        "team".to_string(),
        "payments".to_string(),
    )]));
    for (spec, allowed) in [
        (
            existing("platform", None, "arn:aws:iam::123456789012:role/shared/db"),
            true,
        ),
        (
            existing("platform", None, "arn:aws:iam::123456789012:role/other"),
            false,
        ),
        (
            existing("apps", None, "arn:aws:iam::123456789012:role/shared/db"),
            false,
        ),
        (
            existing(
                "pay",
                payments.clone(),
                "arn:aws:iam::222222222222:role/payments-x",
            ),
            true,
        ),
        (
            existing("pay", None, "arn:aws:iam::222222222222:role/payments-x"),
            false,
        ),
        (
            existing("pay", payments, "arn:aws:iam::123456789012:role/shared/db"),
            false,
        ),
    ] {
        let found = judge(&guardrails, &spec);
        assert_eq!(
            found.is_empty(),
            allowed,
            "{:?} in {}: {found:?}",
            spec.existing,
            spec.namespace
        );
        if let Some(v) = found.first() {
            assert_eq!(v.rule, DENY_UNGRANTED_ROLE_ARNS);
            assert_eq!(v.field, "spec.roleArn");
        }
    }
    let none_by_default = judge(
        &Guardrails::default(),
        &existing("apps", None, "arn:aws:iam::123456789012:role/anything"),
    );
    assert_eq!(none_by_default.len(), 1);
}

#[test]
fn custom_rules_add_to_the_defaults() {
    let guardrails = Guardrails::parse(
        "managedPolicies:\n  deny: ['arn:aws:iam::aws:policy/AmazonS3FullAccess']\n\
         inlinePolicies:\n  deny:\n  - name: no-prod-deletes\n    actions: ['s3:DeleteBucket', 's3:DeleteObject*']\n    resources: ['arn:aws:s3:::prod-*']\n\
         \x20 - name: no-kms\n    actions: ['kms:*']\n    except: ['kms:Decrypt']\n",
    )
    .unwrap();
    let s3_full = managed(&["arn:aws:iam::aws:policy/AmazonS3FullAccess"]);
    assert_eq!(
        rules_broken(&guardrails, &s3_full),
        ["managedPolicies.deny"]
    );
    let admin = managed(&["arn:aws:iam::aws:policy/AdministratorAccess"]);
    assert_eq!(
        rules_broken(&guardrails, &admin),
        [DENY_ADMIN_MANAGED_POLICIES]
    );
    for (statements, expected) in [
        (
            allow(json!("s3:DeleteBucket"), json!("arn:aws:s3:::prod-logs")),
            vec!["no-prod-deletes"],
        ),
        (
            allow(json!("s3:Delete*"), json!("arn:aws:s3:::*")),
            vec!["no-prod-deletes"],
        ),
        (
            allow(json!("s3:DeleteBucket"), json!("arn:aws:s3:::test-logs")),
            vec![],
        ),
        (
            allow(json!("kms:Encrypt"), json!("arn:aws:kms:us-east-1:1:key/k")),
            vec!["no-kms"],
        ),
        (
            allow(json!("kms:Decrypt"), json!("arn:aws:kms:us-east-1:1:key/k")),
            vec![],
        ),
    ] {
        assert_eq!(
            rules_broken(&guardrails, &with_inline(statements.clone())),
            expected,
            "{statements}"
        );
    }
}

#[test]
fn an_allow_list_of_managed_policies_and_namespace_grants() {
    let guardrails = Guardrails::parse(
        "managedPolicies:\n  allow: ['arn:aws:iam::123456789012:policy/team-*']\n\
         namespaces:\n- names: [platform]\n  managedPolicies: ['arn:aws:iam::aws:policy/PowerUserAccess', 'arn:aws:iam::aws:policy/ReadOnlyAccess']\n",
    )
    .unwrap();
    let spec = |ns, arn| Spec {
        namespace: ns,
        ..managed(&[arn])
    };
    assert!(
        rules_broken(
            &guardrails,
            &spec("apps", "arn:aws:iam::123456789012:policy/team-a")
        )
        .is_empty()
    );
    assert_eq!(
        rules_broken(
            &guardrails,
            &spec("apps", "arn:aws:iam::aws:policy/ReadOnlyAccess")
        ),
        ["managedPolicies.allow"]
    );
    assert!(
        rules_broken(
            &guardrails,
            &spec("platform", "arn:aws:iam::aws:policy/ReadOnlyAccess")
        )
        .is_empty()
    );
    assert!(
        rules_broken(
            &guardrails,
            &spec("platform", "arn:aws:iam::aws:policy/PowerUserAccess")
        )
        .is_empty()
    );
    assert_eq!(
        rules_broken(
            &guardrails,
            &spec("apps", "arn:aws:iam::aws:policy/PowerUserAccess")
        ),
        [DENY_ADMIN_MANAGED_POLICIES]
    );
}

#[test]
fn role_names_and_paths_stay_where_the_platform_says() {
    let guardrails = Guardrails::parse(
        "roles:\n  namePrefix: apps-\n  path: /tenants/\n  allowName: false\n  allowPath: false\n\
         namespaces:\n- names: [platform]\n  roleName: true\n  rolePath: true\n",
    )
    .unwrap();
    let good = Spec {
        name: "apps-prod-us-east-1-apps-web",
        path: "/tenants/",
        ..Spec::default()
    };
    assert!(rules_broken(&guardrails, &good).is_empty());
    let named = Spec {
        name: "apps-mine",
        spec_name: Some("apps-mine"),
        ..good.clone()
    };
    assert_eq!(rules_broken(&guardrails, &named), ["roles.allowName"]);
    let outside = Spec {
        name: "mine",
        spec_name: Some("mine"),
        path: "/other/",
        spec_path: Some("/other/"),
        namespace: "platform",
        ..Spec::default()
    };
    assert_eq!(
        rules_broken(&guardrails, &outside),
        ["roles.namePrefix", "roles.path"]
    );
    let below = Spec {
        name: "apps-x",
        spec_name: Some("apps-x"),
        path: "/tenants/team/",
        spec_path: Some("/tenants/team/"),
        namespace: "platform",
        ..Spec::default()
    };
    assert!(rules_broken(&guardrails, &below).is_empty());
    let path_elsewhere = Spec {
        path: "/tenants/team/",
        spec_path: Some("/tenants/team/"),
        ..good
    };
    assert_eq!(
        rules_broken(&guardrails, &path_elsewhere),
        ["roles.allowPath"]
    );
}

#[test]
fn generated_names_get_the_required_prefix() {
    let guardrails = Guardrails::parse("roles:\n  namePrefix: apps-\n").unwrap();
    assert_eq!(guardrails.generated_name_prefix(""), "apps");
    assert_eq!(guardrails.generated_name_prefix("apps-k8s"), "apps-k8s");
    assert_eq!(guardrails.generated_name_prefix("k8s"), "apps");
    assert_eq!(Guardrails::default().generated_name_prefix("k8s"), "k8s");
}

#[test]
fn default_rules_can_be_switched_off_by_name() {
    let guardrails = Guardrails::parse(&format!(
        "disabledDefaultRules: [{DENY_IAM_WRITES}, {DENY_ADMIN_MANAGED_POLICIES}, {DENY_NOT_ACTION_ALLOW}]\n"
    ))
    .unwrap();
    assert!(
        rules_broken(
            &guardrails,
            &with_inline(allow(
                json!("iam:CreateUser"),
                json!("arn:aws:iam::1:user/x")
            ))
        )
        .is_empty()
    );
    assert!(
        rules_broken(
            &guardrails,
            &managed(&["arn:aws:iam::aws:policy/AdministratorAccess"])
        )
        .is_empty()
    );
    assert_eq!(
        rules_broken(&guardrails, &with_inline(allow(json!("iam:*"), json!("*")))),
        [DENY_SERVICE_WILDCARDS, DENY_PASS_ROLE_ON_ALL]
    );
}

#[test]
fn bad_documents_are_refused_with_every_problem() {
    for (yaml, expected) in [
        ("disabledDefaultRules: [no-such-rule]\n", "no-such-rule"),
        (
            "inlinePolicies:\n  deny:\n  - name: ''\n    actions: ['s3:*']\n",
            "name is empty",
        ),
        ("inlinePolicies:\n  deny:\n  - name: x\n", "denies nothing"),
        (
            "inlinePolicies:\n  deny:\n  - name: x\n    actions: [DeleteBucket]\n",
            "not service:Action",
        ),
        (
            "inlinePolicies:\n  deny:\n  - name: x\n    actions: ['s3:*']\n    resources: [bucket]\n",
            "neither",
        ),
        (
            &format!(
                "inlinePolicies:\n  deny:\n  - name: {DENY_IAM_WRITES}\n    actions: ['s3:*']\n"
            ),
            "used twice",
        ),
        (
            "managedPolicies:\n  deny: [AdministratorAccess]\n",
            "managedPolicies.deny",
        ),
        (
            "namespaces:\n- roleArns: ['arn:aws:iam::1:role/x']\n",
            "selects no namespace",
        ),
        (
            "namespaces:\n- names: [a]\n  roleArns: [x]\n",
            "namespaces[0].roleArns",
        ),
        (
            "namespaces:\n- selector: {matchExpressions: [{key: a, operator: Equals}]}\n",
            "Equals",
        ),
        ("roles:\n  namePrefix: 'a b'\n", "namePrefix"),
        ("roles:\n  path: tenants\n", "roles.path"),
        (
            "roles:\n  permissionsBoundary: boundary\n",
            "roles.permissionsBoundary",
        ),
        ("roles:\n  pathh: /x/\n", "unknown field"),
        ("- a\n", "invalid type"),
    ] {
        let error = Guardrails::parse(yaml).expect_err(yaml).to_string();
        assert!(error.contains(expected), "{yaml}: {error}");
    }
    assert_eq!(Guardrails::parse("").unwrap(), Guardrails::default());
    assert_eq!(
        Guardrails::parse("# nothing\n").unwrap(),
        Guardrails::default()
    );
}

#[test]
fn selectors_follow_kubernetes_semantics() {
    let labels = BTreeMap::from([
        ("team".to_string(), "a".to_string()),
        ("tier".to_string(), "web".to_string()),
    ]);
    let selector = |yaml: &str| serde_yaml::from_str::<Selector>(yaml).unwrap();
    for (yaml, matches) in [
        ("{}", true),
        ("{matchLabels: {team: a}}", true),
        ("{matchLabels: {team: b}}", false),
        (
            "{matchExpressions: [{key: tier, operator: In, values: [web, api]}]}",
            true,
        ),
        (
            "{matchExpressions: [{key: tier, operator: NotIn, values: [web]}]}",
            false,
        ),
        (
            "{matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}",
            true,
        ),
        ("{matchExpressions: [{key: env, operator: Exists}]}", false),
        (
            "{matchExpressions: [{key: env, operator: DoesNotExist}]}",
            true,
        ),
        (
            "{matchLabels: {team: a}, matchExpressions: [{key: tier, operator: Exists}]}",
            true,
        ),
    ] {
        assert_eq!(
            selector_matches(&selector(yaml), &labels),
            matches,
            "{yaml}"
        );
    }
}

#[test]
fn granted_role_patterns_are_listed_for_the_operator_policy() {
    let guardrails = Guardrails::parse(
        "namespaces:\n- names: [a]\n  roleArns: ['arn:aws:iam::1:role/b', 'arn:aws:iam::1:role/a']\n- names: [b]\n  roleArns: ['arn:aws:iam::1:role/a']\n",
    )
    .unwrap();
    assert_eq!(
        guardrails.granted_role_arns(),
        ["arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b"]
    );
    assert!(!guardrails.selects_by_labels());
}

#[test]
fn the_documented_example_is_valid_and_does_what_it_says() {
    let example = include_str!("../../../examples/guardrails.yaml");
    let guardrails = Guardrails::parse(example).expect("examples/guardrails.yaml parses");
    assert!(guardrails.selects_by_labels());
    let payments = Some(BTreeMap::from([(
        "team".to_string(),
        "payments".to_string(),
    )]));
    let power = Spec {
        name: "apps-x",
        path: "/apps/",
        namespace: "checkout",
        labels: payments,
        ..managed(&["arn:aws:iam::aws:policy/PowerUserAccess"])
    };
    assert!(rules_broken(&guardrails, &power).is_empty());
    let elsewhere = Spec {
        namespace: "web",
        labels: Some(BTreeMap::new()),
        ..power.clone()
    };
    assert_eq!(
        rules_broken(&guardrails, &elsewhere),
        [DENY_ADMIN_MANAGED_POLICIES]
    );
}

#[test]
fn adopting_a_role_needs_a_grant_for_the_namespace() {
    let adopting = |namespace| Spec {
        namespace,
        adopt: true,
        spec_name: Some("made-by-terraform"),
        name: "made-by-terraform",
        ..Spec::default()
    };
    let guardrails =
        Guardrails::parse("namespaces:\n- names: [platform]\n  adoptRoles: true\n").unwrap();
    assert!(guardrails.adoption_granted());
    assert!(!Guardrails::default().adoption_granted());
    assert_eq!(
        rules_broken(&guardrails, &adopting(NS)),
        ["namespaces[].adoptRoles"]
    );
    assert!(rules_broken(&guardrails, &adopting("platform")).is_empty());
    assert_eq!(
        rules_broken(&Guardrails::default(), &adopting("platform")),
        ["namespaces[].adoptRoles"],
        "off unless granted"
    );
}

#[test]
fn chained_roles_need_a_grant_whether_declared_or_written_inline() {
    const READER: &str = "arn:aws:iam::222222222222:role/reader";
    let guardrails = Guardrails::parse(
        "namespaces:\n- names: [apps]\n  assumeRoles: ['arn:aws:iam::222222222222:role/*']\n",
    )
    .unwrap();
    let declared = |namespace, arns: &[&str]| Spec {
        namespace,
        assume_roles: arns.iter().map(|a| a.to_string()).collect(),
        ..Spec::default()
    };
    assert!(judge(&guardrails, &declared(NS, &[READER])).is_empty());
    let refused = judge(
        &guardrails,
        &declared(NS, &[READER, "arn:aws:iam::333333333333:role/reader"]),
    );
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].rule, DENY_UNGRANTED_ASSUME_ROLES);
    assert_eq!(refused[0].field, "spec.policies.assumeRoles[1]");
    assert_eq!(
        rules_broken(&Guardrails::default(), &declared(NS, &[READER])),
        [DENY_UNGRANTED_ASSUME_ROLES],
        "none unless granted"
    );
    assert_eq!(
        rules_broken(&guardrails, &declared("web", &[READER])),
        [DENY_UNGRANTED_ASSUME_ROLES],
        "the grant is the namespace's"
    );

    // The same reach written by hand is held to the same grant, with the
    // pattern it writes: a grant covers it only when it covers every role
    // the pattern names.
    for (action, resource, granted) in [
        ("sts:AssumeRole", READER, true),
        ("sts:Assume*", "arn:aws:iam::222222222222:role/team-*", true),
        (
            "sts:AssumeRole",
            "arn:aws:iam::333333333333:role/reader",
            false,
        ),
        ("sts:*", "arn:aws:iam::*:role/reader", false),
        ("STS:assumerole", "arn:aws:iam::333333333333:role/x", false),
        ("*", "arn:aws:iam::333333333333:role/x", false),
        ("s?s:AssumeRole", "arn:aws:iam::333333333333:role/x", false),
        ("sts:AssumeRole", "arn:aws:iam::22222222222?:role/x", false),
        (
            "sts:AssumeRoleWithWebIdentity",
            "arn:aws:iam::333333333333:role/x",
            true,
        ),
        ("sts:TagSession", "arn:aws:iam::333333333333:role/x", true),
    ] {
        let spec = Spec {
            namespace: NS,
            ..with_inline(allow(json!(action), json!(resource)))
        };
        let found = judge(&guardrails, &spec);
        // `*` breaks other rules too; this one is what is judged here.
        let ours: Vec<&Violation> = found
            .iter()
            .filter(|v| v.rule == DENY_UNGRANTED_ASSUME_ROLES)
            .collect();
        assert_eq!(
            ours.is_empty(),
            granted,
            "{action} on {resource}: {found:?}"
        );
        if let Some(v) = ours.first() {
            assert_eq!(v.rule, DENY_UNGRANTED_ASSUME_ROLES);
            assert_eq!(v.field, "spec.policies.inline.p.Statement[0].Resource");
            assert_eq!(v.item, resource);
        }
    }
    // A list is judged item by item; a single statement object and a
    // NotAction count as well.
    let mixed = judge(
        &guardrails,
        &with_inline(allow(
            json!("sts:AssumeRole"),
            json!([READER, "arn:aws:iam::333333333333:role/x"]),
        )),
    );
    assert_eq!(
        mixed.iter().map(|v| v.item.as_str()).collect::<Vec<_>>(),
        ["arn:aws:iam::333333333333:role/x"]
    );
    let single = Spec {
        inline: BTreeMap::from([(
            "p".to_string(),
            json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::333333333333:role/x"}}).into(),
        )]),
        ..Spec::default()
    };
    assert_eq!(
        rules_broken(&guardrails, &single),
        [DENY_UNGRANTED_ASSUME_ROLES]
    );
    let not_action = with_inline(
        json!([{"Effect": "Allow", "NotAction": "s3:*", "Resource": "arn:aws:iam::333333333333:role/x"}]),
    );
    assert!(
        rules_broken(&guardrails, &not_action).contains(&DENY_UNGRANTED_ASSUME_ROLES.to_string()),
        "{:?}",
        rules_broken(&guardrails, &not_action)
    );
    // Every resource is the sts rule's to report, once.
    assert_eq!(
        rules_broken(
            &guardrails,
            &with_inline(allow(json!("sts:AssumeRole"), json!("*")))
        ),
        [DENY_STS_ON_ALL]
    );
    let switched_off =
        Guardrails::parse("disabledDefaultRules: [deny-ungranted-assume-roles]\n").unwrap();
    assert!(judge(&switched_off, &declared(NS, &[READER])).is_empty());
}

#[test]
fn a_granted_pod_identity_target_may_be_assumed_inline_as_before() {
    const TARGET: &str = "arn:aws:iam::210987654321:role/shared-reports-writer";
    let guardrails = Guardrails::parse(
        "namespaces:\n- names: [apps]\n  roleArns: ['arn:aws:iam::210987654321:role/shared-*']\n",
    )
    .unwrap();
    let spec = |existing| Spec {
        existing,
        ..with_inline(allow(
            json!(["sts:AssumeRole", "sts:TagSession"]),
            json!(TARGET),
        ))
    };
    assert!(judge(&guardrails, &spec(vec![(TARGET_ROLE_FIELD, TARGET)])).is_empty());
    assert_eq!(
        rules_broken(&guardrails, &spec(Vec::new())),
        [DENY_UNGRANTED_ASSUME_ROLES],
        "without the target, the inline grant is a chain of its own"
    );
}
