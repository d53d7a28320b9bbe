//! Writing `status`: server-side apply under the one field manager, and only
//! when something other than timestamps changed, so that a resync in sync
//! makes no Kubernetes write.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::kind::{ManagedKind, ReadyStatus, object_key};
use super::{Context, Error, FIELD_MANAGER, events};
use crate::api::conditions::{Progress, READY, conditions_for, find, reason, same_conditions};

/// How a reconcile ended (or that it started), as the conditions say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `None`: Unknown, while a new generation is being worked on.
    pub ready: Option<bool>,
    pub reason: &'static str,
    pub message: String,
    pub progress: Progress,
    /// Not ready, but clearing by itself: a Normal Event, not a Warning.
    pub waiting: bool,
}

impl Outcome {
    pub fn synced(message: String) -> Self {
        Outcome {
            ready: Some(true),
            reason: reason::SYNCED,
            message,
            progress: Progress::Done,
            waiting: false,
        }
    }

    /// What retrying fixes (waiting, throttling, a 5xx) keeps the object
    /// Reconciling; the rest stalls it until someone changes something.
    pub fn failed(error: &Error, message: String) -> Self {
        let progress = match error.is_waiting() || error.is_transient() {
            true => Progress::Working,
            false => Progress::Stalled,
        };
        Outcome {
            ready: Some(false),
            reason: error.reason(),
            message,
            progress,
            waiting: error.is_waiting(),
        }
    }

    /// Said before the first AWS call of a new generation, so that a GitOps
    /// tool never reads the last generation's verdict as this one's.
    pub fn reconciling(generation: Option<i64>) -> Self {
        Outcome {
            ready: None,
            reason: reason::RECONCILING,
            message: format!("working on generation {}", generation.unwrap_or_default()),
            progress: Progress::Working,
            waiting: true,
        }
    }
}

/// Whether a status written for another generation is there to be read as
/// this one's verdict while the writes run. A new object has none (its
/// `observedGeneration` reads as the schema's default, 0, generations start
/// at 1), and already reads as in progress to kstatus and Argo CD:
/// announcing the work would cost every create a second status write (a
/// fifth of the API server's writes in a burst of creates) and say nothing.
pub fn last_verdict_misreadable(observed: Option<i64>, generation: Option<i64>) -> bool {
    observed.is_some_and(|g| g > 0) && observed != generation
}

/// Writes `next` (the kind's own fields) with the conditions for
/// `outcome`, unless that says nothing new. A new failure reason also goes
/// out as an Event: Normal when it clears by itself, Warning otherwise.
pub async fn report<K, S>(
    obj: &K,
    ctx: &Context,
    current: &S,
    mut next: S,
    outcome: Outcome,
) -> Result<(), Error>
where
    K: ManagedKind,
    S: ReadyStatus,
{
    ctx.metrics
        .ready_state(K::KIND, object_key(obj), outcome.ready);
    let generation = obj.meta().generation;
    let conditions = conditions_for(
        outcome.ready,
        outcome.reason,
        &outcome.message,
        outcome.progress,
        generation,
        current.conditions(),
    );
    let mut unchanged_fields = current.clone();
    unchanged_fields.set_conditions(generation, conditions.clone());
    next.set_conditions(generation, conditions.clone());
    if next == unchanged_fields && same_conditions(current.conditions(), &conditions) {
        return Ok(());
    }
    let previous_reason = find(current.conditions(), READY).map(|c| c.reason.as_str());
    if outcome.ready == Some(false) && previous_reason != Some(outcome.reason) {
        let object = obj.object_ref(&());
        if outcome.waiting {
            events::changed(ctx, &object, outcome.reason, outcome.message).await;
        } else {
            events::failed(ctx, &object, outcome.reason, outcome.message).await;
        }
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    apply_status(&api, &obj.name_any(), &next).await?;
    Ok(())
}

pub async fn apply_status<K, S>(api: &Api<K>, name: &str, status: &S) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::desire::InvalidSpec;
    use crate::policy::refusal::Refusal;

    #[test]
    fn only_a_verdict_of_another_generation_is_announced_as_outdated() {
        assert!(last_verdict_misreadable(Some(1), Some(2)));
        assert!(!last_verdict_misreadable(Some(2), Some(2)));
        assert!(!last_verdict_misreadable(None, Some(1)));
        assert!(!last_verdict_misreadable(Some(0), Some(1)));
    }

    #[test]
    fn refusals_stall_and_what_clears_by_itself_keeps_reconciling() {
        let invalid = Error::Refused(Refusal::InvalidSpec(InvalidSpec(vec!["x".into()])));
        let stalled = Outcome::failed(&invalid, "x".into());
        assert_eq!(
            (stalled.ready, stalled.progress, stalled.waiting),
            (Some(false), Progress::Stalled, false)
        );
        let waiting = Error::Refused(Refusal::ServiceAccountNotFound {
            service_account: "a".into(),
            role_arn: "r".into(),
        });
        let working = Outcome::failed(&waiting, "w".into());
        assert_eq!(
            (working.progress, working.waiting),
            (Progress::Working, true)
        );
        let throttled = Error::Aws(crate::aws::AwsError {
            operation: "GetRole",
            kind: crate::aws::error::classify("Throttling"),
            code: "Throttling".into(),
            message: String::new(),
        });
        let retrying = Outcome::failed(&throttled, "t".into());
        assert_eq!(
            (retrying.progress, retrying.waiting),
            (Progress::Working, false)
        );
        let start = Outcome::reconciling(Some(4));
        assert_eq!((start.ready, start.progress), (None, Progress::Working));
        assert!(start.message.contains('4'));
        assert_eq!(Outcome::synced("ok".into()).progress, Progress::Done);
    }
}
