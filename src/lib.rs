//! iam-operator: reconciles AWS IAM roles for IRSA and EKS Pod Identity from
//! Kubernetes custom resources.
pub mod api;
pub mod config;
pub mod crds;
pub mod policy;
