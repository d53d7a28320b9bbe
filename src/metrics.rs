//! Prometheus metrics: reconciles and their failures by kind and static
//! reason, reconcile durations, every AWS attempt by service, operation and
//! outcome with its latency, retries, and objects by Ready state. Label
//! values are always static strings or names of AWS operations, never
//! object names, so that the series stay few.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    kind: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadyLabels {
    kind: &'static str,
    ready: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsLabels {
    service: &'static str,
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsOperationLabels {
    service: &'static str,
    operation: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// How an AWS attempt ended, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Ok,
    Throttled,
    ClientError,
    ServerError,
    /// No HTTP response: timeout, connection refused or reset.
    NoResponse,
}

impl AttemptOutcome {
    fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::Throttled => "throttled",
            AttemptOutcome::ClientError => "client_error",
            AttemptOutcome::ServerError => "server_error",
            AttemptOutcome::NoResponse => "no_response",
        }
    }

    /// From the HTTP status and the body of an error response: IAM and STS
    /// throttle with a 400 whose code is `Throttling`, EKS with a 429.
    pub fn classify(status: Option<u16>, body: Option<&[u8]>) -> Self {
        let throttled_body = || {
            body.is_some_and(|b| {
                let text = String::from_utf8_lossy(b);
                text.contains("Throttling")
                    || text.contains("TooManyRequests")
                    || text.contains("RequestLimitExceeded")
            })
        };
        match status {
            None => AttemptOutcome::NoResponse,
            Some(200..=299) => AttemptOutcome::Ok,
            Some(429) => AttemptOutcome::Throttled,
            Some(400..=499) if throttled_body() => AttemptOutcome::Throttled,
            Some(400..=499) => AttemptOutcome::ClientError,
            Some(_) => AttemptOutcome::ServerError,
        }
    }
}

/// The operator's metrics; one per process, shared by the controllers, the
/// AWS clients and the `/metrics` endpoint.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    reconcile_seconds: Histograms<KindLabels>,
    aws_attempts: Family<AwsLabels, Counter>,
    aws_seconds: Histograms<AwsOperationLabels>,
    aws_retries: Family<AwsOperationLabels, Counter>,
    objects: Family<ReadyLabels, Gauge>,
    /// The last Ready state of every object, counted into `objects` when
    /// scraped: a gauge per state cannot be kept right by increments alone
    /// when objects change state or go away.
    ready_states: Mutex<HashMap<(&'static str, String), &'static str>>,
}

fn latency_histogram() -> Histogram {
    // 5 ms to about 40 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("iam_operator");
        let reconciles = Family::<KindLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let reconcile_seconds: Histograms<KindLabels> =
            Family::new_with_constructor(latency_histogram);
        let aws_attempts = Family::<AwsLabels, Counter>::default();
        let aws_seconds: Histograms<AwsOperationLabels> =
            Family::new_with_constructor(latency_histogram);
        let aws_retries = Family::<AwsOperationLabels, Counter>::default();
        let objects = Family::<ReadyLabels, Gauge>::default();
        registry.register("reconciles", "Reconciles run, by kind", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Reconciles that ended not Ready, by kind and the Ready reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time a reconcile took, AWS and Kubernetes calls included",
            reconcile_seconds.clone(),
        );
        registry.register(
            "aws_attempts",
            "AWS HTTP attempts (each SDK retry is one), by service, operation and outcome",
            aws_attempts.clone(),
        );
        registry.register(
            "aws_attempt_duration_seconds",
            "Latency of one AWS HTTP attempt",
            aws_seconds.clone(),
        );
        registry.register(
            "aws_retries",
            "AWS attempts after the first of one call: the SDK retried",
            aws_retries.clone(),
        );
        registry.register(
            "objects",
            "Objects by kind and Ready state (true, false, unknown)",
            objects.clone(),
        );
        Arc::new(Metrics {
            registry,
            reconciles,
            failures,
            reconcile_seconds,
            aws_attempts,
            aws_seconds,
            aws_retries,
            objects,
            ready_states: Mutex::new(HashMap::new()),
        })
    }

    /// One reconcile of `kind` ended; `failure` is the Ready reason when it
    /// did not end Ready.
    pub fn reconciled(&self, kind: &'static str, took: Duration, failure: Option<&'static str>) {
        self.reconciles.get_or_create(&KindLabels { kind }).inc();
        self.reconcile_seconds
            .get_or_create(&KindLabels { kind })
            .observe(took.as_secs_f64());
        if let Some(reason) = failure {
            self.failures
                .get_or_create(&FailureLabels { kind, reason })
                .inc();
        }
    }

    /// The Ready state an object was last reported in: `Some(true)`,
    /// `Some(false)` or `None` (Unknown).
    pub fn ready_state(&self, kind: &'static str, object: String, ready: Option<bool>) {
        let state = match ready {
            Some(true) => "true",
            Some(false) => "false",
            None => "unknown",
        };
        self.lock_states().insert((kind, object), state);
    }

    /// The object is gone: it is no longer counted.
    pub fn forget(&self, kind: &'static str, object: String) {
        self.lock_states().remove(&(kind, object));
    }

    fn lock_states(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(&'static str, String), &'static str>> {
        // A panic elsewhere while holding the lock leaves a map that is
        // still consistent: keep counting.
        self.ready_states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn aws_attempt(
        &self,
        service: &'static str,
        operation: &str,
        outcome: AttemptOutcome,
        took: Duration,
        retry: bool,
    ) {
        let operation = operation.to_string();
        self.aws_attempts
            .get_or_create(&AwsLabels {
                service,
                operation: operation.clone(),
                outcome: outcome.label(),
            })
            .inc();
        let labels = AwsOperationLabels { service, operation };
        self.aws_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if retry {
            self.aws_retries.get_or_create(&labels).inc();
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut counts: HashMap<(&'static str, &'static str), i64> = HashMap::new();
        for ((kind, _), state) in self.lock_states().iter() {
            *counts.entry((kind, state)).or_default() += 1;
        }
        self.objects.clear();
        for ((kind, ready), count) in counts {
            self.objects
                .get_or_create(&ReadyLabels { kind, ready })
                .set(count);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// An interceptor for one AWS service's client that counts and times
    /// every attempt.
    pub fn aws_interceptor(self: &Arc<Self>, service: &'static str) -> AwsAttemptMetrics {
        AwsAttemptMetrics {
            service,
            metrics: self.clone(),
        }
    }
}

/// Counts every HTTP attempt an AWS client makes, retries included, which
/// only the SDK's own pipeline sees.
#[derive(Clone)]
pub struct AwsAttemptMetrics {
    service: &'static str,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for AwsAttemptMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsAttemptMetrics")
            .field("service", &self.service)
            .finish()
    }
}

/// When the current attempt started, and how many came before it.
#[derive(Debug, Clone, Copy)]
struct AttemptStarted {
    at: Instant,
    number: u32,
}

impl Storable for AttemptStarted {
    type Storer = StoreReplace<Self>;
}

impl Intercept for AwsAttemptMetrics {
    fn name(&self) -> &'static str {
        "AwsAttemptMetrics"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let number = cfg.load::<AttemptStarted>().map_or(1, |a| a.number + 1);
        cfg.interceptor_state().store_put(AttemptStarted {
            at: Instant::now(),
            number,
        });
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(started) = cfg.load::<AttemptStarted>().copied() else {
            return Ok(());
        };
        let operation = cfg
            .load::<Metadata>()
            .map_or("unknown", |m| m.name())
            .to_string();
        let response = context.response();
        let outcome = AttemptOutcome::classify(
            response.map(|r| r.status().as_u16()),
            response.and_then(|r| r.body().bytes()),
        );
        self.metrics.aws_attempt(
            self.service,
            &operation,
            outcome,
            started.at.elapsed(),
            started.number > 1,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_status_and_the_throttling_codes() {
        assert_eq!(
            AttemptOutcome::classify(None, None),
            AttemptOutcome::NoResponse
        );
        assert_eq!(
            AttemptOutcome::classify(Some(200), None),
            AttemptOutcome::Ok
        );
        assert_eq!(
            AttemptOutcome::classify(Some(429), None),
            AttemptOutcome::Throttled
        );
        let iam_throttle = b"<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>";
        assert_eq!(
            AttemptOutcome::classify(Some(400), Some(iam_throttle)),
            AttemptOutcome::Throttled
        );
        assert_eq!(
            AttemptOutcome::classify(Some(404), Some(b"<Code>NoSuchEntity</Code>")),
            AttemptOutcome::ClientError
        );
        assert_eq!(
            AttemptOutcome::classify(Some(503), None),
            AttemptOutcome::ServerError
        );
    }

    #[test]
    fn the_exposition_counts_reconciles_attempts_and_objects_by_state() {
        let metrics = Metrics::new();
        metrics.reconciled("IamServiceAccount", Duration::from_millis(30), None);
        metrics.reconciled(
            "IamServiceAccount",
            Duration::from_millis(10),
            Some("GuardrailViolation"),
        );
        metrics.aws_attempt(
            "iam",
            "GetRole",
            AttemptOutcome::Throttled,
            Duration::from_millis(5),
            false,
        );
        metrics.aws_attempt(
            "iam",
            "GetRole",
            AttemptOutcome::Ok,
            Duration::from_millis(5),
            true,
        );
        metrics.ready_state("IamServiceAccount", "a/x".into(), Some(true));
        metrics.ready_state("IamServiceAccount", "a/y".into(), Some(true));
        metrics.ready_state("IamServiceAccount", "a/z".into(), Some(false));
        metrics.ready_state("IamServiceAccount", "a/z".into(), None);
        metrics.forget("IamServiceAccount", "a/y".into());
        let text = metrics.render();
        for line in [
            r#"iam_operator_reconciles_total{kind="IamServiceAccount"} 2"#,
            r#"iam_operator_reconcile_failures_total{kind="IamServiceAccount",reason="GuardrailViolation"} 1"#,
            r#"iam_operator_aws_attempts_total{service="iam",operation="GetRole",outcome="throttled"} 1"#,
            r#"iam_operator_aws_attempts_total{service="iam",operation="GetRole",outcome="ok"} 1"#,
            r#"iam_operator_aws_retries_total{service="iam",operation="GetRole"} 1"#,
            r#"iam_operator_aws_attempt_duration_seconds_count{service="iam",operation="GetRole"} 2"#,
            r#"iam_operator_reconcile_duration_seconds_count{kind="IamServiceAccount"} 2"#,
            r#"iam_operator_objects{kind="IamServiceAccount",ready="true"} 1"#,
            r#"iam_operator_objects{kind="IamServiceAccount",ready="unknown"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains(r#"ready="false""#), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
