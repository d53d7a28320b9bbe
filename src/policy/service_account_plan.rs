//! The annotations the operator keeps on a ServiceAccount for IRSA, and
//! what to do with the ServiceAccount as observed. Pure: the controller
//! reads the ServiceAccount and applies what this module decides.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

pub const ROLE_ARN: &str = "eks.amazonaws.com/role-arn";
pub const AUDIENCE: &str = "eks.amazonaws.com/audience";
pub const STS_REGIONAL_ENDPOINTS: &str = "eks.amazonaws.com/sts-regional-endpoints";
pub const TOKEN_EXPIRATION: &str = "eks.amazonaws.com/token-expiration";

/// What the pod identity webhook reads, for one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedAnnotations(pub BTreeMap<String, String>);

/// The audience goes on even when it is the default: the webhook's default
/// is its own configuration, and a value someone else wrote must be seen
/// (and refused) rather than silently trusted to match.
pub fn wanted_annotations(
    role_arn: &str,
    audience: &str,
    sts_regional_endpoints: Option<bool>,
    token_expiration_seconds: Option<i64>,
) -> WantedAnnotations {
    let mut annotations = BTreeMap::from([
        (ROLE_ARN.to_string(), role_arn.to_string()),
        (AUDIENCE.to_string(), audience.to_string()),
    ]);
    if let Some(regional) = sts_regional_endpoints {
        annotations.insert(STS_REGIONAL_ENDPOINTS.into(), regional.to_string());
    }
    if let Some(seconds) = token_expiration_seconds {
        annotations.insert(TOKEN_EXPIRATION.into(), seconds.to_string());
    }
    WantedAnnotations(annotations)
}

/// A ServiceAccount as the plan needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedServiceAccount {
    pub annotations: BTreeMap<String, String>,
    /// Annotation keys this object's field manager owns.
    pub owned_keys: BTreeSet<String>,
    /// Whether this object created it (its owner reference names the uid).
    pub created_by_us: bool,
}

impl ObservedServiceAccount {
    pub fn from_service_account(sa: &ServiceAccount, manager: &str, owner_uid: &str) -> Self {
        ObservedServiceAccount {
            annotations: sa.metadata.annotations.clone().unwrap_or_default(),
            owned_keys: owned_annotation_keys(
                sa.metadata.managed_fields.as_deref().unwrap_or_default(),
                manager,
            ),
            created_by_us: !owner_uid.is_empty()
                && sa
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == owner_uid),
        }
    }
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
    /// Someone else set another token audience: tokens would not match the
    /// role's trust, and the value is not ours to overwrite.
    ForeignAudience(String),
    /// Someone else set another value of one of the other annotations we
    /// want: server-side apply would refuse ours (409).
    ForeignAnnotation {
        key: String,
        found: String,
    },
}

pub fn plan_annotations(sa: &ObservedServiceAccount, wanted: &WantedAnnotations) -> AnnotationPlan {
    let current = &sa.annotations;
    let foreign = |key: &str| {
        current
            .get(key)
            .filter(|found| Some(*found) != wanted.0.get(key) && !sa.owned_keys.contains(key))
            .cloned()
    };
    if let Some(found) = foreign(ROLE_ARN) {
        return AnnotationPlan::ForeignRoleArn(found);
    }
    if let Some(found) = foreign(AUDIENCE) {
        return AnnotationPlan::ForeignAudience(found);
    }
    if let Some((key, found)) = wanted
        .0
        .keys()
        .find_map(|key| foreign(key).map(|found| (key.clone(), found)))
    {
        return AnnotationPlan::ForeignAnnotation { key, found };
    }
    let values_in_place = wanted.0.iter().all(|(k, v)| current.get(k) == Some(v));
    let nothing_stale = sa.owned_keys.iter().all(|k| wanted.0.contains_key(k));
    if values_in_place && nothing_stale {
        AnnotationPlan::InPlace
    } else {
        AnnotationPlan::Apply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
    use serde_json::json;

    const ARN: &str = "arn:aws:iam::123456789012:role/web";
    const MANAGER: &str = "iam-operator/uid-1";

    fn observed(annotations: &[(&str, &str)], owned: &[&str]) -> ObservedServiceAccount {
        ObservedServiceAccount {
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            owned_keys: owned.iter().map(|k| k.to_string()).collect(),
            created_by_us: false,
        }
    }

    #[test]
    fn the_audience_is_always_wanted_and_options_become_annotations() {
        let wanted = wanted_annotations(ARN, "sts.amazonaws.com", None, None);
        assert_eq!(
            wanted.0,
            BTreeMap::from([
                (ROLE_ARN.to_string(), ARN.to_string()),
                (AUDIENCE.to_string(), "sts.amazonaws.com".to_string()),
            ])
        );
        let wanted = wanted_annotations(ARN, "custom", Some(true), Some(3600));
        assert_eq!(wanted.0[AUDIENCE], "custom");
        assert_eq!(wanted.0[STS_REGIONAL_ENDPOINTS], "true");
        assert_eq!(wanted.0[TOKEN_EXPIRATION], "3600");
    }

    #[test]
    fn owned_keys_and_creator_are_read_from_the_service_account() {
        let mut sa = ServiceAccount::default();
        sa.metadata.managed_fields = Some(vec![
            ManagedFieldsEntry {
                manager: Some(MANAGER.into()),
                fields_v1: Some(FieldsV1(json!({"f:metadata": {"f:annotations": {
                    format!("f:{ROLE_ARN}"): {}, format!("f:{TOKEN_EXPIRATION}"): {}
                }}}))),
                ..Default::default()
            },
            ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                fields_v1: Some(FieldsV1(
                    json!({"f:metadata": {"f:annotations": {"f:other": {}}}}),
                )),
                ..Default::default()
            },
        ]);
        sa.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                uid: "uid-1".into(),
                ..Default::default()
            },
        ]);
        let seen = ObservedServiceAccount::from_service_account(&sa, MANAGER, "uid-1");
        assert_eq!(
            seen.owned_keys,
            BTreeSet::from([ROLE_ARN.to_string(), TOKEN_EXPIRATION.to_string()])
        );
        assert!(seen.created_by_us);
        assert!(!ObservedServiceAccount::from_service_account(&sa, MANAGER, "uid-2").created_by_us);
        assert!(!ObservedServiceAccount::from_service_account(&sa, MANAGER, "").created_by_us);
    }

    #[test]
    fn annotation_plans() {
        let wanted = wanted_annotations(ARN, "sts.amazonaws.com", None, None);
        let ours = [(ROLE_ARN, ARN), (AUDIENCE, "sts.amazonaws.com")];
        let cases = [
            (observed(&[], &[]), AnnotationPlan::Apply),
            (
                observed(&ours, &[ROLE_ARN, AUDIENCE]),
                AnnotationPlan::InPlace,
            ),
            // Same values set by hand: nothing to do, and nothing of ours to clean later.
            (observed(&ours, &[]), AnnotationPlan::InPlace),
            // Written before the audience was always set: it is added.
            (
                observed(&[(ROLE_ARN, ARN)], &[ROLE_ARN]),
                AnnotationPlan::Apply,
            ),
            // Our own previous role (renamed): repaired.
            (
                observed(
                    &[(ROLE_ARN, "arn:aws:iam::123456789012:role/old")],
                    &[ROLE_ARN],
                ),
                AnnotationPlan::Apply,
            ),
            // An annotation we no longer want: applied away.
            (
                observed(
                    &[
                        (ROLE_ARN, ARN),
                        (AUDIENCE, "sts.amazonaws.com"),
                        (TOKEN_EXPIRATION, "3600"),
                    ],
                    &[ROLE_ARN, AUDIENCE, TOKEN_EXPIRATION],
                ),
                AnnotationPlan::Apply,
            ),
            (
                observed(&[(ROLE_ARN, "arn:aws:iam::123456789012:role/theirs")], &[]),
                AnnotationPlan::ForeignRoleArn("arn:aws:iam::123456789012:role/theirs".into()),
            ),
            // The seed's "Incorrect token audience": someone else's audience.
            (
                observed(&[(AUDIENCE, "sts.amazon.com")], &[]),
                AnnotationPlan::ForeignAudience("sts.amazon.com".into()),
            ),
            // Someone else's annotation we do not want: left alone.
            (
                observed(&[(TOKEN_EXPIRATION, "3600")], &[]),
                AnnotationPlan::Apply,
            ),
            // An audience we set earlier for another spec.audience: ours to change.
            (
                observed(
                    &[(ROLE_ARN, ARN), (AUDIENCE, "custom")],
                    &[ROLE_ARN, AUDIENCE],
                ),
                AnnotationPlan::Apply,
            ),
        ];
        for (account, expected) in cases {
            assert_eq!(
                plan_annotations(&account, &wanted),
                expected,
                "{:?}",
                account.annotations
            );
        }
    }

    #[test]
    fn someone_elses_value_of_an_annotation_we_want_is_named_not_fought_over() {
        let wanted = wanted_annotations(ARN, "sts.amazonaws.com", Some(true), Some(7200));
        let theirs = observed(&[(TOKEN_EXPIRATION, "3600")], &[]);
        assert_eq!(
            plan_annotations(&theirs, &wanted),
            AnnotationPlan::ForeignAnnotation {
                key: TOKEN_EXPIRATION.into(),
                found: "3600".into()
            }
        );
        // The same value is shared, not fought over.
        let same = observed(&[(TOKEN_EXPIRATION, "7200")], &[]);
        assert_eq!(plan_annotations(&same, &wanted), AnnotationPlan::Apply);
    }
}
