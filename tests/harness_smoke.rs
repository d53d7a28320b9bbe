//! Smoke tests of the harness itself: the real kube-apiserver + etcd, and the
//! AWS emulator (moto plus the project's EKS Pod Identity extension), driven
//! with the same clients the operator uses.

mod support;

use aws_sdk_eks::error::ProvideErrorMetadata;
use base64::Engine;
use iam_operator::policy::pod_identity_trust_policy;
use serde_json::json;
use support::harness;

// Fault rules are global to the emulator: the test that sets them names
// operations no other test in this binary calls.

#[test]
fn crd_and_custom_resource_round_trip_through_kubectl() {
    let Some(h) = harness() else { return };
    let ns = h.fresh_namespace("smoke-crd");
    support::operator::install(h);
    let manifest = format!(
        "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {{name: smoke, namespace: {ns}}}\nspec:\n  role: {{description: smoke test}}\n"
    );
    let out = h.kubectl_output(&["apply", "-f", "-"], Some(&manifest));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = h.kubectl_json(&["get", "isa", "smoke", "-n", &ns]);
    assert_eq!(read["spec"]["role"]["description"], "smoke test");
    assert_eq!(read["kind"], "IamServiceAccount");
}

#[test]
fn service_account_tokens_are_issued_by_the_discoverable_issuer() {
    let Some(h) = harness() else { return };
    let ns = h.fresh_namespace("smoke-token");
    h.kubectl(&["create", "serviceaccount", "app", "-n", &ns]);
    let token = h.kubectl(&[
        "create",
        "token",
        "app",
        "-n",
        &ns,
        "--audience",
        "sts.amazonaws.com",
    ]);
    let payload = token.trim().split('.').nth(1).expect("JWT has a payload");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url payload"),
    )
    .expect("JSON claims");
    assert_eq!(claims["iss"], h.issuer.as_str());
    assert_eq!(claims["sub"], format!("system:serviceaccount:{ns}:app"));
    assert_eq!(claims["aud"], json!(["sts.amazonaws.com"]));

    let discovery: serde_json::Value =
        serde_json::from_str(&h.kubectl(&["get", "--raw", "/.well-known/openid-configuration"]))
            .expect("discovery JSON");
    assert_eq!(discovery["issuer"], h.issuer.as_str());
    let jwks: serde_json::Value =
        serde_json::from_str(&h.kubectl(&["get", "--raw", "/openid/v1/jwks"])).expect("JWKS JSON");
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
}

#[tokio::test]
async fn eks_cluster_is_seeded_with_the_apiserver_issuer() {
    let Some(h) = harness() else { return };
    let eks = aws_sdk_eks::Client::new(&h.aws_config().await);
    let cluster = eks
        .describe_cluster()
        .name(&h.cluster_name)
        .send()
        .await
        .expect("DescribeCluster")
        .cluster
        .expect("cluster");
    let issuer = cluster
        .identity
        .and_then(|i| i.oidc)
        .and_then(|o| o.issuer)
        .expect("identity.oidc.issuer");
    assert_eq!(issuer, h.issuer);

    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    let provider_arn = h
        .oidc_provider_arn
        .as_deref()
        .expect("harness seeds an OIDC provider");
    let provider = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(provider_arn)
        .send()
        .await
        .expect("GetOpenIDConnectProvider");
    assert_eq!(provider.client_id_list(), ["sts.amazonaws.com"]);
}

#[tokio::test]
async fn iam_role_created_and_read_back_with_managed_policies_loaded() {
    let Some(h) = harness() else { return };
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    let trust = pod_identity_trust_policy().to_json();
    let created = iam
        .create_role()
        .role_name("smoke-role")
        .path("/smoke/")
        .assume_role_policy_document(&trust)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("smoke")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("CreateRole")
        .role
        .expect("role");
    assert_eq!(
        created.arn,
        "arn:aws:iam::123456789012:role/smoke/smoke-role"
    );
    iam.attach_role_policy()
        .role_name("smoke-role")
        .policy_arn("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
        .send()
        .await
        .expect("an AWS managed policy is attachable");
    let read = iam
        .get_role()
        .role_name("smoke-role")
        .send()
        .await
        .expect("GetRole")
        .role
        .expect("role");
    assert_eq!(read.tags()[0].key(), "team");
    // IAM hands trust policies back URL-encoded; the operator must decode.
    assert!(
        read.assume_role_policy_document()
            .unwrap_or_default()
            .starts_with("%7B")
    );
    let missing = iam
        .get_role()
        .role_name("no-such-role")
        .send()
        .await
        .expect_err("missing role");
    assert!(
        missing
            .as_service_error()
            .is_some_and(|e| e.is_no_such_entity_exception())
    );
}

async fn role_for_pod_identity(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let trust = pod_identity_trust_policy().to_json();
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(&trust)
        .send()
        .await
        .expect("CreateRole")
        .role
        .expect("role")
        .arn
}

#[tokio::test]
async fn every_pod_identity_operation_and_its_errors() {
    let Some(h) = harness() else { return };
    let config = h.aws_config().await;
    let (iam, eks) = (
        aws_sdk_iam::Client::new(&config),
        aws_sdk_eks::Client::new(&config),
    );
    let role = role_for_pod_identity(&iam, "smoke-pia-role").await;
    let other_role = role_for_pod_identity(&iam, "smoke-pia-role-2").await;
    let cluster = h.cluster_name.as_str();
    let ns = "smoke-pia";

    let created = eks
        .create_pod_identity_association()
        .cluster_name(cluster)
        .namespace(ns)
        .service_account("app")
        .role_arn(&role)
        .client_request_token("smoke-token-1")
        .tags("iam-operator.io/managed-by", "smoke")
        .send()
        .await
        .expect("CreatePodIdentityAssociation")
        .association
        .expect("association");
    let id = created
        .association_id()
        .expect("association id")
        .to_string();
    assert_eq!(created.role_arn(), Some(role.as_str()));
    assert_eq!(created.service_account(), Some("app"));
    assert!(
        created
            .association_arn()
            .is_some_and(|a| a.starts_with("arn:aws:eks:"))
    );

    // The same client request token replays the first answer.
    let replay = eks
        .create_pod_identity_association()
        .cluster_name(cluster)
        .namespace(ns)
        .service_account("app")
        .role_arn(&role)
        .client_request_token("smoke-token-1")
        .tags("iam-operator.io/managed-by", "smoke")
        .send()
        .await
        .expect("idempotent retry")
        .association
        .expect("association");
    assert_eq!(replay.association_id(), Some(id.as_str()));

    let in_use = eks
        .create_pod_identity_association()
        .cluster_name(cluster)
        .namespace(ns)
        .service_account("app")
        .role_arn(&other_role)
        .send()
        .await
        .expect_err("a second association for one ServiceAccount");
    assert!(
        in_use
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception()),
        "{in_use:?}"
    );

    let bad_role = eks
        .create_pod_identity_association()
        .cluster_name(cluster)
        .namespace(ns)
        .service_account("other")
        .role_arn("arn:aws:iam::123456789012:role/does-not-exist")
        .send()
        .await
        .expect_err("a role that does not exist");
    assert!(
        bad_role
            .as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_exception()),
        "{bad_role:?}"
    );

    let no_cluster = eks
        .list_pod_identity_associations()
        .cluster_name("no-such-cluster")
        .send()
        .await
        .expect_err("unknown cluster");
    assert!(
        no_cluster
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{no_cluster:?}"
    );

    let described = eks
        .describe_pod_identity_association()
        .cluster_name(cluster)
        .association_id(&id)
        .send()
        .await
        .expect("Describe")
        .association
        .expect("association");
    assert_eq!(
        described
            .tags()
            .and_then(|t| t.get("iam-operator.io/managed-by"))
            .map(String::as_str),
        Some("smoke")
    );

    let updated = eks
        .update_pod_identity_association()
        .cluster_name(cluster)
        .association_id(&id)
        .role_arn(&other_role)
        .disable_session_tags(true)
        .send()
        .await
        .expect("Update")
        .association
        .expect("association");
    assert_eq!(updated.role_arn(), Some(other_role.as_str()));
    assert_eq!(updated.disable_session_tags(), Some(true));
    assert_eq!(updated.association_id(), Some(id.as_str()));

    // Three more in another namespace, listed one per page.
    for sa in ["a", "b", "c"] {
        eks.create_pod_identity_association()
            .cluster_name(cluster)
            .namespace("smoke-pia-pages")
            .service_account(sa)
            .role_arn(&role)
            .send()
            .await
            .expect("create for paging");
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = eks
            .list_pod_identity_associations()
            .cluster_name(cluster)
            .namespace("smoke-pia-pages")
            .max_results(1)
            .set_next_token(token)
            .send()
            .await
            .expect("List page");
        assert!(page.associations().len() <= 1);
        seen.extend(
            page.associations()
                .iter()
                .filter_map(|a| a.service_account().map(str::to_string)),
        );
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, ["a", "b", "c"]);
    let filtered = eks
        .list_pod_identity_associations()
        .cluster_name(cluster)
        .namespace(ns)
        .service_account("app")
        .send()
        .await
        .expect("List filtered");
    assert_eq!(filtered.associations().len(), 1);
    assert_eq!(
        filtered.associations()[0].association_id(),
        Some(id.as_str())
    );

    eks.delete_pod_identity_association()
        .cluster_name(cluster)
        .association_id(&id)
        .send()
        .await
        .expect("Delete");
    let gone = eks
        .describe_pod_identity_association()
        .cluster_name(cluster)
        .association_id(&id)
        .send()
        .await
        .expect_err("deleted association");
    assert!(
        gone.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{gone:?}"
    );
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));
}

#[tokio::test]
async fn call_log_counts_calls_and_injected_throttling_is_seen_by_the_sdk() {
    let Some(h) = harness() else { return };
    let emulator = h.emulator();
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    role_for_pod_identity(&iam, "smoke-throttled").await;

    let mark = emulator.mark();
    iam.list_role_tags()
        .role_name("smoke-throttled")
        .send()
        .await
        .expect("ListRoleTags");
    let calls = emulator.calls_since(mark);
    let tags_calls: Vec<_> = calls
        .iter()
        .filter(|c| c.operation == "ListRoleTags")
        .collect();
    assert_eq!(tags_calls.len(), 1, "{calls:?}");
    assert_eq!(tags_calls[0].service, "iam");
    assert_eq!(tags_calls[0].status, 200);

    // Two throttles then success: the SDK's standard retry absorbs them.
    emulator.set_faults(json!({"seed": 7, "rules": [
        {"service": "iam", "operation": "ListRoleTags", "fault": "throttle", "rate": 1.0, "count": 2}
    ]}));
    let mark = emulator.mark();
    iam.list_role_tags()
        .role_name("smoke-throttled")
        .send()
        .await
        .expect("retried past two throttles");
    let attempts: Vec<_> = emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| c.operation == "ListRoleTags")
        .collect();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert_eq!(attempts[0].fault.as_deref(), Some("throttle"));
    assert_eq!(attempts[0].status, 400);
    assert_eq!(attempts[2].fault, None);

    // Without retries the throttle reaches the caller as AWS words it.
    emulator.set_faults(json!({"rules": [
        {"service": "iam", "operation": "ListRoleTags", "fault": "throttle", "rate": 1.0, "count": 1}
    ]}));
    let no_retry = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&h.aws_config().await)
            .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled())
            .build(),
    );
    let err = no_retry
        .list_role_tags()
        .role_name("smoke-throttled")
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(err.code(), Some("Throttling"));

    emulator.set_faults(json!({"rules": [
        {"service": "eks", "operation": "ListClusters", "fault": "server_error", "rate": 1.0, "count": 1}
    ]}));
    let eks = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::config::Builder::from(&h.aws_config().await)
            .retry_config(aws_sdk_eks::config::retry::RetryConfig::disabled())
            .build(),
    );
    let err = eks.list_clusters().send().await.expect_err("5xx");
    assert_eq!(err.code(), Some("ServerException"));
    emulator.clear_faults();
}
