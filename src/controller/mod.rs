//! The controllers: each kind's reads, and what both share — the lifecycle
//! that drives observe → plan → execute → report, the one executor, status
//! and Events. The only module that combines Kubernetes and AWS I/O; the
//! decisions are `crate::policy`'s.

pub mod api_server_issuer;
pub mod backoff;
pub mod claim_index;
pub mod context;
pub mod error;
pub mod events;
pub mod execute;
pub mod first_check;
pub mod guardrails_file;
pub mod iam_service_account;
pub mod initial_state;
pub mod kind;
pub mod lifecycle;
pub mod observe;
pub mod pod_identity_binding;
pub mod shared_facts;
#[cfg(test)]
mod stand_ins;
pub mod status;
pub mod taking_charge;
pub mod triggers;

pub use context::Context;
pub use error::Error;

/// Finalizer on every object that may own something in AWS.
pub const FINALIZER: &str = "iam-operator.io/cleanup";

/// The one field manager for everything the operator applies.
pub const FIELD_MANAGER: &str = "iam-operator";
