//! The `Ready` condition and every reason it can carry, in one place, so that
//! users (and alerts) can rely on the names.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use schemars::{Schema, SchemaGenerator, json_schema};

pub const READY: &str = "Ready";

pub mod reason {
    //! `UpperCamelCase` reasons of the `Ready` condition.
    pub const SYNCED: &str = "Synced";
    pub const RECONCILING: &str = "Reconciling";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const INVALID_POLICY: &str = "InvalidPolicy";
    pub const GUARDRAIL_VIOLATION: &str = "GuardrailViolation";
    pub const ROLE_NOT_OWNED: &str = "RoleNotOwned";
    pub const ROLE_NOT_FOUND: &str = "RoleNotFound";
    pub const BORROWED_ROLE: &str = "BorrowedRole";
    pub const ROLE_DOES_NOT_TRUST_POD_IDENTITY: &str = "RoleDoesNotTrustPodIdentity";
    pub const OIDC_PROVIDER_NOT_FOUND: &str = "OIDCProviderNotFound";
    pub const AUDIENCE_NOT_ALLOWED: &str = "AudienceNotAllowed";
    pub const SERVICE_ACCOUNT_ANNOTATION_MISMATCH: &str = "ServiceAccountAnnotationMismatch";
    pub const SERVICE_ACCOUNT_AUDIENCE_MISMATCH: &str = "ServiceAccountAudienceMismatch";
    pub const SERVICE_ACCOUNT_CONFLICT: &str = "ServiceAccountConflict";
    pub const SERVICE_ACCOUNT_NOT_FOUND: &str = "ServiceAccountNotFound";
    pub const ASSOCIATION_CONFLICT: &str = "AssociationConflict";
    pub const WAITING_FOR_PROPAGATION: &str = "WaitingForPropagation";
    pub const CLUSTER_NOT_FOUND: &str = "ClusterNotFound";
    pub const IRSA_ROLE_TAKES_PRECEDENCE: &str = "IRSARoleTakesPrecedence";
    pub const POLICY_NOT_FOUND: &str = "PolicyNotFound";
    pub const ACCESS_DENIED: &str = "AccessDenied";
    pub const AWS_ERROR: &str = "AWSError";
    pub const KUBERNETES_ERROR: &str = "KubernetesError";
    pub const DELETING: &str = "Deleting";
    pub const DELETE_CONFLICT: &str = "DeleteConflict";
}

/// A `Ready` condition as it should read now. `previous` is the condition
/// currently in status: its `lastTransitionTime` is kept unless the status
/// flips, so that the time tells when readiness last changed.
pub fn ready_condition(
    ready: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: Option<&Condition>,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let last_transition_time = match previous {
        Some(prev) if prev.status == status => prev.last_transition_time.clone(),
        _ => Time(Timestamp::now()),
    };
    Condition {
        type_: READY.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Whether two conditions say the same thing, ignoring the timestamp.
pub fn same_condition(a: &Condition, b: &Condition) -> bool {
    a.type_ == b.type_
        && a.status == b.status
        && a.reason == b.reason
        && a.message == b.message
        && a.observed_generation == b.observed_generation
}

pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Conditions are a list-map keyed by `type`, so server-side apply merges
/// them per type instead of replacing the list.
pub fn conditions_schema(generator: &mut SchemaGenerator) -> Schema {
    let item = generator.subschema_for::<Condition>();
    json_schema!({
        "type": "array",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition_at(status: &str, seconds: i64) -> Condition {
        Condition {
            type_: READY.into(),
            status: status.into(),
            reason: reason::SYNCED.into(),
            message: "m".into(),
            observed_generation: Some(1),
            last_transition_time: Time(Timestamp::from_second(seconds).expect("valid timestamp")),
        }
    }

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let prev = condition_at("True", 1_000);
        let next = ready_condition(true, reason::SYNCED, "other".into(), Some(2), Some(&prev));
        assert_eq!(next.last_transition_time, prev.last_transition_time);
    }

    #[test]
    fn transition_time_moves_when_status_flips() {
        let prev = condition_at("True", 1_000);
        let next = ready_condition(
            false,
            reason::INVALID_SPEC,
            "bad".into(),
            Some(2),
            Some(&prev),
        );
        assert_ne!(next.last_transition_time, prev.last_transition_time);
        assert_eq!(next.status, "False");
    }

    #[test]
    fn same_condition_ignores_time_only() {
        let a = condition_at("True", 1);
        let b = condition_at("True", 2);
        assert!(same_condition(&a, &b));
        let mut c = condition_at("True", 1);
        c.message = "changed".into();
        assert!(!same_condition(&a, &c));
        let mut d = condition_at("True", 1);
        d.observed_generation = Some(3);
        assert!(!same_condition(&a, &d));
    }
}
