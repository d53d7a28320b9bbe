//! Whether the issuer roles are made to trust is the one that really signs
//! the cluster's ServiceAccount tokens. The API server names the issuer it
//! signs with in its OpenID discovery document; a role trusting any other
//! issuer refuses every token, whatever its statements say. Pure.

use super::trust::issuer_host_path;

/// Where the issuer in use came from, which decides the fix for a wrong one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerSource {
    /// `--oidc-issuer`: fixed until the operator is restarted.
    Configured,
    /// EKS `DescribeCluster` of `--cluster-name`, read again as it goes.
    Eks,
}

/// Whether tokens from `api_server`'s issuer would be refused by a trust
/// written for `in_use`: compared as IAM names providers, so a trailing
/// slash or the scheme's case makes no difference.
pub fn issuers_differ(api_server: &str, in_use: &str) -> bool {
    issuer_host_path(api_server) != issuer_host_path(in_use)
}

/// The `issuer` of an OpenID Provider discovery document (what the API
/// server serves at `/.well-known/openid-configuration`).
pub fn discovery_issuer(document: &str) -> Result<String, String> {
    let parsed: serde_json::Value = serde_json::from_str(document)
        .map_err(|e| format!("the discovery document is not JSON ({e})"))?;
    match parsed.get("issuer").and_then(serde_json::Value::as_str) {
        Some(issuer) if !issuer.trim().is_empty() => Ok(issuer.to_string()),
        Some(_) => Err("the discovery document's issuer is empty".into()),
        None => Err("the discovery document names no issuer".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_compared_as_iam_names_providers() {
        let eks = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC";
        for same in [
            eks,
            "https://oidc.eks.us-east-1.amazonaws.com/id/ABC/",
            "HTTPS://oidc.eks.us-east-1.amazonaws.com/id/ABC",
        ] {
            assert!(!issuers_differ(same, eks), "{same}");
        }
        for other in [
            "https://oidc.eks.us-east-1.amazonaws.com/id/ABD",
            "https://oidc.eks.us-east-1.amazonaws.com/id/abc",
            "https://kubernetes.default.svc",
            "http://oidc.eks.us-east-1.amazonaws.com/id/ABC",
        ] {
            assert!(issuers_differ(other, eks), "{other}");
        }
    }

    #[test]
    fn the_discovery_documents_issuer_is_read() {
        let document = r#"{"issuer":"https://127.0.0.1:6443","jwks_uri":"https://127.0.0.1:6443/openid/v1/jwks","response_types_supported":["id_token"]}"#;
        assert_eq!(
            discovery_issuer(document).unwrap(),
            "https://127.0.0.1:6443"
        );
    }

    #[test]
    fn a_document_without_an_issuer_is_an_error_that_says_so() {
        for (document, says) in [
            ("<html>not found</html>", "not JSON"),
            (r#"{"jwks_uri":"x"}"#, "names no issuer"),
            (r#"{"issuer":" "}"#, "issuer is empty"),
            (r#"{"issuer":7}"#, "names no issuer"),
        ] {
            let error = discovery_issuer(document).unwrap_err();
            assert!(error.contains(says), "{document}: {error}");
        }
    }
}
