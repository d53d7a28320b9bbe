//! What an app team's spec may reach, judged before anything is observed or
//! written: the policy grammar first (a malformed document is refused as
//! such, not as a guardrail), then the platform's guardrails. Pure.

use super::desire::Defaults;
use std::collections::BTreeMap;

use super::desire::{DesiredBinding, WantedRole};
use super::grammar::inline_policies_problems;
use super::guardrails::{CreatedRole, TARGET_ROLE_FIELD, Tenancy};
use super::plan::Subject;
use super::refusal::Refusal;
use super::role_plan::RoleState;
use crate::api::{PodIdentityBindingSpec, PolicySpec, RoleSpec};

/// `InvalidPolicy` for any inline document IAM would refuse.
pub fn check_policy_grammar(policies: &PolicySpec) -> Result<(), Refusal> {
    let problems = inline_policies_problems(policies);
    match problems.is_empty() {
        true => Ok(()),
        false => Err(Refusal::InvalidPolicy { problems }),
    }
}

/// `GuardrailViolation` for a role the operator would create (or, with
/// `adopt`, take over) and the existing roles the spec names.
pub fn check_guardrails(
    defaults: &Defaults,
    subject: &Subject,
    created: Option<(&RoleSpec, &RoleState)>,
    policies: Option<&PolicySpec>,
    existing_roles: Vec<(&'static str, &str)>,
    adopt: bool,
) -> Result<(), Refusal> {
    let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let no_inline = BTreeMap::new();
    let inline = policies.map_or(&no_inline, |p| &p.inline);
    let spec_names = created.map(|(spec, _)| (given(&spec.name), given(&spec.path)));
    let tenancy = Tenancy {
        namespace: &subject.owner.namespace,
        namespace_labels: subject.namespace_labels.as_ref(),
        created_role: created.map(|(_, role)| CreatedRole {
            name: &role.name,
            path: &role.path,
            spec_name: spec_names.as_ref().and_then(|(n, _)| n.as_deref()),
            adopt,
            spec_path: spec_names.as_ref().and_then(|(_, p)| p.as_deref()),
            managed_policies: &role.managed_policies,
            inline_policies: inline,
            assume_roles: policies.map_or(&[], |p| &p.assume_roles),
        }),
        existing_roles,
    };
    let violations = defaults.guardrails.judge(&tenancy);
    match violations.is_empty() {
        true => Ok(()),
        false => Err(Refusal::GuardrailViolation { violations }),
    }
}

/// The guardrails' verdict on a PodIdentityBinding as desire resolved it.
pub fn check_binding_guardrails(
    spec: &PodIdentityBindingSpec,
    desired: &DesiredBinding,
    defaults: &Defaults,
    subject: &Subject,
) -> Result<(), Refusal> {
    let created = match (&desired.role, &spec.role) {
        (WantedRole::Created(state), Some(role)) => Some((role, state)),
        _ => None,
    };
    let mut existing = Vec::new();
    if let Some(arn) = spec.role_arn.as_deref().filter(|_| created.is_none()) {
        existing.push(("spec.roleArn", arn));
    }
    if let Some(arn) = spec.target_role_arn.as_deref().filter(|a| !a.is_empty()) {
        existing.push((TARGET_ROLE_FIELD, arn));
    }
    check_guardrails(
        defaults,
        subject,
        created,
        spec.policies.as_ref(),
        existing,
        false,
    )
}
