//! The IamServiceAccount reconciler: IRSA role, ServiceAccount annotations,
//! status and cleanup.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, ServiceAccount};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use tracing::Instrument;

use super::role::{remove_role, sync_role};
use super::service_account::{Annotated, ensure_annotated, release, wanted_annotations};
use super::status::{apply_status, ready_changed};
use super::{Context, Error, FIELD_MANAGER, FINALIZER, events};
use crate::api::conditions::{READY, find, ready_condition, reason};
use crate::api::{IamServiceAccount, IamServiceAccountStatus};
use crate::policy::desire::{InvalidSpec, desired_role, desired_role_name};
use crate::policy::ownership::Owner;
use crate::policy::trust::{irsa_trust_policy, oidc_provider_arn};
use crate::policy::validate::validate_audience;

pub const KIND: &str = "IamServiceAccount";

/// Runs the controller until shutdown.
pub async fn run(
    ctx: Arc<Context>,
    api: Api<IamServiceAccount>,
    service_accounts: Api<ServiceAccount>,
) {
    let controller = Controller::new(api, watcher::Config::default());
    let store = controller.store();
    let _ = ctx.iam_service_accounts.set(store.clone());
    controller
        .watches(service_accounts, watcher::Config::default(), move |sa| {
            claims_of(&store, &sa)
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile stream");
            }
        })
        .await;
}

/// The IamServiceAccounts that name this ServiceAccount, so that a deleted,
/// recreated or edited ServiceAccount is repaired at once.
fn claims_of(
    store: &Store<IamServiceAccount>,
    sa: &ServiceAccount,
) -> Vec<ObjectRef<IamServiceAccount>> {
    let (namespace, name) = (sa.namespace(), sa.name_any());
    store
        .state()
        .iter()
        .filter(|isa| isa.namespace() == namespace && isa.service_account_name() == name)
        .map(|isa| ObjectRef::from_obj(isa.as_ref()))
        .collect()
}

fn owner_of(isa: &IamServiceAccount, ctx: &Context) -> Owner {
    Owner {
        cluster: ctx.settings.cluster_name.clone(),
        kind: KIND.into(),
        namespace: isa.namespace().unwrap_or_default(),
        name: isa.name_any(),
    }
}

fn backoff_key(isa: &IamServiceAccount) -> String {
    format!(
        "{KIND}/{}/{}",
        isa.namespace().unwrap_or_default(),
        isa.name_any()
    )
}

async fn reconcile(isa: Arc<IamServiceAccount>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = isa.namespace().unwrap_or_default();
    // Several watched namespaces are served by one cluster-wide watch.
    if !ctx.settings.watches(&namespace) && isa.meta().deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let api: Api<IamServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
    let span = tracing::info_span!("reconcile", kind = KIND, namespace = %namespace, name = %isa.name_any());
    let result = finalizer(&api, FINALIZER, isa.clone(), |event| async {
        match event {
            Finalizer::Apply(isa) => apply(&isa, &ctx).await,
            Finalizer::Cleanup(isa) => cleanup(&isa, &ctx).await,
        }
    })
    .instrument(span)
    .await;
    let outcome = result.map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        kube::runtime::finalizer::Error::AddFinalizer(e)
        | kube::runtime::finalizer::Error::RemoveFinalizer(e) => Error::Kube(e),
        other => Error::Finalizer(other.to_string()),
    });
    match outcome {
        Ok(action) => {
            ctx.backoff.reset(&backoff_key(&isa));
            Ok(action)
        }
        Err(e) if !e.is_transient() => Ok(Action::requeue(e.requeue_after())),
        Err(e) => Err(e),
    }
}

fn error_policy(isa: Arc<IamServiceAccount>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.next_delay(&backoff_key(&isa));
    tracing::warn!(error = %error, label = error.metric_label(), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
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
    let (ready, reason, message) = match &result {
        Ok(message) => (true, reason::SYNCED, message.clone()),
        Err(e) => (false, e.reason(), e.to_string()),
    };
    report(isa, ctx, learned, ready, reason, message).await?;
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
    let provider_arn =
        oidc_provider_arn(&settings.partition, &settings.account_id, &settings.issuer);
    learned.oidc_provider_arn = Some(provider_arn.clone());
    let trust = irsa_trust_policy(
        &provider_arn,
        &settings.issuer,
        &namespace,
        &sa_name,
        &audience,
    );
    let desired = desired_role(&isa.spec.role, &isa.spec.policies, trust, &owner, settings)?;

    if let Some(winner) = older_claim(isa, ctx) {
        return Err(Error::ServiceAccountConflict {
            service_account: sa_name,
            winner,
        });
    }

    // The classic IRSA failures, caught before anything is written.
    match ctx.iam.oidc_provider_audiences(&provider_arn).await? {
        None => {
            return Err(Error::OidcProviderNotFound {
                issuer: settings.issuer.clone(),
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
                foreign_role_detail(ctx, &found, &namespace, &service_account, &audience).await
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
    let provider = oidc_provider_arn(
        &ctx.settings.partition,
        &ctx.settings.account_id,
        &ctx.settings.issuer,
    );
    match ctx.iam.trust_policy(role_name).await {
        Ok(Some(trust)) => {
            let verdict = crate::policy::trust::irsa_trust_admits(
                &trust,
                &provider,
                &ctx.settings.issuer,
                namespace,
                sa,
                audience,
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
        Err(_) => String::new(),
    }
}

/// The name of an older IamServiceAccount claiming the same ServiceAccount.
fn older_claim(isa: &IamServiceAccount, ctx: &Context) -> Option<String> {
    let store = ctx.iam_service_accounts.get()?;
    let me = (isa.creation_timestamp(), isa.name_any());
    store
        .state()
        .iter()
        .filter(|other| {
            other.namespace() == isa.namespace()
                && other.name_any() != isa.name_any()
                && other.service_account_name() == isa.service_account_name()
                && other.meta().deletion_timestamp.is_none()
        })
        .filter(|other| (other.creation_timestamp(), other.name_any()) < me)
        .map(|other| other.name_any())
        .min()
}

async fn report(
    isa: &IamServiceAccount,
    ctx: &Context,
    learned: Learned,
    ready: bool,
    reason: &str,
    message: String,
) -> Result<(), Error> {
    let current = isa.status.clone().unwrap_or_default();
    let generation = isa.metadata.generation;
    let condition = ready_condition(
        ready,
        reason,
        message.clone(),
        generation,
        find(&current.conditions, READY),
    );
    let status = IamServiceAccountStatus {
        role_arn: learned.role_arn.or(current.role_arn.clone()),
        role_name: learned.role_name.or(current.role_name.clone()),
        oidc_provider_arn: learned
            .oidc_provider_arn
            .or(current.oidc_provider_arn.clone()),
        service_account: learned.service_account.or(current.service_account.clone()),
        observed_generation: generation,
        conditions: vec![condition.clone()],
    };
    let fields_changed = status.role_arn != current.role_arn
        || status.role_name != current.role_name
        || status.oidc_provider_arn != current.oidc_provider_arn
        || status.service_account != current.service_account
        || status.observed_generation != current.observed_generation;
    if !fields_changed && !ready_changed(&current.conditions, &condition) {
        return Ok(());
    }
    let previous_reason = find(&current.conditions, READY).map(|c| c.reason.as_str());
    if !ready && previous_reason != Some(reason) {
        events::failed(ctx, &isa.object_ref(&()), reason, message).await;
    }
    let api: Api<IamServiceAccount> =
        Api::namespaced(ctx.client.clone(), &isa.namespace().unwrap_or_default());
    apply_status(&api, &isa.name_any(), &status).await?;
    Ok(())
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
            let _ = report(
                isa,
                ctx,
                Learned::default(),
                false,
                e.reason(),
                format!("deleting: {e}"),
            )
            .await;
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
