//! What tests read back from the emulator to check the operator's work: the
//! same few IAM and EKS lookups, for every test binary.

use std::collections::BTreeSet;

use aws_sdk_eks::types::PodIdentityAssociation;

pub async fn get_role(iam: &aws_sdk_iam::Client, name: &str) -> aws_sdk_iam::types::Role {
    iam.get_role()
        .role_name(name)
        .send()
        .await
        .expect("GetRole")
        .role
        .expect("role")
}

pub async fn role_exists(iam: &aws_sdk_iam::Client, name: &str) -> bool {
    match iam.get_role().role_name(name).send().await {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            false
        }
        Err(e) => panic!("GetRole {name}: {e:?}"),
    }
}

/// Deletes a role as someone outside the operator would, its managed
/// policies detached first (IAM refuses to delete a role that has any).
pub async fn delete_role_by_hand(iam: &aws_sdk_iam::Client, name: &str) {
    for arn in attached(iam, name).await {
        iam.detach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .expect("DetachRolePolicy");
    }
    iam.delete_role()
        .role_name(name)
        .send()
        .await
        .expect("DeleteRole");
}

/// The managed policy ARNs attached to `role`.
pub async fn attached(iam: &aws_sdk_iam::Client, role: &str) -> BTreeSet<String> {
    iam.list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("ListAttachedRolePolicies")
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect()
}

/// The ids of one ServiceAccount's Pod Identity associations.
pub async fn association_ids(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    namespace: &str,
    service_account: &str,
) -> Vec<String> {
    eks.list_pod_identity_associations()
        .cluster_name(cluster)
        .namespace(namespace)
        .service_account(service_account)
        .send()
        .await
        .expect("ListPodIdentityAssociations")
        .associations()
        .iter()
        .filter_map(|a| a.association_id().map(str::to_string))
        .collect()
}

/// One ServiceAccount's Pod Identity associations, described (the list
/// carries neither role nor tags).
pub async fn associations(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    namespace: &str,
    service_account: &str,
) -> Vec<PodIdentityAssociation> {
    let mut described = Vec::new();
    for id in association_ids(eks, cluster, namespace, service_account).await {
        let output = eks
            .describe_pod_identity_association()
            .cluster_name(cluster)
            .association_id(id)
            .send()
            .await
            .expect("DescribePodIdentityAssociation");
        described.extend(output.association);
    }
    described
}
