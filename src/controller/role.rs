//! The role machinery both kinds share: observe the role, plan against the
//! desired one, apply the plan with an Event per change; and remove a role
//! the operator owns.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::ObjectReference;

use super::{Context, Error, events};
use crate::policy::ownership::{Owner, Ownership};
use crate::policy::role_plan::{RoleState, plan_role, plan_role_removal};

/// The role after a sync.
#[derive(Debug, Clone)]
pub struct SyncedRole {
    pub arn: String,
    /// When IAM made the role, which says whether another service may not
    /// see it yet.
    pub created: Option<SystemTime>,
    /// IAM calls made; empty on a resync that found everything in place.
    pub writes: usize,
}

pub async fn sync_role(
    ctx: &Context,
    object: &ObjectReference,
    desired: &RoleState,
    owner: &Owner,
) -> Result<SyncedRole, Error> {
    let observed = ctx.iam.observe_role(&desired.name).await?;
    let plan = plan_role(desired, observed.as_ref().map(|o| &o.state), owner)?;
    let (mut arn, mut created) = match observed {
        Some(o) => (Some(o.arn), o.created),
        None => (None, None),
    };
    for action in &plan {
        tracing::info!(role = %desired.name, operation = action.operation(), "applying");
        if let Some(new_arn) = ctx.iam.apply(&desired.name, action).await? {
            arn = Some(new_arn);
            created = Some(SystemTime::now());
        }
        events::changed(ctx, object, action.operation(), action.describe()).await;
    }
    let arn = arn
        .ok_or_else(|| Error::Unexpected(format!("role {} has no ARN after sync", desired.name)))?;
    Ok(SyncedRole {
        arn,
        created,
        writes: plan.len(),
    })
}

/// Removes the role `name` if it is ours; leaves anything else alone.
/// Returns whether a role of ours was deleted.
pub async fn remove_role(
    ctx: &Context,
    object: &ObjectReference,
    name: &str,
    owner: &Owner,
) -> Result<bool, Error> {
    let Some(observed) = ctx.iam.observe_role(name).await? else {
        return Ok(false);
    };
    match owner.classify(&observed.state.tags) {
        Ownership::Ours => {}
        other => {
            tracing::info!(
                role = name,
                ?other,
                "not deleting a role the operator does not own"
            );
            return Ok(false);
        }
    }
    for action in plan_role_removal(&observed.state) {
        ctx.iam.apply(name, &action).await?;
    }
    events::changed(
        ctx,
        object,
        "DeleteRole",
        format!("deleted role {}", observed.arn),
    )
    .await;
    Ok(true)
}
