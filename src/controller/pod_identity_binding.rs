//! PodIdentityBinding: its reads (the cluster, the created role by every name
//! that may be ours or the existing one, the target role, the associations
//! of every ServiceAccount it may have used, the IRSA annotation, rival
//! claims); desire and plan are `crate::policy::binding_plan`'s.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::sync::OnceLock;

use kube::runtime::reflector::Store;

use super::claim_index::ClaimIndex;
use super::kind::Executed;
use super::kind::ManagedKind;
use super::kind::{ReadyStatus, ready_at_its_generation, ready_status_fields};
use super::observe::{
    get_service_account, observe_roles_of, older_claim, pods_bound_to, retained_role,
};
use super::{Context, Error};
use crate::api::{PodIdentityBinding, PodIdentityBindingStatus};
use crate::aws::AwsError;
use crate::policy::association_plan::ObservedAssociation;
use crate::policy::binding_plan::{
    BindingObserved, desire_binding, plan_binding, plan_binding_cleanup, record_before_create,
};
use crate::policy::desire::{Defaults, DesiredBinding, WantedRole};
use crate::policy::plan::{Plan, Recorded, Subject};
use crate::policy::pod_identity_agent::AgentState;
use crate::policy::refusal::Refusal;
use crate::policy::service_account_plan::ROLE_ARN;
use crate::policy::stale_pods::Binding;

impl ManagedKind for PodIdentityBinding {
    const KIND: &'static str = crate::api::pod_identity_binding::KIND;
    type Desired = DesiredBinding;
    type Observed = BindingObserved;
    type Status = PodIdentityBindingStatus;

    fn service_account_name(&self) -> String {
        self.spec.service_account_name.clone()
    }

    fn store(ctx: &Context) -> &OnceLock<Store<Self>> {
        &ctx.pod_identity_bindings
    }

    fn claim_index(ctx: &Context) -> &ClaimIndex {
        &ctx.pod_identity_binding_claims
    }

    fn current_status(&self) -> PodIdentityBindingStatus {
        self.status.clone().unwrap_or_default()
    }

    /// EKS, not the ServiceAccount, carries the binding; the ServiceAccount
    /// only has to exist without an IRSA role, which would take precedence.
    fn service_account_agrees(&self, service_account: &ObjectMeta) -> bool {
        service_account
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key(ROLE_ARN))
    }

    fn desire(&self, subject: &Subject, defaults: &Defaults) -> Result<DesiredBinding, Refusal> {
        desire_binding(&self.spec, subject, defaults)
    }

    fn record_before_create(&self, desired: &DesiredBinding) -> Recorded {
        record_before_create(desired, &self.spec.service_account_name)
    }

    async fn observe(
        &self,
        ctx: &Context,
        defaults: &Defaults,
        subject: Subject,
        desired: Option<&DesiredBinding>,
        deleting: bool,
    ) -> Result<BindingObserved, Error> {
        let mut observed = BindingObserved {
            service_account_name: self.spec.service_account_name.clone(),
            retain: self.spec.deletion_policy.retains(),
            retained_role: None,
            status: self.current_status(),
            cluster_found: true,
            roles: Default::default(),
            existing_role: None,
            target_role: None,
            associations: Vec::new(),
            irsa_role: None,
            agent: AgentState::Running,
            older_claim: None,
            pods: Vec::new(),
            subject,
        };
        if deleting {
            if observed.retain {
                let (kept, other_roles) =
                    retained_role(defaults, &observed.subject, self.spec.role.as_ref());
                observed.retained_role = kept;
                // Another ServiceAccount on record: a move whose old
                // association may still be there.
                let other_service_accounts = observed
                    .subject
                    .recorded
                    .service_accounts
                    .iter()
                    .any(|sa| *sa != observed.service_account_name);
                if !other_roles && !other_service_accounts {
                    return Ok(observed);
                }
            }
        } else {
            observed.older_claim = older_claim(self, ctx).await?;
            if observed.older_claim.is_none() {
                // A spec refused needs nothing from AWS.
                let Some(desired) = desired else {
                    return Ok(observed);
                };
                observed.cluster_found = ctx
                    .shared
                    .cluster_exists(&ctx.eks, &ctx.settings.cluster_name)
                    .await?;
                if !observed.cluster_found {
                    return Ok(observed);
                }
                observed.agent = ctx
                    .shared
                    .pod_identity_agent(
                        &ctx.eks,
                        &ctx.settings.cluster_name,
                        ctx.settings.pod_identity_agent,
                    )
                    .await?;
                if let WantedRole::Existing(arn) = &desired.role {
                    observed.existing_role = ctx.iam.role_summary(&arn.name).await?;
                }
                if let Some(target) = &desired.target_role
                    && target.account == ctx.settings.account_id
                {
                    observed.target_role = ctx.iam.role_summary(&target.name).await?;
                }
                observed.irsa_role = get_service_account(
                    ctx,
                    &observed.subject.owner.namespace,
                    &observed.service_account_name,
                )
                .await?
                .and_then(|sa| sa.metadata.annotations?.get(ROLE_ARN).cloned())
                .filter(|arn| !arn.is_empty());
                // Pods made after the association carry it: once Ready for
                // this role, none can be stale until the role changes.
                let role_arn = match &desired.role {
                    WantedRole::Existing(arn) => arn.to_string(),
                    WantedRole::Created(role) => defaults.role_arn(&role.path, &role.name),
                };
                let bound_already = ready_at_its_generation(self)
                    && observed.status.role_arn.as_ref() == Some(&role_arn);
                if !bound_already {
                    observed.pods = pods_bound_to(
                        ctx,
                        &observed.subject.owner.namespace,
                        &observed.service_account_name,
                        Binding::PodIdentity,
                        desired.restart_stale_pods,
                    )
                    .await?;
                }
            }
        }
        observed.associations = match associations(ctx, &observed).await {
            Ok(found) => found,
            // No cluster, no associations.
            Err(e) if e.is_not_found() => {
                observed.cluster_found = false;
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        if observed.older_claim.is_some() {
            return Ok(observed);
        }
        observed.roles = observe_roles_of(
            &ctx.iam,
            defaults,
            &observed.subject,
            self.spec.role.as_ref(),
        )
        .await?;
        Ok(observed)
    }

    fn plan(
        desired: &Result<DesiredBinding, Refusal>,
        observed: &BindingObserved,
        defaults: &Defaults,
    ) -> Plan<PodIdentityBindingStatus> {
        plan_binding(desired, observed, defaults)
    }

    fn plan_cleanup(observed: &BindingObserved) -> Plan<PodIdentityBindingStatus> {
        plan_binding_cleanup(observed)
    }
}

impl ReadyStatus for PodIdentityBindingStatus {
    ready_status_fields!();

    fn learn(&mut self, executed: &Executed) {
        if let Some(association) = &executed.association {
            self.association_id = Some(association.association_id.clone());
            self.association_arn = Some(association.association_arn.clone());
        }
    }
}

/// The associations of the current ServiceAccount and of every one recorded
/// (the ServiceAccount may have been renamed), and the one status names.
async fn associations(
    ctx: &Context,
    observed: &BindingObserved,
) -> Result<Vec<ObservedAssociation>, AwsError> {
    let cluster = &ctx.settings.cluster_name;
    let namespace = &observed.subject.owner.namespace;
    let mut service_accounts = vec![observed.service_account_name.clone()];
    service_accounts.extend(
        observed
            .subject
            .recorded
            .service_accounts
            .iter()
            .filter(|sa| **sa != observed.service_account_name)
            .cloned(),
    );
    let mut found = Vec::new();
    for sa in service_accounts {
        found.extend(ctx.eks.find_associations(cluster, namespace, &sa).await?);
    }
    if let Some(id) = &observed.status.association_id
        && !found.iter().any(|a| a.association_id == *id)
    {
        match ctx.eks.association(cluster, id).await {
            Ok(old) => found.extend(old),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}
