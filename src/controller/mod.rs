//! The controllers: one reconciler per kind over shared role machinery,
//! sequencing observe → desire → plan → apply → report. The only module that
//! combines Kubernetes and AWS I/O.

pub mod backoff;
pub mod context;
pub mod error;
pub mod events;
pub mod iam_service_account;
pub mod lifecycle;
pub mod pod_identity_binding;
pub mod role;
pub mod service_account;
pub mod status;

pub use context::Context;
pub use error::Error;

/// Finalizer on every object that may own something in AWS.
pub const FINALIZER: &str = "iam-operator.io/cleanup";

/// The one field manager for everything the operator applies.
pub const FIELD_MANAGER: &str = "iam-operator";
