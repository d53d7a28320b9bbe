//! The contract users write in Git: the custom resource types and what both
//! kinds share. Plain data, no I/O; the CRDs in `crds/` are generated from here.

pub mod conditions;
pub mod iam_service_account;
pub mod pod_identity_binding;
pub mod shared;

pub use iam_service_account::{IamServiceAccount, IamServiceAccountSpec, IamServiceAccountStatus};
pub use pod_identity_binding::{
    PodIdentityBinding, PodIdentityBindingSpec, PodIdentityBindingStatus,
};
pub use shared::{DeletionPolicy, InlineDocument, PolicySpec, RoleSpec};

/// API group of every kind this operator serves.
pub const GROUP: &str = "iam-operator.io";
