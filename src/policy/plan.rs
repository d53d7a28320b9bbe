//! The typed plan both kinds share: the steps a reconcile will write, in
//! order, and the status to report once they ran. Each kind decides its plan
//! in one pure function (`irsa_plan`, `binding_plan`) from what it desires
//! and what was observed; one executor in the controller runs any plan.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::association_plan::AssociationAction;
use super::ownership::{Owner, Ownership};
use super::provider_plan::ProviderChange;
use super::refusal::Refusal;
use super::role_plan::{
    ObservedRole, RoleAction, RoleState, RoleSummary, plan_role_removal, same_role_name,
};
use super::stale_pods::Workload;

/// Annotation on the object naming every role the operator made for it that
/// may still exist. Written before a role is created, so that neither a
/// crash, nor a rename whose old role could not yet be deleted, nor a status
/// removed by hand can make cleanup forget one.
pub const RECORDED_ROLES: &str = "iam-operator.io/roles";
/// The same for the ServiceAccounts a PodIdentityBinding made associations
/// for: an association is found by its ServiceAccount.
pub const RECORDED_SERVICE_ACCOUNTS: &str = "iam-operator.io/service-accounts";

/// What the object's own annotations say the operator may have made for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub roles: BTreeSet<String>,
    pub service_accounts: BTreeSet<String>,
}

impl Recorded {
    /// Read from the object's annotations; an unreadable value counts as
    /// empty (the other sources of names still apply).
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Self {
        let read = |key: &str| -> BTreeSet<String> {
            annotations
                .get(key)
                .and_then(|value| serde_json::from_str(value).ok())
                .unwrap_or_default()
        };
        Recorded {
            roles: read(RECORDED_ROLES),
            service_accounts: read(RECORDED_SERVICE_ACCOUNTS),
        }
    }

    /// The annotation values to write; `None` removes the annotation.
    pub fn to_annotations(&self) -> BTreeMap<&'static str, Option<String>> {
        let write = |set: &BTreeSet<String>| {
            (!set.is_empty()).then(|| serde_json::to_string(set).unwrap_or_default())
        };
        BTreeMap::from([
            (RECORDED_ROLES, write(&self.roles)),
            (RECORDED_SERVICE_ACCOUNTS, write(&self.service_accounts)),
        ])
    }

    pub fn has_role(&self, name: &str) -> bool {
        self.roles.iter().any(|r| same_role_name(r, name))
    }

    /// Whether everything `other` names is recorded here already.
    pub fn covers(&self, other: &Recorded) -> bool {
        other.roles.iter().all(|r| self.has_role(r))
            && other.service_accounts.is_subset(&self.service_accounts)
    }

    /// This record and every name of `other` it lacks.
    pub fn joined(&self, other: &Recorded) -> Recorded {
        let mut joined = self.clone();
        joined
            .roles
            .extend(other.roles.iter().filter(|r| !self.has_role(r)).cloned());
        joined
            .service_accounts
            .extend(other.service_accounts.iter().cloned());
        joined
    }
}

/// One write.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Rewrite the object's record of what it may own in AWS.
    Record(Recorded),
    /// One IAM call on the role named `role`.
    Role { role: String, action: RoleAction },
    /// One EKS call. `role_created` is when the role the association points
    /// at was made, as observed (`None`: unknown, or made by this plan).
    Association {
        action: AssociationAction,
        role_arn: String,
        role_created: Option<SystemTime>,
    },
    /// One write to the cluster's IAM OIDC provider `arn`, shared by every
    /// object (see `crate::policy::provider_plan`).
    OidcProvider { arn: String, change: ProviderChange },
    /// `kubectl rollout restart` of a workload whose pods predate the
    /// binding, marked with the binding it was for.
    RestartWorkload { workload: Workload, binding: String },
    /// Server-side apply of the annotations under the object's own field
    /// manager, creating the ServiceAccount (owned by `owner`) if missing.
    AnnotateServiceAccount {
        name: String,
        annotations: BTreeMap<String, String>,
        owner: Option<OwnerReference>,
    },
    /// Gives the annotations the object's field manager owns back.
    ReleaseServiceAccount { name: String },
    /// Deletes a ServiceAccount the object created.
    DeleteServiceAccount { name: String },
}

impl Step {
    /// The Event reason and note for a step that changed something a person
    /// may care about; `None` for the operator's own bookkeeping.
    pub fn event(&self) -> Option<(&'static str, String)> {
        match self {
            Step::Record(_) => None,
            Step::Role { role, action } => Some((
                action.operation(),
                match action {
                    RoleAction::CreateRole(_) => action.describe(),
                    _ => format!("role {role}: {}", action.describe()),
                },
            )),
            Step::Association { action, .. } => Some((action.operation(), action.describe())),
            Step::RestartWorkload { workload, binding } => Some((
                "RestartedWorkload",
                format!("restarted {workload}: its pods started before the binding to {binding}"),
            )),
            Step::OidcProvider { arn, change } => Some((
                change.operation(),
                match change {
                    ProviderChange::Create { url, client_id, .. } => format!(
                        "created IAM OIDC provider {arn} for issuer {url}, client ID {client_id}"
                    ),
                    ProviderChange::AddClientId { client_id } => {
                        format!("added client ID {client_id} to IAM OIDC provider {arn}")
                    }
                },
            )),
            Step::AnnotateServiceAccount {
                name, annotations, ..
            } => Some((
                "AnnotatedServiceAccount",
                format!(
                    "ServiceAccount {name} annotated with {}",
                    annotations
                        .get(super::service_account_plan::ROLE_ARN)
                        .map(String::as_str)
                        .unwrap_or("its role")
                ),
            )),
            Step::ReleaseServiceAccount { name } => Some((
                "ReleasedServiceAccount",
                format!("gave back the annotations of ServiceAccount {name}"),
            )),
            Step::DeleteServiceAccount { name } => Some((
                "DeletedServiceAccount",
                format!("deleted ServiceAccount {name}, which the operator had created"),
            )),
        }
    }
}

/// What a reconcile will do and say. `verdict` is what `Ready` reports once
/// every step ran: a refusal may come with steps (a ServiceAccount lost to
/// an older claim is given back; a role is made while its ServiceAccount is
/// awaited) or without (nothing may be written).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<S> {
    pub steps: Vec<Step>,
    pub status: S,
    pub verdict: Result<String, Refusal>,
}

impl<S> Plan<S> {
    pub fn refuse(status: S, refusal: Refusal) -> Self {
        Plan {
            steps: Vec::new(),
            status,
            verdict: Err(refusal),
        }
    }

    /// The plan of an object that lost its ServiceAccount to an older
    /// claim: `steps` give back what it had there, and it says who won.
    pub fn lost_claim(
        status: S,
        steps: Vec<Step>,
        kind: &'static str,
        service_account: &str,
        winner: &str,
    ) -> Self {
        Plan {
            steps,
            status,
            verdict: Err(Refusal::ServiceAccountConflict {
                kind,
                service_account: service_account.to_string(),
                winner: winner.to_string(),
            }),
        }
    }
}

/// The object as the plan needs it, apart from its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub owner: Owner,
    pub uid: String,
    pub generation: i64,
    pub recorded: Recorded,
    /// The role name status reports.
    pub status_role: Option<String>,
    /// Read only when the guardrails select namespaces by label.
    pub namespace_labels: Option<BTreeMap<String, String>>,
}

impl Subject {
    /// Every name a role of this object had before: recorded or in status.
    pub fn previous_roles(&self) -> Vec<&str> {
        self.recorded
            .roles
            .iter()
            .map(String::as_str)
            .chain(self.status_role.as_deref())
            .collect()
    }
}

/// Every role that may be ours, read by every name that may be its name;
/// `None`: no role of that name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedRoles(pub Vec<(String, Option<ObservedRole>)>);

impl ObservedRoles {
    pub fn get(&self, name: &str) -> Option<&ObservedRole> {
        self.0
            .iter()
            .find(|(asked, _)| same_role_name(asked, name))
            .and_then(|(_, role)| role.as_ref())
    }

    /// Roles found that carry `owner`'s tags, other than those in `keep`.
    pub fn ours_except<'a>(
        &'a self,
        owner: &'a Owner,
        keep: &'a [&'a str],
    ) -> impl Iterator<Item = &'a ObservedRole> + 'a {
        self.0
            .iter()
            .filter_map(|(_, role)| role.as_ref())
            .filter(move |role| !keep.iter().any(|k| same_role_name(&role.state.name, k)))
            .filter(move |role| owner.classify(&role.state.tags) == Ownership::Ours)
    }

    /// Under `Retain`, the roles that go anyway: ours, other than `kept`,
    /// which an unfinished rename was yet to delete. Only when the first
    /// kept role exists and is ours: otherwise a leftover may be all a
    /// workload has.
    pub fn rename_leftovers<'a>(
        &'a self,
        owner: &'a Owner,
        kept: &'a [&'a str],
    ) -> Vec<&'a ObservedRole> {
        let spec_role_made = kept
            .first()
            .and_then(|name| self.get(name))
            .is_some_and(|role| owner.classify(&role.state.tags) == Ownership::Ours);
        match spec_role_made {
            true => self.ours_except(owner, kept).collect(),
            false => Vec::new(),
        }
    }
}

/// The role to make or keep, and what IAM has at its name. A name kept from
/// before regions were part of generated names yields to the regional one
/// when the role there belongs to someone else now (the same-named cluster
/// of another region tagged it first).
pub fn role_in_use<'a>(
    desired: &RoleState,
    regional_name: &str,
    roles: &'a ObservedRoles,
    owner: &Owner,
) -> (RoleState, Option<&'a ObservedRole>) {
    let existing = roles.get(&desired.name);
    let taken = existing.is_some_and(|role| owner.classify(&role.state.tags) != Ownership::Ours);
    if taken && !same_role_name(&desired.name, regional_name) {
        let moved = RoleState {
            name: regional_name.to_string(),
            ..desired.clone()
        };
        return (moved, roles.get(regional_name));
    }
    (desired.clone(), existing)
}

/// `kubectl rollout restart` of each workload, for `binding`.
pub fn restart_steps(workloads: Vec<Workload>, binding: &str) -> Vec<Step> {
    workloads
        .into_iter()
        .map(|workload| Step::RestartWorkload {
            workload,
            binding: binding.to_string(),
        })
        .collect()
}

/// The existing role `field` names, as read (`None`: absent). IAM finds a
/// role by its name without case, so a role of ours named in other letters
/// is still borrowed; past that, only the exact ARN is the role asked for
/// (another path is another role).
pub fn existing_role<'a>(
    field: &'static str,
    wanted: &str,
    observed: Option<&'a RoleSummary>,
    owner: &Owner,
) -> Result<&'a RoleSummary, Refusal> {
    let not_found = || Refusal::RoleNotFound {
        field,
        role_arn: wanted.to_string(),
    };
    let summary = observed
        .filter(|s| s.arn.eq_ignore_ascii_case(wanted))
        .ok_or_else(not_found)?;
    // A role the operator made for another object (of any kind, namespace
    // or cluster) is never handed to this one: its trust, policies and
    // deletion follow that object, not this one.
    if let Ownership::OtherOwner { description } = owner.classify(&summary.tags) {
        return Err(Refusal::BorrowedRole {
            field,
            role_arn: summary.arn.clone(),
            owner: description,
        });
    }
    match summary.arn == wanted {
        true => Ok(summary),
        false => Err(not_found()),
    }
}

/// The names a role of the object may have: recorded, in status, and the
/// one the spec asks for; each once, whatever its case.
pub fn role_candidates<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut unique: Vec<String> = Vec::new();
    for name in names {
        if !name.is_empty() && !unique.iter().any(|u| same_role_name(u, name)) {
            unique.push(name.to_string());
        }
    }
    unique
}

/// Steps that delete a role of ours in an order IAM accepts.
pub fn role_removal_steps(role: &ObservedRole) -> Vec<Step> {
    plan_role_removal(&role.state)
        .into_iter()
        .map(|action| Step::Role {
            role: role.state.name.clone(),
            action,
        })
        .collect()
}

/// Puts `Record` steps around `steps`: before them when something is about
/// to be made that the record lacks, after them when things recorded are
/// gone. `made` is what exists (or will) once the steps ran.
pub fn with_record(recorded: &Recorded, made: Recorded, steps: Vec<Step>) -> Vec<Step> {
    let mut out = Vec::with_capacity(steps.len() + 2);
    let mut before = recorded.clone();
    if !recorded.covers(&made) {
        before = recorded.joined(&made);
        out.push(Step::Record(before.clone()));
    }
    out.extend(steps);
    let made = Recorded {
        roles: before
            .roles
            .iter()
            .filter(|r| made.has_role(r))
            .cloned()
            .collect(),
        service_accounts: made.service_accounts,
    };
    if made != before {
        out.push(Step::Record(made));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_record_round_trips_through_annotations() {
        let recorded = Recorded {
            roles: set(&["a,b", "c"]),
            service_accounts: set(&["web"]),
        };
        let annotations: BTreeMap<String, String> = recorded
            .to_annotations()
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect();
        assert_eq!(Recorded::from_annotations(&annotations), recorded);
        let empty = Recorded::default().to_annotations();
        assert!(empty.values().all(Option::is_none));
        let garbled = BTreeMap::from([(RECORDED_ROLES.to_string(), "not json".to_string())]);
        assert_eq!(Recorded::from_annotations(&garbled), Recorded::default());
    }

    #[test]
    fn candidates_are_unique_whatever_their_case() {
        assert_eq!(
            role_candidates(["MyRole", "", "myrole", "other", "MYROLE"]),
            ["MyRole", "other"]
        );
    }

    #[test]
    fn the_record_grows_before_a_create_and_shrinks_after_a_removal() {
        let none = Recorded::default();
        let a = Recorded {
            roles: set(&["a"]),
            ..Default::default()
        };
        let b = Recorded {
            roles: set(&["b"]),
            ..Default::default()
        };
        let work = vec![Step::ReleaseServiceAccount { name: "x".into() }];
        // Nothing recorded, a to be made: recorded first, nothing after.
        let steps = with_record(&none, a.clone(), work.clone());
        assert_eq!(steps.first(), Some(&Step::Record(a.clone())));
        assert_eq!(steps.len(), 2);
        // a recorded, renamed to b: both recorded first, only b after.
        let steps = with_record(&a, b.clone(), work.clone());
        let both = Recorded {
            roles: set(&["a", "b"]),
            ..Default::default()
        };
        assert_eq!(steps.first(), Some(&Step::Record(both)));
        assert_eq!(steps.last(), Some(&Step::Record(b)));
        // In sync: no record step.
        assert_eq!(with_record(&a, a.clone(), work.clone()), work);
        // Case-only difference is the same role.
        let upper = Recorded {
            roles: set(&["A"]),
            ..Default::default()
        };
        assert_eq!(with_record(&upper, a, work.clone()), work);
    }
}
