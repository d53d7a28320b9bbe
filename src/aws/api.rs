//! The AWS calls the shared reconcile steps make, as traits: the real
//! clients implement them, and the sequencing of observe and execute (which
//! names are read, what a refusal after a create means) is tested without
//! I/O against small in-memory stand-ins.

use std::future::Future;

use super::error::AwsError;
use super::{Eks, Iam};
use crate::policy::association_plan::{AssociationAction, ObservedAssociation};
use crate::policy::role_plan::{ObservedRole, RoleAction};

pub trait IamApi: Send + Sync {
    /// The role with its policies, or `None` when it does not exist.
    fn observe_role(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ObservedRole>, AwsError>> + Send;

    /// One planned call on role `role`; the new role's ARN after a create.
    fn apply_role(
        &self,
        role: &str,
        action: &RoleAction,
    ) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;
}

pub trait EksApi: Send + Sync {
    /// One planned association call; the association after a create or an
    /// update.
    fn apply_association(
        &self,
        cluster: &str,
        action: &AssociationAction,
    ) -> impl Future<Output = Result<Option<ObservedAssociation>, AwsError>> + Send;
}

impl IamApi for Iam {
    async fn observe_role(&self, name: &str) -> Result<Option<ObservedRole>, AwsError> {
        Iam::observe_role(self, name).await
    }

    async fn apply_role(
        &self,
        role: &str,
        action: &RoleAction,
    ) -> Result<Option<String>, AwsError> {
        self.apply(role, action).await
    }
}

impl EksApi for Eks {
    async fn apply_association(
        &self,
        cluster: &str,
        action: &AssociationAction,
    ) -> Result<Option<ObservedAssociation>, AwsError> {
        self.apply(cluster, action).await
    }
}
