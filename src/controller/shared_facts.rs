//! Facts about AWS that every object of the cluster shares, read once for
//! all of them instead of once per object: that the EKS cluster exists, the
//! OIDC issuer EKS reports for it, the client IDs of the cluster's IAM OIDC
//! provider, and whether the Pod Identity Agent add-on is active. A thousand objects
//! created at once, or resynced, then cost one such read, not a thousand.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Error;
use crate::aws::error::AwsError;
use crate::aws::{Eks, Iam};
use crate::config::AgentSource;
use crate::policy::issuer::issuers_differ;
use crate::policy::pod_identity_agent::{AGENT_ADDON, AgentProblem, AgentState};
use crate::policy::provider_plan::{
    ObservedProvider, ProviderChange, ProviderWanted, plan_provider,
};

/// How long a provider that admitted an audience is trusted to still do
/// so: a provider deleted or narrowed in IAM shows at the first reconcile
/// of an object after this (its next resync at the latest), while a burst
/// of creates or resyncs reads it once. One that lacks the audience is read
/// again at every attempt, so a fix made in IAM is seen at the next retry.
pub const PROVIDER_FRESH_FOR: Duration = Duration::from_secs(60);

/// How long an active agent add-on is believed to still be active: a
/// binding reconciled this long after the add-on broke sees it, while a
/// burst of bindings asks once.
pub const AGENT_FRESH_FOR: Duration = Duration::from_secs(30);

/// How long an agent found missing or unhealthy is believed so: short, so a
/// fix is seen at the next retry, but bindings retried one after another
/// (not together) do not each ask EKS.
pub const AGENT_MISSING_FRESH_FOR: Duration = Duration::from_secs(5);

/// How long the issuer EKS reported is believed while it agrees with the
/// API server's: a cluster re-created under the operator's feet shows
/// within this, while a burst of reconciles asks once.
pub const ISSUER_FRESH_FOR: Duration = Duration::from_secs(60);

/// How long an issuer that disagrees with the API server's (or none at all)
/// is believed: short, so a fix is seen at the next retry.
pub const ISSUER_DOUBTED_FOR: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct SharedFacts {
    /// The issuer EKS last reported and when it was last asked for.
    issuer: Mutex<IssuerRead>,
    /// Held across the `DescribeCluster` that refreshes `issuer`.
    issuer_refresh: tokio::sync::Mutex<()>,
    /// Held across the `DescribeCluster` call, so objects reconciled
    /// together wait for one answer instead of each asking.
    cluster: tokio::sync::Mutex<Option<ClusterAnswer>>,
    providers: Mutex<HashMap<String, ProviderRead>>,
    /// Held across a write to a provider.
    provider_writes: tokio::sync::Mutex<()>,
    /// Held across the `DescribeAddon` call, as `cluster` is.
    agent: tokio::sync::Mutex<Option<AgentAnswer>>,
}

/// The last `DescribeAddon` answer for the agent and when it came.
struct AgentAnswer {
    at: Instant,
    outcome: Result<AgentState, AwsError>,
}

impl AgentAnswer {
    /// Whether a caller that asked at `asked` may take this answer: one
    /// that came after it asked (it waited for it), or one still fresh. A
    /// failure to ask is only shared with those already waiting.
    fn answers(&self, asked: Instant) -> bool {
        let fresh_for = match &self.outcome {
            Ok(AgentState::Running) => AGENT_FRESH_FOR,
            Ok(AgentState::NotRunning(_)) => AGENT_MISSING_FRESH_FOR,
            Err(_) => Duration::ZERO,
        };
        self.at >= asked || asked.saturating_duration_since(self.at) < fresh_for
    }
}

#[derive(Default)]
struct IssuerRead {
    /// When EKS was last asked, whatever it answered: a failing read is
    /// not repeated by every reconcile of a burst.
    asked_at: Option<Instant>,
    issuer: Option<String>,
}

impl IssuerRead {
    /// Whether a caller that asked at `asked` may take this read as is.
    fn believed(&self, asked: Instant, api_server: Option<&str>) -> bool {
        let Some(at) = self.asked_at else {
            return false;
        };
        let fresh_for = match (self.issuer.as_deref(), api_server) {
            (Some(issuer), Some(api_server)) if issuers_differ(api_server, issuer) => {
                ISSUER_DOUBTED_FOR
            }
            (Some(_), _) => ISSUER_FRESH_FOR,
            (None, _) => ISSUER_DOUBTED_FOR,
        };
        at >= asked || asked.saturating_duration_since(at) < fresh_for
    }
}

/// The last `DescribeCluster` answer and when it came.
struct ClusterAnswer {
    at: Instant,
    outcome: Result<bool, AwsError>,
}

#[derive(Clone)]
struct ProviderRead {
    at: Instant,
    provider: ObservedProvider,
}

impl SharedFacts {
    /// The issuer read at start, believed as if just read.
    pub fn with_issuer(issuer: Option<String>) -> Self {
        let facts = SharedFacts::default();
        *facts.lock_issuer() = IssuerRead {
            asked_at: Some(Instant::now()),
            issuer,
        };
        facts
    }

    /// The issuer EKS last reported; `None` before any answer named one.
    pub fn issuer(&self) -> Option<String> {
        self.lock_issuer().issuer.clone()
    }

    /// Asks EKS for `cluster`'s issuer again unless the last answer is
    /// still believed. Only a reported issuer replaces the one kept: a
    /// failed read, or a cluster not found, leaves roles trusting what
    /// they trust (that the cluster is gone is `ClusterNotFound`'s to say).
    pub async fn refresh_issuer(&self, eks: &Eks, cluster: &str, api_server: Option<&str>) {
        self.refresh_issuer_by(api_server, || eks.cluster_issuer(cluster))
            .await
    }

    async fn refresh_issuer_by<F, Fut>(&self, api_server: Option<&str>, describe: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<String>, AwsError>>,
    {
        let asked = Instant::now();
        let _one_read = self.issuer_refresh.lock().await;
        if self.lock_issuer().believed(asked, api_server) {
            return;
        }
        let answer = describe().await;
        let mut read = self.lock_issuer();
        read.asked_at = Some(Instant::now());
        match answer {
            Ok(Some(issuer)) => {
                if read.issuer.as_ref().is_some_and(|kept| *kept != issuer) {
                    tracing::warn!(previous = ?read.issuer, %issuer, "EKS reports another OIDC issuer for the cluster; roles are planned for it from now on");
                }
                read.issuer = Some(issuer);
            }
            Ok(None) => {
                tracing::warn!(kept = ?read.issuer, "EKS reports no cluster (or no OIDC issuer) for --cluster-name; the issuer kept is unchanged")
            }
            Err(e) => {
                tracing::warn!(error = %e, kept = ?read.issuer, "could not read the cluster's OIDC issuer from EKS; asking again later")
            }
        }
    }

    fn lock_issuer(&self) -> std::sync::MutexGuard<'_, IssuerRead> {
        self.issuer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the configured cluster exists; once it was found it is not
    /// asked again (a wrong name or region is then a named reason on every
    /// object instead of an opaque EKS error).
    pub async fn cluster_exists(&self, eks: &Eks, cluster: &str) -> Result<bool, AwsError> {
        self.cluster_exists_by(|| eks.describe_cluster_exists(cluster))
            .await
    }

    /// A found cluster is kept; any other answer (absent, throttled, denied)
    /// is shared with the callers that were already waiting for it, and a
    /// later caller asks again: a slow or failing `DescribeCluster` then
    /// holds the waiting reconciles once, not once each.
    async fn cluster_exists_by<F, Fut>(&self, describe: F) -> Result<bool, AwsError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<bool, AwsError>>,
    {
        let asked = Instant::now();
        let mut last = self.cluster.lock().await;
        if let Some(answer) = last.as_ref()
            && (matches!(answer.outcome, Ok(true)) || answer.at >= asked)
        {
            return answer.outcome.clone();
        }
        let outcome = describe().await;
        *last = Some(ClusterAnswer {
            at: Instant::now(),
            outcome: outcome.clone(),
        });
        outcome
    }

    /// Whether the Pod Identity Agent runs: vouched for by the configuration,
    /// or the `eks-pod-identity-agent` add-on of `cluster` is `ACTIVE`. Only
    /// what retrying fixes (throttling, a 5xx) is an error: a refused read
    /// is a state of the agent, so the binding's own work still goes on.
    pub async fn pod_identity_agent(
        &self,
        eks: &Eks,
        cluster: &str,
        source: AgentSource,
    ) -> Result<AgentState, AwsError> {
        match source {
            AgentSource::SelfManaged => Ok(AgentState::Running),
            // A refused read becomes a state before it is kept, so that it is
            // believed for a few seconds like a missing add-on, instead of
            // every binding asking again one after another under the lock.
            AgentSource::Addon => {
                self.pod_identity_agent_by(|| async {
                    unreadable_as_state(
                        eks.addon_status(cluster, AGENT_ADDON)
                            .await
                            .map(|status| AgentState::from_addon_status(status.as_deref())),
                    )
                })
                .await
            }
        }
    }

    async fn pod_identity_agent_by<F, Fut>(&self, describe: F) -> Result<AgentState, AwsError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AgentState, AwsError>>,
    {
        let asked = Instant::now();
        let mut last = self.agent.lock().await;
        if let Some(answer) = last.as_ref()
            && answer.answers(asked)
        {
            return answer.outcome.clone();
        }
        let outcome = describe().await;
        *last = Some(AgentAnswer {
            at: Instant::now(),
            outcome: outcome.clone(),
        });
        outcome
    }

    /// The provider, `None` when the account has no such provider: from a
    /// recent read that admitted `audience`, or read now.
    pub async fn provider(
        &self,
        iam: &Iam,
        provider_arn: &str,
        audience: &str,
    ) -> Result<Option<ObservedProvider>, AwsError> {
        let cached = self.lock_providers().get(provider_arn).cloned();
        if let Some(provider) = still_admits(cached.as_ref(), audience, Instant::now()) {
            return Ok(Some(provider));
        }
        let read_at = Instant::now();
        let provider = iam.oidc_provider(provider_arn).await?;
        self.remember_provider(provider_arn, provider.clone(), read_at);
        Ok(provider)
    }

    /// Makes `change` to the provider unless a reconcile that held the lock
    /// before this one made it already: objects created together with a
    /// provider missing make it once. A provider that appeared meanwhile
    /// (made by another reconcile, or by someone else) is read and judged
    /// again: given the audience if it is this cluster's, else the object is
    /// refused as if it had been there from the start. The change made, if
    /// any.
    pub async fn change_provider(
        &self,
        iam: &Iam,
        provider_arn: &str,
        change: &ProviderChange,
        cluster: &str,
        region: &str,
    ) -> Result<Option<ProviderChange>, Error> {
        let _one_write = self.provider_writes.lock().await;
        let client_id = change.client_id();
        // Planned for this audience only because the platform lists it.
        let listed = [client_id.to_string()];
        let wanted = ProviderWanted {
            issuer: "",
            provider_arn,
            audience: client_id,
            cluster,
            region,
            manage: true,
            managed_audiences: &listed,
        };
        let cached = self.lock_providers().get(provider_arn).cloned();
        let change = match (change, &cached) {
            (ProviderChange::Create { .. }, Some(read)) => {
                match plan_provider(Some(&read.provider), &wanted)? {
                    Some(add) => add,
                    None => return Ok(None),
                }
            }
            (ProviderChange::AddClientId { .. }, Some(read))
                if read.provider.client_ids.iter().any(|id| id == client_id) =>
            {
                return Ok(None);
            }
            _ => change.clone(),
        };
        if iam.change_oidc_provider(provider_arn, &change).await? {
            self.remember_written(provider_arn, &change, cached.map(|read| read.provider));
            return Ok(Some(change));
        }
        // Created by someone else since this reconcile read it missing.
        let found = iam.oidc_provider(provider_arn).await?;
        self.remember_provider(provider_arn, found.clone(), Instant::now());
        let Some(found) = found else {
            return Err(Error::Unexpected(format!(
                "IAM answered that OIDC provider {provider_arn} exists, then that it does not"
            )));
        };
        match plan_provider(Some(&found), &wanted)? {
            None => Ok(None),
            Some(add) => {
                iam.change_oidc_provider(provider_arn, &add).await?;
                self.remember_written(provider_arn, &add, Some(found));
                Ok(Some(add))
            }
        }
    }

    /// What IAM holds after `change` was made to `before`.
    fn remember_written(
        &self,
        provider_arn: &str,
        change: &ProviderChange,
        before: Option<ObservedProvider>,
    ) {
        let after = match change {
            ProviderChange::Create {
                client_id, tags, ..
            } => ObservedProvider {
                client_ids: vec![client_id.clone()],
                tags: tags.clone(),
            },
            ProviderChange::AddClientId { client_id } => {
                let mut provider = before.unwrap_or_default();
                provider.client_ids.push(client_id.clone());
                provider
            }
        };
        self.remember_provider(provider_arn, Some(after), Instant::now());
    }

    /// Keeps what a read that started at `read_at` found, unless a write
    /// since then knows better.
    fn remember_provider(
        &self,
        provider_arn: &str,
        provider: Option<ObservedProvider>,
        read_at: Instant,
    ) {
        let mut providers = self.lock_providers();
        if providers
            .get(provider_arn)
            .is_some_and(|kept| kept.at > read_at)
        {
            return;
        }
        match provider {
            Some(provider) => {
                providers.insert(
                    provider_arn.to_string(),
                    ProviderRead {
                        at: Instant::now(),
                        provider,
                    },
                );
            }
            None => {
                providers.remove(provider_arn);
            }
        }
    }

    fn lock_providers(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProviderRead>> {
        self.providers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn unreadable_as_state(read: Result<AgentState, AwsError>) -> Result<AgentState, AwsError> {
    match read {
        Err(e) if !e.is_transient() => Ok(AgentState::NotRunning(AgentProblem::Unreadable {
            error: e.to_string(),
        })),
        other => other,
    }
}

/// A read is reused only while fresh and only to say yes: an answer that
/// would refuse the object is always read again.
fn still_admits(
    read: Option<&ProviderRead>,
    audience: &str,
    now: Instant,
) -> Option<ObservedProvider> {
    let read = read?;
    let fresh = now.saturating_duration_since(read.at) < PROVIDER_FRESH_FOR;
    (fresh && read.provider.client_ids.iter().any(|a| a == audience)).then(|| read.provider.clone())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::{
        AGENT_FRESH_FOR, AGENT_MISSING_FRESH_FOR, AgentAnswer, ISSUER_DOUBTED_FOR,
        ISSUER_FRESH_FOR, IssuerRead, PROVIDER_FRESH_FOR, ProviderRead, SharedFacts, still_admits,
        unreadable_as_state,
    };
    use crate::aws::error::{AwsError, classify};
    use crate::policy::pod_identity_agent::{AgentProblem, AgentState};
    use crate::policy::provider_plan::ObservedProvider;

    fn throttled() -> AwsError {
        AwsError {
            operation: "DescribeCluster",
            kind: classify("ThrottlingException"),
            code: "ThrottlingException".into(),
            message: "Rate exceeded".into(),
        }
    }

    /// Eight reconciles asking at once, against a `DescribeCluster` that
    /// answers `answers[i]` at its i-th call, slowly.
    async fn eight_at_once(
        answers: Vec<Result<bool, AwsError>>,
    ) -> (usize, Vec<Result<bool, AwsError>>) {
        let facts = Arc::new(SharedFacts::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let answers = Arc::new(answers);
        let askers: Vec<_> = (0..8)
            .map(|_| {
                let (facts, calls, answers) = (facts.clone(), calls.clone(), answers.clone());
                tokio::spawn(async move {
                    facts
                        .cluster_exists_by(|| async move {
                            let call = calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            answers[call.min(answers.len() - 1)].clone()
                        })
                        .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for asker in askers {
            outcomes.push(asker.await.expect("asker"));
        }
        (calls.load(Ordering::SeqCst), outcomes)
    }

    #[tokio::test]
    async fn callers_waiting_together_share_one_describe_cluster() {
        let (calls, outcomes) = eight_at_once(vec![Ok(true)]).await;
        assert_eq!(calls, 1);
        assert!(outcomes.iter().all(|o| matches!(o, Ok(true))));
        let (calls, outcomes) = eight_at_once(vec![Err(throttled()), Ok(true)]).await;
        assert_eq!(calls, 1, "a failure is shared with those already waiting");
        assert!(outcomes.iter().all(|o| o.is_err()));
    }

    #[tokio::test]
    async fn a_later_caller_asks_again_after_a_failure_but_not_after_found() {
        let facts = SharedFacts::default();
        let calls = AtomicUsize::new(0);
        let ask = |answer: Result<bool, AwsError>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { answer }
        };
        assert!(
            facts
                .cluster_exists_by(|| ask(Err(throttled())))
                .await
                .is_err()
        );
        assert!(matches!(
            facts.cluster_exists_by(|| ask(Ok(false))).await,
            Ok(false)
        ));
        assert!(matches!(
            facts.cluster_exists_by(|| ask(Ok(true))).await,
            Ok(true)
        ));
        assert!(matches!(
            facts.cluster_exists_by(|| ask(Ok(false))).await,
            Ok(true)
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    fn read_at(at: Instant) -> ProviderRead {
        ProviderRead {
            at,
            provider: ObservedProvider {
                client_ids: vec!["sts.amazonaws.com".into(), "vault".into()],
                tags: Default::default(),
            },
        }
    }

    #[test]
    fn a_fresh_read_that_admits_the_audience_is_reused() {
        let read_then = Instant::now();
        let read = read_at(read_then);
        assert_eq!(
            still_admits(Some(&read), "vault", read_then + Duration::from_secs(5))
                .map(|p| p.client_ids),
            Some(vec!["sts.amazonaws.com".to_string(), "vault".to_string()])
        );
    }

    #[test]
    fn a_read_that_started_before_a_write_does_not_undo_what_the_write_kept() {
        let facts = SharedFacts::default();
        let arn = "arn:aws:iam::123456789012:oidc-provider/issuer";
        let now = Instant::now();
        let read_started = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        facts.remember_provider(arn, Some(read_at(now).provider), now);
        facts.remember_provider(arn, None, read_started);
        assert!(
            facts.lock_providers().contains_key(arn),
            "the older read said missing"
        );
        facts.remember_provider(arn, None, Instant::now() + Duration::from_secs(1));
        assert!(
            !facts.lock_providers().contains_key(arn),
            "a newer read does"
        );
    }

    #[test]
    fn a_stale_read_or_one_lacking_the_audience_is_read_again() {
        let read_then = Instant::now();
        let stale = read_at(read_then);
        assert_eq!(
            still_admits(Some(&stale), "vault", read_then + PROVIDER_FRESH_FOR),
            None
        );
        let now = Instant::now();
        let fresh = read_at(now);
        assert_eq!(still_admits(Some(&fresh), "other", now), None);
        assert_eq!(still_admits(None, "vault", now), None);
    }

    fn agent_answer(at: Instant, outcome: Result<AgentState, AwsError>) -> AgentAnswer {
        AgentAnswer { at, outcome }
    }

    #[test]
    fn a_running_agent_is_believed_for_half_a_minute_a_missing_one_for_seconds() {
        let then = Instant::now();
        let running = agent_answer(then, Ok(AgentState::Running));
        assert!(running.answers(then + AGENT_FRESH_FOR - Duration::from_millis(1)));
        assert!(!running.answers(then + AGENT_FRESH_FOR));
        for problem in [
            AgentProblem::Absent,
            AgentProblem::NotActive {
                status: "DEGRADED".into(),
            },
            AgentProblem::Unreadable {
                error: "DescribeAddon: AccessDeniedException".into(),
            },
        ] {
            let missing = agent_answer(then, Ok(AgentState::NotRunning(problem)));
            assert!(missing.answers(then + Duration::from_secs(1)));
            assert!(!missing.answers(then + AGENT_MISSING_FRESH_FOR));
        }
        let failed = agent_answer(then, Err(throttled()));
        assert!(
            !failed.answers(then + Duration::from_millis(1)),
            "a failure is not reused by a later caller"
        );
        assert!(
            failed.answers(then - Duration::from_millis(1)),
            "but is shared with one that was waiting for it"
        );
    }

    #[tokio::test]
    async fn bindings_asking_together_share_one_describe_addon() {
        let facts = Arc::new(SharedFacts::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let askers: Vec<_> = (0..8)
            .map(|_| {
                let (facts, calls) = (facts.clone(), calls.clone());
                tokio::spawn(async move {
                    facts
                        .pod_identity_agent_by(|| async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(AgentState::NotRunning(AgentProblem::Absent))
                        })
                        .await
                })
            })
            .collect();
        for asker in askers {
            assert_eq!(
                asker.await.expect("asker").ok(),
                Some(AgentState::NotRunning(AgentProblem::Absent))
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_refused_read_is_a_state_and_a_throttled_one_an_error() {
        let denied = AwsError {
            operation: "DescribeAddon",
            kind: classify("AccessDeniedException"),
            code: "AccessDeniedException".into(),
            message: "not authorized to perform eks:DescribeAddon".into(),
        };
        match unreadable_as_state(Err(denied)) {
            Ok(AgentState::NotRunning(AgentProblem::Unreadable { error })) => {
                assert!(error.contains("AccessDeniedException"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        assert!(unreadable_as_state(Err(throttled())).is_err());
        assert_eq!(
            unreadable_as_state(Ok(AgentState::Running)).ok(),
            Some(AgentState::Running)
        );
    }

    const OLD: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/OLD";
    const NEW: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/NEW";

    #[test]
    fn an_issuer_is_believed_long_only_while_it_agrees_with_the_api_server() {
        let now = Instant::now();
        let read = |issuer: Option<&str>, age: Duration| IssuerRead {
            asked_at: Some(now - age),
            issuer: issuer.map(str::to_string),
        };
        let just_under = |d: Duration| d - Duration::from_millis(1);
        // Agreeing, or nothing to compare with: a minute.
        for api_server in [Some(OLD), None] {
            assert!(read(Some(OLD), just_under(ISSUER_FRESH_FOR)).believed(now, api_server));
            assert!(!read(Some(OLD), ISSUER_FRESH_FOR).believed(now, api_server));
        }
        // Disagreeing, or no issuer: seconds.
        assert!(read(Some(OLD), just_under(ISSUER_DOUBTED_FOR)).believed(now, Some(NEW)));
        assert!(!read(Some(OLD), ISSUER_DOUBTED_FOR).believed(now, Some(NEW)));
        assert!(!read(None, ISSUER_DOUBTED_FOR).believed(now, Some(NEW)));
        // Never asked, or asked after this caller asked (it waited for it).
        assert!(!IssuerRead::default().believed(now, None));
        let later = IssuerRead {
            asked_at: Some(now + Duration::from_millis(5)),
            issuer: None,
        };
        assert!(later.believed(now, Some(NEW)));
    }

    /// Eight reconciles refreshing at once against a slow `DescribeCluster`
    /// that answers `answer`.
    async fn eight_refresh(
        facts: Arc<SharedFacts>,
        api_server: Option<&'static str>,
        answer: Result<Option<String>, AwsError>,
    ) -> usize {
        let calls = Arc::new(AtomicUsize::new(0));
        let refreshers: Vec<_> = (0..8)
            .map(|_| {
                let (facts, calls, answer) = (facts.clone(), calls.clone(), answer.clone());
                tokio::spawn(async move {
                    facts
                        .refresh_issuer_by(api_server, || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            answer
                        })
                        .await
                })
            })
            .collect();
        for refresher in refreshers {
            refresher.await.expect("refresher");
        }
        calls.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_burst_asks_eks_once_and_only_an_issuer_replaces_the_one_kept() {
        let facts = Arc::new(SharedFacts::default());
        assert_eq!(
            eight_refresh(facts.clone(), Some(NEW), Ok(Some(NEW.into()))).await,
            1
        );
        assert_eq!(facts.issuer().as_deref(), Some(NEW));
        // Believed: no call at all.
        assert_eq!(
            eight_refresh(facts.clone(), Some(NEW), Ok(Some(OLD.into()))).await,
            0
        );
        assert_eq!(facts.issuer().as_deref(), Some(NEW));

        // What the start read, now doubted: asked once, and a failure or a
        // missing cluster keeps it.
        for answer in [Err(throttled()), Ok(None)] {
            let facts = Arc::new(SharedFacts::with_issuer(Some(OLD.into())));
            assert_eq!(
                eight_refresh(facts.clone(), Some(NEW), Ok(Some(OLD.into()))).await,
                0
            );
            facts.lock_issuer().asked_at = Some(Instant::now() - ISSUER_DOUBTED_FOR);
            assert_eq!(eight_refresh(facts.clone(), Some(NEW), answer).await, 1);
            assert_eq!(facts.issuer().as_deref(), Some(OLD));
        }
    }
}
