//! The plan of an IamServiceAccount: from the role and annotations it
//! desires and what was observed (roles by every name that may be ours, the
//! OIDC provider, the ServiceAccount, rival claims), the ordered writes and
//! the status to report, or the refusal. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::PolicyDocument;
use super::chain::Chaining;
use super::desire::{
    Defaults, InvalidSpec, WantedRole, desired_role, existing_role_arn, regional_role_name,
};
use super::issuer::issuers_differ;
use super::ownership::Ownership;
use super::plan::{
    ObservedRoles, Plan, Recorded, Step, Subject, existing_role, restart_steps, role_in_use,
    role_removal_steps, with_record,
};
use super::provider_plan::{ObservedProvider, ProviderWanted, plan_provider};
use super::refusal::Refusal;
use super::role_plan::{
    ObservedRole, RoleAction, RoleState, RoleSummary, plan_role, role_name_in_arn,
};
use super::service_account_plan::{
    AnnotationPlan, ObservedServiceAccount, ROLE_ARN, plan_annotations, wanted_annotations,
};
use super::stale_pods::{Binding, ObservedPod, RestartWish, unless_pods_are_stale};
use super::tenancy::{check_guardrails, check_policy_grammar};
use super::trust::{
    TrustVerdict, irsa_trust_admits, irsa_trust_is_exactly, irsa_trust_policy,
    irsa_trust_statement, oidc_provider_arn, service_account_subject,
};
use super::validate::RoleArn;
use super::validate::validate_audience;
use crate::api::{IamServiceAccount, IamServiceAccountStatus, PolicySpec, RoleSpec};

pub const KIND: &str = "IamServiceAccount";

/// What an IamServiceAccount asks for, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredIrsa {
    pub role: WantedRole,
    /// The ARN pods are given: the existing role's, or the one IAM gives
    /// the role once made.
    pub role_arn: String,
    /// For a created role: the name generated with the region, for a role
    /// whose earlier name another cluster's role holds now.
    pub regional_role_name: Option<String>,
    pub issuer: String,
    pub provider_arn: String,
    pub audience: String,
    pub sts_regional_endpoints: Option<bool>,
    pub token_expiration_seconds: Option<i64>,
    /// Take over a role of the wanted name someone else made.
    pub adopt: bool,
    /// `restartStalePods`.
    pub restart_stale_pods: bool,
}

impl DesiredIrsa {
    /// Whether `trust` lets this object's pods (ServiceAccount `sa` of
    /// `namespace`) assume the role with the tokens they carry.
    fn admitted_by(&self, trust: &PolicyDocument, namespace: &str, sa: &str) -> TrustVerdict {
        irsa_trust_admits(
            trust,
            &self.provider_arn,
            &self.issuer,
            namespace,
            sa,
            &self.audience,
        )
    }
}

pub fn desired_irsa(
    isa: &IamServiceAccount,
    subject: &Subject,
    defaults: &Defaults,
) -> Result<DesiredIrsa, Refusal> {
    let audience = isa.audience().to_string();
    if let Err(e) = validate_audience("spec.audience", &audience) {
        return Err(InvalidSpec(vec![e.to_string()]).into());
    }
    let Some(issuer) = defaults.issuer.clone() else {
        return Err(Refusal::ClusterNotFound {
            cluster: defaults.cluster_name.clone(),
            region: defaults.region.clone(),
            detail: "its OIDC issuer could not be read from EKS DescribeCluster; the operator \
                     asks again at each retry"
                .into(),
        });
    };
    if let Some(api_server) = &defaults.api_server_issuer
        && issuers_differ(api_server, &issuer)
    {
        return Err(Refusal::IssuerMismatch {
            api_server: api_server.clone(),
            in_use: issuer,
            from: defaults.issuer_source,
            cluster: defaults.cluster_name.clone(),
            region: defaults.region.clone(),
        });
    }
    let owner = &subject.owner;
    let provider_arn = oidc_provider_arn(&defaults.partition, &defaults.account_id, &issuer);
    let adopt = isa.spec.adopt_role.unwrap_or(false);
    if adopt && isa.spec.role.name.as_deref().is_none_or(str::is_empty) {
        return Err(InvalidSpec(vec![
            "spec.adoptRole takes over the role named by spec.role.name: set spec.role.name".into(),
        ])
        .into());
    }
    let (role, role_arn, regional_role_name) = match isa.spec.role_arn.as_deref() {
        Some(arn) => {
            let existing = existing_irsa_role(isa, arn, defaults)?;
            check_guardrails(
                defaults,
                subject,
                None,
                None,
                vec![("spec.roleArn", arn)],
                false,
            )?;
            (WantedRole::Existing(existing), arn.to_string(), None)
        }
        None => {
            let trust = irsa_trust_policy(
                &provider_arn,
                &issuer,
                &owner.namespace,
                &isa.service_account_name(),
                &audience,
            );
            check_policy_grammar(&isa.spec.policies)?;
            let chaining = Chaining {
                assume_roles: &isa.spec.policies.assume_roles,
                ..Default::default()
            };
            let role = desired_role(
                &isa.spec.role,
                &isa.spec.policies,
                chaining,
                trust,
                owner,
                defaults,
                &subject.previous_roles(),
            )?;
            check_guardrails(
                defaults,
                subject,
                Some((&isa.spec.role, &role)),
                Some(&isa.spec.policies),
                Vec::new(),
                adopt,
            )?;
            let arn = defaults.role_arn(&role.path, &role.name);
            let regional = regional_role_name(&isa.spec.role, owner, defaults);
            (WantedRole::Created(role), arn, Some(regional))
        }
    };
    Ok(DesiredIrsa {
        role,
        role_arn,
        regional_role_name,
        issuer,
        provider_arn,
        audience,
        sts_regional_endpoints: isa.spec.sts_regional_endpoints,
        token_expiration_seconds: isa.spec.token_expiration_seconds,
        adopt,
        restart_stale_pods: isa.spec.restart_stale_pods.unwrap_or(false),
    })
}

/// `spec.roleArn` checked: a role of the cluster's account, with nothing
/// asked of `spec.role` or `spec.policies` beside it (the API server fills
/// both in as `{}`, which asks for nothing).
fn existing_irsa_role(
    isa: &IamServiceAccount,
    arn: &str,
    defaults: &Defaults,
) -> Result<RoleArn, Refusal> {
    let mut problems = Vec::new();
    if isa.spec.adopt_role == Some(true) {
        problems.push(
            "spec.adoptRole takes over a role to manage it, spec.roleArn uses one without \
             managing it: set only one"
                .to_string(),
        );
    }
    if isa.spec.role != RoleSpec::default() || isa.spec.policies != PolicySpec::default() {
        problems.push(
            "spec.roleArn names an existing role the operator never changes: leave out \
             spec.role and spec.policies (attach policies to that role yourself)"
                .to_string(),
        );
    }
    let elsewhere = |_: &str| {
        format!(
            "the operator checks and binds roles of the cluster's account {} only",
            defaults.account_id
        )
    };
    match existing_role_arn(arn, defaults, elsewhere) {
        Ok(parsed) if problems.is_empty() => Ok(parsed),
        Ok(_) => Err(InvalidSpec(problems).into()),
        Err(problem) => {
            problems.push(problem);
            Err(InvalidSpec(problems).into())
        }
    }
}

/// What the record must name before the first create, as far as the spec
/// alone tells (a role at the regional name, chosen only once IAM is read,
/// is recorded by the plan itself); nothing for an existing role, which is
/// never made.
pub fn record_before_create(desired: &DesiredIrsa) -> Recorded {
    Recorded {
        roles: match &desired.role {
            WantedRole::Created(role) => [role.name.clone()].into(),
            WantedRole::Existing(_) => Default::default(),
        },
        ..Default::default()
    }
}

/// A role someone else put on the ServiceAccount, as far as it was read.
#[derive(Debug, Clone, PartialEq)]
pub enum ForeignRole {
    NotAnArn,
    OtherAccount(String),
    Missing,
    Found(RoleSummary),
    Unreadable,
}

/// The object and everything read for it.
#[derive(Debug, Clone, PartialEq)]
pub struct IrsaObserved {
    pub subject: Subject,
    pub service_account_name: String,
    /// Set when the spec asks for the ServiceAccount to be created: the
    /// owner reference it gets.
    pub create_service_account: Option<OwnerReference>,
    pub retain: bool,
    /// Under `Retain`, the role the spec names.
    pub retained_role: Option<String>,
    pub status: IamServiceAccountStatus,
    pub roles: ObservedRoles,
    /// With `spec.roleArn`: the role it names, `None` when it does not exist.
    pub existing_role: Option<RoleSummary>,
    /// The cluster's OIDC provider; `None` when the account has none.
    pub provider: Option<ObservedProvider>,
    pub service_account: Option<ObservedServiceAccount>,
    pub foreign_role: Option<ForeignRole>,
    /// An older IamServiceAccount claiming the same ServiceAccount.
    pub older_claim: Option<String>,
    /// The ServiceAccount's running pods.
    pub pods: Vec<ObservedPod>,
}

pub fn plan_irsa(
    desired: &Result<DesiredIrsa, Refusal>,
    observed: &IrsaObserved,
    defaults: &Defaults,
) -> Plan<IamServiceAccountStatus> {
    let sa_name = &observed.service_account_name;
    let mut status = IamServiceAccountStatus {
        service_account: Some(sa_name.clone()),
        ..observed.status.clone()
    };
    if let Some(winner) = &observed.older_claim {
        // The winner's pods must not keep tokens for our role: whatever
        // annotations this object set go back.
        let steps = match &observed.service_account {
            Some(sa) if !sa.owned_keys.is_empty() => vec![Step::ReleaseServiceAccount {
                name: sa_name.clone(),
            }],
            _ => Vec::new(),
        };
        return Plan::lost_claim(status, steps, KIND, sa_name, winner);
    }
    let desired = match desired {
        Ok(desired) => desired,
        Err(refusal) => return Plan::refuse(status, refusal.clone()),
    };
    status.oidc_provider_arn = Some(desired.provider_arn.clone());
    let provider_wanted = ProviderWanted {
        issuer: &desired.issuer,
        provider_arn: &desired.provider_arn,
        audience: &desired.audience,
        cluster: &observed.subject.owner.cluster,
        region: &observed.subject.owner.region,
        manage: defaults.manage_oidc_provider,
        managed_audiences: &defaults.oidc_provider_audiences,
    };
    let provider_step = match plan_provider(observed.provider.as_ref(), &provider_wanted) {
        Ok(change) => change.map(|change| Step::OidcProvider {
            arn: desired.provider_arn.clone(),
            change,
        }),
        Err(refusal) => return Plan::refuse(status, refusal),
    };

    let owner = &observed.subject.owner;
    // `role_name` is set only for a role the operator makes.
    let (role_name, role_arn, role_steps) = match &desired.role {
        WantedRole::Existing(_) => match existing_role_admitting(desired, observed) {
            Ok(arn) => (None, arn, Vec::new()),
            Err(refusal) => return Plan::refuse(status, refusal),
        },
        WantedRole::Created(wanted_role) => {
            let (role, existing) = role_in_use(
                wanted_role,
                desired.regional_role_name.as_deref().unwrap_or_default(),
                &observed.roles,
                owner,
            );
            // Taken over only when asked, and only from no one's operator.
            let adopting = desired.adopt
                && existing.is_some_and(|r| owner.classify(&r.state.tags) == Ownership::Foreign);
            let adopted;
            let seen = match existing {
                Some(found) if adopting => {
                    if let Err(why) = adoptable(desired, observed, found, &role) {
                        return Plan::refuse(
                            status,
                            Refusal::AdoptionRefused {
                                role_name: found.state.name.clone(),
                                why,
                            },
                        );
                    }
                    // Planned as the role it is once tagged ours: the rest
                    // of the plan makes it exactly what the spec asks.
                    let mut tags = found.state.tags.clone();
                    tags.extend(owner.tags());
                    adopted = RoleState {
                        tags,
                        ..found.state.clone()
                    };
                    Some(&adopted)
                }
                other => other.map(|r| &r.state),
            };
            let mut role_actions = match plan_role(&role, seen, owner) {
                Ok(actions) => actions,
                Err(not_owned) => return Plan::refuse(status, not_owned.into()),
            };
            if adopting {
                role_actions.insert(0, RoleAction::TagRole(owner.tags()));
            }
            // IAM keeps the case a role was made with; a spec differing only
            // in case names the same role, which stays.
            let (name, arn) = match existing {
                Some(found) if found.state.path == role.path => {
                    (found.state.name.clone(), found.arn.clone())
                }
                _ => (role.name.clone(), defaults.role_arn(&role.path, &role.name)),
            };
            let steps: Vec<Step> = role_actions
                .into_iter()
                .map(|action| Step::Role {
                    role: name.clone(),
                    action,
                })
                .collect();
            (Some(name), arn, steps)
        }
    };
    let wanted = wanted_annotations(
        &role_arn,
        &desired.audience,
        desired.sts_regional_endpoints,
        desired.token_expiration_seconds,
    );

    let mut annotate = None;
    let adopted_note = match desired.adopt {
        true => {
            " (adoptRole: whoever made it, this role is the operator's now, so its trust, tags \
             and policies are exactly this object's, and deleting the object deletes it unless \
             deletionPolicy is Retain)"
        }
        false => "",
    };
    let mut verdict = Ok(format!(
        "role {role_arn} bound to ServiceAccount {sa_name}{adopted_note}"
    ));
    match &observed.service_account {
        None => match &observed.create_service_account {
            Some(owner_ref) => annotate = Some(Some(owner_ref.clone())),
            None => {
                verdict = Err(Refusal::ServiceAccountNotFound {
                    service_account: sa_name.clone(),
                    role_arn: role_arn.clone(),
                })
            }
        },
        Some(sa) => match plan_annotations(sa, &wanted) {
            AnnotationPlan::InPlace => {}
            AnnotationPlan::Apply => {
                // A ServiceAccount we created keeps its owner reference in
                // every apply: left out, server-side apply would remove it.
                annotate = Some(
                    observed
                        .create_service_account
                        .clone()
                        .filter(|_| sa.created_by_us),
                );
            }
            AnnotationPlan::ForeignRoleArn(found) => {
                return Plan::refuse(
                    status,
                    Refusal::ServiceAccountAnnotationMismatch {
                        service_account: sa_name.clone(),
                        detail: foreign_role_detail(
                            observed.foreign_role.as_ref(),
                            desired,
                            &owner.namespace,
                            sa_name,
                        ),
                        found,
                        expected: role_arn,
                    },
                );
            }
            AnnotationPlan::ForeignAnnotation { key, found } => {
                return Plan::refuse(
                    status,
                    Refusal::ServiceAccountAnnotationTaken {
                        service_account: sa_name.clone(),
                        wanted: wanted.0.get(&key).cloned().unwrap_or_default(),
                        key,
                        found,
                    },
                );
            }
            AnnotationPlan::ForeignAudience(found) => {
                return Plan::refuse(
                    status,
                    Refusal::ServiceAccountAudienceMismatch {
                        service_account: sa_name.clone(),
                        found,
                        expected: desired.audience.clone(),
                    },
                );
            }
        },
    }

    // The provider first: a role trusting it is of no use before it exists.
    let mut steps: Vec<Step> = provider_step.into_iter().chain(role_steps).collect();
    let annotation_in_place = annotate.is_none();
    if let Some(owner_ref) = annotate {
        steps.push(Step::AnnotateServiceAccount {
            name: sa_name.clone(),
            annotations: wanted.0,
            owner: owner_ref,
        });
    }
    // Pods now point at the role in use; only then do other roles of ours
    // (renamed away from, left by a rename whose delete failed, or made
    // before the spec named an existing role) go.
    let in_use: Vec<&str> = role_name.as_deref().into_iter().collect();
    for old in observed.roles.ours_except(owner, &in_use) {
        steps.extend(role_removal_steps(old));
    }
    let (verdict, restarts) = unless_pods_are_stale(
        verdict,
        &observed.pods,
        Binding::Irsa {
            role_arn: &role_arn,
        },
        RestartWish {
            asked: desired.restart_stale_pods,
            allowed: defaults.restart_stale_pods,
            binding_in_place: annotation_in_place,
        },
        sa_name,
        &role_arn,
    );
    steps.extend(restart_steps(restarts, &role_arn));
    let made = Recorded {
        roles: role_name.iter().cloned().collect(),
        ..Default::default()
    };
    status.role_name = role_name;
    status.role_arn = Some(role_arn);
    Plan {
        steps: with_record(&observed.subject.recorded, made, steps),
        status,
        verdict,
    }
}

/// Whether a role someone else made may be taken over for this object: at
/// the path the spec asks for (IAM cannot move a role, and replacing it
/// would not be taking it over), and trusting exactly this ServiceAccount,
/// so that taking it over takes nothing from anyone else.
fn adoptable(
    desired: &DesiredIrsa,
    observed: &IrsaObserved,
    found: &ObservedRole,
    wanted: &RoleState,
) -> Result<(), String> {
    if found.state.path != wanted.path {
        return Err(format!(
            "it is at path {} and the spec asks for {}: set spec.role.path to {}",
            found.state.path, wanted.path, found.state.path
        ));
    }
    irsa_trust_is_exactly(
        &found.state.trust_policy,
        &desired.provider_arn,
        &desired.issuer,
        &observed.subject.owner.namespace,
        &observed.service_account_name,
        &desired.audience,
    )
}

/// The ARN of the existing role `spec.roleArn` names, when it exists, is
/// not another object's, and its trust admits this ServiceAccount's tokens;
/// else the refusal, with the statement to add for a trust that does not.
fn existing_role_admitting(
    desired: &DesiredIrsa,
    observed: &IrsaObserved,
) -> Result<String, Refusal> {
    let owner = &observed.subject.owner;
    let summary = existing_role(
        "spec.roleArn",
        &desired.role_arn,
        observed.existing_role.as_ref(),
        owner,
    )?;
    let (namespace, sa) = (&owner.namespace, &observed.service_account_name);
    let verdict = match &summary.trust_policy {
        Some(trust) => desired.admitted_by(trust, namespace, sa),
        None => TrustVerdict::NoWebIdentityStatement,
    };
    if verdict.is_admitted() {
        return Ok(summary.arn.clone());
    }
    Err(Refusal::RoleDoesNotTrustServiceAccount {
        role_arn: summary.arn.clone(),
        subject: service_account_subject(namespace, sa),
        audience: desired.audience.clone(),
        why: verdict.explain(),
        statement: irsa_trust_statement(
            &desired.provider_arn,
            &desired.issuer,
            namespace,
            sa,
            &desired.audience,
        ),
    })
}

/// Why a role someone else put on the ServiceAccount will not work for it.
fn foreign_role_detail(
    foreign: Option<&ForeignRole>,
    desired: &DesiredIrsa,
    namespace: &str,
    sa: &str,
) -> String {
    match foreign {
        Some(ForeignRole::NotAnArn) => "(that is not a valid role ARN)".into(),
        Some(ForeignRole::OtherAccount(account)) => {
            format!("(that role is in account {account}, not this cluster's account)")
        }
        Some(ForeignRole::Missing) => "(that role does not exist)".into(),
        Some(ForeignRole::Found(RoleSummary {
            trust_policy: Some(trust),
            ..
        })) => {
            let verdict = desired.admitted_by(trust, namespace, sa);
            if verdict.is_admitted() {
                "(that role does trust this ServiceAccount, but it is not the role this object manages)".into()
            } else {
                format!(
                    "(its trust policy does not admit {}: {})",
                    service_account_subject(namespace, sa),
                    verdict.explain()
                )
            }
        }
        Some(ForeignRole::Found(_)) | Some(ForeignRole::Unreadable) | None => String::new(),
    }
}

/// Deletion: every role of ours by every name it may have (`Retain` keeps
/// the one pods were given, and removes only the half of an unfinished
/// rename not in use), then the ServiceAccount given back, or deleted if
/// this object made it.
pub fn plan_irsa_cleanup(observed: &IrsaObserved) -> Plan<IamServiceAccountStatus> {
    let mut steps = Vec::new();
    let owner = &observed.subject.owner;
    // Under Retain, the role pods were given: the object's own annotation
    // on the ServiceAccount (set only once the role is complete), else the
    // one the last finished sync reported, else the spec's.
    let annotated = observed
        .service_account
        .as_ref()
        .filter(|sa| sa.owned_keys.contains(ROLE_ARN))
        .and_then(|sa| sa.annotations.get(ROLE_ARN))
        .map(|arn| role_name_in_arn(arn));
    let kept: Vec<&str> = annotated
        .or(observed.status.role_name.as_deref())
        .or(observed.retained_role.as_deref())
        .into_iter()
        .collect();
    let leftovers = match observed.retain {
        true => observed.roles.rename_leftovers(owner, &kept),
        false => observed.roles.ours_except(owner, &[]).collect(),
    };
    for role in leftovers {
        steps.extend(role_removal_steps(role));
    }
    let name = observed.service_account_name.clone();
    match &observed.service_account {
        Some(sa) if sa.created_by_us => steps.push(Step::DeleteServiceAccount { name }),
        Some(sa) if !sa.owned_keys.is_empty() => steps.push(Step::ReleaseServiceAccount { name }),
        _ => {}
    }
    Plan {
        steps,
        status: observed.status.clone(),
        verdict: Ok("deleted".into()),
    }
}

#[cfg(test)]
mod tests;
