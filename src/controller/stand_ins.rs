//! In-memory IAM and EKS for the tests of observe's and execute's
//! sequencing: they record the calls made and answer from a table. What
//! AWS itself does is tested against the emulator, never here.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::aws::{AwsError, AwsErrorKind, EksApi, IamApi};
use crate::policy::association_plan::{AssociationAction, ObservedAssociation};
use crate::policy::role_plan::{ObservedRole, RoleAction};

#[derive(Default)]
pub struct RecordingIam {
    /// By lowercased name: IAM names are case-insensitive.
    pub roles: BTreeMap<String, ObservedRole>,
    pub calls: Mutex<Vec<String>>,
}

impl RecordingIam {
    pub fn with(roles: impl IntoIterator<Item = ObservedRole>) -> Self {
        RecordingIam {
            roles: roles
                .into_iter()
                .map(|role| (role.state.name.to_lowercase(), role))
                .collect(),
            calls: Mutex::default(),
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, call: String) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }
}

impl IamApi for RecordingIam {
    async fn observe_role(&self, name: &str) -> Result<Option<ObservedRole>, AwsError> {
        self.record(format!("GetRole:{name}"));
        Ok(self.roles.get(&name.to_lowercase()).cloned())
    }

    async fn apply_role(
        &self,
        role: &str,
        action: &RoleAction,
    ) -> Result<Option<String>, AwsError> {
        self.record(format!("{}:{role}", action.operation()));
        Ok(matches!(action, RoleAction::CreateRole(_))
            .then(|| format!("arn:aws:iam::123456789012:role/{role}")))
    }
}

/// EKS that refuses every association call as it refuses a role it cannot
/// see yet, or accepts every one.
pub struct Eks {
    pub refuse: bool,
}

impl EksApi for Eks {
    async fn apply_association(
        &self,
        _cluster: &str,
        action: &AssociationAction,
    ) -> Result<Option<ObservedAssociation>, AwsError> {
        if self.refuse {
            return Err(AwsError {
                operation: action.operation(),
                kind: AwsErrorKind::Invalid,
                code: "InvalidParameterException".into(),
                message: "Role provided in the request does not exist".into(),
            });
        }
        Ok(match action {
            AssociationAction::Create { association, .. } => Some(ObservedAssociation {
                association_id: "a-1".into(),
                association_arn:
                    "arn:aws:eks:us-east-1:123456789012:podidentityassociation/prod/a-1".into(),
                namespace: association.namespace.clone(),
                service_account: association.service_account.clone(),
                role_arn: association.role_arn.clone(),
                target_role_arn: association.target_role_arn.clone(),
                disable_session_tags: association.disable_session_tags,
                tags: association.tags.clone(),
            }),
            _ => None,
        })
    }
}
