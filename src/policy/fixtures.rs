//! What the pure modules' tests share: an operator configuration and the
//! owner of an object in it.

use super::desire::Defaults;
use super::issuer::IssuerSource;
use super::ownership::Owner;

pub const ACCOUNT: &str = "123456789012";
pub const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC";

pub fn defaults() -> Defaults {
    Defaults {
        cluster_name: "prod".into(),
        region: "us-east-1".into(),
        account_id: ACCOUNT.into(),
        partition: "aws".into(),
        issuer: Some(ISSUER.into()),
        issuer_source: IssuerSource::Eks,
        api_server_issuer: Some(ISSUER.into()),
        manage_oidc_provider: false,
        oidc_provider_audiences: vec!["sts.amazonaws.com".into()],
        restart_stale_pods: false,
        role_name_prefix: String::new(),
        forced_role_path: None,
        default_role_path: None,
        forced_permissions_boundary: None,
        guardrails: Default::default(),
    }
}

/// `kind` `apps/web` in cluster `prod`, `us-east-1`.
pub fn owner(kind: &str) -> Owner {
    Owner {
        cluster: "prod".into(),
        region: "us-east-1".into(),
        kind: kind.into(),
        namespace: "apps".into(),
        name: "web".into(),
    }
}
