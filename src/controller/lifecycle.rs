//! The one reconcile of every kind: the watches, namespaces outside the watch
//! list, the finalizer (added by `taking_charge`), the four steps (observe,
//! plan, execute, report) for apply and cleanup alike, sorting errors into
//! terminal and transient, and backoff.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector;
use kube::runtime::{Predicate, PredicateConfig, WatchStreamExt, predicates, watcher};
use kube::{Api, ResourceExt};
use tracing::Instrument;

use super::backoff::{Schedule, TRANSIENT};
use super::execute::execute;
use super::first_check::{Decision, fingerprint};
use super::guardrails_file;
use super::kind::{ManagedKind, ReadyStatus, object_key, ready_at_its_generation};
use super::observe::{namespace_labels, subject_of};
use super::status::{self, Outcome, last_verdict_misreadable};
use super::taking_charge::{needs_taking_charge, take_charge};
use super::triggers::{
    annotations_but_records, claims_touched, deletion_requested, rivals_touched_by,
};
use super::{Context, Error, FINALIZER};
use crate::api::conditions::reason;
use crate::health::Readiness;
use crate::policy::desire::Defaults;
use crate::policy::plan::Subject;
use crate::policy::refusal::Refusal;

/// kubectl's (and client-side applying tools') copy of the applied object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Runs the controller of `K` until shutdown.
pub async fn run<K: ManagedKind>(
    ctx: Arc<Context>,
    api: Api<K>,
    service_accounts: Api<PartialObjectMeta<ServiceAccount>>,
    initial_state: watcher::Config,
    readiness: Readiness,
) {
    wait_for_crd(&api).await;
    readiness.controller_running();
    let (store, writer) = reflector::store();
    let (wake_rivals, rival_wakes) = futures::channel::mpsc::unbounded();
    let rivals = store.clone();
    let claims = ctx.clone();
    let rivals_ctx = ctx.clone();
    // Status writes (the operator's own) and other changes that leave spec,
    // finalizers, annotations and deletion alone call for no reconcile: each
    // would only read AWS again. Annotations pass so that `kubectl annotate`
    // can ask for one. (A status someone deletes by hand is rewritten at the
    // next resync; a restored object arrives as new and is reconciled.)
    let changes = watcher(api.clone(), initial_state.clone())
        .default_backoff()
        // Nothing reads who wrote which field, nor kubectl's copy of the
        // last applied spec (Argo CD's client-side apply writes one): at a
        // thousand objects they are most of the cache.
        .modify(|obj| {
            // None, not an empty list: a cleared Vec keeps its buffer.
            obj.meta_mut().managed_fields = None;
            obj.annotations_mut().remove(LAST_APPLIED);
        })
        // The index before the cache: a reconcile that waited for the
        // cache's first list must find the claims of that list too.
        .inspect_ok(move |event| K::claim_index(&claims).apply(event, K::service_account_name))
        .reflect(writer)
        // An object that changes or goes away may settle a rival's claim on
        // its ServiceAccount: the rivals look again at once. One watch
        // serves both, the cache and these wakes.
        .inspect_ok(move |event| {
            for rival in rivals_touched_by(&rivals, K::claim_index(&rivals_ctx), event) {
                let _ = wake_rivals.unbounded_send(rival);
            }
        })
        .applied_objects()
        .predicate_filter(
            predicates::generation
                .combine(predicates::finalizers)
                .combine(annotations_but_records::<K>)
                .combine(deletion_requested::<K>),
            PredicateConfig::default(),
        );
    let _ = K::store(&ctx).set(store.clone());
    let judge_again = ctx.clone();
    let guardrail_changes = guardrails_file::changes(ctx.guardrails.clone()).map(move |()| {
        // A status in sync under the old guardrails proves nothing now.
        judge_again.first_checks.check_all_now();
    });
    // Metadata only: annotations are all the operator reads from this
    // watch, and the whole cluster's ServiceAccounts need not cross the
    // wire in full.
    let claimants = store.clone();
    let claims = ctx.clone();
    let service_account_changes = watcher(service_accounts, initial_state)
        .default_backoff()
        .filter_map(|event| {
            // The watcher retries by itself; a failing one should still be
            // seen, or ServiceAccount changes would go unnoticed silently.
            if let Err(e) = &event {
                tracing::warn!(error = %e, "ServiceAccount watch");
            }
            std::future::ready(event.ok())
        })
        .flat_map(move |event| {
            let touched = claims_touched(&claimants, K::claim_index(&claims), event);
            futures::stream::iter(touched)
        });
    Controller::for_stream(changes, store.clone())
        .with_config(
            controller::Config::default().concurrency(ctx.settings.max_concurrent_reconciles),
        )
        // New guardrails may refuse what was allowed, or allow what was
        // refused: every object is judged again.
        .reconcile_all_on(guardrail_changes)
        .reconcile_on(service_account_changes)
        .reconcile_on(rival_wakes)
        .shutdown_on_signal()
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile stream");
            }
        })
        .await;
}

/// The CRD may be applied after the operator starts (same Git sync): each
/// controller waits for its own, so one missing CRD stops no other kind
/// from reconciling (readiness waits for both: they are installed together).
async fn wait_for_crd<K: ManagedKind>(api: &Api<K>) {
    let mut logged = false;
    while let Err(e) = api.list(&ListParams::default().limit(1)).await {
        if !logged {
            tracing::warn!(error = %e, kind = K::KIND, "waiting for the CRD to be installed");
            logged = true;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// Per object, not per name: one deleted and made again starts afresh.
fn backoff_key<K: ManagedKind>(obj: &K) -> String {
    format!(
        "{}/{}/{}/{}",
        K::KIND,
        obj.namespace().unwrap_or_default(),
        obj.name_any(),
        obj.uid().unwrap_or_default()
    )
}

async fn reconcile<K: ManagedKind>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    // Several watched namespaces are served by one cluster-wide watch; an
    // object being deleted is still cleaned up, so nothing leaks in AWS.
    if !ctx.settings.watches(&namespace) && obj.meta().deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    if let Some(action) = first_check_later(obj.as_ref(), &ctx).await {
        return Ok(action);
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let started = std::time::Instant::now();
    let span = tracing::info_span!("reconcile", kind = K::KIND, namespace = %namespace, name = %obj.name_any());
    let outcome = match needs_taking_charge(obj.as_ref()) {
        true => {
            let subject = subject_judged(obj.as_ref(), &ctx, &ctx.defaults(), true)
                .await
                .ok();
            take_charge(obj.as_ref(), &ctx, subject)
                .instrument(span)
                .await
        }
        // Cleanup and removing the finalizer stay kube's helper's.
        false => finalizer(&api, FINALIZER, obj.clone(), |event| async {
            match event {
                Finalizer::Apply(obj) => sync(obj.as_ref(), &ctx, false).await,
                Finalizer::Cleanup(obj) => sync(obj.as_ref(), &ctx, true).await,
            }
        })
        .instrument(span)
        .await
        .map_err(|e| match e {
            kube::runtime::finalizer::Error::ApplyFailed(e)
            | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
            kube::runtime::finalizer::Error::AddFinalizer(e)
            | kube::runtime::finalizer::Error::RemoveFinalizer(e) => Error::Kube(e),
            other => Error::Finalizer(other.to_string()),
        }),
    };
    let failure = outcome.as_ref().err().map(Error::reason);
    ctx.metrics.reconciled(K::KIND, started.elapsed(), failure);
    let key = backoff_key(obj.as_ref());
    match outcome {
        Ok(action) => {
            ctx.backoff.reset(&key);
            ctx.refused.reset(&key);
            Ok(action)
        }
        Err(e) if !e.is_transient() => {
            let schedule = Schedule::for_retry(e.retry(), ctx.settings.terminal_retry);
            let delay = ctx
                .refused
                .next_delay(&key, obj.meta().generation, schedule);
            tracing::info!(reason = e.reason(), retry_in = ?delay, "not retrying before");
            Ok(Action::requeue(delay))
        }
        Err(e) => Err(e),
    }
}

/// `Some` when this is the operator's first look at an object in sync since
/// it started, and that look is spread over the resync period
/// (`first_check`); costs a ServiceAccount read (and a Namespace read when
/// the guardrails select namespaces by label), no AWS call.
async fn first_check_later<K: ManagedKind>(obj: &K, ctx: &Context) -> Option<Action> {
    let key = backoff_key(obj);
    if ctx.first_checks.checked(&key) {
        return None;
    }
    let generation = obj.meta().generation;
    let in_sync = ready_at_its_generation(obj)
        && obj.meta().deletion_timestamp.is_none()
        && obj.finalizers().iter().any(|f| f == FINALIZER)
        && ctx.settings.watches(&obj.namespace().unwrap_or_default())
        && asked_the_same(obj, ctx).await
        && service_account_agrees(obj, ctx).await;
    let uid = obj.uid().unwrap_or_default();
    match ctx
        .first_checks
        .decide(&key, &uid, generation, in_sync, std::time::Instant::now())
    {
        Decision::Check => None,
        Decision::Defer(wait) => {
            ctx.metrics
                .ready_state(K::KIND, object_key(obj), Some(true));
            Some(Action::requeue(wait))
        }
    }
}

/// Throttling, a 5xx or a timeout while only reading, or IAM's reads
/// lagging behind a role that exists, say nothing about an object Ready at
/// its generation: it stays Ready while the check is retried, for a few
/// attempts (about half a minute of backoff; a few minutes for IAM's lag).
/// Past those, a failure while writing (drift being repaired), or anything
/// else, is reported.
fn worth_reporting<K: ManagedKind>(
    obj: &K,
    ctx: &Context,
    error: &Error,
    while_reading: bool,
    deleting: bool,
) -> bool {
    const QUIET_ATTEMPTS: u32 = 5;
    let key = backoff_key(obj);
    let quiet = match error {
        Error::Refused(Refusal::IamCatchingUp { .. }) => {
            ctx.refused.failures(&key) < QUIET_ATTEMPTS
        }
        _ if error.is_transient() && while_reading => ctx.backoff.failures(&key) < QUIET_ATTEMPTS,
        _ => false,
    };
    deleting || !quiet || !ready_at_its_generation(obj)
}

/// Whether the spec, under the guardrails and flags in force now, asks for
/// what the last successful sync made (a restart after a Helm upgrade that
/// changed them is not one to trust the status over).
async fn asked_the_same<K: ManagedKind>(obj: &K, ctx: &Context) -> bool {
    let Some(synced) = obj
        .current_status()
        .synced_fingerprint()
        .map(str::to_string)
    else {
        return false;
    };
    let defaults = ctx.defaults();
    let Ok(subject) = subject_judged(obj, ctx, &defaults, true).await else {
        return false;
    };
    obj.desire(&subject, &defaults)
        .is_ok_and(|desired| fingerprint(&desired) == synced)
}

async fn service_account_agrees<K: ManagedKind>(obj: &K, ctx: &Context) -> bool {
    let api: Api<ServiceAccount> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    match api.get_opt(&obj.service_account_name()).await {
        Ok(Some(sa)) => obj.service_account_agrees(&sa.metadata),
        _ => false,
    }
}

/// The object's subject, with its namespace's labels when the guardrails
/// grant by label and `judging` (desire needs them; cleanup does not).
async fn subject_judged<K: ManagedKind>(
    obj: &K,
    ctx: &Context,
    defaults: &Defaults,
    judging: bool,
) -> Result<Subject, Error> {
    let mut subject = subject_of(obj, ctx);
    if judging && defaults.guardrails.selects_by_labels() {
        subject.namespace_labels = Some(namespace_labels(ctx, &subject.owner.namespace).await?);
    }
    Ok(subject)
}

/// Observe, plan, execute, report: the same four steps for both kinds, for
/// apply and for cleanup.
async fn sync<K: ManagedKind>(obj: &K, ctx: &Context, deleting: bool) -> Result<Action, Error> {
    if !deleting {
        K::refresh_shared_facts(ctx).await;
    }
    let defaults = ctx.defaults();
    let subject = match subject_judged(obj, ctx, &defaults, !deleting).await {
        Ok(subject) => subject,
        Err(e) => {
            if worth_reporting(obj, ctx, &e, true, deleting) {
                let outcome = Outcome::failed(&e, e.to_string());
                let _ = report(obj, ctx, obj.current_status(), outcome).await;
            }
            return Err(e);
        }
    };
    let desired = obj.desire(&subject, &defaults);
    let observed = obj
        .observe(ctx, &defaults, subject, desired.as_ref().ok(), deleting)
        .await;
    let failed_reading = observed.is_err();
    let result = match observed {
        Ok(observed) => {
            let plan = match deleting {
                false => K::plan(&desired, &observed, &defaults),
                true => K::plan_cleanup(&observed),
            };
            let generation = obj.meta().generation;
            let current = obj.current_status();
            if !deleting
                && !plan.steps.is_empty()
                && last_verdict_misreadable(current.observed_generation(), generation)
            {
                report(obj, ctx, current, Outcome::reconciling(generation)).await?;
            }
            execute(obj, ctx, &plan.steps)
                .await
                .map(|executed| (plan, executed))
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((_, _)) if deleting => {
            ctx.metrics.forget(K::KIND, object_key(obj));
            ctx.first_checks.forget(&backoff_key(obj));
            Ok(Action::await_change())
        }
        Ok((plan, executed)) => {
            let mut status = plan.status;
            status.learn(&executed);
            if let (Ok(_), Ok(desired)) = (&plan.verdict, &desired) {
                status.set_synced_fingerprint(fingerprint(desired));
            }
            let outcome = match &plan.verdict {
                Ok(message) => Outcome::synced(message.clone()),
                Err(refusal) => {
                    let error = Error::Refused(refusal.clone());
                    Outcome::failed(&error, error.to_string())
                }
            };
            report(obj, ctx, status, outcome).await?;
            match plan.verdict {
                Ok(_) => Ok(Action::requeue(with_jitter(
                    ctx.settings.resync,
                    &obj.uid().unwrap_or_default(),
                ))),
                Err(refusal) => Err(refusal.into()),
            }
        }
        Err(e) => {
            let message = match deleting {
                true => deleting_message(obj, &e),
                false => e.to_string(),
            };
            if worth_reporting(obj, ctx, &e, failed_reading, deleting) {
                let outcome = Outcome::failed(&e, message);
                // The failure is what matters; a status that cannot be
                // written is retried with it.
                let _ = report(obj, ctx, obj.current_status(), outcome).await;
            }
            Err(e)
        }
    }
}

/// Why the finalizer is still there, and what lets the deletion finish.
fn deleting_message<K: ManagedKind>(obj: &K, error: &Error) -> String {
    let status = obj.current_status();
    let role = status.role_name().unwrap_or("<role>");
    let what_to_do = match error.reason() {
        reason::DELETE_CONFLICT => format!(
            " Something outside the operator still holds {role} (an instance profile: aws iam \
             list-instance-profiles-for-role --role-name {role}); remove it there and the \
             deletion finishes by itself, or set spec.deletionPolicy: Retain to leave the role."
        ),
        reason::ACCESS_DENIED => " Grant the operator that action (its policy: iam-operator \
             --print-aws-policy) and the deletion finishes at the next retry, or set \
             spec.deletionPolicy: Retain to leave everything in AWS."
            .to_string(),
        _ => String::new(),
    };
    let error = error.to_string();
    format!("deleting: {}.{what_to_do}", error.trim_end_matches('.'))
}

async fn report<K: ManagedKind>(
    obj: &K,
    ctx: &Context,
    next: K::Status,
    outcome: Outcome,
) -> Result<(), Error> {
    status::report(obj, ctx, &obj.current_status(), next, outcome).await
}

fn error_policy<K: ManagedKind>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay =
        ctx.backoff
            .next_delay(&backoff_key(obj.as_ref()), obj.meta().generation, TRANSIENT);
    tracing::warn!(error = %error, label = error.metric_label(), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The resync period stretched by up to a tenth, by a fraction fixed per
/// object: objects created together (a Git sync, a restart) spread their
/// drift reads over the period instead of all coming due at once.
fn with_jitter(period: std::time::Duration, uid: &str) -> std::time::Duration {
    period + super::first_check::spread(period / 10, uid)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{deleting_message, with_jitter};
    use crate::api::{IamServiceAccount, IamServiceAccountSpec, IamServiceAccountStatus};
    use crate::aws::error::{AwsError, classify};
    use crate::controller::Error;

    fn refused_deletion(code: &str, message: &str) -> String {
        let mut obj = IamServiceAccount::new("web", IamServiceAccountSpec::default());
        obj.status = Some(IamServiceAccountStatus {
            role_name: Some("web-role".into()),
            ..Default::default()
        });
        let error = Error::Aws(AwsError {
            operation: "DeleteRole",
            kind: classify(code),
            code: code.into(),
            message: message.into(),
        });
        deleting_message(&obj, &error)
    }

    #[test]
    fn a_stuck_deletion_says_what_holds_it_and_how_to_finish() {
        let conflict = refused_deletion(
            "DeleteConflict",
            "Cannot delete entity, must remove roles from instance profile first.",
        );
        assert!(conflict.starts_with("deleting: AWS DeleteRole: DeleteConflict: Cannot delete"));
        assert!(!conflict.contains(".."), "{conflict}");
        assert!(conflict.contains("--role-name web-role"), "{conflict}");
        assert!(conflict.contains("deletionPolicy: Retain"), "{conflict}");
        let denied = refused_deletion("AccessDenied", "not authorized to perform iam:DeleteRole");
        assert!(denied.contains("--print-aws-policy"), "{denied}");
        let other = refused_deletion("ServiceFailure", "try later");
        assert_eq!(
            other,
            "deleting: AWS DeleteRole: ServiceFailure: try later."
        );
    }

    #[test]
    fn resyncs_spread_over_a_tenth_of_the_period_fixed_per_object() {
        let period = Duration::from_secs(600);
        let spread: Vec<Duration> = (0..200)
            .map(|i| with_jitter(period, &format!("uid-{i}")))
            .collect();
        assert!(
            spread
                .iter()
                .all(|d| *d >= period && *d < period + period / 10)
        );
        let distinct: std::collections::BTreeSet<_> = spread.iter().collect();
        assert!(distinct.len() > 150, "{} distinct delays", distinct.len());
        assert_eq!(with_jitter(period, "same"), with_jitter(period, "same"));
    }
}
