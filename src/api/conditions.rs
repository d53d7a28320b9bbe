//! The conditions of both kinds and every reason they carry, in one place,
//! so that users, alerts and GitOps tools can rely on the names. `Ready`
//! says whether pods get their credentials; `Reconciling` and `Stalled`
//! follow kstatus, which Flux and other tools read instead of `Ready`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use schemars::{Schema, SchemaGenerator, json_schema};

pub const READY: &str = "Ready";
/// kstatus: the operator is working on the object, or waiting on something
/// that resolves by itself.
pub const RECONCILING: &str = "Reconciling";
/// kstatus: retrying will not help until something is changed.
pub const STALLED: &str = "Stalled";

/// Where a reconcile left the object, as kstatus sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// In sync, or refused: nothing more is being done.
    Done,
    /// Working, or waiting on something that clears by itself.
    Working,
    /// Refused or failing until a person changes something.
    Stalled,
}

/// The conditions to write: `Ready` (`None`: Unknown), and `Reconciling` or
/// `Stalled` as `progress` says; the one not named is left out, so that
/// server-side apply removes it. Transition times of conditions whose
/// status did not change are kept from `previous`.
pub fn conditions_for(
    ready: Option<bool>,
    reason: &str,
    message: &str,
    progress: Progress,
    generation: Option<i64>,
    previous: &[Condition],
) -> Vec<Condition> {
    let status = match ready {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    };
    let mut conditions = vec![condition(
        READY, status, reason, message, generation, previous,
    )];
    let extra = match progress {
        Progress::Done => None,
        Progress::Working => Some(RECONCILING),
        Progress::Stalled => Some(STALLED),
    };
    if let Some(type_) = extra {
        conditions.push(condition(
            type_, "True", reason, message, generation, previous,
        ));
    }
    conditions
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    previous: &[Condition],
) -> Condition {
    let last_transition_time = match find(previous, type_) {
        Some(prev) if prev.status == status => prev.last_transition_time.clone(),
        _ => Time(Timestamp::now()),
    };
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time,
    }
}

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
    pub const ROLE_DOES_NOT_TRUST_SERVICE_ACCOUNT: &str = "RoleDoesNotTrustServiceAccount";
    pub const ADOPTION_REFUSED: &str = "AdoptionRefused";
    pub const PODS_NEED_RESTART: &str = "PodsNeedRestart";
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
    pub const POD_IDENTITY_AGENT_NOT_READY: &str = "PodIdentityAgentNotReady";
    pub const SERVICE_ACCOUNT_ISSUER_MISMATCH: &str = "ServiceAccountIssuerMismatch";
    pub const POLICY_NOT_FOUND: &str = "PolicyNotFound";
    pub const ACCESS_DENIED: &str = "AccessDenied";
    pub const LIMIT_EXCEEDED: &str = "LimitExceeded";
    pub const AWS_REFUSED_POLICY: &str = "MalformedPolicyDocument";
    pub const AWS_ERROR: &str = "AWSError";
    pub const KUBERNETES_ERROR: &str = "KubernetesError";
    pub const DELETING: &str = "Deleting";
    pub const DELETE_CONFLICT: &str = "DeleteConflict";
}

/// Whether two lists of conditions say the same thing, ignoring
/// timestamps and order.
pub fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|x| find(b, &x.type_).is_some_and(|y| same_condition(x, y)))
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
        let next = condition(
            READY,
            "True",
            reason::SYNCED,
            "other",
            Some(2),
            std::slice::from_ref(&prev),
        );
        assert_eq!(next.last_transition_time, prev.last_transition_time);
    }

    #[test]
    fn transition_time_moves_when_status_flips() {
        let prev = condition_at("True", 1_000);
        let next = condition(
            READY,
            "False",
            reason::INVALID_SPEC,
            "bad",
            Some(2),
            std::slice::from_ref(&prev),
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

    #[test]
    fn kstatus_conditions_follow_progress() {
        let done = conditions_for(
            Some(true),
            reason::SYNCED,
            "ok",
            Progress::Done,
            Some(2),
            &[],
        );
        assert_eq!(done.len(), 1);
        assert_eq!(
            (done[0].type_.as_str(), done[0].status.as_str()),
            (READY, "True")
        );
        let working = conditions_for(
            None,
            reason::RECONCILING,
            "working on generation 3",
            Progress::Working,
            Some(3),
            &done,
        );
        let types: Vec<(&str, &str)> = working
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(types, [(READY, "Unknown"), (RECONCILING, "True")]);
        assert!(working.iter().all(|c| c.observed_generation == Some(3)));
        let stalled = conditions_for(
            Some(false),
            reason::GUARDRAIL_VIOLATION,
            "rule x",
            Progress::Stalled,
            Some(3),
            &working,
        );
        let types: Vec<(&str, &str)> = stalled
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(types, [(READY, "False"), (STALLED, "True")]);
        assert_eq!(stalled[1].reason, reason::GUARDRAIL_VIOLATION);
        assert_eq!(stalled[1].message, "rule x");
    }

    #[test]
    fn transition_times_are_kept_per_type_while_the_status_holds() {
        let mut first = conditions_for(
            Some(false),
            reason::SERVICE_ACCOUNT_NOT_FOUND,
            "a",
            Progress::Working,
            Some(1),
            &[],
        );
        for c in &mut first {
            c.last_transition_time = Time(Timestamp::from_second(1_000).expect("valid"));
        }
        let again = conditions_for(
            Some(false),
            reason::WAITING_FOR_PROPAGATION,
            "b",
            Progress::Working,
            Some(1),
            &first,
        );
        assert!(
            again
                .iter()
                .zip(&first)
                .all(|(a, b)| a.last_transition_time == b.last_transition_time)
        );
        assert!(same_conditions(&first, &first));
        assert!(!same_conditions(&first, &again));
        let mut reordered = first.clone();
        reordered.reverse();
        assert!(same_conditions(&first, &reordered));
    }
}
