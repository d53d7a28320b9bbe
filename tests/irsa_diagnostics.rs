//! The classic IRSA failures, each reported by name with its fix and each
//! recovering by itself once fixed. This binary's harness starts without an
//! IAM OIDC provider, so it can create and change one without disturbing
//! other tests.

mod support;

use support::harness;
use support::operator::ensure_operator;

#[tokio::test]
async fn missing_provider_then_wrong_audience_then_ready() {
    support::harness_args(&["--no-oidc-provider"]);
    let Some(h) = harness() else { return };
    ensure_operator(h, &[]);
    let ns = h.fresh_namespace("irsa-diag");
    h.kubectl(&["create", "serviceaccount", "app", "-n", &ns]);
    h.apply(&ns, "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: app}\nspec: {}\n");

    h.wait_for_reason("isa/app", &ns, "OIDCProviderNotFound");
    let message = ready_message(h, &ns);
    assert!(
        message.contains("No OpenIDConnect provider found in your account"),
        "{message}"
    );
    assert!(
        message.contains(h.issuer.trim_start_matches("https://")),
        "{message}"
    );

    // The classic typo: sts.amazon.com for sts.amazonaws.com.
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    let provider = create_provider(&iam, &h.issuer, &["sts.amazon.com"]).await;
    h.wait_for_reason("isa/app", &ns, "AudienceNotAllowed");
    let message = ready_message(h, &ns);
    assert!(message.contains("Incorrect token audience"), "{message}");
    assert!(message.contains("sts.amazon.com"), "{message}");

    // Events tell the story too.
    let events = h.kubectl(&[
        "get",
        "events",
        "-n",
        &ns,
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(events.contains("OIDCProviderNotFound"), "{events}");
    assert!(events.contains("AudienceNotAllowed"), "{events}");

    // The fix, as `aws iam add-client-id-to-open-id-connect-provider` makes it.
    iam.add_client_id_to_open_id_connect_provider()
        .open_id_connect_provider_arn(&provider)
        .client_id("sts.amazonaws.com")
        .send()
        .await
        .expect("AddClientIDToOpenIDConnectProvider");
    h.wait_ready("isa/app", &ns);
    let status = h.kubectl_json(&["get", "isa", "app", "-n", &ns])["status"].clone();
    assert_eq!(status["oidcProviderArn"].as_str(), Some(provider.as_str()));
}

async fn create_provider(iam: &aws_sdk_iam::Client, issuer: &str, client_ids: &[&str]) -> String {
    iam.create_open_id_connect_provider()
        .url(issuer)
        .set_client_id_list(Some(client_ids.iter().map(|c| c.to_string()).collect()))
        .thumbprint_list("0".repeat(40))
        .send()
        .await
        .expect("CreateOpenIDConnectProvider")
        .open_id_connect_provider_arn
        .expect("provider ARN")
}

fn ready_message(h: &support::Harness, ns: &str) -> String {
    h.kubectl(&[
        "get",
        "isa",
        "app",
        "-n",
        ns,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
    ])
}
