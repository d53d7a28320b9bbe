//! One error type for every AWS call, classified by the error code AWS sends,
//! so the controller can tell "fix your spec" from "try again".

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The thing does not exist (`NoSuchEntity`, `ResourceNotFoundException`).
    NotFound,
    /// Exists already, or still in use (`EntityAlreadyExists`, `DeleteConflict`, ...).
    Conflict,
    /// AWS asks us to slow down.
    Throttled,
    /// The operator's own credentials lack a permission.
    AccessDenied,
    /// AWS refused the input (`MalformedPolicyDocument`, `InvalidInput`, ...).
    Invalid,
    /// A quota was hit (`LimitExceeded`).
    Limit,
    /// Network, timeouts, 5xx: retrying may help.
    Unavailable,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation}: {code}: {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub kind: AwsErrorKind,
    /// AWS's error code, or a description of the transport failure.
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let (code, message) = match &err {
            SdkError::ServiceError(service) => (
                service.err().code().unwrap_or("Unknown").to_string(),
                service.err().message().unwrap_or_default().to_string(),
            ),
            SdkError::TimeoutError(_) => ("Timeout".to_string(), "request timed out".to_string()),
            SdkError::DispatchFailure(failure) => {
                ("DispatchFailure".to_string(), format!("{failure:?}"))
            }
            other => (
                "ResponseError".to_string(),
                aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
            ),
        };
        AwsError {
            operation,
            kind: classify(&code),
            code,
            message,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == AwsErrorKind::NotFound
    }

    /// EKS refusing a Pod Identity role because it cannot find it, which
    /// right after `CreateRole` means IAM has not propagated the role yet.
    pub fn is_role_not_visible(&self) -> bool {
        let message = self.message.to_lowercase();
        // A target role is checked before the call; a refusal naming it is
        // about that role, not about propagation of ours.
        self.code == "InvalidParameterException"
            && message.contains("role")
            && !message.contains("target")
            && ["does not exist", "not found", "invalid"]
                .iter()
                .any(|phrase| message.contains(phrase))
    }

    /// Whether retrying the same call later may succeed without anyone
    /// changing anything.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            AwsErrorKind::Throttled | AwsErrorKind::Unavailable | AwsErrorKind::Conflict => true,
            // The role vanished between reading and writing: look again soon.
            // A missing policy, though, is the spec's to fix.
            AwsErrorKind::NotFound => !matches!(
                self.operation,
                "AttachRolePolicy" | "PutRolePermissionsBoundary"
            ),
            _ => false,
        }
    }
}

/// A result whose "does not exist" error means absence: `Ok(None)`.
/// Readers use it to observe, cleanup to treat already-gone as done.
pub fn absent_as_none<T>(result: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

/// Classifies by AWS error code. Codes are stable API; HTTP statuses differ
/// between IAM and its emulators.
pub fn classify(code: &str) -> AwsErrorKind {
    match code {
        "NoSuchEntity" | "ResourceNotFoundException" | "NotFoundException" => {
            AwsErrorKind::NotFound
        }
        "EntityAlreadyExists"
        | "DeleteConflict"
        | "ConcurrentModification"
        | "ResourceInUseException" => AwsErrorKind::Conflict,
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => AwsErrorKind::Throttled,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "ExpiredToken"
        | "SignatureDoesNotMatch" => AwsErrorKind::AccessDenied,
        "MalformedPolicyDocument"
        | "InvalidInput"
        | "ValidationError"
        | "InvalidParameterException"
        | "InvalidRequestException"
        | "UnmodifiableEntity"
        | "PackedPolicyTooLarge" => AwsErrorKind::Invalid,
        "LimitExceeded" | "ResourceLimitExceededException" => AwsErrorKind::Limit,
        _ => AwsErrorKind::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify_as_aws_documents_them() {
        for (code, kind) in [
            ("NoSuchEntity", AwsErrorKind::NotFound),
            ("ResourceNotFoundException", AwsErrorKind::NotFound),
            ("EntityAlreadyExists", AwsErrorKind::Conflict),
            ("DeleteConflict", AwsErrorKind::Conflict),
            ("Throttling", AwsErrorKind::Throttled),
            ("ThrottlingException", AwsErrorKind::Throttled),
            ("AccessDenied", AwsErrorKind::AccessDenied),
            ("MalformedPolicyDocument", AwsErrorKind::Invalid),
            ("InvalidParameterException", AwsErrorKind::Invalid),
            ("LimitExceeded", AwsErrorKind::Limit),
            ("ServiceFailure", AwsErrorKind::Unavailable),
            ("ServerException", AwsErrorKind::Unavailable),
            ("Timeout", AwsErrorKind::Unavailable),
        ] {
            assert_eq!(classify(code), kind, "{code}");
        }
    }

    #[test]
    fn eks_refusing_an_unseen_role_is_recognised() {
        let eks = |code: &str, message: &str| AwsError {
            operation: "CreatePodIdentityAssociation",
            kind: classify(code),
            code: code.into(),
            message: message.into(),
        };
        assert!(
            eks(
                "InvalidParameterException",
                "Role provided in the request does not exist"
            )
            .is_role_not_visible()
        );
        assert!(eks("InvalidParameterException", "Invalid role ARN").is_role_not_visible());
        assert!(
            !eks(
                "InvalidParameterException",
                "Tag keys must not start with aws:"
            )
            .is_role_not_visible()
        );
        assert!(!eks("ResourceNotFoundException", "role does not exist").is_role_not_visible());
    }

    #[test]
    fn only_retryable_kinds_are_transient() {
        let error = |kind| AwsError {
            operation: "GetRole",
            kind,
            code: String::new(),
            message: String::new(),
        };
        assert!(error(AwsErrorKind::Throttled).is_transient());
        assert!(error(AwsErrorKind::Unavailable).is_transient());
        assert!(!error(AwsErrorKind::AccessDenied).is_transient());
        assert!(!error(AwsErrorKind::Invalid).is_transient());
        assert!(!error(AwsErrorKind::Limit).is_transient());
        assert!(
            error(AwsErrorKind::NotFound).is_transient(),
            "role gone mid-reconcile"
        );
        let missing_policy = AwsError {
            operation: "AttachRolePolicy",
            ..error(AwsErrorKind::NotFound)
        };
        assert!(!missing_policy.is_transient());
    }
}
