//! A burst of 5xx slows the whole client down the way throttling does.
//!
//! The SDK's adaptive retry lowers one send rate shared by every call of a
//! client when AWS throttles, but it retries a 5xx as a transient error: each
//! call on its own schedule, at full rate. With many objects reconciled at
//! once, a 5xx burst from IAM is then met by every reconcile that has a write
//! pending, and most of those attempts are refused as well (the throttling
//! test measured as many 5xx refusals as throttles). Classifying a 5xx as
//! throttling hands it to the same shared rate limiter, so the client backs
//! off as one while the service recovers and speeds up again on success.
//!
//! What that costs: the first 5xx turns the client-side rate limiter on for
//! the process's life (as the first throttle would), and a retry of a 5xx
//! then takes the SDK's throttling retry cost from the retry quota (5
//! tokens, not 10), so a long outage is retried about twice as often before
//! the quota stops it; the limiter's waits keep those retries slow.

use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority, RetryReason,
};
use aws_smithy_types::retry::ErrorKind;

#[derive(Debug, Default, Clone, Copy)]
pub struct ServerErrorsSlowDown;

impl ClassifyRetry for ServerErrorsSlowDown {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        self.classify_retry_v2(ctx, &RetryAction::NoActionIndicated)
    }

    /// Only ever turns a retry the SDK already decided on into a throttling
    /// one: what is not retried stays so, and so do 4xx and I/O errors.
    fn classify_retry_v2(&self, ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        let server_error = ctx
            .response()
            .is_some_and(|response| response.status().is_server_error());
        match previous {
            RetryAction::RetryIndicated(RetryReason::RetryableError { kind, retry_after })
                if server_error && *kind != ErrorKind::ThrottlingError =>
            {
                RetryAction::RetryIndicated(RetryReason::RetryableError {
                    kind: ErrorKind::ThrottlingError,
                    retry_after: *retry_after,
                })
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "ServerErrorsSlowDown"
    }

    /// After the SDK's own classifiers, whose verdict it refines.
    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::interceptors::context::Input;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use std::time::Duration;

    fn answered(status: u16) -> InterceptorContext {
        let mut ctx = InterceptorContext::new(Input::erase(()));
        ctx.set_response(HttpResponse::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::empty(),
        ));
        ctx
    }

    fn retry(kind: ErrorKind, retry_after: Option<Duration>) -> RetryAction {
        RetryAction::RetryIndicated(RetryReason::RetryableError { kind, retry_after })
    }

    #[test]
    fn a_retried_5xx_counts_as_throttling() {
        for status in [500, 502, 503, 504] {
            assert_eq!(
                ServerErrorsSlowDown
                    .classify_retry_v2(&answered(status), &retry(ErrorKind::TransientError, None)),
                retry(ErrorKind::ThrottlingError, None),
                "{status}"
            );
        }
        assert_eq!(
            ServerErrorsSlowDown.classify_retry_v2(
                &answered(500),
                &retry(ErrorKind::ServerError, Some(Duration::from_secs(2)))
            ),
            retry(ErrorKind::ThrottlingError, Some(Duration::from_secs(2))),
            "the server's own retry-after is kept"
        );
    }

    #[test]
    fn what_the_sdk_does_not_retry_stays_unretried() {
        assert_eq!(
            ServerErrorsSlowDown.classify_retry_v2(&answered(500), &RetryAction::NoActionIndicated),
            RetryAction::NoActionIndicated
        );
        assert_eq!(
            ServerErrorsSlowDown.classify_retry_v2(&answered(501), &RetryAction::RetryForbidden),
            RetryAction::NoActionIndicated,
            "a forbidden retry is left to the classifier that forbade it"
        );
    }

    #[test]
    fn client_errors_and_unanswered_calls_keep_their_verdict() {
        for ctx in [
            answered(400),
            answered(409),
            InterceptorContext::new(Input::erase(())),
        ] {
            assert_eq!(
                ServerErrorsSlowDown
                    .classify_retry_v2(&ctx, &retry(ErrorKind::TransientError, None)),
                RetryAction::NoActionIndicated
            );
        }
        assert_eq!(
            ServerErrorsSlowDown
                .classify_retry_v2(&answered(400), &retry(ErrorKind::ThrottlingError, None)),
            RetryAction::NoActionIndicated,
            "already throttling"
        );
    }

    #[test]
    fn it_runs_after_every_classifier_of_the_sdk() {
        for sdk in [
            RetryClassifierPriority::http_status_code_classifier(),
            RetryClassifierPriority::modeled_as_retryable_classifier(),
            RetryClassifierPriority::transient_error_classifier(),
        ] {
            assert!(ServerErrorsSlowDown.priority() > sdk);
        }
    }
}
