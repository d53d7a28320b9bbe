//! The issuer the API server signs ServiceAccount tokens with, from its
//! OpenID discovery document. Every ServiceAccount may read it by default
//! (the `system:service-account-issuer-discovery` ClusterRole), so the
//! check needs no grant of its own.

use crate::policy::issuer::discovery_issuer;

pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Attempts at start: the check stays off for the process's life when the
/// document cannot be read, so a blip is not allowed to decide that.
const ATTEMPTS: u32 = 4;

/// The issuer, or why it could not be learned, worded for the log line
/// that says the issuer check is skipped. What a retry may fix (no answer,
/// a 5xx, throttling) is tried again, a second, then two, then four later.
pub async fn read(client: &kube::Client) -> Result<String, String> {
    let mut wait = std::time::Duration::from_secs(1);
    let mut attempt = 1;
    loop {
        match read_once(client).await {
            Err((why, true)) if attempt < ATTEMPTS => {
                tracing::info!(%why, attempt, "reading the API server's issuer again");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            outcome => return outcome.map_err(|(why, _)| why),
        }
    }
}

/// One read; an error says whether retrying may help.
async fn read_once(client: &kube::Client) -> Result<String, (String, bool)> {
    let request = http::Request::get(DISCOVERY_PATH)
        .body(Vec::new())
        .map_err(|e| (e.to_string(), false))?;
    let retryable = |e: &kube::Error| match e {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => true,
    };
    let document = client.request_text(request).await.map_err(|e| {
        let again = retryable(&e);
        (describe(&e), again)
    })?;
    discovery_issuer(&document).map_err(|why| (why, false))
}

fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if status.code == 404 => format!(
            "the API server serves no {DISCOVERY_PATH} (its --service-account-issuer is not an \
             https URL, or issuer discovery is turned off)"
        ),
        kube::Error::Api(status) if status.code == 403 => format!(
            "the operator may not read {DISCOVERY_PATH}: bind the ClusterRole \
             system:service-account-issuer-discovery to its ServiceAccount ({e})"
        ),
        _ => format!("reading {DISCOVERY_PATH}: {e}"),
    }
}
