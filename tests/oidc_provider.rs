//! `--manage-oidc-provider` (issue 14): the operator creates the cluster's
//! IAM OIDC provider when it is missing, once for objects created
//! together, tagged as the cluster's; adds an object's audience to that
//! provider; never adds one to a provider someone else made; and never
//! deletes the provider.
//!
//! This binary's harness is its own: the test removes the provider the
//! harness made, as on a cluster where nobody ran `eksctl utils
//! associate-iam-oidc-provider`.

mod support;

use std::collections::BTreeMap;

use support::operator::{install, start_as};
use support::{harness, is_write};

const ISSUER_AUDIENCE: &str = "sts.amazonaws.com";

fn isa(name: &str, audience: Option<&str>) -> String {
    let audience = audience
        .map(|a| format!("  audience: {a}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {{name: {name}}}\nspec:\n  serviceAccount: {{create: true}}\n{audience}"
    )
}

async fn provider(
    iam: &aws_sdk_iam::Client,
    arn: &str,
) -> Option<(Vec<String>, BTreeMap<String, String>)> {
    let got = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
        .ok()?;
    let tags = got
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    Some((got.client_id_list().to_vec(), tags))
}

#[tokio::test]
async fn a_managed_provider_is_made_once_given_audiences_and_never_deleted() {
    let Some(h) = harness() else { return };
    install(h);
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    let emulator = h.emulator();
    let arn = iam_operator::policy::oidc_provider_arn("aws", &h.account_id, &h.issuer);
    if provider(&iam, &arn).await.is_some() {
        iam.delete_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .send()
            .await
            .expect("DeleteOpenIDConnectProvider");
    }
    let ns = h.fresh_namespace("provider");
    let mark = emulator.mark();
    // The issuer given, as on a cluster that is not EKS: the operator's
    // policy then names exactly this provider (the policy proof checks it).
    let mut operator = start_as(
        h,
        "provider",
        &[
            "--watch-namespaces",
            &ns,
            "--manage-oidc-provider",
            "--oidc-issuer",
            &h.issuer,
            "--oidc-provider-audiences",
            "sts.amazonaws.com,burst.example.com,vault.example.com,other.example.com",
        ],
    );
    let key = operator.access_key.clone();
    let operators_calls = |operation: &str| {
        emulator
            .calls_since(mark)
            .into_iter()
            .filter(|c| c.access_key.as_deref() == Some(key.as_str()) && c.operation == operation)
            .count()
    };

    // Three objects at once, the provider missing, two audiences: made
    // once, tagged, and given the other audience by whichever came second.
    let burst: String = (1..=3)
        .map(|i| isa(&format!("app-{i}"), (i == 3).then_some("burst.example.com")))
        .collect::<Vec<_>>()
        .join("---\n");
    h.apply(&ns, &burst);
    for i in 1..=3 {
        h.until_reason(&format!("isa/app-{i}"), &ns, "Synced", false);
    }
    assert_eq!(operators_calls("CreateOpenIDConnectProvider"), 1);
    let (client_ids, tags) = provider(&iam, &arn).await.expect("the provider was made");
    let client_ids: std::collections::BTreeSet<String> = client_ids.into_iter().collect();
    assert_eq!(
        client_ids,
        [ISSUER_AUDIENCE, "burst.example.com"]
            .map(String::from)
            .into(),
        "each object's audience is on the provider it was made Ready with"
    );
    for (key, value) in [
        ("iam-operator.io/managed-by", "iam-operator"),
        ("iam-operator.io/cluster", h.cluster_name.as_str()),
        ("iam-operator.io/region", h.region.as_str()),
    ] {
        assert_eq!(tags.get(key).map(String::as_str), Some(value), "{tags:?}");
    }
    let events: usize = (1..=3)
        .map(|i| {
            h.event_types(&ns, &format!("app-{i}"), "CreateOpenIDConnectProvider")
                .len()
        })
        .sum();
    assert_eq!(
        events, 1,
        "one Event says the provider was made, by the object that made it"
    );

    // Another audience: added to the provider it made.
    h.apply(&ns, &isa("vault", Some("vault.example.com")));
    h.until_reason("isa/vault", &ns, "Synced", false);
    let (client_ids, _) = provider(&iam, &arn).await.expect("provider");
    assert!(
        client_ids.contains(&"vault.example.com".to_string()),
        "{client_ids:?}"
    );
    assert_eq!(operators_calls("AddClientIDToOpenIDConnectProvider"), 2);

    // An audience the platform did not list is never added.
    h.apply(&ns, &isa("tenant", Some("tenant.example.com")));
    let (_, _, message) = h.until_reason("isa/tenant", &ns, "AudienceNotAllowed", true);
    assert!(message.contains("--oidc-provider-audiences"), "{message}");
    assert_eq!(operators_calls("AddClientIDToOpenIDConnectProvider"), 2);

    // Deleting every object leaves the provider: roles made by others may
    // trust it.
    h.kubectl(&[
        "delete",
        "isa",
        "--all",
        "-n",
        &ns,
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(
        provider(&iam, &arn).await.is_some(),
        "the provider was deleted"
    );

    // A provider someone else made (untagged, as eksctl makes it) is used
    // but never changed: a missing audience is reported.
    iam.delete_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .expect("DeleteOpenIDConnectProvider");
    iam.create_open_id_connect_provider()
        .url(&h.issuer)
        .client_id_list(ISSUER_AUDIENCE)
        .send()
        .await
        .expect("CreateOpenIDConnectProvider");
    let before_foreign = emulator.mark();
    h.apply(&ns, &isa("other", Some("other.example.com")));
    let (status, _, message) = h.until_reason("isa/other", &ns, "AudienceNotAllowed", true);
    assert_eq!(status, "False");
    assert!(message.contains("did not create this one"), "{message}");
    let written: Vec<String> = emulator
        .calls_since(before_foreign)
        .into_iter()
        .filter(|c| c.access_key.as_deref() == Some(key.as_str()) && is_write(c))
        .map(|c| c.operation)
        .collect();
    assert!(written.is_empty(), "written: {written:?}");
    h.apply(&ns, &isa("plain", None));
    h.until_reason("isa/plain", &ns, "Synced", false);
    let (client_ids, tags) = provider(&iam, &arn).await.expect("provider");
    assert_eq!(
        client_ids,
        [ISSUER_AUDIENCE],
        "someone else's provider was changed"
    );
    assert!(
        tags.is_empty(),
        "someone else's provider was tagged: {tags:?}"
    );
    support::figure(&format!(
        "oidc provider: 3 objects at once (2 audiences) made it with {} CreateOpenIDConnectProvider; their second audience and a later one took {} AddClientIDToOpenIDConnectProvider; an unlisted audience and a foreign provider got 0 writes",
        operators_calls("CreateOpenIDConnectProvider"),
        operators_calls("AddClientIDToOpenIDConnectProvider"),
    ));
    let _ = operator.child.kill();
    let _ = operator.child.wait();
}
