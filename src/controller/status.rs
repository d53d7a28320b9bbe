//! Writing `status`: server-side apply under the one field manager, and only
//! when something other than timestamps changed, so that a resync in sync
//! makes no Kubernetes write.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::FIELD_MANAGER;
use crate::api::conditions::{READY, find, same_condition};

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
    use crate::api::conditions::{ready_condition, reason};

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
