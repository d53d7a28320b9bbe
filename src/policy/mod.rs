//! Pure policy logic: canonical policy documents, generated trust policies and
//! checks on existing ones, deterministic role names, and validation of user
//! input against IAM's limits.
//!
//! Nothing here does I/O or is async; the `desire` and `plan` steps of a
//! reconcile build on it and are tested without AWS or a cluster.

pub mod association_plan;
pub mod binding_plan;
pub mod chain;
pub mod desire;
pub mod document;
#[cfg(test)]
pub mod fixtures;
pub mod grammar;
pub mod guardrails;
pub mod irsa_plan;
pub mod issuer;
pub mod naming;
pub mod operator_policy;
pub mod ownership;
pub mod plan;
pub mod pod_identity_agent;
pub mod provider_plan;
pub mod refusal;
pub mod role_plan;
pub mod service_account_plan;
pub mod stale_pods;
pub mod tenancy;
pub mod trust;
pub mod validate;

pub use document::{
    CURRENT_POLICY_VERSION, DEFAULT_POLICY_VERSION, DocumentError, PolicyDocument,
    non_whitespace_len,
};
pub use naming::{ROLE_NAME_MAX_LEN, is_role_name_char, role_name};
pub use trust::{
    ASSUME_ROLE_WITH_WEB_IDENTITY, POD_IDENTITY_ACTIONS, POD_IDENTITY_SERVICE, TrustVerdict,
    action_matches, irsa_trust_admits, irsa_trust_policy, issuer_host_path, oidc_provider_arn,
    pod_identity_trust_policy, service_account_subject, trusts_pod_identity,
};
pub use validate::{
    Arn, ArnError, PARTITIONS, PolicyArn, RoleArn, ValidationError, is_known_partition,
    parse_managed_policy_arn, parse_role_arn, validate_arn_partition, validate_audience,
    validate_description, validate_inline_policies_size, validate_inline_policy_name,
    validate_managed_policy_arn, validate_managed_policy_count, validate_max_session_duration,
    validate_permissions_boundary_arn, validate_role_name, validate_role_path, validate_tags,
};
