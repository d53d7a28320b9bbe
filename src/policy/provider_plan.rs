//! The cluster's IAM OIDC provider, without which STS refuses every IRSA
//! token: whether it accepts an object's audience, and, where the operator
//! is told to manage it (`--manage-oidc-provider`, what `eksctl utils
//! associate-iam-oidc-provider` does by hand), the one write that makes it
//! so. A provider the operator made carries the cluster's tags and no
//! object's: it serves every role trusting the issuer, its own and anyone
//! else's, so the operator never deletes it. Pure.

use std::collections::BTreeMap;

use super::ownership::{CLUSTER_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE, REGION_KEY};
use super::refusal::Refusal;
use super::trust::issuer_host_path;

/// The provider as IAM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedProvider {
    pub client_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// One write to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderChange {
    /// `CreateOpenIDConnectProvider` with this one client ID and no
    /// thumbprint (IAM takes the issuer's own certificate chain).
    Create {
        url: String,
        client_id: String,
        tags: BTreeMap<String, String>,
    },
    /// `AddClientIDToOpenIDConnectProvider`, only on a provider it made.
    AddClientId { client_id: String },
}

impl ProviderChange {
    /// The audience the change is for.
    pub fn client_id(&self) -> &str {
        match self {
            ProviderChange::Create { client_id, .. }
            | ProviderChange::AddClientId { client_id } => client_id,
        }
    }

    pub fn operation(&self) -> &'static str {
        match self {
            ProviderChange::Create { .. } => "CreateOpenIDConnectProvider",
            ProviderChange::AddClientId { .. } => "AddClientIDToOpenIDConnectProvider",
        }
    }
}

/// What IRSA needs of the provider, for one object.
pub struct ProviderWanted<'a> {
    pub issuer: &'a str,
    pub provider_arn: &'a str,
    pub audience: &'a str,
    pub cluster: &'a str,
    pub region: &'a str,
    pub manage: bool,
    /// The audiences the operator may make the provider for or add to it
    /// (`--oidc-provider-audiences`): a platform's choice, not a tenant's.
    pub managed_audiences: &'a [String],
}

impl ProviderWanted<'_> {
    fn audience_managed(&self) -> bool {
        self.managed_audiences.iter().any(|a| a == self.audience)
    }

    /// Why a provider the operator manages was not made or changed for
    /// this audience; empty when it does not manage providers.
    fn unmanaged(&self, what: &str) -> String {
        if !self.manage {
            return String::new();
        }
        if !self.audience_managed() {
            return format!(
                " (the operator manages the provider, but {what} only for the audiences \
                 --oidc-provider-audiences lists: {})",
                self.managed_audiences.join(", ")
            );
        }
        " (the operator manages OIDC providers, but adds client IDs only to one it made for \
         this cluster, and it did not create this one)"
            .into()
    }
}

/// The tags of a provider the operator makes for `cluster`.
pub fn provider_tags(cluster: &str, region: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_KEY.to_string(), MANAGED_BY_VALUE.to_string()),
        (CLUSTER_KEY.to_string(), cluster.to_string()),
        (REGION_KEY.to_string(), region.to_string()),
    ])
}

/// Whether the operator made this provider, for this cluster.
pub fn is_ours(provider: &ObservedProvider, cluster: &str, region: &str) -> bool {
    let mine = provider_tags(cluster, region);
    mine.iter().all(|(k, v)| provider.tags.get(k) == Some(v))
}

/// `None` when the provider accepts the audience as it is; the change to
/// make when the operator manages it; else the refusal that names the fix.
pub fn plan_provider(
    observed: Option<&ObservedProvider>,
    wanted: &ProviderWanted<'_>,
) -> Result<Option<ProviderChange>, Refusal> {
    let Some(provider) = observed else {
        if wanted.manage && wanted.audience_managed() {
            // The URL as IAM names the provider, so that the ARN read
            // before and after is the one made.
            return Ok(Some(ProviderChange::Create {
                url: format!("https://{}", issuer_host_path(wanted.issuer)),
                client_id: wanted.audience.to_string(),
                tags: provider_tags(wanted.cluster, wanted.region),
            }));
        }
        return Err(Refusal::OidcProviderNotFound {
            issuer: wanted.issuer.to_string(),
            provider_arn: wanted.provider_arn.to_string(),
            audience: wanted.audience.to_string(),
            cluster: wanted.cluster.to_string(),
            not_made: wanted.unmanaged("makes it"),
        });
    };
    if provider.client_ids.iter().any(|id| id == wanted.audience) {
        return Ok(None);
    }
    let ours = is_ours(provider, wanted.cluster, wanted.region);
    if wanted.manage && wanted.audience_managed() && ours {
        return Ok(Some(ProviderChange::AddClientId {
            client_id: wanted.audience.to_string(),
        }));
    }
    Err(Refusal::AudienceNotAllowed {
        provider_arn: wanted.provider_arn.to_string(),
        audience: wanted.audience.to_string(),
        allowed: provider.client_ids.clone(),
        not_added: wanted.unmanaged("adds client IDs"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC";
    const ARN: &str =
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC";

    fn managed() -> &'static [String] {
        static AUDIENCES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        AUDIENCES.get_or_init(|| vec!["sts.amazonaws.com".into(), "vault".into()])
    }

    fn wanted(manage: bool, audience: &str) -> ProviderWanted<'_> {
        ProviderWanted {
            issuer: ISSUER,
            provider_arn: ARN,
            audience,
            cluster: "prod",
            region: "us-east-1",
            manage,
            managed_audiences: managed(),
        }
    }

    fn provider(client_ids: &[&str], tags: BTreeMap<String, String>) -> ObservedProvider {
        ObservedProvider {
            client_ids: client_ids.iter().map(|s| s.to_string()).collect(),
            tags,
        }
    }

    #[test]
    fn a_missing_provider_is_made_only_when_managed() {
        let refusal = plan_provider(None, &wanted(false, "sts.amazonaws.com")).unwrap_err();
        assert_eq!(refusal.reason(), "OIDCProviderNotFound");
        assert_eq!(
            plan_provider(None, &wanted(true, "sts.amazonaws.com")),
            Ok(Some(ProviderChange::Create {
                url: ISSUER.into(),
                client_id: "sts.amazonaws.com".into(),
                tags: provider_tags("prod", "us-east-1"),
            }))
        );
    }

    #[test]
    fn an_audience_is_added_only_to_a_provider_the_operator_made_for_this_cluster() {
        let ours = provider(&["sts.amazonaws.com"], provider_tags("prod", "us-east-1"));
        assert_eq!(
            plan_provider(Some(&ours), &wanted(true, "vault")),
            Ok(Some(ProviderChange::AddClientId {
                client_id: "vault".into()
            }))
        );
        assert_eq!(
            plan_provider(Some(&ours), &wanted(true, "sts.amazonaws.com")),
            Ok(None)
        );
        let by_eksctl = provider(&["sts.amazonaws.com"], BTreeMap::new());
        let other_cluster = provider(
            &["sts.amazonaws.com"],
            provider_tags("staging", "us-east-1"),
        );
        for (foreign, manage, left_alone) in [
            (&by_eksctl, true, true),
            (&other_cluster, true, true),
            (&ours, false, false),
        ] {
            match plan_provider(Some(foreign), &wanted(manage, "vault")) {
                Err(refusal @ Refusal::AudienceNotAllowed { .. }) => {
                    let message = refusal.to_string();
                    assert!(message.contains("add vault"), "{message}");
                    assert_eq!(message.contains("did not create"), left_alone, "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn only_the_audiences_the_platform_lists_are_made_or_added() {
        let refusal = plan_provider(None, &wanted(true, "tenant.example.com")).unwrap_err();
        assert_eq!(refusal.reason(), "OIDCProviderNotFound");
        assert!(
            refusal
                .to_string()
                .contains("--oidc-provider-audiences lists: sts.amazonaws.com, vault"),
            "{refusal}"
        );
        let ours = provider(&["sts.amazonaws.com"], provider_tags("prod", "us-east-1"));
        let refusal = plan_provider(Some(&ours), &wanted(true, "tenant.example.com")).unwrap_err();
        assert_eq!(refusal.reason(), "AudienceNotAllowed");
        assert!(
            refusal
                .to_string()
                .contains("adds client IDs only for the audiences"),
            "{refusal}"
        );
    }
}
