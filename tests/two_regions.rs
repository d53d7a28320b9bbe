//! Two EKS clusters of one name in two regions of one account (a second
//! harness for the second cluster, both operators on the first harness's
//! emulator): each gets its own role for the same namespace and name, and
//! deleting in one leaves the other's alone.

mod support;

use std::time::Duration;

use support::aws::{get_role, role_exists};
use support::operator::{eventually, install, start, start_against};
use support::{Harness, another_harness, harness};

const MANIFEST: &str = "apiVersion: iam-operator.io/v1alpha1\nkind: IamServiceAccount\nmetadata: {name: web}\nspec:\n  serviceAccount: {create: true}\n";

fn delete_web(h: &Harness, ns: &str) {
    h.kubectl(&[
        "delete",
        "isa",
        "web",
        "-n",
        ns,
        "--wait=true",
        "--timeout=60s",
    ]);
}

fn role_of(h: &Harness, ns: &str) -> String {
    h.wait_ready("isa/web", ns);
    h.kubectl_json(&["get", "isa", "web", "-n", ns])["status"]["roleName"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn bug6_same_named_clusters_in_two_regions_never_share_a_role() {
    let Some(east) = harness() else { return };
    install(east);
    let west = another_harness(&["--region", "us-west-2"]);
    install(&west);
    assert_eq!(east.cluster_name, west.cluster_name);
    let iam = aws_sdk_iam::Client::new(&east.aws_config().await);
    // The west cluster's issuer, registered in the one account both share.
    iam.create_open_id_connect_provider()
        .url(&west.issuer)
        .client_id_list("sts.amazonaws.com")
        .thumbprint_list("9e99a48a9960b14926bb7f3b02e22da2b0ab7280")
        .send()
        .await
        .expect("CreateOpenIDConnectProvider");

    let ns = east.fresh_namespace("regions");
    west.kubectl(&["create", "namespace", &ns]);
    let mut operators = [
        start(east, &["--watch-namespaces", &ns]),
        start_against(
            &west,
            &east.emulator_url,
            &["--watch-namespaces", &ns, "--oidc-issuer", &west.issuer],
        ),
    ];
    east.apply(&ns, MANIFEST);
    west.apply(&ns, MANIFEST);
    let (east_role, west_role) = (role_of(east, &ns), role_of(&west, &ns));
    assert_ne!(east_role, west_role);
    for (role, region, issuer) in [
        (&east_role, &east.region, &east.issuer),
        (&west_role, &west.region, &west.issuer),
    ] {
        let got = get_role(&iam, role).await;
        let tag = got
            .tags()
            .iter()
            .find(|t| t.key() == "iam-operator.io/region")
            .map(|t| t.value().to_string());
        assert_eq!(tag.as_deref(), Some(region.as_str()), "{role}");
        let trust = urlencoding_free(got.assume_role_policy_document().unwrap_or_default());
        let host = issuer.trim_start_matches("https://");
        assert!(trust.contains(host), "{role} trusts {trust}");
    }

    delete_web(east, &ns);
    assert!(!role_exists(&iam, &east_role).await);
    assert!(
        role_exists(&iam, &west_role).await,
        "the other region's role was deleted"
    );
    // And the west role stays Ready: its trust was never rewritten.
    eventually("west still Ready", Duration::from_secs(10), || {
        let s = west.kubectl_json(&["get", "isa", "web", "-n", &ns]);
        (s["status"]["conditions"][0]["status"] == "True").then_some(())
    });
    delete_web(&west, &ns);
    assert!(!role_exists(&iam, &west_role).await);
    for operator in &mut operators {
        let _ = operator.kill();
        let _ = operator.wait();
    }
}

/// IAM hands policy documents back URL-encoded.
fn urlencoding_free(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}
