//! The EKS client (`iam_operator::aws::Eks`) against the project's emulator:
//! the pure association plans run for real, and what EKS then reports is
//! read back. Each test uses namespaces of its own, since the tests of this
//! binary share one emulator and one cluster; only one test updates
//! associations, so it can count `UpdatePodIdentityAssociation` calls.

mod support;

use std::collections::BTreeMap;

use iam_operator::aws::{AwsErrorKind, Eks};
use iam_operator::policy::association_plan::{
    AssociationAction, DesiredAssociation, client_request_token, plan_association,
    plan_association_removal,
};
use iam_operator::policy::ownership::{Owner, Ownership};
use iam_operator::policy::pod_identity_trust_policy;
use support::harness;

/// A role EKS will accept in an association; returns its ARN.
async fn create_role(config: &aws_config::SdkConfig, name: &str) -> String {
    aws_sdk_iam::Client::new(config)
        .create_role()
        .role_name(name)
        .assume_role_policy_document(pod_identity_trust_policy().to_json())
        .send()
        .await
        .expect("CreateRole")
        .role
        .expect("role in CreateRole output")
        .arn
}

fn owner(cluster: &str, namespace: &str, name: &str) -> Owner {
    Owner {
        cluster: cluster.into(),
        region: "us-east-1".into(),
        kind: "PodIdentityBinding".into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn desired(owner: &Owner, service_account: &str, role_arn: &str) -> DesiredAssociation {
    let mut tags = owner.tags();
    tags.insert("team".into(), "platform".into());
    DesiredAssociation {
        namespace: owner.namespace.clone(),
        service_account: service_account.into(),
        role_arn: role_arn.into(),
        target_role_arn: None,
        disable_session_tags: false,
        tags,
        request_scope: format!("{}/1", owner.name),
    }
}

#[tokio::test]
async fn association_is_created_found_replayed_updated_and_removed() {
    let Some(h) = harness() else { return };
    let config = h.aws_config().await;
    let eks = Eks::new(&config, &iam_operator::metrics::Metrics::new());
    let cluster = h.cluster_name.as_str();
    let ns = "eks-client-lifecycle";
    let first_role = create_role(&config, "eks-client-lifecycle-first").await;
    let second_role = create_role(&config, "eks-client-lifecycle-second").await;
    let target_role = create_role(&config, "eks-client-lifecycle-target").await;
    let owner = owner(cluster, ns, "app");
    let mut want = desired(&owner, "app", &first_role);

    let found = eks
        .find_associations(cluster, ns, "app")
        .await
        .expect("list");
    assert!(found.is_empty(), "{found:?}");

    let plan = plan_association(&want, &found, &owner, Some(&first_role)).expect("plan");
    let [create @ AssociationAction::Create { .. }] = plan.as_slice() else {
        panic!("{plan:?}")
    };
    let created = eks
        .apply(cluster, create)
        .await
        .expect("create")
        .expect("association in CreatePodIdentityAssociation output");
    assert!(created.association_id.starts_with("a-"), "{created:?}");
    assert!(
        created
            .association_arn
            .ends_with(&format!("/{cluster}/{}", created.association_id)),
        "{created:?}"
    );

    let found = eks
        .find_associations(cluster, ns, "app")
        .await
        .expect("list");
    assert_eq!(found, std::slice::from_ref(&created));
    let observed = &found[0];
    assert_eq!(
        (
            observed.namespace.as_str(),
            observed.service_account.as_str()
        ),
        (ns, "app")
    );
    assert_eq!(observed.role_arn, first_role);
    assert_eq!(observed.target_role_arn, None);
    assert!(!observed.disable_session_tags);
    assert_eq!(observed.tags, want.tags);
    assert_eq!(owner.classify(&observed.tags), Ownership::Ours);
    assert!(
        plan_association(&want, &found, &owner, Some(&first_role))
            .expect("plan")
            .is_empty(),
        "a resync of an association in sync plans no writes"
    );

    // A create retried after a crash carries the same token: EKS answers
    // with the association the first attempt made.
    let replayed = eks
        .apply(cluster, create)
        .await
        .expect("replayed create")
        .expect("association in replayed output");
    assert_eq!(replayed.association_id, created.association_id);
    assert_eq!(
        eks.find_associations(cluster, ns, "app")
            .await
            .expect("list")
            .len(),
        1
    );

    want.role_arn = second_role.clone();
    want.target_role_arn = Some(target_role.clone());
    want.disable_session_tags = true;
    let plan = plan_association(&want, &found, &owner, Some(&second_role)).expect("plan");
    assert_eq!(
        plan,
        [AssociationAction::Update {
            association_id: created.association_id.clone(),
            role_arn: second_role.clone(),
            target_role_arn: Some(target_role.clone()),
            disable_session_tags: true,
        }]
    );
    let emulator = h.emulator();
    let mark = emulator.mark();
    let updated = eks
        .apply(cluster, &plan[0])
        .await
        .expect("update")
        .expect("association in UpdatePodIdentityAssociation output");
    // Other tests create and delete in the same cluster meanwhile, so only
    // updates are counted (no other test makes one); the unchanged
    // association id below shows nothing was re-created.
    let updates: Vec<_> = emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| c.operation == "UpdatePodIdentityAssociation")
        .collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].target.as_deref(), Some(cluster));
    assert_eq!(updates[0].status, 200);
    assert_eq!(updated.association_id, created.association_id);

    let found = eks
        .find_associations(cluster, ns, "app")
        .await
        .expect("list");
    assert_eq!(found, [updated]);
    assert_eq!(found[0].role_arn, second_role);
    assert_eq!(
        found[0].target_role_arn.as_deref(),
        Some(target_role.as_str())
    );
    assert!(found[0].disable_session_tags);
    assert_eq!(found[0].tags, want.tags, "an update keeps the tags");
    assert!(
        plan_association(&want, &found, &owner, Some(&second_role))
            .expect("plan")
            .is_empty()
    );

    // Dropping the target role goes out as an empty string.
    want.target_role_arn = None;
    let plan = plan_association(&want, &found, &owner, Some(&second_role)).expect("plan");
    assert_eq!(plan.len(), 1, "{plan:?}");
    eks.apply(cluster, &plan[0]).await.expect("drop target");
    let found = eks
        .find_associations(cluster, ns, "app")
        .await
        .expect("list");
    assert_eq!(found[0].target_role_arn, None, "{found:?}");
    assert_eq!(found[0].role_arn, second_role);

    let removal = plan_association_removal(&found, &owner, Some(&second_role));
    assert_eq!(
        removal,
        [AssociationAction::Delete {
            association_id: created.association_id.clone()
        }]
    );
    assert_eq!(eks.apply(cluster, &removal[0]).await.expect("delete"), None);
    assert!(
        eks.find_associations(cluster, ns, "app")
            .await
            .expect("list")
            .is_empty()
    );
    // Deleting again, as a cleanup retried after a crash would: done.
    assert_eq!(
        eks.apply(cluster, &removal[0])
            .await
            .expect("delete of a deleted association"),
        None
    );
}

#[tokio::test]
async fn create_retried_with_a_changed_spec_is_refused_not_duplicated() {
    let Some(h) = harness() else { return };
    let config = h.aws_config().await;
    let eks = Eks::new(&config, &iam_operator::metrics::Metrics::new());
    let cluster = h.cluster_name.as_str();
    let ns = "eks-client-retry";
    let first_role = create_role(&config, "eks-client-retry-first").await;
    let second_role = create_role(&config, "eks-client-retry-second").await;
    let owner = owner(cluster, ns, "app");
    let first =
        plan_association(&desired(&owner, "app", &first_role), &[], &owner, None).expect("plan");
    let created = eks
        .apply(cluster, &first[0])
        .await
        .expect("create")
        .expect("association");

    // The operator crashed before it saw the answer, the spec changed, and
    // the retry planned from a list that did not show the association yet.
    let second =
        plan_association(&desired(&owner, "app", &second_role), &[], &owner, None).expect("plan");
    let err = eks
        .apply(cluster, &second[0])
        .await
        .expect_err("one association per ServiceAccount");
    assert_eq!(err.code, "ResourceInUseException", "{err}");
    assert!(err.is_transient(), "{err:?}");

    // The next resync finds the first attempt's association and updates it.
    let found = eks
        .find_associations(cluster, ns, "app")
        .await
        .expect("list");
    let plan = plan_association(&desired(&owner, "app", &second_role), &found, &owner, None)
        .expect("plan");
    assert_eq!(
        plan,
        [AssociationAction::Update {
            association_id: created.association_id,
            role_arn: second_role,
            target_role_arn: None,
            disable_session_tags: false,
        }]
    );
    for action in plan_association_removal(&found, &owner, None) {
        eks.apply(cluster, &action).await.expect("delete");
    }
}

#[tokio::test]
async fn foreign_association_is_a_conflict_and_removal_leaves_it() {
    let Some(h) = harness() else { return };
    let config = h.aws_config().await;
    let eks = Eks::new(&config, &iam_operator::metrics::Metrics::new());
    let cluster = h.cluster_name.as_str();
    let ns = "eks-client-foreign";
    let our_role = create_role(&config, "eks-client-foreign-ours").await;
    let their_role = create_role(&config, "eks-client-foreign-theirs").await;
    let owner = owner(cluster, ns, "app");

    // Made by a person with the AWS API, no tags, before the operator came.
    let foreign_id = aws_sdk_eks::Client::new(&config)
        .create_pod_identity_association()
        .cluster_name(cluster)
        .namespace(ns)
        .service_account("taken")
        .role_arn(&their_role)
        .send()
        .await
        .expect("foreign CreatePodIdentityAssociation")
        .association
        .and_then(|a| a.association_id)
        .expect("association id");

    let taken = eks
        .find_associations(cluster, ns, "taken")
        .await
        .expect("list");
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert!(taken[0].tags.is_empty(), "{taken:?}");
    let conflict = plan_association(
        &desired(&owner, "taken", &our_role),
        &taken,
        &owner,
        Some(&our_role),
    )
    .expect_err("someone else's association");
    assert_eq!(conflict.association_id, foreign_id);
    assert_eq!(conflict.role_arn, their_role);
    assert!(
        conflict.to_string().contains("not created by iam-operator"),
        "{conflict}"
    );

    // Creating over it anyway is what the conflict spares us: EKS refuses.
    let refused = eks
        .apply(
            cluster,
            &AssociationAction::Create {
                association: desired(&owner, "taken", &our_role),
                client_request_token: "eks-client-foreign-overwrite".into(),
            },
        )
        .await
        .expect_err("second association for one ServiceAccount");
    assert_eq!(refused.code, "ResourceInUseException", "{refused}");

    let want = desired(&owner, "app", &our_role);
    let plan = plan_association(&want, &[], &owner, Some(&our_role)).expect("plan");
    let ours = eks
        .apply(cluster, &plan[0])
        .await
        .expect("create ours")
        .expect("association");

    let mut found = taken;
    found.extend(
        eks.find_associations(cluster, ns, "app")
            .await
            .expect("list"),
    );
    let removal = plan_association_removal(&found, &owner, Some(&our_role));
    assert_eq!(
        removal,
        [AssociationAction::Delete {
            association_id: ours.association_id.clone()
        }]
    );
    for action in &removal {
        eks.apply(cluster, action).await.expect("delete ours");
    }
    assert!(
        eks.find_associations(cluster, ns, "app")
            .await
            .expect("list")
            .is_empty()
    );
    let still_there = eks
        .find_associations(cluster, ns, "taken")
        .await
        .expect("list");
    assert_eq!(
        still_there
            .iter()
            .map(|a| a.association_id.as_str())
            .collect::<Vec<_>>(),
        [foreign_id.as_str()]
    );
}

#[tokio::test]
async fn association_to_a_role_iam_does_not_know_is_refused_as_invalid() {
    let Some(h) = harness() else { return };
    let config = h.aws_config().await;
    let eks = Eks::new(&config, &iam_operator::metrics::Metrics::new());
    let cluster = h.cluster_name.as_str();
    let owner = owner(cluster, "eks-client-missing-role", "app");
    // What EKS answers right after CreateRole, before IAM has propagated:
    // the controller has to be able to tell it apart from other errors.
    let role = format!(
        "arn:aws:iam::{}:role/eks-client-never-created",
        h.account_id
    );
    let want = desired(&owner, "app", &role);
    let plan = plan_association(&want, &[], &owner, None).expect("plan");
    let err = eks
        .apply(cluster, &plan[0])
        .await
        .expect_err("role does not exist");
    assert_eq!(err.kind, AwsErrorKind::Invalid, "{err}");
    assert_eq!(err.code, "InvalidParameterException", "{err}");
    assert_eq!(err.operation, "CreatePodIdentityAssociation");
    assert!(
        eks.find_associations(cluster, "eks-client-missing-role", "app")
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn unknown_cluster_is_not_found() {
    let Some(h) = harness() else { return };
    let config = h.aws_config().await;
    let eks = Eks::new(&config, &iam_operator::metrics::Metrics::new());

    assert!(
        eks.describe_cluster_exists(&h.cluster_name)
            .await
            .expect("DescribeCluster")
    );
    assert!(
        !eks.describe_cluster_exists("eks-client-no-such-cluster")
            .await
            .expect("DescribeCluster of an unknown cluster")
    );

    let err = eks
        .find_associations("eks-client-no-such-cluster", "eks-client-unknown", "app")
        .await
        .expect_err("unknown cluster");
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.operation, "ListPodIdentityAssociations");

    let owner = owner("eks-client-no-such-cluster", "eks-client-unknown", "app");
    let want = desired(&owner, "app", "arn:aws:iam::123456789012:role/any");
    let err = eks
        .apply(
            "eks-client-no-such-cluster",
            &AssociationAction::Create {
                client_request_token: client_request_token(&owner, &want),
                association: want,
            },
        )
        .await
        .expect_err("unknown cluster");
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn tags_given_at_creation_come_back_exactly() {
    let Some(h) = harness() else { return };
    let config = h.aws_config().await;
    let eks = Eks::new(&config, &iam_operator::metrics::Metrics::new());
    let cluster = h.cluster_name.as_str();
    let ns = "eks-client-tags";
    let role = create_role(&config, "eks-client-tags").await;
    let owner = owner(cluster, ns, "app");
    let mut want = desired(&owner, "app", &role);
    want.tags.extend(BTreeMap::from([
        ("cost-centre".to_string(), "1234".to_string()),
        ("empty-value".to_string(), String::new()),
    ]));
    let plan = plan_association(&want, &[], &owner, None).expect("plan");
    eks.apply(cluster, &plan[0]).await.expect("create");
    let found = eks
        .find_associations(cluster, ns, "app")
        .await
        .expect("list");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].tags, want.tags);
    for action in plan_association_removal(&found, &owner, None) {
        eks.apply(cluster, &action).await.expect("delete");
    }
}

#[tokio::test]
async fn an_untagged_association_to_our_role_is_adopted_by_tagging_it() {
    let Some(h) = harness() else { return };
    let config = h.aws_config().await;
    let eks = Eks::new(&config, &iam_operator::metrics::Metrics::new());
    let cluster = h.cluster_name.as_str();
    let ns = "eks-client-adopt";
    let owner = owner(cluster, ns, "app");
    let our_role = create_role(&config, "eks-client-adopt-role").await;
    aws_sdk_eks::Client::new(&config)
        .create_pod_identity_association()
        .cluster_name(cluster)
        .namespace(ns)
        .service_account("app")
        .role_arn(&our_role)
        .send()
        .await
        .expect("an association made before the operator knew it");

    let found = eks
        .find_associations(cluster, ns, "app")
        .await
        .expect("list");
    let want = desired(&owner, "app", &our_role);
    let plan = plan_association(&want, &found, &owner, Some(&our_role)).expect("adopted");
    assert_eq!(
        plan.iter()
            .map(AssociationAction::operation)
            .collect::<Vec<_>>(),
        ["TagResource"]
    );
    for action in &plan {
        eks.apply(cluster, action).await.expect("tag");
    }
    let adopted = eks
        .find_associations(cluster, ns, "app")
        .await
        .expect("list");
    assert_eq!(owner.classify(&adopted[0].tags), Ownership::Ours);
    // Now recognised by its tags alone, whatever role it points at later.
    assert!(
        plan_association(&want, &adopted, &owner, None)
            .expect("ours")
            .is_empty()
    );
    for action in plan_association_removal(&adopted, &owner, None) {
        eks.apply(cluster, &action).await.expect("delete");
    }
}
