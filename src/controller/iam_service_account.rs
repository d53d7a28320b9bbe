//! IamServiceAccount: its reads (roles by every name that may be ours, the
//! OIDC provider, the ServiceAccount and a role someone else put on it,
//! rival claims); desire and plan are `crate::policy::irsa_plan`'s.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::sync::OnceLock;

use kube::Resource;
use kube::runtime::reflector::Store;

use super::claim_index::ClaimIndex;
use super::kind::ManagedKind;
use super::observe::{
    as_observed, get_service_account, observe_roles_of, older_claim, pods_bound_to, retained_role,
};
use super::{Context, Error};
use crate::api::{IamServiceAccount, IamServiceAccountStatus};
use crate::policy::desire::{Defaults, WantedRole};
use crate::policy::irsa_plan::{
    DesiredIrsa, ForeignRole, IrsaObserved, desired_irsa, plan_irsa, plan_irsa_cleanup,
    record_before_create,
};
use crate::policy::issuer::IssuerSource;
use crate::policy::plan::{Plan, Recorded, Subject};
use crate::policy::refusal::Refusal;
use crate::policy::service_account_plan::ROLE_ARN;
use crate::policy::stale_pods::Binding;
use crate::policy::validate::parse_role_arn;

use super::kind::{ReadyStatus, ready_at_its_generation, ready_status_fields};

impl ManagedKind for IamServiceAccount {
    const KIND: &'static str = crate::policy::irsa_plan::KIND;
    type Desired = DesiredIrsa;
    type Observed = IrsaObserved;
    type Status = IamServiceAccountStatus;

    fn service_account_name(&self) -> String {
        IamServiceAccount::service_account_name(self)
    }

    fn store(ctx: &Context) -> &OnceLock<Store<Self>> {
        &ctx.iam_service_accounts
    }

    fn claim_index(ctx: &Context) -> &ClaimIndex {
        &ctx.iam_service_account_claims
    }

    fn current_status(&self) -> IamServiceAccountStatus {
        self.status.clone().unwrap_or_default()
    }

    fn service_account_agrees(&self, service_account: &ObjectMeta) -> bool {
        let annotated = service_account
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::policy::service_account_plan::ROLE_ARN));
        annotated.is_some() && annotated == self.current_status().role_arn.as_ref()
    }

    /// The issuer roles trust, when EKS is where it comes from.
    async fn refresh_shared_facts(ctx: &Context) {
        if ctx.settings.issuer_source == IssuerSource::Eks {
            ctx.shared
                .refresh_issuer(
                    &ctx.eks,
                    &ctx.settings.cluster_name,
                    ctx.settings.api_server_issuer.as_deref(),
                )
                .await;
        }
    }

    fn desire(&self, subject: &Subject, defaults: &Defaults) -> Result<DesiredIrsa, Refusal> {
        desired_irsa(self, subject, defaults)
    }

    fn record_before_create(&self, desired: &DesiredIrsa) -> Recorded {
        record_before_create(desired)
    }

    async fn observe(
        &self,
        ctx: &Context,
        defaults: &Defaults,
        subject: Subject,
        desired: Option<&DesiredIrsa>,
        deleting: bool,
    ) -> Result<IrsaObserved, Error> {
        let status = self.current_status();
        let sa_name = self.service_account_name();
        // With roleArn there is no role to make, so none to look for by
        // the name one would be given.
        let role_spec = self.spec.role_arn.is_none().then_some(&self.spec.role);
        let sa = get_service_account(ctx, &subject.owner.namespace, &sa_name)
            .await?
            .map(|sa| as_observed(&sa, &subject.uid));
        let mut observed = IrsaObserved {
            service_account_name: sa_name,
            create_service_account: self
                .spec
                .service_account
                .create
                .then(|| self.controller_owner_ref(&()))
                .flatten(),
            retain: self.spec.deletion_policy.retains(),
            retained_role: None,
            status,
            roles: Default::default(),
            provider: None,
            existing_role: None,
            service_account: sa,
            foreign_role: None,
            older_claim: None,
            pods: Vec::new(),
            subject,
        };
        if !deleting {
            observed.older_claim = older_claim(self, ctx).await?;
            // A loser, or a spec refused, needs nothing from AWS.
            let Some(desired) = desired.filter(|_| observed.older_claim.is_none()) else {
                return Ok(observed);
            };
            observed.provider = ctx
                .shared
                .provider(&ctx.iam, &desired.provider_arn, &desired.audience)
                .await?;
            observed.foreign_role = foreign_role(ctx, &observed, desired).await?;
            if let WantedRole::Existing(arn) = &desired.role {
                observed.existing_role = ctx.iam.role_summary(&arn.name).await?;
            }
            // Pods made after the binding carry it: once Ready for this
            // role, none can be stale until the role changes.
            let bound_already = ready_at_its_generation(self)
                && observed.status.role_arn.as_ref() == Some(&desired.role_arn);
            if !bound_already {
                observed.pods = pods_bound_to(
                    ctx,
                    &observed.subject.owner.namespace,
                    &observed.service_account_name,
                    Binding::Irsa {
                        role_arn: &desired.role_arn,
                    },
                    desired.restart_stale_pods,
                )
                .await?;
            }
        } else if observed.retain {
            let (kept, others) = retained_role(defaults, &observed.subject, role_spec);
            observed.retained_role = kept;
            // Kept roles need no reading: deletion then works without IAM.
            if !others {
                return Ok(observed);
            }
        }
        observed.roles = observe_roles_of(&ctx.iam, defaults, &observed.subject, role_spec).await?;
        Ok(observed)
    }

    fn plan(
        desired: &Result<DesiredIrsa, Refusal>,
        observed: &IrsaObserved,
        defaults: &Defaults,
    ) -> Plan<IamServiceAccountStatus> {
        plan_irsa(desired, observed, defaults)
    }

    fn plan_cleanup(observed: &IrsaObserved) -> Plan<IamServiceAccountStatus> {
        plan_irsa_cleanup(observed)
    }
}

impl ReadyStatus for IamServiceAccountStatus {
    ready_status_fields!();
}

/// The role someone else annotated the ServiceAccount with, read so that
/// the refusal can say whether it would work; `None` when there is none.
async fn foreign_role(
    ctx: &Context,
    observed: &IrsaObserved,
    desired: &DesiredIrsa,
) -> Result<Option<ForeignRole>, Error> {
    let Some(sa) = &observed.service_account else {
        return Ok(None);
    };
    let Some(found) = sa
        .annotations
        .get(ROLE_ARN)
        .filter(|found| !sa.owned_keys.contains(ROLE_ARN) && **found != desired.role_arn)
    else {
        return Ok(None);
    };
    let Ok(arn) = parse_role_arn("", found) else {
        return Ok(Some(ForeignRole::NotAnArn));
    };
    if arn.account != ctx.settings.account_id {
        return Ok(Some(ForeignRole::OtherAccount(arn.account)));
    }
    Ok(Some(match ctx.iam.role_summary(&arn.name).await {
        Ok(Some(summary)) => ForeignRole::Found(summary),
        Ok(None) => ForeignRole::Missing,
        Err(_) => ForeignRole::Unreadable,
    }))
}
