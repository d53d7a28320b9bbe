//! The IamServiceAccount reconciler: IRSA role, ServiceAccount annotations,
//! status and cleanup.

use std::sync::OnceLock;

use k8s_openapi::api::core::v1::{ObjectReference, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};

use super::lifecycle::{ManagedKind, claim_conflict, owner_of};
use super::role::{remove_role, sync_role};
use super::service_account::{Annotated, ensure_annotated, release, wanted_annotations};
use super::status::{self, Outcome, ReadyStatus};
use super::{Context, Error, FIELD_MANAGER, events};
use crate::api::conditions::reason;
use crate::api::{IamServiceAccount, IamServiceAccountStatus};
use crate::policy::desire::{InvalidSpec, desired_role, desired_role_name};
use crate::policy::trust::{irsa_trust_policy, oidc_provider_arn};
use crate::policy::validate::validate_audience;

impl ManagedKind for IamServiceAccount {
    const KIND: &'static str = "IamServiceAccount";

    fn service_account_name(&self) -> String {
        IamServiceAccount::service_account_name(self)
    }

    fn store(ctx: &Context) -> &OnceLock<Store<Self>> {
        &ctx.iam_service_accounts
    }

    async fn apply(&self, ctx: &Context) -> Result<Action, Error> {
        apply(self, ctx).await
    }

    async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        cleanup(self, ctx).await
    }
}

impl ReadyStatus for IamServiceAccountStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    fn set_ready(&mut self, observed_generation: Option<i64>, ready: Condition) {
        self.observed_generation = observed_generation;
        self.conditions = vec![ready];
    }
}

/// Status fields the reconcile learned, written with the outcome.
#[derive(Default)]
struct Learned {
    role_arn: Option<String>,
    role_name: Option<String>,
    oidc_provider_arn: Option<String>,
    service_account: Option<String>,
}

async fn apply(isa: &IamServiceAccount, ctx: &Context) -> Result<Action, Error> {
    let mut learned = Learned::default();
    let result = sync(isa, ctx, &mut learned).await;
    report(isa, ctx, learned, Outcome::of(&result, reason::SYNCED)).await?;
    result.map(|_| Action::requeue(ctx.settings.resync))
}

async fn sync(
    isa: &IamServiceAccount,
    ctx: &Context,
    learned: &mut Learned,
) -> Result<String, Error> {
    let settings = &ctx.settings;
    let owner = owner_of(isa, ctx);
    let object = isa.object_ref(&());
    let namespace = owner.namespace.clone();
    let sa_name = isa.service_account_name();
    let audience = isa.audience().to_string();
    learned.service_account = Some(sa_name.clone());

    // Desire: everything from the spec is checked before any AWS call.
    if let Err(e) = validate_audience("spec.audience", &audience) {
        return Err(InvalidSpec(vec![e.to_string()]).into());
    }
    let Some(issuer) = settings.issuer.clone() else {
        return Err(Error::ClusterNotFound {
            cluster: settings.cluster_name.clone(),
            region: settings.region.clone(),
            detail: "its OIDC issuer could not be read at start; restart the operator once fixed"
                .into(),
        });
    };
    let provider_arn = oidc_provider_arn(&settings.partition, &settings.account_id, &issuer);
    learned.oidc_provider_arn = Some(provider_arn.clone());
    let trust = irsa_trust_policy(&provider_arn, &issuer, &namespace, &sa_name, &audience);
    let desired = desired_role(&isa.spec.role, &isa.spec.policies, trust, &owner, settings)?;

    if let Some(conflict) = claim_conflict(isa, ctx) {
        return Err(conflict);
    }

    // The classic IRSA failures, caught before anything is written.
    match ctx.iam.oidc_provider_audiences(&provider_arn).await? {
        None => {
            return Err(Error::OidcProviderNotFound {
                issuer,
                provider_arn,
                audience,
                cluster: settings.cluster_name.clone(),
            });
        }
        Some(allowed) if !allowed.contains(&audience) => {
            return Err(Error::AudienceNotAllowed {
                provider_arn,
                audience,
                allowed,
            });
        }
        Some(_) => {}
    }

    let role = sync_role(ctx, &object, &desired, &owner).await?;
    // A rename: status keeps naming the old role until it is gone, so that
    // neither a failure half-way nor a deletion can leak it.
    let renamed_from = isa
        .status
        .as_ref()
        .and_then(|s| s.role_name.clone())
        .filter(|previous| *previous != desired.name);
    if renamed_from.is_none() {
        learned.role_name = Some(desired.name.clone());
        learned.role_arn = Some(role.arn.clone());
    }

    let sa_api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
    let wanted = wanted_annotations(
        &role.arn,
        &audience,
        isa.spec.sts_regional_endpoints,
        isa.spec.token_expiration_seconds,
    );
    let create = isa
        .spec
        .service_account
        .create
        .then(|| isa.controller_owner_ref(&()))
        .flatten();
    match ensure_annotated(&sa_api, &sa_name, &wanted, &annotation_manager(isa), create).await {
        Ok(Annotated::Done { wrote }) => {
            if wrote {
                events::changed(
                    ctx,
                    &object,
                    "AnnotatedServiceAccount",
                    format!("ServiceAccount {sa_name} annotated with {}", role.arn),
                )
                .await;
            }
        }
        Ok(Annotated::Missing) => {
            return Err(Error::ServiceAccountNotFound {
                service_account: sa_name,
                role_arn: role.arn,
            });
        }
        Err(Error::ServiceAccountAnnotationMismatch {
            service_account,
            found,
            expected,
            detail,
        }) => {
            let detail = if detail.is_empty() {
                foreign_role_detail(
                    ctx,
                    &issuer,
                    &found,
                    &namespace,
                    &service_account,
                    &audience,
                )
                .await
            } else {
                detail
            };
            return Err(Error::ServiceAccountAnnotationMismatch {
                service_account,
                found,
                expected,
                detail,
            });
        }
        Err(e) => return Err(e),
    }
    // Pods now point at the new role; only then does the old one go.
    if let Some(previous) = renamed_from {
        remove_role(ctx, &object, &previous, &owner).await?;
        learned.role_name = Some(desired.name.clone());
        learned.role_arn = Some(role.arn.clone());
    }
    Ok(format!(
        "role {} bound to ServiceAccount {sa_name}",
        role.arn
    ))
}

/// The field manager of one object's ServiceAccount annotations: per object,
/// so that releasing one claim never takes away another's fields.
fn annotation_manager(isa: &IamServiceAccount) -> String {
    format!("{FIELD_MANAGER}/{}", isa.uid().unwrap_or_default())
}

/// Why a role someone else put on the ServiceAccount will not work for it,
/// read from that role's trust policy; empty when it cannot be read.
async fn foreign_role_detail(
    ctx: &Context,
    issuer: &str,
    role_arn: &str,
    namespace: &str,
    sa: &str,
    audience: &str,
) -> String {
    let Ok(arn) = crate::policy::validate::parse_role_arn("", role_arn) else {
        return "(that is not a valid role ARN)".into();
    };
    if arn.account != ctx.settings.account_id {
        return format!(
            "(that role is in account {}, not this cluster's account)",
            arn.account
        );
    }
    let role_name = arn.name.as_str();
    let provider = oidc_provider_arn(&ctx.settings.partition, &ctx.settings.account_id, issuer);
    match ctx.iam.role_summary(role_name).await {
        Ok(Some(crate::aws::iam::RoleSummary {
            trust_policy: Some(trust),
            ..
        })) => {
            let verdict = crate::policy::trust::irsa_trust_admits(
                &trust, &provider, issuer, namespace, sa, audience,
            );
            if verdict.is_admitted() {
                "(that role does trust this ServiceAccount, but it is not the role this object manages)".into()
            } else {
                format!(
                    "(its trust policy does not admit system:serviceaccount:{namespace}:{sa}: {verdict:?})"
                )
            }
        }
        Ok(None) => "(that role does not exist)".into(),
        Ok(Some(_)) | Err(_) => String::new(),
    }
}

async fn report(
    isa: &IamServiceAccount,
    ctx: &Context,
    learned: Learned,
    outcome: Outcome,
) -> Result<(), Error> {
    let current = isa.status.clone().unwrap_or_default();
    let next = IamServiceAccountStatus {
        role_arn: learned.role_arn.or(current.role_arn.clone()),
        role_name: learned.role_name.or(current.role_name.clone()),
        oidc_provider_arn: learned
            .oidc_provider_arn
            .or(current.oidc_provider_arn.clone()),
        service_account: learned.service_account.or(current.service_account.clone()),
        ..current.clone()
    };
    status::report(isa, ctx, &current, next, outcome).await
}

async fn cleanup(isa: &IamServiceAccount, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(isa, ctx);
    let object: ObjectReference = isa.object_ref(&());
    if isa.spec.deletion_policy.retains() {
        tracing::info!("deletionPolicy Retain: keeping the role");
    } else {
        // The name the role was created under wins: the spec may have been
        // edited (or made invalid) since.
        let role_name = isa
            .status
            .as_ref()
            .and_then(|s| s.role_name.clone())
            .unwrap_or_else(|| desired_role_name(&isa.spec.role, &owner, &ctx.settings));
        if let Err(e) = remove_role(ctx, &object, &role_name, &owner).await {
            let outcome = Outcome::failed(&e, format!("deleting: {e}"));
            let _ = report(isa, ctx, Learned::default(), outcome).await;
            return Err(e);
        }
    }
    let sa_api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    release(
        &sa_api,
        &isa.service_account_name(),
        &annotation_manager(isa),
        isa.uid().as_deref(),
    )
    .await?;
    Ok(Action::await_change())
}
