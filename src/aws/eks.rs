//! EKS: find a ServiceAccount's Pod Identity associations, run planned
//! association actions, and check that the cluster exists. Every call here
//! is I/O; deciding what to call is `crate::policy::association_plan`'s job.

use std::sync::Arc;

use crate::metrics::Metrics;
use std::collections::{BTreeMap, HashMap};

use aws_sdk_eks::Client;
use aws_sdk_eks::types::PodIdentityAssociation;

use super::error::{AwsError, absent_as_none};
use crate::policy::association_plan::{AssociationAction, ObservedAssociation};

#[derive(Clone)]
pub struct Eks {
    client: Client,
}

impl Eks {
    /// Every attempt (retries included) is counted and timed in `metrics`.
    pub fn new(config: &aws_config::SdkConfig, metrics: &Arc<Metrics>) -> Self {
        let config = aws_sdk_eks::config::Builder::from(config)
            .interceptor(metrics.aws_interceptor("eks"))
            .retry_classifier(super::retry::ServerErrorsSlowDown)
            .build();
        Eks {
            client: Client::from_conf(config),
        }
    }

    /// The associations of one ServiceAccount in `cluster`, described in
    /// full. Only reads: `ListPodIdentityAssociations` (every page), then a
    /// `DescribePodIdentityAssociation` each, because the list carries
    /// neither the role nor the tags.
    pub async fn find_associations(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Vec<ObservedAssociation>, AwsError> {
        let mut ids = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .client
                .list_pod_identity_associations()
                .cluster_name(cluster)
                .namespace(namespace)
                .service_account(service_account)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ListPodIdentityAssociations", e))?;
            ids.extend(
                page.associations()
                    .iter()
                    .filter_map(|a| a.association_id().map(str::to_string)),
            );
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                break;
            }
        }

        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            // Deleted between the list and now: it is not there.
            found.extend(self.association(cluster, &id).await?);
        }
        Ok(found)
    }

    /// One association by id (`DescribePodIdentityAssociation`), or `None`
    /// when it does not exist.
    pub async fn association(
        &self,
        cluster: &str,
        association_id: &str,
    ) -> Result<Option<ObservedAssociation>, AwsError> {
        let described = self
            .client
            .describe_pod_identity_association()
            .cluster_name(cluster)
            .association_id(association_id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribePodIdentityAssociation", e));
        Ok(absent_as_none(described)?
            .and_then(|output| output.association.as_ref().map(to_observed)))
    }

    /// Runs one planned action in `cluster`. Returns the association as EKS
    /// reports it after a create or an update; `None` after a delete or a
    /// tagging.
    pub async fn apply(
        &self,
        cluster: &str,
        action: &AssociationAction,
    ) -> Result<Option<ObservedAssociation>, AwsError> {
        let op = action.operation();
        match action {
            AssociationAction::Create {
                association,
                client_request_token,
            } => {
                let output = self
                    .client
                    .create_pod_identity_association()
                    .cluster_name(cluster)
                    .namespace(&association.namespace)
                    .service_account(&association.service_account)
                    .role_arn(&association.role_arn)
                    .set_target_role_arn(association.target_role_arn.clone())
                    .disable_session_tags(association.disable_session_tags)
                    .set_tags(Some(to_tags(&association.tags)))
                    .client_request_token(client_request_token)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
                Ok(output.association.as_ref().map(to_observed))
            }
            AssociationAction::Update {
                association_id,
                role_arn,
                target_role_arn,
                disable_session_tags,
            } => {
                let output = self
                    .client
                    .update_pod_identity_association()
                    .cluster_name(cluster)
                    .association_id(association_id)
                    .role_arn(role_arn)
                    // Omitting the member would keep the old target, and
                    // the JSON protocol cannot send null: an empty string
                    // is the one way to ask for none.
                    .target_role_arn(target_role_arn.clone().unwrap_or_default())
                    .disable_session_tags(*disable_session_tags)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
                Ok(output.association.as_ref().map(to_observed))
            }
            AssociationAction::Delete { association_id } => {
                let deleted = self
                    .client
                    .delete_pod_identity_association()
                    .cluster_name(cluster)
                    .association_id(association_id)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e));
                // Already gone is done: cleanup must converge even when an
                // earlier attempt got half-way.
                absent_as_none(deleted)?;
                Ok(None)
            }
            AssociationAction::Tag {
                association_arn,
                tags,
            } => {
                self.client
                    .tag_resource()
                    .resource_arn(association_arn)
                    .set_tags(Some(to_tags(tags)))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
                Ok(None)
            }
        }
    }

    /// The status of add-on `addon` of `cluster` (`ACTIVE`, `DEGRADED`, ...),
    /// `None` when the cluster has no such add-on (`DescribeAddon`).
    pub async fn addon_status(
        &self,
        cluster: &str,
        addon: &str,
    ) -> Result<Option<String>, AwsError> {
        let described = self
            .client
            .describe_addon()
            .cluster_name(cluster)
            .addon_name(addon)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeAddon", e));
        Ok(absent_as_none(described)?.map(|output| {
            output
                .addon
                .and_then(|addon| addon.status)
                .map(|status| status.as_str().to_string())
                .unwrap_or_default()
        }))
    }

    /// The OIDC issuer EKS reports for `cluster` (`DescribeCluster`); `None`
    /// when the cluster does not exist or reports none.
    pub async fn cluster_issuer(&self, cluster: &str) -> Result<Option<String>, AwsError> {
        Ok(self
            .describe_cluster(cluster)
            .await?
            .and_then(super::identity::issuer_of))
    }

    /// Whether `cluster` exists in the configured account and region
    /// (`DescribeCluster`), so a wrong name or region is reported as such.
    pub async fn describe_cluster_exists(&self, cluster: &str) -> Result<bool, AwsError> {
        Ok(self.describe_cluster(cluster).await?.is_some())
    }

    async fn describe_cluster(
        &self,
        cluster: &str,
    ) -> Result<Option<aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput>, AwsError>
    {
        absent_as_none(
            self.client
                .describe_cluster()
                .name(cluster)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DescribeCluster", e)),
        )
    }
}

fn to_observed(association: &PodIdentityAssociation) -> ObservedAssociation {
    let text = |value: Option<&str>| value.unwrap_or_default().to_string();
    ObservedAssociation {
        association_id: text(association.association_id()),
        association_arn: text(association.association_arn()),
        namespace: text(association.namespace()),
        service_account: text(association.service_account()),
        role_arn: text(association.role_arn()),
        target_role_arn: association
            .target_role_arn()
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        disable_session_tags: association.disable_session_tags().unwrap_or(false),
        tags: association
            .tags()
            .map(|tags| {
                tags.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default(),
    }
}

fn to_tags(tags: &BTreeMap<String, String>) -> HashMap<String, String> {
    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
