//! The ServiceAccount belongs to the user: the operator applies only its own
//! annotations, under its own field manager, and on cleanup gives those fields
//! back (or deletes the ServiceAccount when it created it).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::Error;
#[cfg(test)]
use super::FIELD_MANAGER;

pub const ROLE_ARN: &str = "eks.amazonaws.com/role-arn";
pub const AUDIENCE: &str = "eks.amazonaws.com/audience";
pub const STS_REGIONAL_ENDPOINTS: &str = "eks.amazonaws.com/sts-regional-endpoints";
pub const TOKEN_EXPIRATION: &str = "eks.amazonaws.com/token-expiration";

/// What the pod identity webhook reads, for one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedAnnotations(pub BTreeMap<String, String>);

pub fn wanted_annotations(
    role_arn: &str,
    audience: &str,
    sts_regional_endpoints: Option<bool>,
    token_expiration_seconds: Option<i64>,
) -> WantedAnnotations {
    let mut annotations = BTreeMap::from([(ROLE_ARN.to_string(), role_arn.to_string())]);
    if audience != crate::api::iam_service_account::DEFAULT_AUDIENCE {
        annotations.insert(AUDIENCE.into(), audience.into());
    }
    if let Some(regional) = sts_regional_endpoints {
        annotations.insert(STS_REGIONAL_ENDPOINTS.into(), regional.to_string());
    }
    if let Some(seconds) = token_expiration_seconds {
        annotations.insert(TOKEN_EXPIRATION.into(), seconds.to_string());
    }
    WantedAnnotations(annotations)
}

/// Annotation keys `manager` owns, read from `managedFields`.
pub fn owned_annotation_keys(
    managed_fields: &[ManagedFieldsEntry],
    manager: &str,
) -> BTreeSet<String> {
    managed_fields
        .iter()
        .filter(|entry| entry.manager.as_deref() == Some(manager))
        .filter_map(|entry| entry.fields_v1.as_ref())
        .filter_map(|fields| {
            fields
                .0
                .get("f:metadata")?
                .get("f:annotations")?
                .as_object()
        })
        .flat_map(|annotations| annotations.keys())
        .filter_map(|key| key.strip_prefix("f:").map(str::to_string))
        .collect()
}

/// What to do with an existing ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnotationPlan {
    InPlace,
    Apply,
    /// Someone else set the role ARN to another role: never overwritten.
    ForeignRoleArn(String),
}

pub fn plan_annotations(
    sa: &ServiceAccount,
    wanted: &WantedAnnotations,
    manager: &str,
) -> AnnotationPlan {
    let current = sa.annotations();
    let owned = owned_annotation_keys(
        sa.metadata.managed_fields.as_deref().unwrap_or_default(),
        manager,
    );
    if let Some(found) = current.get(ROLE_ARN)
        && Some(found) != wanted.0.get(ROLE_ARN)
        && !owned.contains(ROLE_ARN)
    {
        return AnnotationPlan::ForeignRoleArn(found.clone());
    }
    let values_in_place = wanted.0.iter().all(|(k, v)| current.get(k) == Some(v));
    let nothing_stale = owned.iter().all(|k| wanted.0.contains_key(k));
    if values_in_place && nothing_stale {
        AnnotationPlan::InPlace
    } else {
        AnnotationPlan::Apply
    }
}

/// The outcome of making sure the ServiceAccount carries our annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Annotated {
    Done { wrote: bool },
    Missing,
}

/// Annotates the ServiceAccount (creating it, owned by `owner`, when
/// `create` is set and it is missing), under the field manager `manager`.
pub async fn ensure_annotated(
    api: &Api<ServiceAccount>,
    name: &str,
    wanted: &WantedAnnotations,
    manager: &str,
    create: Option<OwnerReference>,
) -> Result<Annotated, Error> {
    let existing = api.get_opt(name).await?;
    // A ServiceAccount we created keeps its owner reference in every apply:
    // left out, server-side apply would remove it.
    let owner_references: Vec<OwnerReference> = match (&existing, &create) {
        (None, Some(owner)) => vec![owner.clone()],
        (Some(sa), Some(owner)) if sa.owner_references().iter().any(|o| o.uid == owner.uid) => {
            vec![owner.clone()]
        }
        _ => Vec::new(),
    };
    match &existing {
        None if create.is_none() => return Ok(Annotated::Missing),
        None => {}
        Some(sa) => match plan_annotations(sa, wanted, manager) {
            AnnotationPlan::InPlace => return Ok(Annotated::Done { wrote: false }),
            AnnotationPlan::ForeignRoleArn(found) => {
                return Err(Error::ServiceAccountAnnotationMismatch {
                    service_account: name.to_string(),
                    found,
                    expected: wanted.0.get(ROLE_ARN).cloned().unwrap_or_default(),
                    detail: String::new(),
                });
            }
            AnnotationPlan::Apply => {}
        },
    }
    let mut metadata = json!({"name": name, "annotations": wanted.0});
    if !owner_references.is_empty() {
        metadata["ownerReferences"] = json!(owner_references);
    }
    let patch = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata});
    // Not forced: if another manager owns one of these fields with another
    // value, the apiserver refuses (409) rather than us taking it over.
    match api
        .patch(name, &PatchParams::apply(manager), &Patch::Apply(&patch))
        .await
    {
        Ok(_) => Ok(Annotated::Done { wrote: true }),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            Err(Error::ServiceAccountAnnotationMismatch {
                service_account: name.to_string(),
                found: existing
                    .as_ref()
                    .and_then(|sa| sa.annotations().get(ROLE_ARN).cloned())
                    .unwrap_or_default(),
                expected: wanted.0.get(ROLE_ARN).cloned().unwrap_or_default(),
                detail: format!(
                    "(another field manager owns the annotations: {})",
                    status.message
                ),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Undoes what the operator did to the ServiceAccount: deletes it when
/// `owner_uid` created it, otherwise gives `manager`'s annotations back.
pub async fn release(
    api: &Api<ServiceAccount>,
    name: &str,
    manager: &str,
    owner_uid: Option<&str>,
) -> Result<(), Error> {
    let Some(sa) = api.get_opt(name).await? else {
        return Ok(());
    };
    let created_by_us =
        owner_uid.is_some_and(|uid| sa.owner_references().iter().any(|o| o.uid == uid));
    if created_by_us {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    if owned_annotation_keys(
        sa.metadata.managed_fields.as_deref().unwrap_or_default(),
        manager,
    )
    .is_empty()
    {
        return Ok(());
    }
    // Applying an object without the fields we owned removes exactly those.
    let patch = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}});
    api.patch(name, &PatchParams::apply(manager), &Patch::Apply(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;

    const ARN: &str = "arn:aws:iam::123456789012:role/web";

    fn sa(annotations: &[(&str, &str)], owned: &[&str]) -> ServiceAccount {
        let mut sa = ServiceAccount::default();
        sa.metadata.name = Some("web".into());
        sa.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        if !owned.is_empty() {
            let fields: serde_json::Map<String, serde_json::Value> = owned
                .iter()
                .map(|k| (format!("f:{k}"), json!({})))
                .collect();
            sa.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
                manager: Some(FIELD_MANAGER.into()),
                operation: Some("Apply".into()),
                fields_type: Some("FieldsV1".into()),
                fields_v1: Some(FieldsV1(json!({"f:metadata": {"f:annotations": fields}}))),
                ..Default::default()
            }]);
        }
        sa
    }

    #[test]
    fn default_audience_and_unset_options_give_only_the_role_arn() {
        let wanted = wanted_annotations(ARN, "sts.amazonaws.com", None, None);
        assert_eq!(
            wanted.0,
            BTreeMap::from([(ROLE_ARN.to_string(), ARN.to_string())])
        );
    }

    #[test]
    fn options_become_the_webhook_annotations() {
        let wanted = wanted_annotations(ARN, "custom", Some(true), Some(3600));
        assert_eq!(wanted.0[AUDIENCE], "custom");
        assert_eq!(wanted.0[STS_REGIONAL_ENDPOINTS], "true");
        assert_eq!(wanted.0[TOKEN_EXPIRATION], "3600");
    }

    #[test]
    fn owned_keys_are_read_from_our_managed_fields_only() {
        let mut account = sa(&[], &[ROLE_ARN, TOKEN_EXPIRATION]);
        let mut foreign = account.metadata.managed_fields.clone().unwrap_or_default();
        foreign[0].manager = Some("kubectl".into());
        foreign[0].fields_v1 = Some(FieldsV1(
            json!({"f:metadata": {"f:annotations": {"f:other": {}}}}),
        ));
        if let Some(fields) = account.metadata.managed_fields.as_mut() {
            fields.extend(foreign);
        }
        let owned = owned_annotation_keys(
            account
                .metadata
                .managed_fields
                .as_deref()
                .unwrap_or_default(),
            FIELD_MANAGER,
        );
        assert_eq!(
            owned,
            BTreeSet::from([ROLE_ARN.to_string(), TOKEN_EXPIRATION.to_string()])
        );
    }

    #[test]
    fn annotation_plans() {
        let wanted = wanted_annotations(ARN, "sts.amazonaws.com", None, None);
        let cases = [
            (sa(&[], &[]), AnnotationPlan::Apply),
            (sa(&[(ROLE_ARN, ARN)], &[ROLE_ARN]), AnnotationPlan::InPlace),
            // Same value set by hand: nothing to do, and nothing of ours to clean later.
            (sa(&[(ROLE_ARN, ARN)], &[]), AnnotationPlan::InPlace),
            // Our own previous role (renamed): repaired.
            (
                sa(
                    &[(ROLE_ARN, "arn:aws:iam::123456789012:role/old")],
                    &[ROLE_ARN],
                ),
                AnnotationPlan::Apply,
            ),
            // An annotation we no longer want: applied away.
            (
                sa(
                    &[(ROLE_ARN, ARN), (TOKEN_EXPIRATION, "3600")],
                    &[ROLE_ARN, TOKEN_EXPIRATION],
                ),
                AnnotationPlan::Apply,
            ),
            (
                sa(&[(ROLE_ARN, "arn:aws:iam::123456789012:role/theirs")], &[]),
                AnnotationPlan::ForeignRoleArn("arn:aws:iam::123456789012:role/theirs".into()),
            ),
        ];
        for (account, expected) in cases {
            assert_eq!(
                plan_annotations(&account, &wanted, FIELD_MANAGER),
                expected,
                "{:?}",
                account.metadata.annotations
            );
        }
    }
}
