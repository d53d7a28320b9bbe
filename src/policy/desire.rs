//! The desire step: the role a resource asks for, from its spec and the
//! operator's settings, with every input checked against IAM's limits before
//! any AWS call. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::chain::{CHAIN_POLICY_NAME, Chaining, has_wildcard};
use super::document::PolicyDocument;
use super::guardrails::Guardrails;
use super::issuer::IssuerSource;
use super::naming::role_name;
use super::ownership::{OWNERSHIP_TAG_COUNT, Owner, is_ownership_key};
use super::role_plan::{RoleState, same_role_name};
use super::trust::{PodIdentityScope, scoped_pod_identity_trust_policy};
use super::validate::{
    RoleArn, ValidationError, parse_role_arn, validate_description, validate_inline_policies_size,
    validate_inline_policy_name, validate_managed_policy_arn, validate_managed_policy_count,
    validate_max_session_duration, validate_permissions_boundary_arn, validate_role_name,
    validate_role_path, validate_tags,
};
use crate::api::{PodIdentityBindingSpec, PolicySpec, RoleSpec};

pub const DEFAULT_MAX_SESSION_SECONDS: i32 = 3600;

/// What the operator's configuration decides for every object: with the
/// spec, all that desire depends on. Filled from flags and AWS discovery at
/// start, then fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// What app teams may ask for; its prefix, path and boundary are already
    /// folded into the fields below.
    pub guardrails: Arc<Guardrails>,
    pub cluster_name: String,
    pub region: String,
    pub account_id: String,
    pub partition: String,
    /// `None` when it could not be discovered: IRSA objects then report the
    /// missing cluster instead of the operator refusing to start.
    pub issuer: Option<String>,
    pub issuer_source: IssuerSource,
    /// The issuer the API server signs tokens with; `None` when its
    /// discovery document could not be read (the check is then skipped).
    pub api_server_issuer: Option<String>,
    /// `--manage-oidc-provider`: create the cluster's IAM OIDC provider, and
    /// add audiences to one the operator made.
    pub manage_oidc_provider: bool,
    /// `--oidc-provider-audiences`: what it may make or add there.
    pub oidc_provider_audiences: Vec<String>,
    /// `--restart-stale-pods`: objects may ask for their pods' workloads to
    /// be restarted.
    pub restart_stale_pods: bool,
    pub role_name_prefix: String,
    pub forced_role_path: Option<String>,
    /// The path of roles whose spec names none.
    pub default_role_path: Option<String>,
    pub forced_permissions_boundary: Option<String>,
}

impl Defaults {
    /// The ARN IAM gives a role made under `path` and `name`: known before
    /// it exists, so a plan can refer to it.
    /// The ARN of the EKS cluster, as Pod Identity's session tags carry it.
    pub fn cluster_arn(&self) -> String {
        format!(
            "arn:{}:eks:{}:{}:cluster/{}",
            self.partition, self.region, self.account_id, self.cluster_name
        )
    }

    pub fn role_arn(&self, path: &str, name: &str) -> String {
        RoleArn {
            partition: self.partition.clone(),
            account: self.account_id.clone(),
            path: path.to_string(),
            name: name.to_string(),
        }
        .to_string()
    }
}

/// Every problem found in a spec, so that one `kubectl describe` shows all
/// of them instead of one per fix-and-retry round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSpec(pub Vec<String>);

impl std::fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for InvalidSpec {}

fn note(problems: &mut Vec<String>, result: Result<(), ValidationError>) {
    if let Err(e) = result {
        problems.push(e.to_string());
    }
}

/// The role name a resource uses: its own, or the generated one, which
/// carries cluster and region so that two clusters of one name in two
/// regions never share a role. `previous` are the names the object used
/// before (recorded, in status): a role generated before regions were part
/// of the name keeps it, since running pods hold its ARN.
pub fn desired_role_name(
    role: &RoleSpec,
    owner: &Owner,
    settings: &Defaults,
    previous: &[&str],
) -> String {
    if let Some(name) = role.name.as_deref().filter(|n| !n.is_empty()) {
        return name.to_string();
    }
    if let Some(legacy) = legacy_role_name(role, owner, settings)
        && previous.iter().any(|p| same_role_name(p, &legacy))
    {
        return legacy;
    }
    regional_role_name(role, owner, settings)
}

/// The name a role gets when nothing from before applies: the spec's own,
/// or the one generated with cluster and region.
pub fn regional_role_name(role: &RoleSpec, owner: &Owner, settings: &Defaults) -> String {
    if let Some(name) = role.name.as_deref().filter(|n| !n.is_empty()) {
        return name.to_string();
    }
    role_name(
        &settings.role_name_prefix,
        &format!("{}-{}", owner.cluster, owner.region),
        &owner.namespace,
        &generated_name_part(owner),
    )
}

/// The name generated before regions were part of generated names; `None`
/// when the spec names the role.
pub fn legacy_role_name(role: &RoleSpec, owner: &Owner, settings: &Defaults) -> Option<String> {
    role.name
        .as_deref()
        .filter(|n| !n.is_empty())
        .is_none()
        .then(|| {
            role_name(
                &settings.role_name_prefix,
                &owner.cluster,
                &owner.namespace,
                &generated_name_part(owner),
            )
        })
}

/// Marks Pod Identity roles in generated names, so that an IamServiceAccount
/// and a PodIdentityBinding of one name in one namespace (the usual IRSA to
/// Pod Identity migration) never claim the same role. `_` cannot occur in a
/// Kubernetes name, so no object name can produce the marked form.
fn generated_name_part(owner: &Owner) -> String {
    match owner.kind.as_str() {
        crate::api::pod_identity_binding::KIND => format!("{}_pod-identity", owner.name),
        _ => owner.name.clone(),
    }
}

/// The role as it should be in IAM. `trust_policy` is generated by the
/// caller (it differs per kind) and never comes from the user.
pub fn desired_role(
    role: &RoleSpec,
    policies: &PolicySpec,
    chaining: Chaining,
    trust_policy: PolicyDocument,
    owner: &Owner,
    settings: &Defaults,
    previous: &[&str],
) -> Result<RoleState, InvalidSpec> {
    let mut problems: Vec<String> = Vec::new();

    let name = desired_role_name(role, owner, settings, previous);
    if role.name.as_deref().is_some_and(|n| !n.is_empty()) {
        note(&mut problems, validate_role_name("spec.role.name", &name));
    }

    let path = settings
        .forced_role_path
        .clone()
        .or_else(|| role.path.clone().filter(|p| !p.is_empty()))
        .or_else(|| settings.default_role_path.clone())
        .unwrap_or_else(|| "/".to_string());
    note(&mut problems, validate_role_path("spec.role.path", &path));

    let description = role.description.clone().filter(|d| !d.is_empty());
    if let Some(d) = &description {
        note(
            &mut problems,
            validate_description("spec.role.description", d),
        );
    }

    let max_session_seconds = role
        .max_session_duration_seconds
        .unwrap_or(DEFAULT_MAX_SESSION_SECONDS);
    note(
        &mut problems,
        validate_max_session_duration(
            "spec.role.maxSessionDurationSeconds",
            i64::from(max_session_seconds),
        ),
    );

    let permissions_boundary = settings
        .forced_permissions_boundary
        .clone()
        .or_else(|| role.permissions_boundary.clone().filter(|b| !b.is_empty()));
    if let Some(boundary) = &permissions_boundary {
        note(
            &mut problems,
            validate_permissions_boundary_arn("spec.role.permissionsBoundary", boundary),
        );
    }

    note(
        &mut problems,
        validate_tags("spec.role.tags", role.tags.iter(), OWNERSHIP_TAG_COUNT),
    );
    for key in role.tags.keys().filter(|k| is_ownership_key(k)) {
        problems.push(format!(
            "spec.role.tags: key {key} is reserved for the operator's ownership tags"
        ));
    }
    let mut tags: BTreeMap<String, String> = role.tags.clone();
    tags.extend(owner.tags());

    note(
        &mut problems,
        validate_managed_policy_count("spec.policies.managed", policies.managed.len()),
    );
    for (i, arn) in policies.managed.iter().enumerate() {
        note(
            &mut problems,
            validate_managed_policy_arn(&format!("spec.policies.managed[{i}]"), arn),
        );
    }
    let managed_policies: BTreeSet<String> = policies.managed.iter().cloned().collect();

    let mut inline_policies = BTreeMap::new();
    for (policy_name, written) in &policies.inline {
        let field = format!("spec.policies.inline.{policy_name}");
        note(
            &mut problems,
            validate_inline_policy_name(&field, policy_name),
        );
        // IAM may take the names without case: no look-alike either.
        if policy_name.eq_ignore_ascii_case(CHAIN_POLICY_NAME) {
            problems.push(format!(
                "{field}: the name {CHAIN_POLICY_NAME} is the operator's own, for the roles in \
                 spec.policies.assumeRoles; name the policy otherwise"
            ));
        }
        match PolicyDocument::from_value(&written.to_value()) {
            Ok(document) => {
                inline_policies.insert(policy_name.clone(), document);
            }
            Err(e) => problems.push(format!("{field}: {e}")),
        }
    }
    problems.extend(chaining.problems(&settings.partition));
    if let Some(chain) = chaining.policy() {
        inline_policies.insert(CHAIN_POLICY_NAME.to_string(), chain);
    }
    let sized = match inline_policies.contains_key(CHAIN_POLICY_NAME) {
        true => "spec.policies.inline with spec.policies.assumeRoles",
        false => "spec.policies.inline",
    };
    note(
        &mut problems,
        validate_inline_policies_size(sized, inline_policies.values()),
    );

    if !problems.is_empty() {
        return Err(InvalidSpec(problems));
    }
    Ok(RoleState {
        name,
        path,
        description,
        max_session_seconds,
        permissions_boundary,
        tags,
        trust_policy,
        managed_policies,
        inline_policies,
    })
}

/// `spec.roleArn`, parsed: a role of the cluster's partition and account,
/// or the problem, with `elsewhere(account)` saying what to do about a role
/// of another account.
pub fn existing_role_arn(
    arn: &str,
    settings: &Defaults,
    elsewhere: impl Fn(&str) -> String,
) -> Result<RoleArn, String> {
    let parsed = parse_role_arn("spec.roleArn", arn).map_err(|e| e.to_string())?;
    if parsed.partition != settings.partition {
        return Err(format!(
            "spec.roleArn: {arn} is in partition {}, the cluster is in {}",
            parsed.partition, settings.partition
        ));
    }
    if parsed.account != settings.account_id {
        return Err(format!(
            "spec.roleArn: {arn} is in account {}: {}",
            parsed.account,
            elsewhere(&parsed.account)
        ));
    }
    Ok(parsed)
}

/// The role an object's pods are given: one the operator makes, or one
/// that exists and that it only reads.
#[derive(Debug, Clone, PartialEq)]
pub enum WantedRole {
    /// A role the operator creates and owns.
    Created(RoleState),
    /// A role someone else manages: only read, never changed.
    Existing(RoleArn),
}

impl WantedRole {
    /// The role to make, unless an existing one was named.
    pub fn created(&self) -> Option<&RoleState> {
        match self {
            WantedRole::Created(state) => Some(state),
            WantedRole::Existing(_) => None,
        }
    }
}

/// What a PodIdentityBinding asks for, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredBinding {
    pub role: WantedRole,
    /// For a created role: the name generated with the region, for a role
    /// whose earlier name another cluster's role holds now.
    pub regional_role_name: Option<String>,
    pub target_role: Option<RoleArn>,
    pub disable_session_tags: bool,
    /// `restartStalePods`.
    pub restart_stale_pods: bool,
}

/// The binding a PodIdentityBinding asks for. The API server's CEL rules
/// already refuse most bad combinations; they are checked again here so that
/// an object stored before a rule existed gets a reason, not a panic.
pub fn desired_binding(
    spec: &PodIdentityBindingSpec,
    owner: &Owner,
    settings: &Defaults,
    previous: &[&str],
) -> Result<DesiredBinding, InvalidSpec> {
    let mut problems = Vec::new();
    let role = match (&spec.role, &spec.role_arn) {
        (Some(role), None) => {
            let policies = spec.policies.clone().unwrap_or_default();
            let trust = scoped_pod_identity_trust_policy(&PodIdentityScope {
                account: &settings.account_id,
                cluster_arn: &settings.cluster_arn(),
                namespace: &owner.namespace,
                service_account: &spec.service_account_name,
                session_tags: !spec.disable_session_tags.unwrap_or(false),
            });
            let target = spec.target_role_arn.as_deref().filter(|t| !t.is_empty());
            if target.is_some() && !policies.assume_roles.is_empty() {
                problems.push(
                    "spec.policies.assumeRoles: with spec.targetRoleArn the pods hold the \
                     target role's credentials, never this role's, so these grants would reach \
                     nothing; grant them on the target role, or drop targetRoleArn"
                        .to_string(),
                );
            }
            let chaining = Chaining {
                assume_roles: &policies.assume_roles,
                target_role: target,
                // EKS asks for both on a target whatever the tags; a chain
                // of the pod's own passes Pod Identity's tags when on.
                tag_session: !spec.disable_session_tags.unwrap_or(false) || target.is_some(),
            };
            match desired_role(role, &policies, chaining, trust, owner, settings, previous) {
                Ok(state) => Some(WantedRole::Created(state)),
                Err(InvalidSpec(more)) => {
                    problems.extend(more);
                    None
                }
            }
        }
        (None, Some(arn)) => {
            if spec.policies.is_some() {
                problems.push(
                    "spec.policies: policies apply only to a role the operator creates; with \
                     spec.roleArn, attach policies to that role yourself"
                        .to_string(),
                );
            }
            // EKS takes only roles of the cluster's own account here;
            // other accounts are reached through targetRoleArn.
            let elsewhere = |account: &str| {
                format!(
                    "EKS Pod Identity needs a role in the cluster's account {0}; to reach \
                     account {account}, set spec.targetRoleArn to the role there and \
                     spec.roleArn to a role in {0}",
                    settings.account_id
                )
            };
            match existing_role_arn(arn, settings, elsewhere) {
                Ok(parsed) => Some(WantedRole::Existing(parsed)),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            }
        }
        _ => {
            problems.push(
                "set exactly one of spec.role (a role the operator creates) or spec.roleArn \
                 (an existing role)"
                    .to_string(),
            );
            None
        }
    };
    let target_role = match spec.target_role_arn.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(arn) if has_wildcard(arn) => {
            problems.push(format!(
                "spec.targetRoleArn: {arn} has a wildcard; EKS assumes one role, named exactly"
            ));
            None
        }
        Some(arn) => match parse_role_arn("spec.targetRoleArn", arn) {
            Ok(parsed) if parsed.partition != settings.partition => {
                problems.push(format!(
                    "spec.targetRoleArn: {arn} is in partition {}, the cluster is in {}",
                    parsed.partition, settings.partition
                ));
                None
            }
            Ok(parsed) => Some(parsed),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        },
    };
    match role {
        Some(role) if problems.is_empty() => Ok(DesiredBinding {
            regional_role_name: spec
                .role
                .as_ref()
                .filter(|_| matches!(role, WantedRole::Created(_)))
                .map(|spec_role| regional_role_name(spec_role, owner, settings)),
            role,
            target_role,
            disable_session_tags: spec.disable_session_tags.unwrap_or(false),
            restart_stale_pods: spec.restart_stale_pods.unwrap_or(false),
        }),
        _ => Err(InvalidSpec(problems)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> Defaults {
        Defaults {
            role_name_prefix: "k8s".into(),
            ..crate::policy::fixtures::defaults()
        }
    }

    fn owner() -> Owner {
        crate::policy::fixtures::owner("IamServiceAccount")
    }

    fn desire(role: RoleSpec, policies: PolicySpec) -> Result<RoleState, InvalidSpec> {
        desired_role(
            &role,
            &policies,
            crate::policy::chain::Chaining::default(),
            crate::policy::pod_identity_trust_policy(),
            &owner(),
            &settings(),
            &[],
        )
    }

    #[test]
    fn defaults_give_a_generated_name_root_path_and_one_hour() {
        let role = desire(RoleSpec::default(), PolicySpec::default()).expect("valid");
        assert_eq!(role.name, "k8s-prod-us-east-1-apps-web");
        assert_eq!(role.path, "/");
        assert_eq!(role.max_session_seconds, 3600);
        assert_eq!(role.description, None);
        assert_eq!(role.tags, owner().tags());
    }

    #[test]
    fn bug6_generated_names_tell_regions_apart_and_earlier_names_stay() {
        let east = desired_role_name(&RoleSpec::default(), &owner(), &settings(), &[]);
        let west_owner = Owner {
            region: "us-west-2".into(),
            ..owner()
        };
        let west = desired_role_name(&RoleSpec::default(), &west_owner, &settings(), &[]);
        assert_ne!(east, west);
        let legacy =
            legacy_role_name(&RoleSpec::default(), &owner(), &settings()).expect("generated");
        assert_eq!(legacy, "k8s-prod-apps-web");
        // An object whose role was generated before keeps it, whatever
        // the case status or the record keep it in.
        for previous in [legacy.as_str(), "K8S-PROD-APPS-WEB"] {
            assert_eq!(
                desired_role_name(&RoleSpec::default(), &owner(), &settings(), &[previous]),
                legacy
            );
        }
        assert_eq!(
            desired_role_name(&RoleSpec::default(), &owner(), &settings(), &["other"]),
            east
        );
        let named = RoleSpec {
            name: Some("mine".into()),
            ..Default::default()
        };
        assert_eq!(legacy_role_name(&named, &owner(), &settings()), None);
    }

    #[test]
    fn explicit_name_and_user_tags_are_kept_next_to_ownership_tags() {
        let spec = RoleSpec {
            name: Some("external-dns".into()),
            tags: BTreeMap::from([("team".to_string(), "dns".to_string())]),
            ..Default::default()
        };
        let role = desire(spec, PolicySpec::default()).expect("valid");
        assert_eq!(role.name, "external-dns");
        assert_eq!(role.tags.get("team").map(String::as_str), Some("dns"));
        assert_eq!(role.tags.len(), OWNERSHIP_TAG_COUNT + 1);
    }

    #[test]
    fn operator_settings_override_path_and_boundary() {
        let mut s = settings();
        s.forced_role_path = Some("/k8s/".into());
        s.forced_permissions_boundary = Some("arn:aws:iam::123456789012:policy/boundary".into());
        let spec = RoleSpec {
            path: Some("/mine/".into()),
            permissions_boundary: Some("arn:aws:iam::123456789012:policy/other".into()),
            ..Default::default()
        };
        let role = desired_role(
            &spec,
            &PolicySpec::default(),
            crate::policy::chain::Chaining::default(),
            crate::policy::pod_identity_trust_policy(),
            &owner(),
            &s,
            &[],
        )
        .expect("valid");
        assert_eq!(role.path, "/k8s/");
        assert_eq!(
            role.permissions_boundary.as_deref(),
            Some("arn:aws:iam::123456789012:policy/boundary")
        );
    }

    #[test]
    fn inline_documents_are_parsed_canonically() {
        let policies = PolicySpec {
            managed: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
            inline: BTreeMap::from([(
                "s3".to_string(),
                json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}).into(),
            )]),
            ..Default::default()
        };
        let role = desire(RoleSpec::default(), policies).expect("valid");
        assert_eq!(role.managed_policies.len(), 1);
        let expected = PolicyDocument::from_value(
            &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]}),
        )
        .expect("valid");
        assert_eq!(role.inline_policies["s3"], expected);
    }

    /// One row per kind of bad input: the field named in the message.
    #[test]
    fn bad_inputs_are_refused_naming_the_field() {
        let long = "x".repeat(65);
        let cases: Vec<(RoleSpec, PolicySpec, &str)> = vec![
            (
                RoleSpec {
                    name: Some(long),
                    ..Default::default()
                },
                PolicySpec::default(),
                "spec.role.name",
            ),
            (
                RoleSpec {
                    name: Some("bad name!".into()),
                    ..Default::default()
                },
                PolicySpec::default(),
                "spec.role.name",
            ),
            (
                RoleSpec {
                    path: Some("no-slash".into()),
                    ..Default::default()
                },
                PolicySpec::default(),
                "spec.role.path",
            ),
            (
                RoleSpec {
                    max_session_duration_seconds: Some(100),
                    ..Default::default()
                },
                PolicySpec::default(),
                "maxSessionDurationSeconds",
            ),
            (
                RoleSpec {
                    max_session_duration_seconds: Some(50_000),
                    ..Default::default()
                },
                PolicySpec::default(),
                "maxSessionDurationSeconds",
            ),
            (
                RoleSpec {
                    permissions_boundary: Some("not-an-arn".into()),
                    ..Default::default()
                },
                PolicySpec::default(),
                "permissionsBoundary",
            ),
            (
                RoleSpec {
                    tags: BTreeMap::from([("aws:owner".to_string(), "x".to_string())]),
                    ..Default::default()
                },
                PolicySpec::default(),
                "spec.role.tags",
            ),
            (
                RoleSpec {
                    tags: BTreeMap::from([("iam-operator.io/name".to_string(), "x".to_string())]),
                    ..Default::default()
                },
                PolicySpec::default(),
                "reserved",
            ),
            (
                RoleSpec {
                    tags: (0..46)
                        .map(|i| (format!("k{i}"), "v".to_string()))
                        .collect(),
                    ..Default::default()
                },
                PolicySpec::default(),
                "spec.role.tags",
            ),
            (
                RoleSpec::default(),
                PolicySpec {
                    managed: vec!["arn:aws:s3:::bucket".into()],
                    ..Default::default()
                },
                "spec.policies.managed[0]",
            ),
            (
                RoleSpec::default(),
                PolicySpec {
                    managed: (0..21)
                        .map(|i| format!("arn:aws:iam::aws:policy/P{i}"))
                        .collect(),
                    ..Default::default()
                },
                "spec.policies.managed",
            ),
            (
                RoleSpec::default(),
                PolicySpec {
                    inline: BTreeMap::from([("ok".to_string(), json!({"Statement": "nope"}).into())]),
                    ..Default::default()
                },
                "spec.policies.inline.ok",
            ),
            (
                RoleSpec::default(),
                PolicySpec {
                    inline: BTreeMap::from([("bad name".to_string(), json!({"Statement": []}).into())]),
                    ..Default::default()
                },
                "spec.policies.inline.bad name",
            ),
            (
                RoleSpec::default(),
                PolicySpec {
                    inline: BTreeMap::from([(
                        "big".to_string(),
                        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": (0..400).map(|i| format!("arn:aws:s3:::bucket-{i}/*")).collect::<Vec<_>>()}]}).into(),
                    )]),
                    ..Default::default()
                },
                "10240",
            ),
        ];
        for (role, policies, field) in cases {
            let err = desire(role.clone(), policies).expect_err(&format!("refused: {role:?}"));
            assert!(err.to_string().contains(field), "{field} not in: {err}");
        }
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let spec = RoleSpec {
            path: Some("bad".into()),
            max_session_duration_seconds: Some(1),
            ..Default::default()
        };
        let err = desire(spec, PolicySpec::default()).expect_err("two problems");
        assert_eq!(err.0.len(), 2, "{err}");
    }

    fn binding(role: Option<RoleSpec>, role_arn: Option<&str>) -> PodIdentityBindingSpec {
        PodIdentityBindingSpec {
            service_account_name: "web".into(),
            role,
            role_arn: role_arn.map(str::to_string),
            ..Default::default()
        }
    }

    fn binding_owner() -> Owner {
        Owner {
            kind: "PodIdentityBinding".into(),
            ..owner()
        }
    }

    #[test]
    fn without_session_tags_the_trust_is_kept_to_the_account_only() {
        let mut spec = binding(Some(RoleSpec::default()), None);
        spec.disable_session_tags = Some(true);
        let desired = desired_binding(&spec, &binding_owner(), &settings(), &[]).expect("valid");
        let WantedRole::Created(role) = desired.role else {
            panic!("{:?}", desired.role)
        };
        let trust = role.trust_policy.to_json();
        assert!(
            trust.contains(r#""aws:SourceAccount":["123456789012"]"#),
            "{trust}"
        );
        assert!(!trust.contains("aws:RequestTag"), "{trust}");
        assert!(crate::policy::trusts_pod_identity(&role.trust_policy));
    }

    #[test]
    fn a_created_binding_role_trusts_pod_identity_and_carries_the_policies() {
        let mut spec = binding(Some(RoleSpec::default()), None);
        spec.policies = Some(PolicySpec {
            managed: vec!["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".into()],
            ..Default::default()
        });
        let desired = desired_binding(&spec, &binding_owner(), &settings(), &[]).expect("valid");
        let WantedRole::Created(role) = desired.role else {
            panic!("{:?}", desired.role)
        };
        assert!(crate::policy::trusts_pod_identity(&role.trust_policy));
        let trust = role.trust_policy.to_json();
        for scoped in [
            r#""aws:RequestTag/eks-cluster-arn":["arn:aws:eks:us-east-1:123456789012:cluster/prod"]"#,
            r#""aws:RequestTag/kubernetes-namespace":["apps"]"#,
            &format!(
                r#""aws:RequestTag/kubernetes-service-account":["{}"]"#,
                spec.service_account_name
            ),
            r#""aws:SourceAccount":["123456789012"]"#,
        ] {
            assert!(trust.contains(scoped), "{trust} lacks {scoped}");
        }
        assert_eq!(role.name, "k8s-prod-us-east-1-apps-web_pod-identity");
        assert_eq!(
            role.managed_policies,
            BTreeSet::from(["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".to_string()])
        );
        assert_eq!(
            binding_owner().classify(&role.tags),
            super::super::ownership::Ownership::Ours
        );
        assert!(!desired.disable_session_tags);
        assert_eq!(desired.target_role, None);
    }

    #[test]
    fn the_two_kinds_never_generate_the_same_role_name() {
        let irsa = desired_role_name(&RoleSpec::default(), &owner(), &settings(), &[]);
        let pod_identity =
            desired_role_name(&RoleSpec::default(), &binding_owner(), &settings(), &[]);
        assert_eq!(irsa, "k8s-prod-us-east-1-apps-web");
        assert_ne!(irsa, pod_identity);
        let long = Owner {
            name: "n".repeat(60),
            ..binding_owner()
        };
        let long_irsa = Owner {
            kind: "IamServiceAccount".into(),
            ..long.clone()
        };
        let named = desired_role_name(&RoleSpec::default(), &long, &settings(), &[]);
        assert!(named.len() <= 64, "{named}");
        assert_ne!(
            named,
            desired_role_name(&RoleSpec::default(), &long_irsa, &settings(), &[])
        );
    }

    #[test]
    fn an_existing_role_and_a_cross_account_target_are_parsed() {
        let mut spec = binding(None, Some("arn:aws:iam::123456789012:role/team/s3-reader"));
        spec.target_role_arn = Some("arn:aws:iam::210987654321:role/data-reader".into());
        spec.disable_session_tags = Some(true);
        let desired = desired_binding(&spec, &binding_owner(), &settings(), &[]).expect("valid");
        let WantedRole::Existing(arn) = &desired.role else {
            panic!("{:?}", desired.role)
        };
        assert_eq!(
            arn.to_string(),
            "arn:aws:iam::123456789012:role/team/s3-reader"
        );
        assert_eq!(
            desired.target_role.map(|t| t.account),
            Some("210987654321".to_string())
        );
        assert!(desired.disable_session_tags);
    }

    fn chain_of(desired: &DesiredBinding) -> Option<serde_json::Value> {
        let role = desired.role.created().expect("a created role");
        role.inline_policies
            .get(CHAIN_POLICY_NAME)
            .map(|p| p.as_value()["Statement"][0]["Action"].clone())
    }

    #[test]
    fn a_target_is_granted_with_tag_session_even_without_session_tags() {
        const TARGET: &str = "arn:aws:iam::210987654321:role/data-reader";
        const REMOTE: &str = "arn:aws:iam::210987654321:role/elb-describer";
        let spec = |target: Option<&str>, assume: &[&str], disable: bool| PodIdentityBindingSpec {
            target_role_arn: target.map(str::to_string),
            disable_session_tags: Some(disable),
            policies: Some(PolicySpec {
                assume_roles: assume.iter().map(|a| a.to_string()).collect(),
                ..Default::default()
            }),
            ..binding(Some(RoleSpec::default()), None)
        };
        let desire =
            |s: &PodIdentityBindingSpec| desired_binding(s, &binding_owner(), &settings(), &[]);
        let both = json!(["sts:AssumeRole", "sts:TagSession"]);
        assert_eq!(
            chain_of(&desire(&spec(Some(TARGET), &[], true)).expect("valid")),
            Some(both.clone())
        );
        assert_eq!(
            chain_of(&desire(&spec(None, &[REMOTE], false)).expect("valid")),
            Some(both)
        );
        assert_eq!(
            chain_of(&desire(&spec(None, &[REMOTE], true)).expect("valid")),
            Some(json!(["sts:AssumeRole"]))
        );
        assert_eq!(
            chain_of(&desire(&spec(None, &[], false)).expect("valid")),
            None
        );
        // The pods of a binding with a target hold the target's credentials.
        let InvalidSpec(problems) =
            desire(&spec(Some(TARGET), &[REMOTE], false)).expect_err("refused");
        assert!(problems[0].contains("reach nothing"), "{problems:?}");
        let InvalidSpec(problems) =
            desire(&spec(Some("arn:aws:iam::210987654321:role/*"), &[], false))
                .expect_err("refused");
        assert!(problems[0].contains("wildcard"), "{problems:?}");
    }

    #[test]
    fn the_chain_joins_the_inline_policies_counted_against_their_size() {
        let remote = "arn:aws:iam::210987654321:role/elb-describer".to_string();
        let chained = PolicySpec {
            assume_roles: vec![remote.clone()],
            ..Default::default()
        };
        let chaining = Chaining {
            assume_roles: &chained.assume_roles,
            ..Default::default()
        };
        let role = desired_role(
            &RoleSpec::default(),
            &chained,
            chaining,
            crate::policy::pod_identity_trust_policy(),
            &owner(),
            &settings(),
            &[],
        )
        .expect("valid");
        let chain = &role.inline_policies[CHAIN_POLICY_NAME];
        assert_eq!(
            chain.as_value()["Statement"][0]["Resource"],
            json!([remote])
        );
        // Near the quota, the chain is what tips it over, and says so.
        let full = PolicySpec {
            inline: BTreeMap::from([("big".to_string(), padded(10_150).into())]),
            ..chained.clone()
        };
        let InvalidSpec(problems) = desired_role(
            &RoleSpec::default(),
            &full,
            chaining,
            crate::policy::pod_identity_trust_policy(),
            &owner(),
            &settings(),
            &[],
        )
        .expect_err("over the quota");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("spec.policies.inline with spec.policies.assumeRoles")),
            "{problems:?}"
        );
        let mut named = PolicySpec::default();
        named
            .inline
            .insert("IAM-Operator-Assume-Roles".to_string(), padded(100).into());
        let InvalidSpec(problems) = desired_role(
            &RoleSpec::default(),
            &named,
            Chaining::default(),
            crate::policy::pod_identity_trust_policy(),
            &owner(),
            &settings(),
            &[],
        )
        .expect_err("the operator's name");
        assert!(problems[0].contains("operator's own"), "{problems:?}");
    }

    /// A valid document of about `size` characters without whitespace.
    fn padded(size: usize) -> serde_json::Value {
        let resource = format!("arn:aws:s3:::{}", "p".repeat(size.saturating_sub(80)));
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource}]})
    }

    #[test]
    fn an_empty_target_role_means_none() {
        let mut spec = binding(Some(RoleSpec::default()), None);
        spec.target_role_arn = Some(String::new());
        let desired = desired_binding(&spec, &binding_owner(), &settings(), &[]).expect("valid");
        assert_eq!(desired.target_role, None);
    }

    #[test]
    fn binding_specs_the_api_rules_miss_are_refused_with_the_field() {
        let with_policies = PodIdentityBindingSpec {
            policies: Some(PolicySpec::default()),
            ..binding(None, Some("arn:aws:iam::123456789012:role/r"))
        };
        let cases = [
            (binding(None, None), "exactly one"),
            (
                binding(
                    Some(RoleSpec::default()),
                    Some("arn:aws:iam::123456789012:role/r"),
                ),
                "exactly one",
            ),
            (with_policies, "spec.policies"),
            (
                binding(None, Some("arn:aws:iam::210987654321:role/r")),
                "cluster's account 123456789012",
            ),
            (
                binding(None, Some("arn:aws-cn:iam::123456789012:role/r")),
                "partition aws-cn",
            ),
            (
                binding(None, Some("arn:aws:iam::123:role/r")),
                "spec.roleArn",
            ),
            (
                PodIdentityBindingSpec {
                    target_role_arn: Some("arn:aws:s3:::bucket".into()),
                    ..binding(Some(RoleSpec::default()), None)
                },
                "spec.targetRoleArn",
            ),
            (
                PodIdentityBindingSpec {
                    target_role_arn: Some("arn:aws-us-gov:iam::210987654321:role/r".into()),
                    ..binding(Some(RoleSpec::default()), None)
                },
                "spec.targetRoleArn",
            ),
            (
                binding(
                    Some(RoleSpec {
                        max_session_duration_seconds: Some(60),
                        ..Default::default()
                    }),
                    None,
                ),
                "spec.role.maxSessionDurationSeconds",
            ),
        ];
        for (spec, expected) in cases {
            let err = desired_binding(&spec, &binding_owner(), &settings(), &[])
                .expect_err(&format!("refused: {spec:?}"));
            assert!(
                err.to_string().contains(expected),
                "{expected} not in: {err}"
            );
        }
    }

    #[test]
    fn binding_problems_are_reported_together() {
        let spec = PodIdentityBindingSpec {
            target_role_arn: Some("not-an-arn".into()),
            ..binding(
                Some(RoleSpec {
                    path: Some("bad".into()),
                    ..Default::default()
                }),
                None,
            )
        };
        let err = desired_binding(&spec, &binding_owner(), &settings(), &[]).expect_err("invalid");
        assert_eq!(err.0.len(), 2, "{err}");
    }
}
