//! Every way a reconcile can end other than "in sync": what the user must
//! change (terminal), what resolves by itself (waiting), and what retrying
//! fixes (transient). Each maps to one `Ready` reason.

use std::time::Duration;

use crate::api::conditions::reason;
use crate::aws::{AwsError, AwsErrorKind};
use crate::policy::association_plan::AssociationConflict;
use crate::policy::desire::InvalidSpec;
use crate::policy::role_plan::RoleNotOwned;

/// How soon to look again at something that fixes itself (a provider being
/// created, a ServiceAccount being applied by the same Git sync).
pub const WAITING_REQUEUE: Duration = Duration::from_secs(30);
/// How soon to look again at something only a person can fix: slow, but not
/// never, so a fix made outside Kubernetes (in IAM) is noticed.
pub const TERMINAL_REQUEUE: Duration = Duration::from_secs(300);
/// How soon to try again while IAM propagates a new role to EKS, which
/// usually takes seconds.
pub const PROPAGATION_REQUEUE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] InvalidSpec),

    #[error("{0}")]
    RoleNotOwned(#[from] RoleNotOwned),

    #[error(
        "No OpenIDConnect provider found in your account for issuer {issuer}: pods would fail with \
         \"InvalidIdentityToken: No OpenIDConnect provider found in your account\". Create the IAM OIDC \
         provider {provider_arn} with client ID {audience} (for example `eksctl utils \
         associate-iam-oidc-provider --cluster {cluster} --approve`)"
    )]
    OidcProviderNotFound {
        issuer: String,
        provider_arn: String,
        audience: String,
        cluster: String,
    },

    #[error(
        "Incorrect token audience: the IAM OIDC provider {provider_arn} lists client IDs [{}] but the \
         ServiceAccount's tokens carry audience {audience}; add {audience} to the provider's client IDs \
         (aws iam add-client-id-to-open-id-connect-provider) or set spec.audience to one it lists",
        allowed.join(", ")
    )]
    AudienceNotAllowed {
        provider_arn: String,
        audience: String,
        allowed: Vec<String>,
    },

    #[error(
        "ServiceAccount {service_account} is annotated with eks.amazonaws.com/role-arn={found}, set by \
         someone else; pods would assume that role, and fail with \"Not authorized to perform \
         sts:AssumeRoleWithWebIdentity\" {detail}. Remove the annotation (or point this object at \
         another ServiceAccount) and the operator will set {expected}"
    )]
    ServiceAccountAnnotationMismatch {
        service_account: String,
        found: String,
        expected: String,
        detail: String,
    },

    #[error(
        "ServiceAccount {service_account} is already claimed by {kind} {winner}, which is older; \
         delete one of the two or point this one at another ServiceAccount"
    )]
    ServiceAccountConflict {
        kind: &'static str,
        service_account: String,
        winner: String,
    },

    #[error(
        "ServiceAccount {service_account} does not exist yet: create it, or set \
         spec.serviceAccount.create: true; the role {role_arn} is ready"
    )]
    ServiceAccountNotFound {
        service_account: String,
        role_arn: String,
    },

    #[error(
        "IAM role {role_arn} ({field}) does not exist; create it or correct the ARN. No Pod \
         Identity association was made, as it would give pods no credentials"
    )]
    RoleNotFound {
        field: &'static str,
        role_arn: String,
    },

    #[error(
        "the trust policy of IAM role {role_arn} does not allow the EKS Pod Identity principal \
         pods.eks.amazonaws.com to {}; pods would get no credentials. Add a statement allowing \
         Service pods.eks.amazonaws.com the actions sts:AssumeRole and sts:TagSession (the operator \
         never edits a role it did not create)",
        missing.join(" and ")
    )]
    RoleDoesNotTrustPodIdentity {
        role_arn: String,
        missing: Vec<&'static str>,
    },

    #[error("{0}")]
    AssociationConflict(#[from] AssociationConflict),

    #[error(
        "EKS does not see IAM role {role_arn} yet ({detail}); the role is new and IAM changes take \
         a few seconds to reach EKS, so the operator retries shortly"
    )]
    WaitingForPropagation { role_arn: String, detail: String },

    #[error(
        "EKS cluster {cluster} was not found in region {region} ({detail}); Pod Identity \
         associations live in the cluster. Check the operator's --cluster-name and AWS region"
    )]
    ClusterNotFound {
        cluster: String,
        region: String,
        detail: String,
    },

    #[error(
        "ServiceAccount {service_account} also carries the IRSA annotation \
         eks.amazonaws.com/role-arn={irsa_role}. The AWS SDKs' default credential provider chain \
         tries web identity credentials (IRSA) before the container credential provider that \
         serves EKS Pod Identity, so pods using it get {irsa_role}, not {pod_identity_role}. \
         Remove the annotation to switch the pods to Pod Identity (the association is in place; \
         see https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html)"
    )]
    IrsaRoleTakesPrecedence {
        service_account: String,
        irsa_role: String,
        pod_identity_role: String,
    },

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
            Error::InvalidSpec(_) => reason::INVALID_SPEC,
            Error::RoleNotOwned(_) => reason::ROLE_NOT_OWNED,
            Error::OidcProviderNotFound { .. } => reason::OIDC_PROVIDER_NOT_FOUND,
            Error::AudienceNotAllowed { .. } => reason::AUDIENCE_NOT_ALLOWED,
            Error::ServiceAccountAnnotationMismatch { .. } => {
                reason::SERVICE_ACCOUNT_ANNOTATION_MISMATCH
            }
            Error::ServiceAccountConflict { .. } => reason::SERVICE_ACCOUNT_CONFLICT,
            Error::ServiceAccountNotFound { .. } => reason::SERVICE_ACCOUNT_NOT_FOUND,
            Error::RoleNotFound { .. } => reason::ROLE_NOT_FOUND,
            Error::RoleDoesNotTrustPodIdentity { .. } => reason::ROLE_DOES_NOT_TRUST_POD_IDENTITY,
            Error::AssociationConflict(_) => reason::ASSOCIATION_CONFLICT,
            Error::WaitingForPropagation { .. } => reason::WAITING_FOR_PROPAGATION,
            Error::ClusterNotFound { .. } => reason::CLUSTER_NOT_FOUND,
            Error::IrsaRoleTakesPrecedence { .. } => reason::IRSA_ROLE_TAKES_PRECEDENCE,
            Error::Aws(e) => match (e.kind, e.code.as_str()) {
                (_, "DeleteConflict") => reason::DELETE_CONFLICT,
                (AwsErrorKind::AccessDenied, _) => reason::ACCESS_DENIED,
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
            Error::InvalidSpec(_) => "invalid_spec",
            Error::RoleNotOwned(_) => "role_not_owned",
            Error::OidcProviderNotFound { .. } => "oidc_provider_not_found",
            Error::AudienceNotAllowed { .. } => "audience_not_allowed",
            Error::ServiceAccountAnnotationMismatch { .. } => "service_account_annotation_mismatch",
            Error::ServiceAccountConflict { .. } => "service_account_conflict",
            Error::ServiceAccountNotFound { .. } => "service_account_not_found",
            Error::RoleNotFound { .. } => "role_not_found",
            Error::RoleDoesNotTrustPodIdentity { .. } => "role_does_not_trust_pod_identity",
            Error::AssociationConflict(_) => "association_conflict",
            Error::WaitingForPropagation { .. } => "waiting_for_propagation",
            Error::ClusterNotFound { .. } => "cluster_not_found",
            Error::IrsaRoleTakesPrecedence { .. } => "irsa_role_takes_precedence",
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
            Error::Aws(e) => e.is_transient(),
            // The API server refusing a request (403, 422, ...) will refuse
            // it again; conflicts, throttling and 5xx pass.
            Error::Kube(kube::Error::Api(status)) => {
                !(400..500).contains(&status.code) || [409, 429].contains(&status.code)
            }
            Error::Kube(_) | Error::Finalizer(_) | Error::Unexpected(_) => true,
            _ => false,
        }
    }

    /// For errors that are not transient: when to look again.
    pub fn requeue_after(&self) -> Duration {
        match self {
            Error::OidcProviderNotFound { .. }
            | Error::AudienceNotAllowed { .. }
            | Error::ServiceAccountNotFound { .. }
            | Error::ServiceAccountAnnotationMismatch { .. }
            | Error::ServiceAccountConflict { .. }
            | Error::RoleNotFound { .. }
            | Error::RoleDoesNotTrustPodIdentity { .. }
            | Error::AssociationConflict(_) => WAITING_REQUEUE,
            Error::WaitingForPropagation { .. } => PROPAGATION_REQUEUE,
            _ => TERMINAL_REQUEUE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn only_retryable_errors_are_transient() {
        assert!(aws("GetRole", "Throttling").is_transient());
        assert!(aws("DeleteRole", "DeleteConflict").is_transient());
        assert!(!aws("CreateRole", "AccessDenied").is_transient());
        assert!(!Error::InvalidSpec(InvalidSpec(vec!["x".into()])).is_transient());
    }

    #[test]
    fn messages_carry_the_classic_aws_wording_and_the_fix() {
        let e = Error::OidcProviderNotFound {
            issuer: "https://oidc.example/id/1".into(),
            provider_arn: "arn:aws:iam::1:oidc-provider/oidc.example/id/1".into(),
            audience: "sts.amazonaws.com".into(),
            cluster: "prod".into(),
        };
        assert!(
            e.to_string()
                .contains("No OpenIDConnect provider found in your account")
        );
        assert!(e.to_string().contains("associate-iam-oidc-provider"));
        let e = Error::AudienceNotAllowed {
            provider_arn: "p".into(),
            audience: "sts.amazonaws.com".into(),
            allowed: vec!["sts.amazon.com".into()],
        };
        assert!(e.to_string().contains("Incorrect token audience"));
        assert!(e.to_string().contains("sts.amazon.com"));
        assert_eq!(e.requeue_after(), WAITING_REQUEUE);
    }

    #[test]
    fn every_variant_has_a_distinct_metric_label() {
        let errors = [
            Error::InvalidSpec(InvalidSpec(vec![])),
            Error::ServiceAccountConflict {
                kind: "IamServiceAccount",
                service_account: "a".into(),
                winner: "b".into(),
            },
            Error::ServiceAccountNotFound {
                service_account: "a".into(),
                role_arn: "r".into(),
            },
            aws("GetRole", "Throttling"),
            Error::Finalizer("x".into()),
            Error::Unexpected("x".into()),
        ];
        let labels: std::collections::BTreeSet<_> =
            errors.iter().map(Error::metric_label).collect();
        assert_eq!(labels.len(), errors.len());
    }
}
