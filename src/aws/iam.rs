//! IAM: read a role as it is, run planned actions, and look up what the
//! diagnostics need (OIDC providers, foreign roles' trust policies).

use std::sync::Arc;

use crate::metrics::Metrics;
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;

use super::error::{AwsError, absent_as_none};
use crate::policy::PolicyDocument;
use crate::policy::provider_plan::{ObservedProvider, ProviderChange};
pub use crate::policy::role_plan::RoleSummary;
use crate::policy::role_plan::{ObservedRole, RoleAction, RoleState};

#[derive(Clone)]
pub struct Iam {
    client: Client,
}

/// What went wrong reading a document IAM handed back: it should never
/// happen, and when it does the role is left alone.
fn unreadable(operation: &'static str, what: &str, err: impl std::fmt::Display) -> AwsError {
    AwsError {
        operation,
        kind: super::AwsErrorKind::Invalid,
        code: "UnreadableDocument".into(),
        message: format!("{what}: {err}"),
    }
}

impl Iam {
    /// Every attempt (retries included) is counted and timed in `metrics`.
    pub fn new(config: &aws_config::SdkConfig, metrics: &Arc<Metrics>) -> Self {
        let config = aws_sdk_iam::config::Builder::from(config)
            .interceptor(metrics.aws_interceptor("iam"))
            .retry_classifier(super::retry::ServerErrorsSlowDown)
            .build();
        Iam {
            client: Client::from_conf(config),
        }
    }

    /// The role with its policies, or `None` when it does not exist. Only
    /// reads: `GetRole`, `ListAttachedRolePolicies`, `ListRolePolicies` and a
    /// `GetRolePolicy` per inline policy.
    pub async fn observe_role(&self, name: &str) -> Result<Option<ObservedRole>, AwsError> {
        let output = absent_as_none(
            self.client
                .get_role()
                .role_name(name)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("GetRole", e)),
        )?;
        let Some(role) = output.and_then(|o| o.role) else {
            return Ok(None);
        };
        let trust_policy =
            PolicyDocument::parse(role.assume_role_policy_document().unwrap_or("{}"))
                .map_err(|e| unreadable("GetRole", "trust policy", e))?;
        let tags: BTreeMap<String, String> = role
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        let managed_policies = self.attached_policies(name).await?;
        let inline_policies = self.inline_policies(name).await?;
        Ok(Some(ObservedRole {
            arn: role.arn().to_string(),
            created: SystemTime::try_from(*role.create_date()).ok(),
            state: RoleState {
                name: role.role_name().to_string(),
                path: role.path().to_string(),
                description: role.description().map(str::to_string),
                max_session_seconds: role.max_session_duration().unwrap_or(3600),
                permissions_boundary: role
                    .permissions_boundary()
                    .and_then(|b| b.permissions_boundary_arn())
                    .map(str::to_string),
                tags,
                trust_policy,
                managed_policies,
                inline_policies,
            },
        }))
    }

    async fn attached_policies(&self, role: &str) -> Result<BTreeSet<String>, AwsError> {
        let mut arns = BTreeSet::new();
        let mut marker = None;
        loop {
            let page = self
                .client
                .list_attached_role_policies()
                .role_name(role)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ListAttachedRolePolicies", e))?;
            arns.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string)),
            );
            marker = page.marker().map(str::to_string);
            if !page.is_truncated() || marker.is_none() {
                return Ok(arns);
            }
        }
    }

    async fn inline_policies(
        &self,
        role: &str,
    ) -> Result<BTreeMap<String, PolicyDocument>, AwsError> {
        let mut names = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .client
                .list_role_policies()
                .role_name(role)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ListRolePolicies", e))?;
            names.extend(page.policy_names().iter().cloned());
            marker = page.marker().map(str::to_string);
            if !page.is_truncated() || marker.is_none() {
                break;
            }
        }
        let mut policies = BTreeMap::new();
        for name in names {
            let output = self
                .client
                .get_role_policy()
                .role_name(role)
                .policy_name(&name)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("GetRolePolicy", e))?;
            let document = PolicyDocument::parse(output.policy_document())
                .map_err(|e| unreadable("GetRolePolicy", &name, e))?;
            policies.insert(name, document);
        }
        Ok(policies)
    }

    /// Runs one planned action on the role `role`. Returns the role ARN when
    /// the action created the role.
    pub async fn apply(&self, role: &str, action: &RoleAction) -> Result<Option<String>, AwsError> {
        let op = action.operation();
        let c = &self.client;
        match action {
            RoleAction::CreateRole(desired) => {
                let output = c
                    .create_role()
                    .role_name(&desired.name)
                    .path(&desired.path)
                    .assume_role_policy_document(desired.trust_policy.to_json())
                    .set_description(desired.description.clone().filter(|d| !d.is_empty()))
                    .max_session_duration(desired.max_session_seconds)
                    .set_permissions_boundary(desired.permissions_boundary.clone())
                    .set_tags(Some(to_tags(&desired.tags)))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
                return Ok(output.role.map(|r| r.arn));
            }
            RoleAction::UpdateRole {
                description,
                max_session_seconds,
            } => {
                c.update_role()
                    .role_name(role)
                    // An empty description clears it; omitting it would too,
                    // but only by accident of UpdateRole's reset semantics.
                    .description(description.clone().unwrap_or_default())
                    .max_session_duration(*max_session_seconds)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
            }
            RoleAction::UpdateTrustPolicy(document) => {
                c.update_assume_role_policy()
                    .role_name(role)
                    .policy_document(document.to_json())
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
            }
            RoleAction::PutPermissionsBoundary(arn) => {
                c.put_role_permissions_boundary()
                    .role_name(role)
                    .permissions_boundary(arn)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
            }
            RoleAction::TagRole(tags) => {
                c.tag_role()
                    .role_name(role)
                    .set_tags(Some(to_tags(tags)))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
            }
            RoleAction::UntagRole(keys) => {
                c.untag_role()
                    .role_name(role)
                    .set_tag_keys(Some(keys.clone()))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
            }
            RoleAction::AttachPolicy(arn) => {
                c.attach_role_policy()
                    .role_name(role)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
            }
            RoleAction::DetachPolicy(arn) => {
                ignore_not_found(
                    c.detach_role_policy()
                        .role_name(role)
                        .policy_arn(arn)
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(op, e)),
                )?;
            }
            RoleAction::PutInlinePolicy { name, document } => {
                c.put_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .policy_document(document.to_json())
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
            }
            RoleAction::DeleteInlinePolicy(name) => {
                ignore_not_found(
                    c.delete_role_policy()
                        .role_name(role)
                        .policy_name(name)
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(op, e)),
                )?;
            }
            RoleAction::DeleteRole => {
                ignore_not_found(
                    c.delete_role()
                        .role_name(role)
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(op, e)),
                )?;
            }
        }
        Ok(None)
    }

    /// An IAM OIDC provider's client IDs (audiences) and tags, or `None`
    /// when the account has no such provider.
    pub async fn oidc_provider(
        &self,
        provider_arn: &str,
    ) -> Result<Option<ObservedProvider>, AwsError> {
        let output = absent_as_none(
            self.client
                .get_open_id_connect_provider()
                .open_id_connect_provider_arn(provider_arn)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("GetOpenIDConnectProvider", e)),
        )?;
        Ok(output.map(|o| ObservedProvider {
            client_ids: o.client_id_list().to_vec(),
            tags: o
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        }))
    }

    /// One write to the provider `provider_arn`. Creating one that exists
    /// already (made by another reconcile or a person meanwhile) is not an
    /// error: `false` says nothing was made.
    pub async fn change_oidc_provider(
        &self,
        provider_arn: &str,
        change: &ProviderChange,
    ) -> Result<bool, AwsError> {
        let op = change.operation();
        match change {
            ProviderChange::Create {
                url,
                client_id,
                tags,
            } => {
                let created = self
                    .client
                    .create_open_id_connect_provider()
                    .url(url)
                    .client_id_list(client_id)
                    .set_tags(Some(to_tags(tags)))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e));
                match created {
                    Ok(_) => Ok(true),
                    Err(e) if e.code == "EntityAlreadyExists" => Ok(false),
                    Err(e) => Err(e),
                }
            }
            ProviderChange::AddClientId { client_id } => {
                self.client
                    .add_client_id_to_open_id_connect_provider()
                    .open_id_connect_provider_arn(provider_arn)
                    .client_id(client_id)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(op, e))?;
                Ok(true)
            }
        }
    }

    /// Any role, ours or not, read with one `GetRole`; `None` when it does
    /// not exist.
    pub async fn role_summary(&self, role_name: &str) -> Result<Option<RoleSummary>, AwsError> {
        let output = absent_as_none(
            self.client
                .get_role()
                .role_name(role_name)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("GetRole", e)),
        )?;
        Ok(output.and_then(|o| o.role).map(|role| RoleSummary {
            arn: role.arn().to_string(),
            created: SystemTime::try_from(*role.create_date()).ok(),
            trust_policy: role
                .assume_role_policy_document()
                .and_then(|d| PolicyDocument::parse(d).ok()),
            tags: role
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        }))
    }
}

/// Deleting what is already gone is success: cleanup must converge even when
/// a previous attempt got half-way.
fn ignore_not_found(result: Result<impl Sized, AwsError>) -> Result<(), AwsError> {
    absent_as_none(result).map(|_| ())
}

fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}
