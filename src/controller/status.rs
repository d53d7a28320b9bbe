//! Writing `status`: server-side apply under the one field manager, and only
//! when something other than timestamps changed, so that a resync in sync
//! makes no Kubernetes write.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::kind::{ManagedKind, ReadyStatus};
use super::{Context, Error, FIELD_MANAGER, events};
use crate::api::conditions::{READY, find, ready_condition, reason, same_condition};

/// How a reconcile ended, as the `Ready` condition says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
    /// Not ready, but clearing by itself: a Normal Event, not a Warning.
    pub waiting: bool,
}

impl Outcome {
    pub fn synced(message: String) -> Self {
        Outcome {
            ready: true,
            reason: reason::SYNCED,
            message,
            waiting: false,
        }
    }

    pub fn failed(error: &Error, message: String) -> Self {
        Outcome {
            ready: false,
            reason: error.reason(),
            message,
            waiting: error.is_waiting(),
        }
    }
}

/// Writes `next` (the kind's own fields) with a `Ready` condition for
/// `outcome`, unless that says nothing new. A new failure reason also goes
/// out as a Warning Event.
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
    let generation = obj.meta().generation;
    let previous = find(current.conditions(), READY);
    let condition = ready_condition(
        outcome.ready,
        outcome.reason,
        outcome.message.clone(),
        generation,
        previous,
    );
    let mut unchanged_fields = current.clone();
    unchanged_fields.set_ready(generation, condition.clone());
    next.set_ready(generation, condition.clone());
    if next == unchanged_fields && !ready_changed(current.conditions(), &condition) {
        return Ok(());
    }
    if !outcome.ready && previous.map(|c| c.reason.as_str()) != Some(outcome.reason) {
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

/// Whether the status about to be written says something new.
pub fn ready_changed(current: &[Condition], next: &Condition) -> bool {
    find(current, READY).is_none_or(|c| !same_condition(c, next))
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
    use crate::api::conditions::ready_condition;

    #[test]
    fn unchanged_condition_needs_no_write() {
        let current = ready_condition(true, reason::SYNCED, "ok".into(), Some(1), None);
        let next = ready_condition(true, reason::SYNCED, "ok".into(), Some(1), Some(&current));
        assert!(!ready_changed(std::slice::from_ref(&current), &next));
    }

    #[test]
    fn new_generation_reason_or_message_needs_a_write() {
        let current = ready_condition(true, reason::SYNCED, "ok".into(), Some(1), None);
        for next in [
            ready_condition(true, reason::SYNCED, "ok".into(), Some(2), Some(&current)),
            ready_condition(
                false,
                reason::INVALID_SPEC,
                "bad".into(),
                Some(1),
                Some(&current),
            ),
            ready_condition(
                true,
                reason::SYNCED,
                "other".into(),
                Some(1),
                Some(&current),
            ),
        ] {
            assert!(ready_changed(std::slice::from_ref(&current), &next));
        }
        assert!(ready_changed(&[], &current));
    }
}
