//! iam-operator: reconciles AWS IAM roles for IRSA and EKS Pod Identity from
//! Kubernetes custom resources.
pub mod api;
pub mod aws;
pub mod config;
pub mod controller;
pub mod crds;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod policy;
