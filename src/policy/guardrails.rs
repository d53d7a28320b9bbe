//! The platform team's guardrails: what an app team's spec may ask of IAM.
//! Built-in rules hold with no configuration at all; a YAML document kept in
//! Git adds rules, grants per namespace, and the name prefix, path and
//! permissions boundary every created role gets. Pure: the file is read and
//! watched by `controller::guardrails_file`.

mod patterns;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::validate::{validate_permissions_boundary_arn, validate_role_path};
use patterns::{
    action_reaches, arn_matches, covers, is_every_resource, is_service_wildcard, reach,
};
use serde_json::Value;

use crate::api::InlineDocument;

/// A rule denying actions in `Allow` statements of inline policies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionRule {
    pub name: String,
    /// Action patterns the rule denies.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Action patterns left out of `actions` (reads of a service, say).
    #[serde(default)]
    pub except: Vec<String>,
    /// Deny only on these resources; empty: on any. `"*"` stands for a
    /// statement on every resource (`"Resource": "*"` or a `NotResource`).
    #[serde(default)]
    pub resources: Vec<String>,
    /// Deny `*` and whole-service actions (`s3:*`) instead of `actions`.
    #[serde(default)]
    pub service_wildcards: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedPolicyRules {
    /// When not empty, only these ARN patterns may be attached.
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InlinePolicyRules {
    #[serde(default)]
    pub deny: Vec<ActionRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleRules {
    /// Every created role's name starts with it; generated names get it.
    #[serde(default)]
    pub name_prefix: Option<String>,
    /// Every created role lives at this path or below it.
    #[serde(default)]
    pub path: Option<String>,
    /// Set on every created role, whatever the spec says.
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    /// Whether a spec may name its role (`role.name`) at all.
    #[serde(default = "yes")]
    pub allow_name: bool,
    /// Whether a spec may choose its role's path (`role.path`).
    #[serde(default = "yes")]
    pub allow_path: bool,
}

impl Default for RoleRules {
    fn default() -> Self {
        RoleRules {
            name_prefix: None,
            path: None,
            permissions_boundary: None,
            allow_name: true,
            allow_path: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// A label selector as Kubernetes writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// What namespaces (by name, or by a selector on their labels) may use
/// beyond the global rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceGrant {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub selector: Option<Selector>,
    /// Existing roles `roleArn` / `targetRoleArn` may name (ARN patterns).
    #[serde(default)]
    pub role_arns: Vec<String>,
    /// Managed policies allowed here even where the global rules deny them.
    #[serde(default)]
    pub managed_policies: Vec<String>,
    #[serde(default)]
    pub role_name: bool,
    #[serde(default)]
    pub role_path: bool,
    /// Whether objects here may take over a role someone else made
    /// (`adoptRole`); off everywhere unless granted.
    #[serde(default)]
    pub adopt_roles: bool,
    /// Roles objects here may chain to (ARN patterns): those named in
    /// `spec.policies.assumeRoles`, and those an inline policy lets the
    /// role assume. None unless granted.
    #[serde(default)]
    pub assume_roles: Vec<String>,
}

/// The guardrails document as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardrailsDocument {
    #[serde(default)]
    pub managed_policies: ManagedPolicyRules,
    #[serde(default)]
    pub inline_policies: InlinePolicyRules,
    #[serde(default)]
    pub roles: RoleRules,
    /// Built-in rules to switch off, by name.
    #[serde(default)]
    pub disabled_default_rules: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<NamespaceGrant>,
}

pub const DENY_ADMIN_MANAGED_POLICIES: &str = "deny-admin-managed-policies";
pub const DENY_SERVICE_WILDCARDS: &str = "deny-service-wildcards-on-all-resources";
pub const DENY_IAM_WRITES: &str = "deny-iam-writes";
pub const DENY_PASS_ROLE_ON_ALL: &str = "deny-pass-role-on-all-resources";
pub const DENY_STS_ON_ALL: &str = "deny-sts-on-all-resources";
pub const DENY_ORGANIZATIONS_WRITES: &str = "deny-organizations-writes";
pub const DENY_ACCOUNT_WRITES: &str = "deny-account-writes";
pub const DENY_NOT_ACTION_ALLOW: &str = "deny-not-action-allow";
pub const DENY_NOT_RESOURCE_ALLOW: &str = "deny-not-resource-allow";
pub const DENY_UNGRANTED_ROLE_ARNS: &str = "deny-ungranted-role-arns";
pub const DENY_UNGRANTED_ASSUME_ROLES: &str = "deny-ungranted-assume-roles";

/// AWS managed policies that hand out the account, IAM, or the organization.
const ADMIN_MANAGED_POLICIES: [&str; 5] = [
    "arn:*:iam::aws:policy/AdministratorAccess",
    "arn:*:iam::aws:policy/AdministratorAccess-*",
    "arn:*:iam::aws:policy/IAMFullAccess",
    "arn:*:iam::aws:policy/PowerUserAccess",
    "arn:*:iam::aws:policy/AWSOrganizationsFullAccess",
];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The built-in inline-policy rules, in the order they are reported.
pub fn default_action_rules() -> Vec<ActionRule> {
    let rule = |name: &str, actions: &[&str], except: &[&str], resources: &[&str]| ActionRule {
        name: name.into(),
        actions: strings(actions),
        except: strings(except),
        resources: strings(resources),
        service_wildcards: false,
    };
    vec![
        ActionRule {
            service_wildcards: true,
            ..rule(DENY_SERVICE_WILDCARDS, &[], &[], &["*"])
        },
        // PassRole is denied on "*" by its own rule below; on named roles
        // it is the platform's call.
        rule(
            DENY_IAM_WRITES,
            &["iam:*"],
            &[
                "iam:Get*",
                "iam:List*",
                "iam:Generate*",
                "iam:Simulate*",
                "iam:PassRole",
            ],
            &[],
        ),
        rule(DENY_PASS_ROLE_ON_ALL, &["iam:PassRole"], &[], &["*"]),
        rule(
            DENY_STS_ON_ALL,
            &["sts:*"],
            &["sts:Get*", "sts:DecodeAuthorizationMessage"],
            &["*"],
        ),
        rule(
            DENY_ORGANIZATIONS_WRITES,
            &["organizations:*"],
            // Organizations has no Get actions; listed so that a read-only
            // `*:Get*` is not taken for a write.
            &[
                "organizations:Describe*",
                "organizations:List*",
                "organizations:Get*",
            ],
            &[],
        ),
        rule(
            DENY_ACCOUNT_WRITES,
            &["account:*"],
            &["account:Get*", "account:List*"],
            &[],
        ),
    ]
}

/// Names of every built-in rule, for `disabledDefaultRules`.
pub fn default_rule_names() -> Vec<&'static str> {
    vec![
        DENY_ADMIN_MANAGED_POLICIES,
        DENY_SERVICE_WILDCARDS,
        DENY_IAM_WRITES,
        DENY_PASS_ROLE_ON_ALL,
        DENY_STS_ON_ALL,
        DENY_ORGANIZATIONS_WRITES,
        DENY_ACCOUNT_WRITES,
        DENY_NOT_ACTION_ALLOW,
        DENY_NOT_RESOURCE_ALLOW,
        DENY_UNGRANTED_ASSUME_ROLES,
    ]
}

/// Why a guardrails document was refused; the operator keeps the last good
/// one (or refuses to start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("guardrails: {}", .0.join("; "))]
pub struct GuardrailsError(pub Vec<String>);

/// The guardrails in force: the document, checked, with the built-in rules
/// it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardrails {
    document: GuardrailsDocument,
    action_rules: Vec<ActionRule>,
    admin_policies: bool,
    not_action: bool,
    not_resource: bool,
    ungranted_assume: bool,
}

impl Default for Guardrails {
    /// The built-in rules alone: what holds with no configuration.
    fn default() -> Self {
        Guardrails::from_document(GuardrailsDocument::default())
            .expect("the empty document is valid")
    }
}

/// A role the spec asks the operator to create, as desire resolved it.
pub struct CreatedRole<'a> {
    pub name: &'a str,
    pub path: &'a str,
    /// `role.name` / `role.path` as the spec gave them (empty: not given).
    pub spec_name: Option<&'a str>,
    /// The spec asks to take over a role of that name made by someone else.
    pub adopt: bool,
    pub spec_path: Option<&'a str>,
    pub managed_policies: &'a BTreeSet<String>,
    /// As the spec wrote them (grammar already checked), so that statement
    /// numbers in messages are the user's own.
    pub inline_policies: &'a BTreeMap<String, InlineDocument>,
    /// `spec.policies.assumeRoles`.
    pub assume_roles: &'a [String],
}

/// Everything of one object the guardrails judge.
pub struct Tenancy<'a> {
    pub namespace: &'a str,
    /// `None` when not read (no grant selects by labels).
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    pub created_role: Option<CreatedRole<'a>>,
    /// Existing roles named by the spec: (field, ARN).
    pub existing_roles: Vec<(&'static str, &'a str)>,
}

/// One rule broken by one item of a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: String,
    pub field: String,
    pub item: String,
    pub why: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rule {} refuses {} {}: {}",
            self.rule, self.field, self.item, self.why
        )
    }
}

impl Guardrails {
    pub fn parse(yaml: &str) -> Result<Self, GuardrailsError> {
        let document: GuardrailsDocument = if yaml.trim().is_empty() {
            GuardrailsDocument::default()
        } else {
            serde_yaml::from_str(yaml).map_err(|e| GuardrailsError(vec![e.to_string()]))?
        };
        Self::from_document(document)
    }

    pub fn from_document(document: GuardrailsDocument) -> Result<Self, GuardrailsError> {
        let problems = document_problems(&document);
        if !problems.is_empty() {
            return Err(GuardrailsError(problems));
        }
        let kept = |name: &str| !document.disabled_default_rules.iter().any(|d| d == name);
        let mut action_rules: Vec<ActionRule> = default_action_rules()
            .into_iter()
            .filter(|r| kept(&r.name))
            .collect();
        action_rules.extend(document.inline_policies.deny.iter().cloned());
        Ok(Guardrails {
            admin_policies: kept(DENY_ADMIN_MANAGED_POLICIES),
            not_action: kept(DENY_NOT_ACTION_ALLOW),
            not_resource: kept(DENY_NOT_RESOURCE_ALLOW),
            ungranted_assume: kept(DENY_UNGRANTED_ASSUME_ROLES),
            action_rules,
            document,
        })
    }

    pub fn document(&self) -> &GuardrailsDocument {
        &self.document
    }

    pub fn roles(&self) -> &RoleRules {
        &self.document.roles
    }

    /// Whether judging needs the namespace's labels.
    pub fn selects_by_labels(&self) -> bool {
        self.document
            .namespaces
            .iter()
            .any(|g| g.selector.is_some())
    }

    /// Whether any namespace may adopt roles: the operator's AWS policy then
    /// lets it tag an untagged role as its own.
    pub fn adoption_granted(&self) -> bool {
        self.document.namespaces.iter().any(|g| g.adopt_roles)
    }

    /// Every existing-role pattern any namespace is granted: the roles the
    /// operator's own policy must let it hand to EKS.
    pub fn granted_role_arns(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .document
            .namespaces
            .iter()
            .flat_map(|g| g.role_arns.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The name prefix generated names use: the operator's own, when it
    /// already keeps to the required one.
    pub fn generated_name_prefix(&self, configured: &str) -> String {
        match self.document.roles.name_prefix.as_deref() {
            Some(required) if !configured.starts_with(required) => {
                required.trim_end_matches('-').to_string()
            }
            _ => configured.to_string(),
        }
    }

    /// Every rule the object breaks; empty when it keeps them all.
    pub fn judge(&self, tenancy: &Tenancy) -> Vec<Violation> {
        let grants: Vec<&NamespaceGrant> = self
            .document
            .namespaces
            .iter()
            .filter(|g| grant_applies(g, tenancy.namespace, tenancy.namespace_labels))
            .collect();
        let mut found = Vec::new();
        // A Pod Identity target granted as an existing role is chained to
        // by EKS anyway: an inline grant to assume it reaches nothing more.
        let granted_targets: Vec<&str> = tenancy
            .existing_roles
            .iter()
            .filter(|(field, arn)| {
                *field == TARGET_ROLE_FIELD && existing_role_granted(&grants, arn)
            })
            .map(|(_, arn)| *arn)
            .collect();
        if let Some(role) = &tenancy.created_role {
            self.judge_role(role, &grants, &mut found);
            self.judge_managed(role.managed_policies, &grants, &mut found);
            let chain = ChainGrants {
                grants: &grants,
                targets: &granted_targets,
            };
            for (name, document) in role.inline_policies {
                self.judge_inline(name, &document.to_value(), &chain, &mut found);
            }
            self.judge_chain(role.assume_roles, &grants, &mut found);
        }
        for (field, arn) in &tenancy.existing_roles {
            if !existing_role_granted(&grants, arn) {
                found.push(Violation {
                    rule: DENY_UNGRANTED_ROLE_ARNS.into(),
                    field: field.to_string(),
                    item: arn.to_string(),
                    why: format!(
                        "existing roles may be named only where the guardrails grant namespace \
                         {} their ARN (namespaces[].roleArns); ask the platform team, or let the \
                         operator create the role (spec.role)",
                        tenancy.namespace
                    ),
                });
            }
        }
        found
    }

    fn judge_role(
        &self,
        role: &CreatedRole,
        grants: &[&NamespaceGrant],
        found: &mut Vec<Violation>,
    ) {
        let rules = &self.document.roles;
        if role.adopt && !grants.iter().any(|g| g.adopt_roles) {
            found.push(Violation {
                rule: "namespaces[].adoptRoles".into(),
                field: "spec.adoptRole".into(),
                item: role.name.into(),
                why: "taking over a role someone else made needs a grant for this namespace \
                      (namespaces[].adoptRoles); ask the platform team, or let the operator \
                      create a role of its own"
                    .into(),
            });
        }
        if let Some(name) = role.spec_name
            && !rules.allow_name
            && !grants.iter().any(|g| g.role_name)
        {
            found.push(Violation {
                rule: "roles.allowName".into(),
                field: "spec.role.name".into(),
                item: name.into(),
                why: "this namespace may not name its roles; leave role.name out and the \
                          operator generates one"
                    .into(),
            });
        }
        if let Some(prefix) = &rules.name_prefix
            && !role.name.starts_with(prefix.as_str())
        {
            found.push(Violation {
                rule: "roles.namePrefix".into(),
                field: "spec.role.name".into(),
                item: role.name.into(),
                why: format!("every role's name must start with {prefix:?}"),
            });
        }
        if let Some(path) = role.spec_path
            && !rules.allow_path
            && !grants.iter().any(|g| g.role_path)
        {
            found.push(Violation {
                rule: "roles.allowPath".into(),
                field: "spec.role.path".into(),
                item: path.into(),
                why: "this namespace may not choose its roles' path; leave role.path out".into(),
            });
        }
        if let Some(required) = &rules.path
            && !role.path.starts_with(required.as_str())
        {
            found.push(Violation {
                rule: "roles.path".into(),
                field: "spec.role.path".into(),
                item: role.path.into(),
                why: format!("every role lives at {required} or below it"),
            });
        }
    }

    fn judge_managed(
        &self,
        managed: &BTreeSet<String>,
        grants: &[&NamespaceGrant],
        found: &mut Vec<Violation>,
    ) {
        let rules = &self.document.managed_policies;
        for arn in managed {
            if grants
                .iter()
                .any(|g| g.managed_policies.iter().any(|p| arn_matches(p, arn)))
            {
                continue;
            }
            let violation = |rule: &str, why: String| Violation {
                rule: rule.into(),
                field: "spec.policies.managed".into(),
                item: arn.clone(),
                why,
            };
            if self.admin_policies && ADMIN_MANAGED_POLICIES.iter().any(|p| arn_matches(p, arn)) {
                found.push(violation(
                    DENY_ADMIN_MANAGED_POLICIES,
                    "it grants administration of the account, its IAM or its organization".into(),
                ));
            } else if let Some(p) = rules.deny.iter().find(|p| arn_matches(p, arn)) {
                found.push(violation(
                    "managedPolicies.deny",
                    format!("the platform denies managed policies matching {p}"),
                ));
            } else if !rules.allow.is_empty() && !rules.allow.iter().any(|p| arn_matches(p, arn)) {
                found.push(violation(
                    "managedPolicies.allow",
                    format!(
                        "only managed policies matching {} may be attached",
                        rules.allow.join(", ")
                    ),
                ));
            }
        }
    }

    fn judge_chain(&self, arns: &[String], grants: &[&NamespaceGrant], found: &mut Vec<Violation>) {
        if !self.ungranted_assume {
            return;
        }
        for (index, arn) in arns.iter().enumerate() {
            if !assume_granted(grants, arn) {
                found.push(Violation {
                    rule: DENY_UNGRANTED_ASSUME_ROLES.into(),
                    field: format!("spec.policies.assumeRoles[{index}]"),
                    item: arn.clone(),
                    why: "roles may be chained to only where the guardrails grant the namespace \
                          their ARN (namespaces[].assumeRoles); ask the platform team"
                        .into(),
                });
            }
        }
    }

    fn judge_inline(
        &self,
        name: &str,
        document: &Value,
        chain: &ChainGrants,
        found: &mut Vec<Violation>,
    ) {
        let statements: Vec<&Value> = match document.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(single) => vec![single],
            None => Vec::new(),
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .filter_map(|(index, s)| s.as_object().map(|s| (index, s)))
            .filter(|(_, s)| s.get("Effect").and_then(|e| e.as_str()) == Some("Allow"));
        for (index, statement) in statements {
            let field = format!("spec.policies.inline.{name}.Statement[{index}]");
            let list = |key: &str| -> Vec<String> {
                match statement.get(key) {
                    Some(Value::String(one)) => vec![one.clone()],
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect(),
                    _ => Vec::new(),
                }
            };
            let not_action = statement.contains_key("NotAction");
            let not_resource = statement.contains_key("NotResource");
            if self.not_action && not_action {
                found.push(Violation {
                    rule: DENY_NOT_ACTION_ALLOW.into(),
                    field: format!("{field}.NotAction"),
                    item: list("NotAction").join(", "),
                    why: "an Allow with NotAction grants every action not listed, including ones \
                          AWS adds later; list the actions to allow"
                        .into(),
                });
            }
            if self.not_resource && not_resource {
                found.push(Violation {
                    rule: DENY_NOT_RESOURCE_ALLOW.into(),
                    field: format!("{field}.NotResource"),
                    item: list("NotResource").join(", "),
                    why: "an Allow with NotResource grants every resource not listed; list the \
                          resources to allow"
                        .into(),
                });
            }
            // A NotAction allows what it does not name: as wide as `*` for
            // every rule below, a NotResource as wide as every resource.
            let actions = match not_action {
                true => vec!["*".to_string()],
                false => list("Action"),
            };
            let resources = match not_resource {
                true => vec!["*".to_string()],
                false => list("Resource"),
            };
            for rule in &self.action_rules {
                if !rule_resources_reached(rule, &resources) {
                    continue;
                }
                let hit = actions.iter().find(|action| match rule.service_wildcards {
                    true => is_service_wildcard(action),
                    false => rule
                        .actions
                        .iter()
                        .any(|denied| action_reaches(action, denied, &rule.except)),
                });
                if let Some(action) = hit {
                    found.push(Violation {
                        rule: rule.name.clone(),
                        field: format!("{field}.Action"),
                        item: action.clone(),
                        why: rule_explanation(rule, &resources),
                    });
                }
            }
            self.judge_inline_chain(&field, &actions, &resources, chain, found);
        }
    }

    /// An inline `sts:AssumeRole` reaches the same roles as
    /// `spec.policies.assumeRoles`, so it is held to the same grant (every
    /// resource is `deny-sts-on-all-resources`'s to report, when kept).
    fn judge_inline_chain(
        &self,
        field: &str,
        actions: &[String],
        resources: &[String],
        chain: &ChainGrants,
        found: &mut Vec<Violation>,
    ) {
        // Only AssumeRole is authorized by the caller's own policy; the
        // web identity and SAML calls are judged by the role's trust alone.
        let assumes = actions
            .iter()
            .any(|a| action_reaches(a, "sts:AssumeRole", &[]));
        if !self.ungranted_assume || !assumes {
            return;
        }
        let sts_on_all_kept = self.action_rules.iter().any(|r| r.name == DENY_STS_ON_ALL);
        for resource in resources {
            if (sts_on_all_kept && is_every_resource(resource))
                || assume_granted(chain.grants, resource)
                || chain.targets.contains(&resource.as_str())
            {
                continue;
            }
            found.push(Violation {
                rule: DENY_UNGRANTED_ASSUME_ROLES.into(),
                field: format!("{field}.Resource"),
                item: resource.clone(),
                why: "roles may be chained to only where the guardrails grant the namespace their \
                      ARN (namespaces[].assumeRoles); name the role in spec.policies.assumeRoles \
                      once granted, or ask the platform team"
                    .into(),
            });
        }
    }
}

/// What an inline policy of the namespace may let its role assume.
struct ChainGrants<'a> {
    grants: &'a [&'a NamespaceGrant],
    /// The object's own Pod Identity target, when granted.
    targets: &'a [&'a str],
}

/// The field of a Pod Identity target among `Tenancy::existing_roles`.
pub const TARGET_ROLE_FIELD: &str = "spec.targetRoleArn";

fn existing_role_granted(grants: &[&NamespaceGrant], arn: &str) -> bool {
    grants
        .iter()
        .any(|g| g.role_arns.iter().any(|p| arn_matches(p, arn)))
}

/// Whether a grant of the namespace covers every role `arn` (a pattern,
/// when it comes from a policy) may name.
fn assume_granted(grants: &[&NamespaceGrant], arn: &str) -> bool {
    let arn = arn.to_lowercase();
    grants.iter().any(|g| {
        g.assume_roles
            .iter()
            .any(|p| covers(&p.to_lowercase(), &arn))
    })
}

fn rule_resources_reached(rule: &ActionRule, resources: &[String]) -> bool {
    rule.resources.is_empty()
        || rule.resources.iter().any(|pattern| {
            resources.iter().any(|r| match pattern.as_str() {
                "*" => is_every_resource(r),
                _ => is_every_resource(r) || reach(r, pattern),
            })
        })
}

fn rule_explanation(rule: &ActionRule, resources: &[String]) -> String {
    let what = match rule.service_wildcards {
        true => "whole services (\"*\" or \"service:*\")".to_string(),
        false => match rule.except.is_empty() {
            true => rule.actions.join(", "),
            false => format!(
                "{} except {}",
                rule.actions.join(", "),
                rule.except.join(", ")
            ),
        },
    };
    match rule.resources.is_empty() {
        true => format!("the platform denies {what}"),
        false => format!(
            "the platform denies {what} on {} (this statement names {})",
            rule.resources.join(", "),
            resources.join(", ")
        ),
    }
}

fn grant_applies(
    grant: &NamespaceGrant,
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    grant.names.iter().any(|n| n == namespace)
        || match (&grant.selector, labels) {
            (Some(selector), Some(labels)) => selector_matches(selector, labels),
            _ => false,
        }
}

/// Kubernetes label selector semantics; an empty selector selects all.
pub fn selector_matches(selector: &Selector, labels: &BTreeMap<String, String>) -> bool {
    selector
        .match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
        && selector.match_expressions.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| r.values.contains(v)),
                "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

fn document_problems(document: &GuardrailsDocument) -> Vec<String> {
    let mut problems = Vec::new();
    let known = default_rule_names();
    for name in &document.disabled_default_rules {
        if !known.contains(&name.as_str()) {
            problems.push(format!(
                "disabledDefaultRules: {name:?} is not a built-in rule ({})",
                known.join(", ")
            ));
        }
    }
    let mut names = BTreeSet::new();
    for (i, rule) in document.inline_policies.deny.iter().enumerate() {
        let at = format!("inlinePolicies.deny[{i}]");
        if rule.name.trim().is_empty() {
            problems.push(format!(
                "{at}.name is empty; name the rule, it is shown to users"
            ));
        } else if !names.insert(rule.name.clone()) || known.contains(&rule.name.as_str()) {
            problems.push(format!("{at}.name {:?} is used twice", rule.name));
        }
        if rule.actions.is_empty() && !rule.service_wildcards {
            problems.push(format!(
                "{at} denies nothing: give actions or serviceWildcards: true"
            ));
        }
        for pattern in rule.actions.iter().chain(&rule.except) {
            if pattern != "*" && !pattern.contains(':') {
                problems.push(format!(
                    "{at}: action pattern {pattern:?} is not service:Action"
                ));
            }
        }
        for pattern in &rule.resources {
            if pattern != "*" && !pattern.starts_with("arn:") {
                problems.push(format!(
                    "{at}: resource pattern {pattern:?} is neither \"*\" nor an ARN pattern"
                ));
            }
        }
    }
    let mut arn_patterns: Vec<(String, &String)> = Vec::new();
    for p in &document.managed_policies.allow {
        arn_patterns.push(("managedPolicies.allow".into(), p));
    }
    for p in &document.managed_policies.deny {
        arn_patterns.push(("managedPolicies.deny".into(), p));
    }
    for (i, grant) in document.namespaces.iter().enumerate() {
        for p in &grant.role_arns {
            arn_patterns.push((format!("namespaces[{i}].roleArns"), p));
        }
        for p in &grant.managed_policies {
            arn_patterns.push((format!("namespaces[{i}].managedPolicies"), p));
        }
        for p in &grant.assume_roles {
            arn_patterns.push((format!("namespaces[{i}].assumeRoles"), p));
        }
    }
    for (field, pattern) in arn_patterns {
        if !pattern.starts_with("arn:") {
            problems.push(format!(
                "{field}: {pattern:?} is not an ARN pattern (arn:...)"
            ));
        }
    }
    for (i, grant) in document.namespaces.iter().enumerate() {
        if grant.names.is_empty() && grant.selector.is_none() {
            problems.push(format!(
                "namespaces[{i}] selects no namespace: give names or a selector"
            ));
        }
        for r in grant.selector.iter().flat_map(|s| &s.match_expressions) {
            if !["In", "NotIn", "Exists", "DoesNotExist"].contains(&r.operator.as_str()) {
                problems.push(format!(
                    "namespaces[{i}].selector: operator {:?} is not In, NotIn, Exists or \
                     DoesNotExist",
                    r.operator
                ));
            }
        }
    }
    let roles = &document.roles;
    if let Some(prefix) = &roles.name_prefix
        && (prefix.is_empty() || prefix.len() > 32 || !prefix.chars().all(super::is_role_name_char))
    {
        problems.push(format!(
            "roles.namePrefix {prefix:?} must be 1 to 32 characters IAM takes in role names"
        ));
    }
    if let Some(path) = &roles.path
        && let Err(e) = validate_role_path("roles.path", path)
    {
        problems.push(e.to_string());
    }
    if let Some(boundary) = &roles.permissions_boundary
        && let Err(e) = validate_permissions_boundary_arn("roles.permissionsBoundary", boundary)
    {
        problems.push(e.to_string());
    }
    problems
}
