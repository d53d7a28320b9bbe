//! The hostile-input set of issue 10: well over 150 specs an app team could
//! commit (wrong types, names and paths past IAM's limits, unicode and
//! control characters, malformed and oversized policy documents, every
//! guardrail rule, borrowed roles), each of which must be refused — by the
//! API server at apply time (the error names the field) or by the operator
//! with a named reason in `Ready` (the message names the field or item) —
//! while the emulator's call log shows not one AWS write for the whole set.
//!
//! Everything is applied in two `kubectl apply` calls and then read back in
//! one poll loop, so the set costs about as much as a handful of objects.
//! One test only: the zero-writes check reads the whole call log, so nothing
//! else in this binary may write to AWS while it runs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::operator::ensure_operator;
use support::{Harness, harness, is_write};

const API: &str = "API server";
const INVALID_SPEC: &str = "InvalidSpec";
const INVALID_POLICY: &str = "InvalidPolicy";
const GUARDRAIL: &str = "GuardrailViolation";
const BORROWED: &str = "BorrowedRole";

/// The label the guardrails file's namespace selector matches.
const GRANT_LABEL: (&str, &str) = ("team", "payments");

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Isa,
    Pib,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Isa => "IamServiceAccount",
            Kind::Pib => "PodIdentityBinding",
        }
    }
}

/// Where a group of cases is applied; each is one namespace, so that the
/// guardrails file can grant some of them what others may not use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    /// Refused by the API server.
    Api,
    /// InvalidSpec and InvalidPolicy. The guardrails (built-in and the
    /// file's global rules) hold here too; no case comes near them.
    Spec,
    /// The built-in guardrails, no grant.
    Guard,
    /// No grant, while other namespaces have one: the custom global rules
    /// apply, the grants do not.
    Custom,
    /// Granted by name in the guardrails file.
    GrantNames,
    /// Labelled, but not with the label the grant selects.
    LabelMiss,
    /// Granted by label (roles under the operator's own path), so that a
    /// borrowed role is refused for being borrowed, not for its ARN.
    Borrow,
    /// Where the roles to be borrowed are made; granted by name the same
    /// ARNs as `Borrow`.
    Lender,
}

const GROUPS: [(Group, &str); 8] = [
    (Group::Api, "hostile-api"),
    (Group::Spec, "hostile-spec"),
    (Group::Guard, "hostile-guard"),
    (Group::Custom, "hostile-custom"),
    (Group::GrantNames, "hostile-grant"),
    (Group::LabelMiss, "hostile-label-miss"),
    (Group::Borrow, "hostile-borrow"),
    (Group::Lender, "hostile-lender"),
];

struct Case {
    group: Group,
    kind: Kind,
    name: String,
    spec: Value,
    /// `API` or the Ready reason.
    expect: &'static str,
    /// What the API server's error or the Ready message must mention: the
    /// field path, the offending item, the rule.
    needles: Vec<String>,
}

#[derive(Default)]
struct Cases {
    all: Vec<Case>,
}

impl Cases {
    fn add(
        &mut self,
        group: Group,
        kind: Kind,
        name: &str,
        mut spec: Value,
        expect: &'static str,
        needles: &[&str],
    ) {
        // Every binding claims a ServiceAccount of its own name, so that no
        // two of them meet in a rival-claim refusal; a case that is about
        // serviceAccountName sets it (null: leave it out).
        if kind == Kind::Pib
            && let Value::Object(map) = &mut spec
        {
            match map.get("serviceAccountName") {
                None => {
                    map.insert("serviceAccountName".into(), json!(name));
                }
                Some(Value::Null) => {
                    map.remove("serviceAccountName");
                }
                Some(_) => {}
            }
        }
        assert!(
            self.all.iter().all(|c| c.name != name),
            "case name {name} twice"
        );
        assert!(
            name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "case name {name} is not a Kubernetes name"
        );
        self.all.push(Case {
            group,
            kind,
            name: name.to_string(),
            spec,
            expect,
            needles: needles.iter().map(|n| n.to_string()).collect(),
        });
    }

    fn api(&mut self, kind: Kind, name: &str, spec: Value, needles: &[&str]) {
        self.add(Group::Api, kind, name, spec, API, needles);
    }
}

fn doc(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn allow(action: Value, resource: Value) -> Value {
    json!({"Effect": "Allow", "Action": action, "Resource": resource})
}

/// The spec of an object whose only content is one inline policy.
fn inline_spec(kind: Kind, policy: &str, document: Value) -> Value {
    with_policies(kind, json!({"inline": {policy: document}}))
}

fn managed_spec(kind: Kind, arns: &[&str]) -> Value {
    with_policies(kind, json!({ "managed": arns }))
}

fn with_policies(kind: Kind, policies: Value) -> Value {
    match kind {
        Kind::Isa => json!({ "policies": policies }),
        Kind::Pib => json!({"role": {}, "policies": policies}),
    }
}

/// The spec of an object whose only content is its role. A binding needs
/// `role` (or `roleArn`) anyway, so both kinds take the same spec.
fn with_role(role: Value) -> Value {
    json!({ "role": role })
}

/// A valid statement of about `size` characters, to push documents past
/// IAM's size quota with nothing else wrong in them.
fn padded_document(size: usize) -> Value {
    let resources: Vec<String> = (0..size / 40)
        .map(|i| format!("arn:aws:s3:::hostile-padding-{i:08}/*"))
        .collect();
    doc(json!([allow(json!("s3:GetObject"), json!(resources))]))
}

/// Specs the API server must refuse: the schema and CEL rules of crds/.
fn api_cases(c: &mut Cases) {
    use Kind::{Isa, Pib};
    let long = |n: usize| "a".repeat(n);
    // Adoption takes a role by its name, and never beside roleArn.
    c.api(
        Isa,
        "api-isa-adopt-without-name",
        json!({ "adoptRole": true }),
        &["adoptRole", "role.name"],
    );
    // Role chaining: at most 20 roles, each once.
    let many: Vec<String> = (0..21)
        .map(|i| format!("arn:aws:iam::210987654321:role/r{i}"))
        .collect();
    c.api(
        Pib,
        "api-pib-assume-roles-21",
        with_policies(Pib, json!({ "assumeRoles": many })),
        &["spec.policies.assumeRoles"],
    );
    c.api(
        Isa,
        "api-isa-assume-roles-twice",
        with_policies(
            Isa,
            json!({"assumeRoles": ["arn:aws:iam::210987654321:role/a", "arn:aws:iam::210987654321:role/a"]}),
        ),
        &["spec.policies.assumeRoles"],
    );
    c.api(
        Isa,
        "api-isa-adopt-with-role-arn",
        json!({"adoptRole": true, "role": {"name": "app"}, "roleArn": "arn:aws:iam::123456789012:role/app"}),
        &["adoptRole", "roleArn"],
    );
    for kind in [Isa, Pib] {
        let k = if kind == Isa { "isa" } else { "pib" };
        let role = with_role;
        let n = |what: &str| format!("api-{k}-{what}");
        c.api(
            kind,
            &n("name-65"),
            role(json!({"name": long(65)})),
            &["spec.role.name"],
        );
        // IAM compares tag keys without case: this would sit beside (and
        // clash with) the operator's own ownership tag.
        c.api(
            kind,
            &n("tag-ownership-upper"),
            role(json!({"tags": {"IAM-OPERATOR.IO/namespace": "kube-system"}})),
            &["spec.role.tags"],
        );
        c.api(
            kind,
            &n("name-space"),
            role(json!({"name": "my role"})),
            &["spec.role.name"],
        );
        c.api(
            kind,
            &n("name-unicode"),
            role(json!({"name": "rôle-ünï"})),
            &["spec.role.name"],
        );
        c.api(
            kind,
            &n("name-slash"),
            role(json!({"name": "team/app"})),
            &["spec.role.name"],
        );
        c.api(
            kind,
            &n("name-nul"),
            role(json!({"name": "app\u{0}role"})),
            &["spec.role.name"],
        );
        c.api(
            kind,
            &n("name-zwsp"),
            role(json!({"name": "app\u{200b}role"})),
            &["spec.role.name"],
        );
        c.api(
            kind,
            &n("name-number"),
            role(json!({"name": 42})),
            &["spec.role.name", "string"],
        );
        c.api(
            kind,
            &n("path-no-slash"),
            role(json!({"path": "apps"})),
            &["spec.role.path"],
        );
        c.api(
            kind,
            &n("path-space"),
            role(json!({"path": "/my apps/"})),
            &["spec.role.path"],
        );
        c.api(
            kind,
            &n("path-513"),
            role(json!({"path": format!("/{}/", long(511))})),
            &["spec.role.path"],
        );
        c.api(
            kind,
            &n("path-unicode"),
            role(json!({"path": "/äpps/"})),
            &["spec.role.path"],
        );
        c.api(
            kind,
            &n("path-empty"),
            role(json!({"path": ""})),
            &["spec.role.path"],
        );
        c.api(
            kind,
            &n("desc-1001"),
            role(json!({"description": long(1001)})),
            &["spec.role.description"],
        );
        c.api(
            kind,
            &n("tag-aws"),
            role(json!({"tags": {"aws:cloudformation:stack-name": "x"}})),
            &["spec.role.tags", "reserved"],
        );
        c.api(
            kind,
            &n("tag-aws-upper"),
            role(json!({"tags": {"AWS:Name": "x"}})),
            &["spec.role.tags", "reserved"],
        );
        c.api(
            kind,
            &n("tag-ownership"),
            role(json!({"tags": {"iam-operator.io/namespace": "kube-system"}})),
            &["spec.role.tags", "reserved"],
        );
        let many: BTreeMap<String, String> =
            (0..46).map(|i| (format!("t{i}"), "v".into())).collect();
        c.api(
            kind,
            &n("tags-46"),
            role(json!({ "tags": many })),
            &["spec.role.tags"],
        );
        c.api(
            kind,
            &n("tags-list"),
            role(json!({"tags": ["team=a"]})),
            &["spec.role.tags", "object"],
        );
        c.api(
            kind,
            &n("session-3599"),
            role(json!({"maxSessionDurationSeconds": 3599})),
            &["spec.role.maxSessionDurationSeconds"],
        );
        c.api(
            kind,
            &n("session-43201"),
            role(json!({"maxSessionDurationSeconds": 43201})),
            &["spec.role.maxSessionDurationSeconds"],
        );
        c.api(
            kind,
            &n("session-string"),
            role(json!({"maxSessionDurationSeconds": "3600"})),
            &["spec.role.maxSessionDurationSeconds", "integer"],
        );
        c.api(
            kind,
            &n("managed-string"),
            with_policies(
                kind,
                json!({"managed": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
            ),
            &["spec.policies.managed", "array"],
        );
        let twenty_one: Vec<String> = (0..21)
            .map(|i| format!("arn:aws:iam::123456789012:policy/p{i}"))
            .collect();
        c.api(
            kind,
            &n("managed-21"),
            with_policies(kind, json!({ "managed": twenty_one })),
            &["spec.policies.managed"],
        );
        c.api(
            kind,
            &n("inline-string"),
            with_policies(
                kind,
                json!({"inline": {"p": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"}}),
            ),
            &["spec.policies.inline", "object"],
        );
        c.api(
            kind,
            &n("inline-list"),
            with_policies(kind, json!({"inline": [{"Version": "2012-10-17"}]})),
            &["spec.policies.inline", "object"],
        );
        c.api(
            kind,
            &n("deletion-destroy"),
            {
                let mut spec = with_role(json!({}));
                spec["deletionPolicy"] = json!("Destroy");
                spec
            },
            &["spec.deletionPolicy"],
        );
    }

    // IamServiceAccount only.
    c.api(
        Isa,
        "api-isa-managed-dup",
        json!({"policies": {"managed": [
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "arn:aws:iam::aws:policy/ReadOnlyAccess"
        ]}}),
        &["spec.policies.managed", "Duplicate"],
    );
    c.api(
        Isa,
        "api-isa-managed-number",
        json!({"policies": {"managed": [7]}}),
        &["spec.policies.managed", "string"],
    );
    c.api(
        Isa,
        "api-isa-policies-list",
        json!({"policies": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}),
        &["spec.policies", "object"],
    );
    c.api(
        Isa,
        "api-isa-role-string",
        json!({"role": "admin"}),
        &["spec.role", "object"],
    );
    c.api(
        Isa,
        "api-isa-spec-string",
        json!("give me admin"),
        &["spec", "object"],
    );
    c.api(
        Isa,
        "api-isa-token-3599",
        json!({"tokenExpirationSeconds": 3599}),
        &["spec.tokenExpirationSeconds"],
    );
    c.api(
        Isa,
        "api-isa-token-86401",
        json!({"tokenExpirationSeconds": 86401}),
        &["spec.tokenExpirationSeconds"],
    );
    c.api(
        Isa,
        "api-isa-token-string",
        json!({"tokenExpirationSeconds": "1d"}),
        &["spec.tokenExpirationSeconds", "integer"],
    );
    c.api(
        Isa,
        "api-isa-audience-empty",
        json!({"audience": ""}),
        &["spec.audience"],
    );
    c.api(
        Isa,
        "api-isa-audience-256",
        json!({"audience": long(256)}),
        &["spec.audience"],
    );
    c.api(
        Isa,
        "api-isa-sts-regional-string",
        json!({"stsRegionalEndpoints": "yes"}),
        &["spec.stsRegionalEndpoints", "boolean"],
    );
    c.api(
        Isa,
        "api-isa-sa-upper",
        json!({"serviceAccount": {"name": "App"}}),
        &["spec.serviceAccount.name"],
    );
    c.api(
        Isa,
        "api-isa-sa-unicode",
        json!({"serviceAccount": {"name": "äpp"}}),
        &["spec.serviceAccount.name"],
    );
    c.api(
        Isa,
        "api-isa-sa-254",
        json!({"serviceAccount": {"name": long(254)}}),
        &["spec.serviceAccount.name"],
    );
    c.api(
        Isa,
        "api-isa-sa-underscore",
        json!({"serviceAccount": {"name": "my_app"}}),
        &["spec.serviceAccount.name"],
    );
    c.api(
        Isa,
        "api-isa-sa-leading-dash",
        json!({"serviceAccount": {"name": "-app"}}),
        &["spec.serviceAccount.name"],
    );
    c.api(
        Isa,
        "api-isa-sa-string",
        json!({"serviceAccount": "app"}),
        &["spec.serviceAccount", "object"],
    );
    c.api(
        Isa,
        "api-isa-sa-create-string",
        json!({"serviceAccount": {"create": "yes"}}),
        &["spec.serviceAccount.create", "boolean"],
    );

    // PodIdentityBinding only.
    let arn = "arn:aws:iam::123456789012:role/app";
    c.api(
        Pib,
        "api-pib-role-and-arn",
        json!({"role": {}, "roleArn": arn}),
        &["roleArn", "exactly one"],
    );
    c.api(
        Pib,
        "api-pib-neither-role",
        json!({}),
        &["roleArn", "exactly one"],
    );
    c.api(
        Pib,
        "api-pib-arn-with-policies",
        json!({"roleArn": arn, "policies": {"managed": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}}),
        &["policies", "roleArn"],
    );
    for (what, bad) in [
        ("not-arn", "app-role"),
        ("short-account", "arn:aws:iam::12345:role/app"),
        ("user", "arn:aws:iam::123456789012:user/app"),
        ("sts", "arn:aws:sts::123456789012:role/app"),
        ("empty-name", "arn:aws:iam::123456789012:role/"),
        ("other-cloud", "arn:gcp:iam::123456789012:role/app"),
    ] {
        c.api(
            Pib,
            &format!("api-pib-arn-{what}"),
            json!({ "roleArn": bad }),
            &["spec.roleArn"],
        );
    }
    c.api(
        Pib,
        "api-pib-arn-list",
        json!({ "roleArn": [arn] }),
        &["spec.roleArn", "string"],
    );
    for (what, bad) in [
        ("policy", "arn:aws:iam::123456789012:policy/app"),
        ("bare-name", "app"),
        ("no-account", "arn:aws:iam:::role/app"),
    ] {
        c.api(
            Pib,
            &format!("api-pib-target-{what}"),
            json!({"role": {}, "targetRoleArn": bad}),
            &["spec.targetRoleArn"],
        );
    }
    c.api(
        Pib,
        "api-pib-sa-missing",
        json!({"role": {}, "serviceAccountName": null}),
        &["spec.serviceAccountName", "Required"],
    );
    for (what, bad) in [
        ("empty", String::new()),
        ("upper", "App".to_string()),
        ("unicode", "äpp".to_string()),
        ("254", long(254)),
        ("underscore", "my_app".to_string()),
        ("space", "my app".to_string()),
    ] {
        c.api(
            Pib,
            &format!("api-pib-sa-{what}"),
            json!({"role": {}, "serviceAccountName": bad}),
            &["spec.serviceAccountName"],
        );
    }
    c.api(
        Pib,
        "api-pib-session-tags-string",
        json!({"role": {}, "disableSessionTags": "no"}),
        &["spec.disableSessionTags", "boolean"],
    );
}

/// Values IAM would refuse that the schema lets through: the operator's
/// validation (src/policy/validate.rs, desire.rs) refuses them.
fn invalid_spec_cases(c: &mut Cases, account: &str) {
    use Kind::{Isa, Pib};
    let mut add = |kind: Kind, name: &str, spec: Value, needles: &[&str]| {
        c.add(Group::Spec, kind, name, spec, INVALID_SPEC, needles);
    };
    let long_policy = format!("arn:aws:iam::{account}:policy/{}", "n".repeat(129));
    // Chained roles are named exactly, as roles of this partition.
    for (kind, what, bad, needle) in [
        (
            Isa,
            "wildcard",
            "arn:aws:iam::210987654321:role/*",
            "spec.policies.assumeRoles[0]",
        ),
        (
            Pib,
            "user",
            "arn:aws:iam::210987654321:user/admin",
            "spec.policies.assumeRoles[0]",
        ),
        (
            Isa,
            "partition",
            "arn:aws-cn:iam::210987654321:role/x",
            "across partitions",
        ),
        (
            Pib,
            "not-arn",
            "elb-describer",
            "spec.policies.assumeRoles[0]",
        ),
        (
            Isa,
            "wildcard-path",
            "arn:aws:iam::210987654321:role/*/reader",
            "wildcard",
        ),
    ] {
        add(
            kind,
            &format!("spec-assume-roles-{what}"),
            with_policies(kind, json!({ "assumeRoles": [bad] })),
            &[needle],
        );
    }
    add(
        Pib,
        "spec-pib-assume-roles-beside-target",
        json!({
            "role": {},
            "targetRoleArn": "arn:aws:iam::210987654321:role/target-role",
            "policies": {"assumeRoles": ["arn:aws:iam::210987654321:role/elb-describer"]},
        }),
        &["spec.policies.assumeRoles", "reach nothing"],
    );
    add(
        Isa,
        "spec-isa-inline-named-as-the-chain",
        inline_spec(
            Isa,
            "iam-operator-assume-roles",
            doc(json!([allow(
                json!("s3:GetObject"),
                json!("arn:aws:s3:::b/*")
            )])),
        ),
        &[
            "spec.policies.inline.iam-operator-assume-roles",
            "operator's own",
        ],
    );
    for (what, bad) in [
        ("no-arn", "AmazonS3ReadOnlyAccess"),
        ("few-parts", "arn:aws:iam::aws"),
        ("partition", "arn:azure:iam::aws:policy/ReadOnlyAccess"),
        ("service", "arn:aws:s3::aws:policy/ReadOnlyAccess"),
        ("region", "arn:aws:iam:us-east-1:aws:policy/ReadOnlyAccess"),
        ("account", "arn:aws:iam::12345:policy/ReadOnlyAccess"),
        ("role", "arn:aws:iam::123456789012:role/ReadOnlyAccess"),
        ("empty-name", "arn:aws:iam::123456789012:policy/team/"),
        ("space", "arn:aws:iam::123456789012:policy/read only"),
        ("unicode", "arn:aws:iam::aws:policy/ReadÖnlyAccess"),
        ("wildcard", "arn:aws:iam::aws:policy/*"),
        ("too-long", long_policy.as_str()),
    ] {
        add(
            Isa,
            &format!("spec-isa-managed-{what}"),
            managed_spec(Isa, &[bad]),
            &["spec.policies.managed[0]"],
        );
    }
    add(
        Pib,
        "spec-pib-managed-third",
        managed_spec(
            Pib,
            &[
                "arn:aws:iam::aws:policy/ReadOnlyAccess",
                "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                "arn:aws:iam::aws:policy/ReadOnly Access",
            ],
        ),
        &["spec.policies.managed[2]"],
    );
    for (what, bad) in [
        ("not-arn", "apps-boundary"),
        ("role", "arn:aws:iam::123456789012:role/apps-boundary"),
    ] {
        add(
            Isa,
            &format!("spec-isa-boundary-{what}"),
            json!({"role": {"permissionsBoundary": bad}}),
            &["spec.role.permissionsBoundary"],
        );
    }
    let ok_doc = doc(json!([allow(
        json!("s3:GetObject"),
        json!("arn:aws:s3:::bucket/*")
    )]));
    for (what, bad) in [
        ("space", "read objects".to_string()),
        ("slash", "team/read".to_string()),
        ("unicode", "lesen-für-alle".to_string()),
        ("129", "p".repeat(129)),
    ] {
        add(
            Isa,
            &format!("spec-isa-inline-name-{what}"),
            inline_spec(Isa, &bad, ok_doc.clone()),
            &["spec.policies.inline"],
        );
    }
    add(
        Isa,
        "spec-isa-inline-too-large",
        inline_spec(Isa, "big", padded_document(11_000)),
        &["spec.policies.inline", "10240"],
    );
    add(
        Pib,
        "spec-pib-inline-too-large-together",
        with_policies(
            Pib,
            json!({"inline": {"a": padded_document(6_000), "b": padded_document(6_000)}}),
        ),
        &["spec.policies.inline", "10240"],
    );
    for (what, bad) in [
        ("emoji", "rocket \u{1f680} role"),
        ("nul", "app\u{0}role"),
        ("zwsp", "app\u{200b}role"),
        ("rtl", "app\u{202e}elor"),
        ("cjk", "应用角色"),
    ] {
        add(
            Isa,
            &format!("spec-isa-desc-{what}"),
            json!({"role": {"description": bad}}),
            &["spec.role.description"],
        );
    }
    for (what, tags) in [
        ("key-hash", json!({"team#1": "a"})),
        ("value-angle", json!({"team": "<script>"})),
        ("key-129", json!({ "k".repeat(129): "a" })),
        ("value-257", json!({"team": "v".repeat(257)})),
        ("case-twins", json!({"Team": "a", "team": "b"})),
    ] {
        add(
            Pib,
            &format!("spec-pib-tag-{what}"),
            json!({"role": {"tags": tags}}),
            &["spec.role.tags"],
        );
    }
    for (what, bad) in [
        ("space", "sts.amazonaws.com "),
        ("tab", "sts.\tamazonaws.com"),
    ] {
        add(
            Isa,
            &format!("spec-isa-audience-{what}"),
            json!({ "audience": bad }),
            &["spec.audience"],
        );
    }
    let other_account = "arn:aws:iam::999999999999:role/app";
    let roles: [(&str, &str, String); 7] = [
        ("roleArn", "other-account", other_account.to_string()),
        (
            "roleArn",
            "other-partition",
            format!("arn:aws-cn:iam::{account}:role/app"),
        ),
        (
            "roleArn",
            "bad-partition",
            format!("arn:aws-mars:iam::{account}:role/app"),
        ),
        (
            "roleArn",
            "name-65",
            format!("arn:aws:iam::{account}:role/{}", "r".repeat(65)),
        ),
        (
            "roleArn",
            "path-space",
            format!("arn:aws:iam::{account}:role/my apps/app"),
        ),
        (
            "roleArn",
            "wildcard",
            format!("arn:aws:iam::{account}:role/*"),
        ),
        (
            "targetRoleArn",
            "other-partition",
            format!("arn:aws-us-gov:iam::{account}:role/app"),
        ),
    ];
    for (field, what, bad) in roles {
        let spec = if field == "roleArn" {
            json!({ "roleArn": bad })
        } else {
            json!({"role": {}, "targetRoleArn": bad})
        };
        add(
            Pib,
            &format!("spec-pib-{}-{what}", field.to_lowercase()),
            spec.clone(),
            &[&format!("spec.{field}")],
        );
        // An IamServiceAccount names an existing role the same way.
        if field == "roleArn" {
            add(
                Isa,
                &format!("spec-isa-rolearn-{what}"),
                spec,
                &["spec.roleArn"],
            );
        }
    }
    let own_role = format!("arn:aws:iam::{account}:role/app");
    add(
        Isa,
        "spec-isa-rolearn-with-policies",
        json!({"roleArn": own_role, "policies": {"managed": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}}),
        &["spec.roleArn", "spec.policies"],
    );
    add(
        Isa,
        "spec-isa-rolearn-with-role-name",
        json!({"roleArn": own_role, "role": {"name": "app"}}),
        &["spec.roleArn", "spec.role"],
    );
}

/// Malformed policy documents, refused before anything reaches AWS.
fn invalid_policy_cases(c: &mut Cases) {
    use Kind::{Isa, Pib};
    let get = || json!("s3:GetObject");
    let bucket = || json!("arn:aws:s3:::bucket/*");
    let good = || allow(get(), bucket());
    let mut add = |kind: Kind, what: &str, document: Value, needles: &[&str]| {
        // The policy carries the case's name, so the message must name
        // this very policy.
        let policy = format!("p-{what}");
        let mut all = vec![format!("spec.policies.inline.{policy}")];
        all.extend(needles.iter().map(|n| n.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        c.add(
            Group::Spec,
            kind,
            &format!("policy-{}-{what}", if kind == Isa { "isa" } else { "pib" }),
            inline_spec(kind, &policy, document),
            INVALID_POLICY,
            &all,
        );
    };
    add(
        Isa,
        "version-2012-10-18",
        json!({"Version": "2012-10-18", "Statement": [good()]}),
        &["Version"],
    );
    add(
        Isa,
        "version-number",
        json!({"Version": 2012, "Statement": [good()]}),
        &["Version"],
    );
    add(
        Isa,
        "version-empty",
        json!({"Version": "", "Statement": [good()]}),
        &["Version"],
    );
    add(
        Pib,
        "version-missing",
        json!({"Statement": [good()]}),
        &["Version"],
    );
    add(
        Isa,
        "statement-missing",
        json!({"Version": "2012-10-17"}),
        &["Statement"],
    );
    add(
        Isa,
        "statement-lowercase",
        json!({"Version": "2012-10-17", "statement": [good()]}),
        &["Statement"],
    );
    add(Isa, "statement-empty", doc(json!([])), &["Statement"]);
    add(
        Isa,
        "statement-string",
        doc(json!("s3:GetObject")),
        &["Statement"],
    );
    add(Pib, "statement-number", doc(json!(42)), &["Statement"]);
    add(
        Isa,
        "statement-item-string",
        doc(json!(["allow everything"])),
        &["Statement[0]"],
    );
    add(
        Isa,
        "statement-second-number",
        doc(json!([good(), 7])),
        &["Statement[1]"],
    );
    add(
        Isa,
        "effect-missing",
        doc(json!([{"Action": "s3:GetObject", "Resource": "*"}])),
        &["Statement[0]", "Effect"],
    );
    add(
        Isa,
        "effect-lowercase",
        doc(json!([{"Effect": "allow", "Action": "s3:GetObject", "Resource": "*"}])),
        &["Statement[0]", "Effect"],
    );
    add(
        Pib,
        "effect-permit",
        doc(json!([good(), {"Effect": "Permit", "Action": "s3:GetObject", "Resource": "*"}])),
        &["Statement[1]", "Effect"],
    );
    add(
        Isa,
        "effect-list",
        doc(json!([{"Effect": ["Allow"], "Action": "s3:GetObject", "Resource": "*"}])),
        &["Statement[0]", "Effect"],
    );
    add(
        Isa,
        "action-neither",
        doc(json!([{"Effect": "Allow", "Resource": "arn:aws:s3:::bucket/*"}])),
        &["Statement[0]", "Action", "NotAction"],
    );
    add(
        Isa,
        "action-both",
        doc(
            json!([{"Effect": "Deny", "Action": "s3:GetObject", "NotAction": "s3:PutObject", "Resource": "*"}]),
        ),
        &["Statement[0]", "Action", "NotAction"],
    );
    add(
        Isa,
        "resource-neither",
        doc(json!([{"Effect": "Allow", "Action": "s3:GetObject"}])),
        &["Statement[0]", "Resource", "NotResource"],
    );
    add(
        Pib,
        "resource-both",
        doc(
            json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::a/*", "NotResource": "arn:aws:s3:::b/*"}]),
        ),
        &["Statement[0]", "Resource", "NotResource"],
    );
    add(
        Isa,
        "principal",
        doc(
            json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}]),
        ),
        &["Statement[0]", "Principal"],
    );
    add(
        Isa,
        "not-principal",
        doc(
            json!([{"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject", "Resource": "*"}]),
        ),
        &["Statement[0]", "NotPrincipal"],
    );
    let conditioned = |condition: Value| {
        doc(
            json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*", "Condition": condition}]),
        )
    };
    add(
        Isa,
        "condition-stringequalz",
        conditioned(json!({"StringEqualz": {"aws:PrincipalTag/team": "a"}})),
        &["Statement[0]", "Condition", "StringEqualz"],
    );
    add(
        Pib,
        "condition-qualified-typo",
        conditioned(json!({"ForAnyValue:StringLikee": {"aws:TagKeys": "team*"}})),
        &["Statement[0]", "Condition", "StringLikee"],
    );
    add(
        Isa,
        "condition-string",
        conditioned(json!("aws:SecureTransport")),
        &["Statement[0]", "Condition"],
    );
    for (what, action) in [
        ("no-colon", "s3GetObject"),
        ("space", "s3:Get Object"),
        ("empty", ""),
        ("empty-service", ":GetObject"),
        ("empty-name", "s3:"),
        ("nul", "s3:Get\u{0}Object"),
        ("newline", "s3:GetObject\n"),
        ("zwsp", "s3:Get\u{200b}Object"),
        ("rtl", "s3:Get\u{202e}tcejbO"),
        ("bom", "\u{feff}s3:GetObject"),
        ("cyrillic", "s3:GetОbject"),
    ] {
        add(
            Isa,
            &format!("action-{what}"),
            doc(json!([allow(json!(action), bucket())])),
            &["Statement[0]", "Action"],
        );
    }
    add(
        Pib,
        "action-number",
        doc(json!([allow(json!(42), bucket())])),
        &["Statement[0]", "Action"],
    );
    add(
        Isa,
        "action-object",
        doc(json!([allow(json!({"s3": "GetObject"}), bucket())])),
        &["Statement[0]", "Action"],
    );
    add(
        Isa,
        "action-list-number",
        doc(json!([allow(json!(["s3:GetObject", 7]), bucket())])),
        &["Statement[0]", "Action[1]"],
    );
    add(
        Isa,
        "resource-number",
        doc(json!([allow(get(), json!(5))])),
        &["Statement[0]", "Resource"],
    );
    add(
        Isa,
        "top-level-key",
        json!({"Version": "2012-10-17", "Statement": [good()], "Extra": true}),
        &["Extra"],
    );
    add(
        Isa,
        "statement-key",
        doc(
            json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*", "Actions": "s3:PutObject"}]),
        ),
        &["Statement[0]", "Actions"],
    );
    add(
        Isa,
        "sid-dash",
        doc(
            json!([{"Sid": "read-objects", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}]),
        ),
        &["Statement[0]", "Sid"],
    );
    add(
        Isa,
        "resource-nul",
        doc(json!([allow(get(), json!("arn:aws:s3:::bucket\u{0}/*"))])),
        &["Statement[0]", "Resource"],
    );
    add(
        Pib,
        "resource-not-arn",
        doc(json!([allow(get(), json!("bucket/*"))])),
        &["Statement[0]", "Resource"],
    );
    add(
        Isa,
        "condition-value-rtl",
        conditioned(json!({"StringEquals": {"aws:PrincipalTag/team": "a\u{202e}b"}})),
        &["Statement[0]", "Condition"],
    );
    add(
        Pib,
        "duplicate-sid",
        doc(json!([
            {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::a/*"},
            {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
        ])),
        &["Statement[1]", "Sid", "Read"],
    );
    // A valid policy beside a malformed one: only the malformed one is named.
    c.add(
        Group::Spec,
        Isa,
        "policy-isa-second-of-two",
        json!({"policies": {"inline": {
            "a-good": doc(json!([good()])),
            "b-bad": doc(json!([{"Effect": "Allow", "Action": "s3:GetObject"}]))
        }}}),
        INVALID_POLICY,
        &["spec.policies.inline.b-bad", "Statement[0]", "Resource"],
    );
}

/// The built-in guardrails, with no configuration for this namespace. Each
/// message must name the rule and the offending item (field path and value).
fn default_guardrail_cases(c: &mut Cases, account: &str) {
    use Kind::{Isa, Pib};
    // Taking over someone else's role needs a grant no namespace has here.
    c.add(
        Group::Guard,
        Isa,
        "guard-isa-adopt-ungranted",
        json!({"adoptRole": true, "role": {"name": "made-by-terraform"}}),
        GUARDRAIL,
        &[
            "namespaces[].adoptRoles",
            "spec.adoptRole",
            "made-by-terraform",
        ],
    );
    // Chaining reaches other accounts only where granted, written either way.
    c.add(
        Group::Guard,
        Isa,
        "guard-isa-assume-roles-ungranted",
        with_policies(
            Isa,
            json!({"assumeRoles": ["arn:aws:iam::210987654321:role/elb-describer"]}),
        ),
        GUARDRAIL,
        &[
            "deny-ungranted-assume-roles",
            "spec.policies.assumeRoles[0]",
        ],
    );
    c.add(
        Group::Guard,
        Pib,
        "guard-pib-inline-assume-ungranted",
        inline_spec(
            Pib,
            "hop",
            doc(json!([allow(
                json!("sts:AssumeRole"),
                json!("arn:aws:iam::210987654321:role/elb-describer")
            )])),
        ),
        GUARDRAIL,
        &[
            "deny-ungranted-assume-roles",
            "spec.policies.inline.hop.Statement[0].Resource",
        ],
    );
    let admin_rule = "deny-admin-managed-policies";
    let aws = |name: &str| format!("arn:aws:iam::aws:policy/{name}");
    let mut managed = |kind: Kind, what: &str, arns: &[&str], bad: &str| {
        let item = format!("spec.policies.managed {bad}");
        c.add(
            Group::Guard,
            kind,
            &format!("guard-managed-{what}"),
            managed_spec(kind, arns),
            GUARDRAIL,
            &[admin_rule, &item],
        );
    };
    for (kind, what, name) in [
        (Isa, "isa-admin", "AdministratorAccess"),
        (Pib, "pib-admin", "AdministratorAccess"),
        (Isa, "isa-admin-amplify", "AdministratorAccess-Amplify"),
        (
            Isa,
            "isa-admin-beanstalk",
            "AdministratorAccess-AWSElasticBeanstalk",
        ),
        (Isa, "isa-iam-full", "IAMFullAccess"),
        (Pib, "pib-power-user", "PowerUserAccess"),
        (Isa, "isa-organizations-full", "AWSOrganizationsFullAccess"),
        // IAM does not tell names apart by case: this can only ever be
        // AdministratorAccess, so it must not reach AWS (as a CreateRole
        // before the attach fails, or as the attach itself).
        (Isa, "isa-admin-lowercase", "administratoraccess"),
    ] {
        let arn = aws(name);
        managed(kind, what, &[&arn], &arn);
    }
    managed(
        Isa,
        "isa-admin-third",
        &[
            &aws("ReadOnlyAccess"),
            &aws("AmazonS3ReadOnlyAccess"),
            &aws("AdministratorAccess"),
        ],
        &aws("AdministratorAccess"),
    );

    // One statement per case; `at` is the statement's index in the spec and
    // `field` the element the rule refuses, with the offending value.
    let mut inline = |kind: Kind, what: &str, statements: Value, rule: &str, at: &str| {
        let policy = format!("g-{what}");
        let item = format!("spec.policies.inline.{policy}.{at}");
        c.add(
            Group::Guard,
            kind,
            &format!("guard-{}-{what}", if kind == Isa { "isa" } else { "pib" }),
            inline_spec(kind, &policy, doc(statements)),
            GUARDRAIL,
            &[rule, &item],
        );
    };
    let star = || json!("*");
    let role_arn = format!("arn:aws:iam::{account}:role/some-role");
    let user_arn = format!("arn:aws:iam::{account}:user/someone");
    let wildcards = "deny-service-wildcards-on-all-resources";
    let iam_writes = "deny-iam-writes";
    let pass_role = "deny-pass-role-on-all-resources";
    let sts = "deny-sts-on-all-resources";
    let organizations = "deny-organizations-writes";
    let account_writes = "deny-account-writes";
    for (kind, what, action, resource, rule, offending) in [
        (Isa, "star-on-star", json!("*"), star(), wildcards, "*"),
        (Pib, "star-on-star", json!("*"), star(), wildcards, "*"),
        (Isa, "s3-star", json!("s3:*"), star(), wildcards, "s3:*"),
        (Isa, "ec2-star", json!("ec2:*"), star(), wildcards, "ec2:*"),
        (
            Isa,
            "dynamodb-star-in-list",
            json!(["s3:GetObject", "dynamodb:*"]),
            star(),
            wildcards,
            "dynamodb:*",
        ),
        (
            Isa,
            "star-resource-in-list",
            json!("ec2:*"),
            json!(["arn:aws:s3:::bucket", "*"]),
            wildcards,
            "ec2:*",
        ),
        // "*" on one bucket still reaches every IAM write.
        (
            Isa,
            "star-on-bucket",
            json!("*"),
            json!("arn:aws:s3:::bucket/*"),
            iam_writes,
            "*",
        ),
        (
            Isa,
            "iam-create-user",
            json!("iam:CreateUser"),
            json!(user_arn.clone()),
            iam_writes,
            "iam:CreateUser",
        ),
        (
            Isa,
            "iam-attach-role-policy",
            json!("iam:AttachRolePolicy"),
            json!(role_arn.clone()),
            iam_writes,
            "iam:AttachRolePolicy",
        ),
        (Pib, "iam-star", json!("iam:*"), star(), iam_writes, "iam:*"),
        (
            Isa,
            "iam-put-star",
            json!("iam:Put*"),
            json!(role_arn.clone()),
            iam_writes,
            "iam:Put*",
        ),
        (
            Isa,
            "iam-create-star",
            json!("iam:Create*"),
            json!(role_arn.clone()),
            iam_writes,
            "iam:Create*",
        ),
        (
            Isa,
            "iam-question-mark",
            json!("iam:?utRolePolicy"),
            json!(role_arn.clone()),
            iam_writes,
            "iam:?utRolePolicy",
        ),
        (
            Isa,
            "iam-upper",
            json!("IAM:CREATEACCESSKEY"),
            json!(user_arn.clone()),
            iam_writes,
            "IAM:CREATEACCESSKEY",
        ),
        (
            Isa,
            "i-star",
            json!("i*:*"),
            json!(role_arn.clone()),
            iam_writes,
            "i*:*",
        ),
        (
            Isa,
            "pass-role",
            json!("iam:PassRole"),
            star(),
            pass_role,
            "iam:PassRole",
        ),
        (
            Pib,
            "pass-role",
            json!("iam:PassRole"),
            star(),
            pass_role,
            "iam:PassRole",
        ),
        (
            Isa,
            "pass-star",
            json!("iam:Pass*"),
            star(),
            pass_role,
            "iam:Pass*",
        ),
        (
            Isa,
            "pass-role-case",
            json!("IAM:passrole"),
            star(),
            pass_role,
            "IAM:passrole",
        ),
        (
            Isa,
            "sts-assume-role",
            json!("sts:AssumeRole"),
            star(),
            sts,
            "sts:AssumeRole",
        ),
        (Pib, "sts-star", json!("sts:*"), star(), sts, "sts:*"),
        (
            Isa,
            "sts-tag-session",
            json!("sts:TagSession"),
            star(),
            sts,
            "sts:TagSession",
        ),
        (
            Isa,
            "org-create-account",
            json!("organizations:CreateAccount"),
            star(),
            organizations,
            "organizations:CreateAccount",
        ),
        (
            Isa,
            "org-leave",
            json!("organizations:LeaveOrganization"),
            star(),
            organizations,
            "organizations:LeaveOrganization",
        ),
        (
            Isa,
            "account-contact",
            json!("account:PutAlternateContact"),
            star(),
            account_writes,
            "account:PutAlternateContact",
        ),
        (
            Isa,
            "account-close",
            json!("account:CloseAccount"),
            star(),
            account_writes,
            "account:CloseAccount",
        ),
    ] {
        inline(
            kind,
            what,
            json!([allow(action, resource)]),
            rule,
            &format!("Statement[0].Action {offending}"),
        );
    }
    inline(
        Isa,
        "not-action",
        json!([{"Effect": "Allow", "NotAction": "s3:DeleteBucket", "Resource": "arn:aws:s3:::bucket"}]),
        "deny-not-action-allow",
        "Statement[0].NotAction s3:DeleteBucket",
    );
    inline(
        Pib,
        "not-resource",
        json!([{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}]),
        "deny-not-resource-allow",
        "Statement[0].NotResource arn:aws:s3:::secret/*",
    );
    // The offending statement is the second one the user wrote.
    inline(
        Isa,
        "second-statement",
        json!([
            allow(json!("s3:GetObject"), json!("arn:aws:s3:::bucket/*")),
            allow(json!("iam:AttachRolePolicy"), json!(role_arn))
        ]),
        iam_writes,
        "Statement[1].Action iam:AttachRolePolicy",
    );

    // No existing role may be named where no grant allows it.
    let legacy = format!("arn:aws:iam::{account}:role/legacy-role");
    let shared = format!("arn:aws:iam::{account}:role/shared/pod-role");
    for (what, spec, item) in [
        (
            "role-arn-existing",
            json!({ "roleArn": legacy }),
            format!("spec.roleArn {legacy}"),
        ),
        (
            "role-arn-shared",
            json!({ "roleArn": shared }),
            format!("spec.roleArn {shared}"),
        ),
        (
            "target-existing",
            json!({"role": {}, "targetRoleArn": legacy}),
            format!("spec.targetRoleArn {legacy}"),
        ),
    ] {
        c.add(
            Group::Guard,
            Pib,
            &format!("guard-pib-{what}"),
            spec,
            GUARDRAIL,
            &["deny-ungranted-role-arns", &item],
        );
    }
}

/// The custom rules of the guardrails file (see `guardrails_file`), and
/// namespace grants that belong to other namespaces.
fn custom_guardrail_cases(c: &mut Cases, account: &str) {
    use Kind::{Isa, Pib};
    let shared = format!("arn:aws:iam::{account}:role/shared/pod-role");
    let other = format!("arn:aws:iam::{account}:role/other/pod-role-other");
    let shared_evil = format!("arn:aws:iam::{account}:role/shared-evil/pod-role-evil");
    let target = format!("arn:aws:iam::{account}:role/other/target-role");
    let unlisted = format!("arn:aws:iam::{account}:policy/unlisted");
    let s3_full = "arn:aws:iam::aws:policy/AmazonS3FullAccess";
    let power = "arn:aws:iam::aws:policy/PowerUserAccess";
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    let statement =
        |action: &str, resource: &str| doc(json!([allow(json!(action), json!(resource))]));
    let secret = format!("arn:aws:secretsmanager:us-east-1:{account}:secret:db");
    let ungranted = "deny-ungranted-role-arns";
    let cases: Vec<(Group, Kind, &str, Value, &str, String)> = vec![
        // Global rules of the file, in a namespace without a grant and in
        // one with a grant that does not cover them.
        (
            Group::Custom,
            Isa,
            "managed-deny",
            managed_spec(Isa, &[s3_full]),
            "managedPolicies.deny",
            format!("spec.policies.managed {s3_full}"),
        ),
        (
            Group::GrantNames,
            Pib,
            "managed-deny-granted-ns",
            managed_spec(Pib, &[s3_full]),
            "managedPolicies.deny",
            format!("spec.policies.managed {s3_full}"),
        ),
        (
            Group::Custom,
            Isa,
            "allow-list-miss",
            managed_spec(Isa, &[&unlisted]),
            "managedPolicies.allow",
            format!("spec.policies.managed {unlisted}"),
        ),
        (
            Group::Custom,
            Isa,
            "inline-deny-resource",
            inline_spec(
                Isa,
                "c-delete",
                statement("s3:DeleteBucket", "arn:aws:s3:::prod-data"),
            ),
            "no-prod-bucket-deletes",
            "spec.policies.inline.c-delete.Statement[0].Action s3:DeleteBucket".into(),
        ),
        (
            Group::Custom,
            Pib,
            "inline-deny-wildcard",
            inline_spec(
                Pib,
                "c-delete-star",
                statement("s3:Delete*", "arn:aws:s3:::prod-logs"),
            ),
            "no-prod-bucket-deletes",
            "spec.policies.inline.c-delete-star.Statement[0].Action s3:Delete*".into(),
        ),
        (
            Group::Custom,
            Isa,
            "inline-deny-any-resource",
            inline_spec(
                Isa,
                "c-decrypt",
                statement(
                    "kms:Decrypt",
                    &format!("arn:aws:kms:us-east-1:{account}:key/k"),
                ),
            ),
            "no-kms-decrypt",
            "spec.policies.inline.c-decrypt.Statement[0].Action kms:Decrypt".into(),
        ),
        (
            Group::Custom,
            Isa,
            "inline-deny-except-miss",
            inline_spec(
                Isa,
                "c-secrets",
                statement("secretsmanager:PutSecretValue", &secret),
            ),
            "no-secret-writes",
            "spec.policies.inline.c-secrets.Statement[0].Action secretsmanager:PutSecretValue"
                .into(),
        ),
        (
            Group::Custom,
            Isa,
            "inline-deny-star-beyond-except",
            inline_spec(
                Isa,
                "c-secrets-star",
                statement("secretsmanager:*", &secret),
            ),
            "no-secret-writes",
            "spec.policies.inline.c-secrets-star.Statement[0].Action secretsmanager:*".into(),
        ),
        // No grant here: what another namespace may use, this one may not.
        (
            Group::Custom,
            Isa,
            "name-not-allowed",
            json!({"role": {"name": "apps-custom"}}),
            "roles.allowName",
            "spec.role.name apps-custom".into(),
        ),
        (
            Group::Custom,
            Pib,
            "path-not-allowed",
            json!({"role": {"path": "/apps/team/"}}),
            "roles.allowPath",
            "spec.role.path /apps/team/".into(),
        ),
        (
            Group::Custom,
            Isa,
            "power-user-granted-elsewhere",
            managed_spec(Isa, &[power]),
            "deny-admin-managed-policies",
            format!("spec.policies.managed {power}"),
        ),
        (
            Group::Custom,
            Pib,
            "role-arn-granted-elsewhere",
            json!({ "roleArn": shared }),
            ungranted,
            format!("spec.roleArn {shared}"),
        ),
        // Labelled, but not as the selector asks.
        (
            Group::LabelMiss,
            Pib,
            "label-miss-role-arn",
            json!({ "roleArn": shared }),
            ungranted,
            format!("spec.roleArn {shared}"),
        ),
        (
            Group::LabelMiss,
            Isa,
            "label-miss-name",
            json!({"role": {"name": "apps-label-miss"}}),
            "roles.allowName",
            "spec.role.name apps-label-miss".into(),
        ),
        (
            Group::LabelMiss,
            Isa,
            "label-miss-power-user",
            managed_spec(Isa, &[power]),
            "deny-admin-managed-policies",
            format!("spec.policies.managed {power}"),
        ),
        // Granted by label, for other ARNs than this one.
        (
            Group::Borrow,
            Pib,
            "label-grant-other-arn",
            json!({ "roleArn": shared }),
            ungranted,
            format!("spec.roleArn {shared}"),
        ),
        // Granted by name: names and paths, within the prefix and path.
        (
            Group::GrantNames,
            Isa,
            "name-prefix-left",
            json!({"role": {"name": "payments-app"}}),
            "roles.namePrefix",
            "spec.role.name payments-app".into(),
        ),
        (
            Group::GrantNames,
            Pib,
            "path-left",
            json!({"role": {"path": "/other/"}}),
            "roles.path",
            "spec.role.path /other/".into(),
        ),
        (
            Group::GrantNames,
            Isa,
            "path-root",
            json!({"role": {"path": "/"}}),
            "roles.path",
            "spec.role.path /".into(),
        ),
        (
            Group::GrantNames,
            Isa,
            "path-look-alike",
            json!({"role": {"path": "/apps-evil/"}}),
            "roles.path",
            "spec.role.path /apps-evil/".into(),
        ),
        (
            Group::GrantNames,
            Pib,
            "role-arn-outside-patterns",
            json!({ "roleArn": other }),
            ungranted,
            format!("spec.roleArn {other}"),
        ),
        (
            Group::GrantNames,
            Pib,
            "role-arn-look-alike-path",
            json!({ "roleArn": shared_evil }),
            ungranted,
            format!("spec.roleArn {shared_evil}"),
        ),
        (
            Group::GrantNames,
            Pib,
            "target-outside-patterns",
            json!({"role": {}, "targetRoleArn": target}),
            ungranted,
            format!("spec.targetRoleArn {target}"),
        ),
        (
            Group::GrantNames,
            Isa,
            "admin-despite-grant",
            managed_spec(Isa, &[admin]),
            "deny-admin-managed-policies",
            format!("spec.policies.managed {admin}"),
        ),
    ];
    for (group, kind, what, spec, rule, item) in cases {
        c.add(
            group,
            kind,
            &format!("custom-{what}"),
            spec,
            GUARDRAIL,
            &[rule, &item],
        );
    }
}

/// Roles the operator made for other objects, named by bindings in
/// namespaces whose grant covers those ARNs: refused for being borrowed.
fn borrowed_cases(c: &mut Cases, lender_ns: &str, lent_pib: &str, lent_isa: &str) {
    let upper = match lent_pib.rsplit_once('/') {
        Some((head, name)) => format!("{head}/{}", name.to_uppercase()),
        None => lent_pib.to_string(),
    };
    let cases: [(Group, &str, Value, &str); 7] = [
        (
            Group::Borrow,
            "pib-role",
            json!({ "roleArn": lent_pib }),
            "spec.roleArn",
        ),
        (
            Group::Borrow,
            "pib-role-as-target",
            json!({"role": {}, "targetRoleArn": lent_pib}),
            "spec.targetRoleArn",
        ),
        (
            Group::Borrow,
            "isa-role",
            json!({ "roleArn": lent_isa }),
            "spec.roleArn",
        ),
        (
            Group::Borrow,
            "isa-role-as-target",
            json!({"role": {}, "targetRoleArn": lent_isa}),
            "spec.targetRoleArn",
        ),
        (
            Group::Borrow,
            "no-session-tags",
            json!({"roleArn": lent_pib, "disableSessionTags": true}),
            "spec.roleArn",
        ),
        // IAM does not tell role names apart by case: the same role.
        (
            Group::Borrow,
            "name-upper",
            json!({ "roleArn": upper }),
            "spec.roleArn",
        ),
        // Another object in the lender's own namespace.
        (
            Group::Lender,
            "same-namespace",
            json!({ "roleArn": lent_pib }),
            "spec.roleArn",
        ),
    ];
    for (group, what, spec, field) in cases {
        c.add(
            group,
            Kind::Pib,
            &format!("borrow-{what}"),
            spec,
            BORROWED,
            &[field, lender_ns],
        );
    }
    // An IamServiceAccount naming either kind's role as its existing one.
    for (what, lent) in [("pib-role", lent_pib), ("isa-role", lent_isa)] {
        c.add(
            Group::Borrow,
            Kind::Isa,
            &format!("borrow-isa-names-{what}"),
            json!({ "roleArn": lent }),
            BORROWED,
            &["spec.roleArn", lender_ns],
        );
    }
}

/// The guardrails document: global custom rules (which no case of the
/// built-in rules depends on) and grants for some namespaces only — by name
/// (`grant`, `lender`) and by label (`GRANT_LABEL`).
fn guardrails_file(account: &str, grant: &str, lender: &str) -> String {
    let (label, value) = GRANT_LABEL;
    format!(
        r#"managedPolicies:
  allow:
    - "arn:aws:iam::aws:policy/*"
    - "arn:aws:iam::{account}:policy/approved-*"
  deny:
    - "arn:aws:iam::aws:policy/AmazonS3FullAccess"
inlinePolicies:
  deny:
    - name: no-prod-bucket-deletes
      actions: ["s3:DeleteBucket"]
      resources: ["arn:aws:s3:::prod-*"]
    - name: no-kms-decrypt
      actions: ["kms:Decrypt"]
    - name: no-secret-writes
      actions: ["secretsmanager:*"]
      except: ["secretsmanager:GetSecretValue", "secretsmanager:Describe*", "secretsmanager:List*"]
roles:
  namePrefix: "apps-"
  path: "/apps/"
  allowName: false
  allowPath: false
disabledDefaultRules: []
namespaces:
  - names: ["{grant}"]
    roleArns: ["arn:aws:iam::{account}:role/shared/*"]
    managedPolicies: ["arn:aws:iam::aws:policy/PowerUserAccess"]
    roleName: true
    rolePath: true
  - names: ["{lender}"]
    roleArns: ["arn:aws:iam::{account}:role/apps/*"]
  - selector: {{matchLabels: {{{label}: {value}}}}}
    roleArns: ["arn:aws:iam::{account}:role/apps/*"]
"#
    )
}

/// Roles someone else made, for the cases that name existing roles.
async fn make_foreign_roles(h: &Harness) {
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"]
    }]})
    .to_string();
    for (path, name) in [
        ("/", "legacy-role"),
        ("/shared/", "pod-role"),
        ("/shared-evil/", "pod-role-evil"),
        ("/other/", "pod-role-other"),
        ("/other/", "target-role"),
    ] {
        iam.create_role()
            .path(path)
            .role_name(name)
            .assume_role_policy_document(&trust)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateRole {path}{name}: {e:?}"));
    }
}

fn manifest(case: &Case, namespace: &str) -> Value {
    json!({
        "apiVersion": "iam-operator.io/v1alpha1",
        "kind": case.kind.name(),
        "metadata": {"name": case.name, "namespace": namespace},
        "spec": case.spec,
    })
}

/// Applies `items` in one call. `--validate=false`: kubectl's own
/// client-side schema check would refuse the whole list for one bad item,
/// and the refusals under test are the API server's.
fn apply_list(h: &Harness, items: Vec<Value>) -> (bool, String) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    let out = h.kubectl_output(&["apply", "--validate=false", "-f", "-"], Some(&list));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every IamServiceAccount and PodIdentityBinding, by (namespace, name).
fn all_objects(h: &Harness) -> BTreeMap<(String, String), Value> {
    h.kubectl_json(&["get", "isa,pib", "-A"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|o| {
            let key = (
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            (key, o)
        })
        .collect()
}

/// The Ready condition, once the operator has reported on this generation.
fn settled_ready(object: &Value) -> Option<&Value> {
    let generation = &object["metadata"]["generation"];
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .filter(|c| &c["observedGeneration"] == generation && c["reason"] != "Reconciling")
}

fn missing<'a>(text: &str, needles: &'a [String]) -> Vec<&'a str> {
    needles
        .iter()
        .filter(|n| !text.contains(n.as_str()))
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn hostile_specs_are_refused_without_one_aws_write() {
    let Some(h) = harness() else { return };
    let started = Instant::now();
    let ns: BTreeMap<Group, String> = GROUPS
        .iter()
        .map(|(group, prefix)| (*group, h.fresh_namespace(prefix)))
        .collect();
    h.kubectl(&[
        "label",
        "namespace",
        &ns[&Group::Borrow],
        &format!("{}={}", GRANT_LABEL.0, GRANT_LABEL.1),
    ]);
    h.kubectl(&["label", "namespace", &ns[&Group::LabelMiss], "team=other"]);
    let account = h.account_id.clone();
    make_foreign_roles(h).await;
    let guardrails = h.dir.join("hostile-guardrails.yaml");
    std::fs::write(
        &guardrails,
        guardrails_file(&account, &ns[&Group::GrantNames], &ns[&Group::Lender]),
    )
    .expect("write guardrails file");
    ensure_operator(
        h,
        &[
            "--guardrails-file",
            guardrails.to_str().expect("utf-8 path"),
        ],
    );

    // The roles to be borrowed: made (and written to AWS) before the mark.
    let lender = &ns[&Group::Lender];
    h.apply(
        lender,
        "apiVersion: iam-operator.io/v1alpha1\nkind: PodIdentityBinding\nmetadata: {name: lender-pib}\nspec:\n  serviceAccountName: lender-pib\n  role: {}\n---\napiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: lender-isa}\nspec:\n  serviceAccount: {create: true}\n",
    );
    h.wait_ready("pib/lender-pib", lender);
    h.wait_ready("isa/lender-isa", lender);
    let role_of = |resource: &str| {
        h.kubectl_json(&["get", resource, "-n", lender])["status"]["roleArn"]
            .as_str()
            .expect("lender has a role ARN")
            .to_string()
    };
    let (lent_pib, lent_isa) = (role_of("pib/lender-pib"), role_of("isa/lender-isa"));

    let mut cases = Cases::default();
    api_cases(&mut cases);
    invalid_spec_cases(&mut cases, &account);
    invalid_policy_cases(&mut cases);
    default_guardrail_cases(&mut cases, &account);
    custom_guardrail_cases(&mut cases, &account);
    borrowed_cases(&mut cases, lender, &lent_pib, &lent_isa);

    let emulator = h.emulator();
    let mark = emulator.mark();
    let (api, operator): (Vec<&Case>, Vec<&Case>) = cases.all.iter().partition(|c| c.expect == API);
    let (_, api_errors) = apply_list(h, api.iter().map(|c| manifest(c, &ns[&c.group])).collect());
    let (_, operator_errors) = apply_list(
        h,
        operator
            .iter()
            .map(|c| manifest(c, &ns[&c.group]))
            .collect(),
    );
    let applied_at = Instant::now();

    // One error line per refused object, naming it in quotes.
    let error_of = |errors: &str, name: &str| -> Option<String> {
        let quoted = format!("\"{name}\"");
        errors
            .lines()
            .find(|l| l.contains(&quoted))
            .map(str::to_string)
    };

    let deadline = Instant::now() + Duration::from_secs(120);
    let objects = loop {
        let objects = all_objects(h);
        let pending = operator
            .iter()
            .filter(|c| {
                objects
                    .get(&(ns[&c.group].clone(), c.name.clone()))
                    .is_some_and(|o| settled_ready(o).is_none())
            })
            .count();
        if pending == 0 || Instant::now() > deadline {
            break objects;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let settled_after = applied_at.elapsed();

    // Every case's outcome, for reading the messages the set produces.
    let verbose = std::env::var_os("HOSTILE_INPUT_VERBOSE").is_some();
    let mut disagreements: Vec<String> = Vec::new();
    let mut refused: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &api {
        let key = (ns[&case.group].clone(), case.name.clone());
        let what = format!("{} {}", case.kind.name(), case.name);
        match (error_of(&api_errors, &case.name), objects.get(&key)) {
            (Some(error), None) => {
                if verbose {
                    println!("{what}: {error}");
                }
                let gaps = missing(&error, &case.needles);
                if gaps.is_empty() {
                    *refused.entry(API).or_default() += 1;
                } else {
                    disagreements.push(format!("{what}: API error lacks {gaps:?}: {error}"));
                }
            }
            (_, Some(object)) => disagreements.push(format!(
                "{what}: the API server stored it (expected a refusal naming {:?}); Ready: {}",
                case.needles,
                settled_ready(object).cloned().unwrap_or_default()
            )),
            (None, None) => disagreements.push(format!(
                "{what}: not stored, but no error names it:\n{api_errors}"
            )),
        }
    }
    for case in &operator {
        let key = (ns[&case.group].clone(), case.name.clone());
        let what = format!("{} {}/{}", case.kind.name(), key.0, case.name);
        let Some(object) = objects.get(&key) else {
            disagreements.push(format!(
                "{what}: expected {} from the operator, but the API server refused it: {}",
                case.expect,
                error_of(&operator_errors, &case.name).unwrap_or_default()
            ));
            continue;
        };
        let Some(ready) = settled_ready(object) else {
            disagreements.push(format!(
                "{what}: expected {}, no settled Ready condition: {}",
                case.expect, object["status"]
            ));
            continue;
        };
        let reason = ready["reason"].as_str().unwrap_or_default();
        let message = ready["message"].as_str().unwrap_or_default();
        if verbose {
            println!("{what}: {reason}: {message}");
        }
        let gaps = missing(message, &case.needles);
        if ready["status"] != "False" || reason != case.expect || !gaps.is_empty() {
            disagreements.push(format!(
                "{what}: expected {} naming {:?}; got {} {reason} (lacks {gaps:?}): {message}",
                case.expect, case.needles, ready["status"]
            ));
        } else {
            *refused.entry(case.expect).or_default() += 1;
        }
    }

    let writes: Vec<String> = emulator
        .calls_since(mark)
        .iter()
        .filter(|c| is_write(c))
        .map(|c| format!("{} {} {:?}", c.service, c.operation, c.target))
        .collect();
    let expected: BTreeSet<&str> = cases.all.iter().map(|c| c.expect).collect();
    let counts: Vec<String> = expected
        .iter()
        .map(|reason| {
            let planned = cases.all.iter().filter(|c| c.expect == *reason).count();
            format!(
                "{reason} {}/{planned}",
                refused.get(reason).copied().unwrap_or(0)
            )
        })
        .collect();
    println!(
        "hostile input: {} of {} specs refused as expected ({}); AWS writes: {}; \
         settled {:.1}s after apply, {:.1}s in all",
        refused.values().sum::<usize>(),
        cases.all.len(),
        counts.join(", "),
        writes.len(),
        settled_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        cases.all.len() >= 150,
        "the hostile set has only {} specs",
        cases.all.len()
    );
    for reason in [API, INVALID_SPEC, INVALID_POLICY, GUARDRAIL, BORROWED] {
        assert!(expected.contains(reason), "no case expects {reason}");
    }
    // One assertion for both, so that a failing run shows every case that
    // disagreed beside every write it caused.
    assert!(
        disagreements.is_empty() && writes.is_empty(),
        "{} of {} hostile specs were not refused as expected:\n{}\n{} AWS writes after the mark: {writes:#?}",
        disagreements.len(),
        cases.all.len(),
        disagreements.join("\n"),
        writes.len()
    );
}
