//! The issuer the API server signs ServiceAccount tokens with, from its
//! OpenID discovery document. Every ServiceAccount may read it by default
//! (the `system:service-account-issuer-discovery` ClusterRole), so the
//! check needs no grant of its own.

use crate::policy::issuer::discovery_issuer;

pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The issuer, or why it could not be learned, worded for the log line
/// that says the issuer check is skipped.
pub async fn read(client: &kube::Client) -> Result<String, String> {
    let request = http::Request::get(DISCOVERY_PATH)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let document = client.request_text(request).await.map_err(|e| match &e {
        kube::Error::Api(status) if status.code == 404 => format!(
            "the API server serves no {DISCOVERY_PATH} (its --service-account-issuer is not an \
             https URL, or issuer discovery is turned off)"
        ),
        kube::Error::Api(status) if status.code == 403 => format!(
            "the operator may not read {DISCOVERY_PATH}: bind the ClusterRole \
             system:service-account-issuer-discovery to its ServiceAccount ({e})"
        ),
        _ => format!("reading {DISCOVERY_PATH}: {e}"),
    })?;
    discovery_issuer(&document)
}
