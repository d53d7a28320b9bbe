//! Every way a reconcile can end other than "in sync": a refusal the plan
//! decided from what it observed (see `crate::policy::refusal`), or a call
//! that failed. Each maps to one `Ready` reason and says whether retrying
//! soon may help.

use crate::api::conditions::reason;
use crate::aws::{AwsError, AwsErrorKind};
use crate::policy::refusal::{Refusal, Retry};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Refused(#[from] Refusal),

    #[error("AWS {0}")]
    Aws(#[from] AwsError),

    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error("finalizer: {0}")]
    Finalizer(String),

    /// AWS answered in a way that breaks what the operator relies on; the
    /// next attempt reads everything again.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

impl Error {
    /// The `Ready` condition's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Refused(refusal) => refusal.reason(),
            Error::Aws(e) => match (e.kind, e.code.as_str()) {
                (_, "DeleteConflict") => reason::DELETE_CONFLICT,
                (AwsErrorKind::AccessDenied, _) => reason::ACCESS_DENIED,
                (_, "MalformedPolicyDocument") => reason::AWS_REFUSED_POLICY,
                (AwsErrorKind::Limit, _) => reason::LIMIT_EXCEEDED,
                (AwsErrorKind::NotFound, _) if e.operation == "AttachRolePolicy" => {
                    reason::POLICY_NOT_FOUND
                }
                _ => reason::AWS_ERROR,
            },
            Error::Kube(_) | Error::Finalizer(_) => reason::KUBERNETES_ERROR,
            Error::Unexpected(_) => reason::AWS_ERROR,
        }
    }

    /// A static label for metrics; never formatted from the error's content.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Refused(refusal) => refusal.metric_label(),
            Error::Aws(_) => "aws",
            Error::Kube(_) => "kubernetes",
            Error::Finalizer(_) => "finalizer",
            Error::Unexpected(_) => "unexpected",
        }
    }

    /// Retrying soon, with backoff, may succeed without anyone changing
    /// anything.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Refused(_) => false,
            Error::Aws(e) => e.is_transient(),
            // The API server refusing a request (403, 422, ...) will refuse
            // it again; conflicts, throttling and 5xx pass.
            Error::Kube(kube::Error::Api(status)) => {
                !(400..500).contains(&status.code) || [409, 429].contains(&status.code)
            }
            Error::Kube(_) | Error::Finalizer(_) | Error::Unexpected(_) => true,
        }
    }

    /// A state that clears by itself: told as a Normal Event, not a Warning.
    pub fn is_waiting(&self) -> bool {
        matches!(self, Error::Refused(refusal) if refusal.is_waiting())
    }

    /// For errors that are not transient: when to look again.
    pub fn retry(&self) -> Retry {
        match self {
            Error::Refused(refusal) => refusal.retry(),
            _ => Retry::Terminal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::desire::InvalidSpec;

    fn aws(operation: &'static str, code: &str) -> Error {
        Error::Aws(AwsError {
            operation,
            kind: crate::aws::error::classify(code),
            code: code.into(),
            message: String::new(),
        })
    }

    #[test]
    fn aws_errors_map_to_named_reasons() {
        assert_eq!(
            aws("DeleteRole", "DeleteConflict").reason(),
            reason::DELETE_CONFLICT
        );
        assert_eq!(
            aws("CreateRole", "AccessDenied").reason(),
            reason::ACCESS_DENIED
        );
        assert_eq!(
            aws("AttachRolePolicy", "NoSuchEntity").reason(),
            reason::POLICY_NOT_FOUND
        );
        assert_eq!(aws("GetRole", "ServiceFailure").reason(), reason::AWS_ERROR);
        assert_eq!(
            aws("PutRolePolicy", "MalformedPolicyDocument").reason(),
            reason::AWS_REFUSED_POLICY
        );
        assert_eq!(
            aws("AttachRolePolicy", "LimitExceeded").reason(),
            reason::LIMIT_EXCEEDED
        );
    }

    #[test]
    fn only_retryable_errors_are_transient() {
        assert!(aws("GetRole", "Throttling").is_transient());
        assert!(aws("DeleteRole", "DeleteConflict").is_transient());
        assert!(!aws("CreateRole", "AccessDenied").is_transient());
        assert!(!Error::from(Refusal::InvalidSpec(InvalidSpec(vec!["x".into()]))).is_transient());
    }

    #[test]
    fn every_variant_has_a_distinct_metric_label() {
        let errors = [
            Error::from(Refusal::InvalidSpec(InvalidSpec(vec![]))),
            Error::from(Refusal::ServiceAccountConflict {
                kind: "IamServiceAccount",
                service_account: "a".into(),
                winner: "b".into(),
            }),
            Error::from(Refusal::ServiceAccountNotFound {
                service_account: "a".into(),
                role_arn: "r".into(),
            }),
            aws("GetRole", "Throttling"),
            Error::Finalizer("x".into()),
            Error::Unexpected("x".into()),
        ];
        let labels: std::collections::BTreeSet<_> =
            errors.iter().map(Error::metric_label).collect();
        assert_eq!(labels.len(), errors.len());
    }
}
