//! The plan of a PodIdentityBinding: from the binding it desires and what
//! was observed (the created role by every name that may be ours, or the
//! existing role; the target role; the associations of every ServiceAccount
//! it may have used; the IRSA annotation; rival claims), the ordered writes
//! and the status to report, or the refusal. Pure.

use super::association_plan::{
    AssociationAction, DesiredAssociation, ObservedAssociation, is_ours, plan_association,
    plan_association_removal,
};
use super::desire::{Defaults, DesiredBinding, WantedRole, desired_binding};
use super::plan::{
    ObservedRoles, Plan, Recorded, Step, Subject, existing_role, restart_steps, role_in_use,
    role_removal_steps, with_record,
};
use super::pod_identity_agent::AgentState;
use super::refusal::Refusal;
use super::role_plan::{RoleSummary, plan_role, role_name_in_arn};
use super::stale_pods::{Binding, ObservedPod, RestartWish, unless_pods_are_stale};
use super::tenancy::{check_binding_guardrails, check_policy_grammar};
use super::trust::pod_identity_trust_gaps;
use crate::api::PodIdentityBindingSpec;
use crate::api::PodIdentityBindingStatus;
use crate::api::pod_identity_binding::KIND;

/// The object and everything read for it.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingObserved {
    pub subject: Subject,
    pub service_account_name: String,
    pub retain: bool,
    /// Under `Retain`, the role the spec names, when it names one to create.
    pub retained_role: Option<String>,
    pub status: PodIdentityBindingStatus,
    /// Whether EKS knows the configured cluster.
    pub cluster_found: bool,
    pub roles: ObservedRoles,
    /// With `roleArn`: the role it names, `None` when it does not exist.
    pub existing_role: Option<RoleSummary>,
    /// A `targetRoleArn` in this account, `None` when it does not exist.
    pub target_role: Option<RoleSummary>,
    /// The associations of the current ServiceAccount, of every recorded
    /// one, and the one status names.
    pub associations: Vec<ObservedAssociation>,
    /// The ServiceAccount's IRSA role annotation, if it has one.
    pub irsa_role: Option<String>,
    /// Whether the Pod Identity Agent runs on the cluster's nodes.
    pub agent: AgentState,
    /// The ServiceAccount's running pods.
    pub pods: Vec<ObservedPod>,
    pub older_claim: Option<String>,
}

impl BindingObserved {
    /// The role status names, when the operator made it: only then does an
    /// untagged association pointing at it count as ours.
    fn our_previous_role(&self) -> Option<&str> {
        self.status
            .role_name
            .as_ref()
            .and(self.status.role_arn.as_deref())
    }
}

/// What a binding asks for, checked: the policy grammar, IAM's limits, then
/// the platform's guardrails.
pub fn desire_binding(
    spec: &PodIdentityBindingSpec,
    subject: &Subject,
    defaults: &Defaults,
) -> Result<DesiredBinding, Refusal> {
    if let Some(policies) = &spec.policies {
        check_policy_grammar(policies)?;
    }
    let desired = desired_binding(spec, &subject.owner, defaults, &subject.previous_roles())?;
    check_binding_guardrails(spec, &desired, defaults, subject)?;
    Ok(desired)
}

/// What the record must name before the first create, as far as the spec
/// alone tells: the role to make, and the ServiceAccount whose association
/// will be found by it.
pub fn record_before_create(desired: &DesiredBinding, service_account: &str) -> Recorded {
    Recorded {
        roles: match &desired.role {
            WantedRole::Created(role) => [role.name.clone()].into(),
            WantedRole::Existing(_) => Default::default(),
        },
        service_accounts: [service_account.to_string()].into(),
    }
}

pub fn plan_binding(
    desired: &Result<DesiredBinding, Refusal>,
    observed: &BindingObserved,
    defaults: &Defaults,
) -> Plan<PodIdentityBindingStatus> {
    let owner = &observed.subject.owner;
    let sa_name = &observed.service_account_name;
    let mut status = observed.status.clone();
    if let Some(winner) = &observed.older_claim {
        // An association this object made before it lost the claim would
        // block the winner for ever: it goes.
        let steps = association_steps(
            plan_association_removal(&observed.associations, owner, observed.our_previous_role()),
            "",
            None,
        );
        if !steps.is_empty() {
            status.association_id = None;
            status.association_arn = None;
        }
        return Plan::lost_claim(status, steps, KIND, sa_name, winner);
    }
    let desired = match desired {
        Ok(desired) => desired,
        Err(refusal) => return Plan::refuse(status, refusal.clone()),
    };
    if !observed.cluster_found {
        return Plan::refuse(
            status,
            Refusal::ClusterNotFound {
                cluster: defaults.cluster_name.clone(),
                region: defaults.region.clone(),
                detail: "DescribeCluster: ResourceNotFoundException".into(),
            },
        );
    }

    // Everything that can refuse is decided before anything is written: a
    // foreign association or a bad existing role leaves AWS untouched.
    let mut steps = Vec::new();
    let (role_name, role_arn, role_created) = match &desired.role {
        WantedRole::Existing(arn) => {
            let wanted = arn.to_string();
            let summary = match existing_role(
                "spec.roleArn",
                &wanted,
                observed.existing_role.as_ref(),
                owner,
            ) {
                Ok(summary) => summary,
                Err(refusal) => return Plan::refuse(status, refusal),
            };
            let missing = match &summary.trust_policy {
                Some(trust) => pod_identity_trust_gaps(trust),
                None => super::POD_IDENTITY_ACTIONS.to_vec(),
            };
            if !missing.is_empty() {
                return Plan::refuse(
                    status,
                    Refusal::RoleDoesNotTrustPodIdentity {
                        role_arn: wanted,
                        missing,
                    },
                );
            }
            (None, summary.arn.clone(), summary.created)
        }
        WantedRole::Created(desired_state) => {
            let (state, existing) = role_in_use(
                desired_state,
                desired.regional_role_name.as_deref().unwrap_or_default(),
                &observed.roles,
                owner,
            );
            let actions = match plan_role(&state, existing.map(|r| &r.state), owner) {
                Ok(actions) => actions,
                Err(not_owned) => return Plan::refuse(status, not_owned.into()),
            };
            let (name, arn, created) = match existing {
                Some(role) if role.state.path == state.path => {
                    (role.state.name.clone(), role.arn.clone(), role.created)
                }
                _ => (
                    state.name.clone(),
                    defaults.role_arn(&state.path, &state.name),
                    None,
                ),
            };
            steps.extend(actions.into_iter().map(|action| Step::Role {
                role: name.clone(),
                action,
            }));
            (Some(name), arn, created)
        }
    };
    if let Some(target) = &desired.target_role
        && target.account == defaults.account_id
        && let Err(refusal) = existing_role(
            "spec.targetRoleArn",
            &target.to_string(),
            observed.target_role.as_ref(),
            owner,
        )
    {
        return Plan::refuse(status, refusal);
    }

    let want = DesiredAssociation {
        namespace: owner.namespace.clone(),
        service_account: sa_name.clone(),
        role_arn: role_arn.clone(),
        target_role_arn: desired.target_role.as_ref().map(ToString::to_string),
        disable_session_tags: desired.disable_session_tags,
        tags: owner.tags(),
        // The association last recorded is part of it: one deleted behind
        // the operator's back is then made again, not answered with the
        // replay of its own creation.
        request_scope: format!(
            "{}/{}/{}",
            observed.subject.uid,
            observed.subject.generation,
            observed
                .status
                .association_id
                .as_deref()
                .unwrap_or_default()
        ),
    };
    let (current, elsewhere): (Vec<ObservedAssociation>, Vec<ObservedAssociation>) = observed
        .associations
        .iter()
        .cloned()
        .partition(|a| a.namespace == owner.namespace && a.service_account == *sa_name);
    // An untagged association is adopted only when it points at a role the
    // operator made; one to an existing role was made by someone else.
    let actions = match plan_association(
        &want,
        &current,
        owner,
        role_name.as_ref().map(|_| role_arn.as_str()),
    ) {
        Ok(actions) => actions,
        Err(conflict) => return Plan::refuse(status, conflict.into()),
    };
    match current.first() {
        Some(kept)
            if !actions
                .iter()
                .any(|a| matches!(a, AssociationAction::Create { .. })) =>
        {
            status.association_id = Some(kept.association_id.clone());
            status.association_arn = Some(kept.association_arn.clone());
        }
        // Known once EKS made it: the executor fills it in.
        _ => {
            status.association_id = None;
            status.association_arn = None;
        }
    }
    // Pods can be restarted into the binding only once it stood.
    let binding_changes = actions.iter().any(|action| {
        matches!(
            action,
            AssociationAction::Create { .. } | AssociationAction::Update { .. }
        )
    });
    steps.extend(association_steps(actions, &role_arn, role_created));
    // The ServiceAccount was renamed: the new association is in place, so
    // the old one goes without a moment with neither.
    steps.extend(association_steps(
        plan_association_removal(&elsewhere, owner, observed.our_previous_role()),
        &role_arn,
        None,
    ));
    // A role of ours the association no longer uses (renamed, or the spec
    // moved to roleArn) goes only now that nothing points at it. A roleArn
    // naming the very role the operator made keeps it in use.
    let in_use = role_name_in_arn(&role_arn);
    for old in observed.roles.ours_except(owner, &[in_use]) {
        steps.extend(role_removal_steps(old));
    }
    let made = Recorded {
        roles: role_name.iter().cloned().collect(),
        service_accounts: [sa_name.clone()].into(),
    };
    status.role_arn = Some(role_arn.clone());
    status.role_name = role_name;
    let verdict = match (&observed.irsa_role, &observed.agent) {
        (Some(irsa_role), _) => Err(Refusal::IrsaRoleTakesPrecedence {
            service_account: sa_name.clone(),
            irsa_role: irsa_role.clone(),
            pod_identity_role: role_arn.clone(),
        }),
        // The association is made all the same: it takes effect the moment
        // the agent runs, with nothing more to do here.
        (None, AgentState::NotRunning(problem)) => Err(Refusal::PodIdentityAgentNotReady {
            cluster: defaults.cluster_name.clone(),
            service_account: sa_name.clone(),
            problem: problem.clone(),
        }),
        (None, AgentState::Running) => {
            let target = desired
                .target_role
                .as_ref()
                .map(|t| format!(", then target role {t}"))
                .unwrap_or_default();
            // Without session tags the trust of a created role cannot name
            // the namespace and ServiceAccount: say so where people look.
            let unscoped = match (&desired.role, desired.disable_session_tags) {
                (WantedRole::Created(_), true) => {
                    "; its trust is not scoped to this namespace and ServiceAccount, as \
                     disableSessionTags leaves EKS no session tags to check: any Pod Identity \
                     association in the account may use the role"
                }
                _ => "",
            };
            let (verdict, restarts) = unless_pods_are_stale(
                Ok(format!(
                    "ServiceAccount {sa_name} gets role {role_arn}{target} through EKS Pod Identity{unscoped}"
                )),
                &observed.pods,
                Binding::PodIdentity,
                RestartWish {
                    asked: desired.restart_stale_pods,
                    allowed: defaults.restart_stale_pods,
                    binding_in_place: !binding_changes,
                },
                sa_name,
                &role_arn,
            );
            steps.extend(restart_steps(restarts, &role_arn));
            verdict
        }
    };
    Plan {
        steps: with_record(&observed.subject.recorded, made, steps),
        status,
        verdict,
    }
}

fn association_steps(
    actions: Vec<AssociationAction>,
    role_arn: &str,
    role_created: Option<std::time::SystemTime>,
) -> Vec<Step> {
    actions
        .into_iter()
        .map(|action| Step::Association {
            action,
            role_arn: role_arn.to_string(),
            role_created,
        })
        .collect()
}

/// Deletion: the associations first, so no pod is handed credentials for a
/// role on its way out; then every role of ours by every name it may have.
/// `Retain` keeps both, but not what an unfinished rename or move left
/// behind: another association of ours beside the spec's ServiceAccount's,
/// another role of ours beside the one the kept association uses.
pub fn plan_binding_cleanup(observed: &BindingObserved) -> Plan<PodIdentityBindingStatus> {
    let mut steps = Vec::new();
    let owner = &observed.subject.owner;
    if observed.retain {
        // The pair that works is kept: our association of the spec's
        // ServiceAccount (made only once its role is complete) and the role
        // it uses. Ours elsewhere are what a move of the ServiceAccount was
        // yet to delete; while the spec's has none, the others are all that
        // works. Someone else's association is neither.
        let (current, elsewhere): (Vec<ObservedAssociation>, Vec<ObservedAssociation>) = observed
            .associations
            .iter()
            .filter(|a| is_ours(a, owner, observed.our_previous_role()))
            .cloned()
            .partition(|a| {
                a.namespace == owner.namespace && a.service_account == observed.service_account_name
            });
        let (kept_associations, leftover_associations) = match current.is_empty() {
            true => (elsewhere, Vec::new()),
            false => (current, elsewhere),
        };
        steps.extend(association_steps(
            plan_association_removal(&leftover_associations, owner, observed.our_previous_role()),
            "",
            None,
        ));
        let in_use: Vec<&str> = kept_associations
            .iter()
            .map(|a| role_name_in_arn(&a.role_arn))
            .collect();
        let kept = match in_use.is_empty() {
            true => observed.retained_role.as_deref().into_iter().collect(),
            false => in_use,
        };
        for role in observed.roles.rename_leftovers(owner, &kept) {
            steps.extend(role_removal_steps(role));
        }
    } else {
        steps.extend(association_steps(
            plan_association_removal(&observed.associations, owner, observed.our_previous_role()),
            "",
            None,
        ));
        for role in observed.roles.ours_except(owner, &[]) {
            steps.extend(role_removal_steps(role));
        }
    }
    Plan {
        steps,
        status: observed.status.clone(),
        verdict: Ok("deleted".into()),
    }
}

#[cfg(test)]
mod tests;
