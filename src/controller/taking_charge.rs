//! The first write to an object the operator has not taken charge of yet:
//! the finalizer, and the record of what its first sync will make, in one
//! request. Both must stand before anything exists in AWS (the finalizer so
//! that a deletion cleans up, the record so that a crash right after a
//! create still finds the role); written together they cost the API server
//! one write per create instead of two.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::kind::ManagedKind;
use super::{Context, Error, FIELD_MANAGER, FINALIZER};
use crate::policy::plan::Recorded;

/// Whether the object still needs `take_charge` before anything else.
pub fn needs_taking_charge<K: ManagedKind>(obj: &K) -> bool {
    obj.meta().deletion_timestamp.is_none() && !obj.finalizers().iter().any(|f| f == FINALIZER)
}

/// Adds the finalizer with the record. The finalizer's arrival is what
/// starts the sync (the watch passes finalizer changes), as with kube's
/// own finalizer helper.
pub async fn take_charge<K: ManagedKind>(
    obj: &K,
    ctx: &Context,
    subject: Option<crate::policy::plan::Subject>,
) -> Result<Action, Error> {
    let defaults = ctx.defaults();
    // Without a desire (invalid spec, refused by the guardrails, the
    // namespace unreadable) nothing will be made yet: the plan records
    // whatever it makes later, before making it.
    let to_record = subject
        .and_then(|subject| obj.desire(&subject, &defaults).ok())
        .map(|desired| obj.record_before_create(&desired))
        .unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    api.patch(
        &obj.name_any(),
        &params,
        &Patch::Merge(first_write(obj.meta(), &to_record)),
    )
    .await?;
    Ok(Action::await_change())
}

/// A merge patch replaces the whole finalizer list, so it carries the
/// resource version it was computed from: a finalizer someone added
/// meanwhile makes it fail with a conflict (retried) instead of being lost.
fn first_write(meta: &ObjectMeta, to_record: &Recorded) -> serde_json::Value {
    let mut finalizers = meta.finalizers.clone().unwrap_or_default();
    finalizers.push(FINALIZER.to_string());
    let mut metadata = json!({
        "resourceVersion": meta.resource_version,
        "finalizers": finalizers,
    });
    let recorded =
        Recorded::from_annotations(meta.annotations.as_ref().unwrap_or(&Default::default()));
    if !recorded.covers(to_record) {
        metadata["annotations"] = json!(recorded.joined(to_record).to_annotations());
    }
    json!({ "metadata": metadata })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::policy::plan::{RECORDED_ROLES, RECORDED_SERVICE_ACCOUNTS};

    fn meta(finalizers: &[&str], annotations: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            resource_version: Some("41".into()),
            finalizers: (!finalizers.is_empty())
                .then(|| finalizers.iter().map(|f| f.to_string()).collect()),
            annotations: (!annotations.is_empty()).then(|| {
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>()
            }),
            ..Default::default()
        }
    }

    fn record(roles: &[&str], service_accounts: &[&str]) -> Recorded {
        Recorded {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            service_accounts: service_accounts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_finalizer_joins_the_others_under_the_version_they_were_read_at() {
        let patch = first_write(&meta(&["argocd.argoproj.io/x"], &[]), &Recorded::default());
        assert_eq!(
            patch,
            json!({"metadata": {
                "resourceVersion": "41",
                "finalizers": ["argocd.argoproj.io/x", FINALIZER],
            }})
        );
    }

    #[test]
    fn the_record_names_what_the_sync_will_make_and_keeps_what_it_named() {
        let patch = first_write(
            &meta(&[], &[(RECORDED_ROLES, r#"["old-role"]"#), ("team", "a")]),
            &record(&["web-role"], &["web"]),
        );
        let annotations = &patch["metadata"]["annotations"];
        assert_eq!(annotations[RECORDED_ROLES], r#"["old-role","web-role"]"#);
        assert_eq!(annotations[RECORDED_SERVICE_ACCOUNTS], r#"["web"]"#);
        // Other annotations are not the patch's to touch.
        assert!(annotations.get("team").is_none());
        assert_eq!(patch["metadata"]["finalizers"], json!([FINALIZER]));
    }

    #[test]
    fn a_record_that_already_covers_the_sync_is_not_written_again() {
        let patch = first_write(
            &meta(&[], &[(RECORDED_ROLES, r#"["Web-Role"]"#)]),
            &record(&["web-role"], &[]),
        );
        assert!(patch["metadata"].get("annotations").is_none());
    }
}
