//! Facts about AWS that every object of the cluster shares, read once for
//! all of them instead of once per object: that the EKS cluster exists, and
//! the client IDs of the cluster's IAM OIDC provider. A thousand objects
//! created at once, or resynced, then cost one such read, not a thousand.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::aws::error::AwsError;
use crate::aws::{Eks, Iam};

/// How long a provider that admitted an audience is trusted to still do
/// so. A provider deleted or narrowed in IAM shows on the objects within
/// this; one that lacks the audience is read again at every attempt, so a
/// fix made in IAM is seen at the object's next retry.
pub const PROVIDER_FRESH_FOR: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct SharedFacts {
    /// Held across the `DescribeCluster` call, so objects reconciled
    /// together wait for one answer instead of each asking.
    cluster_found: tokio::sync::Mutex<bool>,
    providers: Mutex<HashMap<String, ProviderRead>>,
}

#[derive(Clone)]
struct ProviderRead {
    at: Instant,
    audiences: Vec<String>,
}

impl SharedFacts {
    /// Whether the configured cluster exists; once it was found it is not
    /// asked again (a wrong name or region is then a named reason on every
    /// object instead of an opaque EKS error).
    pub async fn cluster_exists(&self, eks: &Eks, cluster: &str) -> Result<bool, AwsError> {
        let mut found = self.cluster_found.lock().await;
        if !*found {
            *found = eks.describe_cluster_exists(cluster).await?;
        }
        Ok(*found)
    }

    /// The provider's client IDs, `None` when the account has no such
    /// provider: from a recent read that admitted `audience`, or read now.
    pub async fn provider_audiences(
        &self,
        iam: &Iam,
        provider_arn: &str,
        audience: &str,
    ) -> Result<Option<Vec<String>>, AwsError> {
        let cached = self.lock_providers().get(provider_arn).cloned();
        if let Some(audiences) = still_admits(cached.as_ref(), audience, Instant::now()) {
            return Ok(Some(audiences));
        }
        let audiences = iam.oidc_provider_audiences(provider_arn).await?;
        let mut providers = self.lock_providers();
        match &audiences {
            Some(audiences) => {
                providers.insert(
                    provider_arn.to_string(),
                    ProviderRead {
                        at: Instant::now(),
                        audiences: audiences.clone(),
                    },
                );
            }
            None => {
                providers.remove(provider_arn);
            }
        }
        Ok(audiences)
    }

    fn lock_providers(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProviderRead>> {
        self.providers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A read is reused only while fresh and only to say yes: an answer that
/// would refuse the object is always read again.
fn still_admits(read: Option<&ProviderRead>, audience: &str, now: Instant) -> Option<Vec<String>> {
    let read = read?;
    let fresh = now.saturating_duration_since(read.at) < PROVIDER_FRESH_FOR;
    (fresh && read.audiences.iter().any(|a| a == audience)).then(|| read.audiences.clone())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{PROVIDER_FRESH_FOR, ProviderRead, still_admits};

    fn read_at(at: Instant) -> ProviderRead {
        ProviderRead {
            at,
            audiences: vec!["sts.amazonaws.com".into(), "vault".into()],
        }
    }

    #[test]
    fn a_fresh_read_that_admits_the_audience_is_reused() {
        let now = Instant::now();
        let read = read_at(now - Duration::from_secs(5));
        assert_eq!(
            still_admits(Some(&read), "vault", now),
            Some(vec!["sts.amazonaws.com".to_string(), "vault".to_string()])
        );
    }

    #[test]
    fn a_stale_read_or_one_lacking_the_audience_is_read_again() {
        let now = Instant::now();
        let stale = read_at(now - PROVIDER_FRESH_FOR);
        assert_eq!(still_admits(Some(&stale), "vault", now), None);
        let fresh = read_at(now);
        assert_eq!(still_admits(Some(&fresh), "other", now), None);
        assert_eq!(still_admits(None, "vault", now), None);
    }
}
