//! The reads both kinds share, all made before a plan is decided: roles by
//! every name that may be theirs, the ServiceAccount, rival claims. Only
//! reads.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::{Api, ResourceExt};

use super::kind::ManagedKind;
use super::kind::ReadyStatus;
use super::{Context, Error, FIELD_MANAGER};
use crate::api::RoleSpec;
use crate::policy::desire::{desired_role_name, regional_role_name};
use crate::policy::ownership::Owner;
use crate::policy::ownership::Ownership;
use crate::policy::plan::{ObservedRoles, Recorded, Subject, role_candidates};
use crate::policy::role_plan::same_role_name;
use crate::policy::service_account_plan::ObservedServiceAccount;

/// The object as every plan needs it.
pub fn subject_of<K: ManagedKind>(obj: &K, ctx: &Context) -> Subject {
    Subject {
        owner: Owner {
            cluster: ctx.defaults.cluster_name.clone(),
            region: ctx.defaults.region.clone(),
            kind: K::KIND.into(),
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
        },
        uid: obj.uid().unwrap_or_default(),
        generation: obj.meta().generation.unwrap_or_default(),
        recorded: Recorded::from_annotations(obj.annotations()),
        status_role: obj.current_status().role_name().map(str::to_string),
    }
}

/// The field manager of one object's ServiceAccount annotations: per object,
/// so that releasing one claim never takes away another's fields.
pub fn annotation_manager(uid: &str) -> String {
    format!("{FIELD_MANAGER}/{uid}")
}

/// Reads the roles by every name that may be theirs: the names used before
/// and the name the spec asks for now. When that is a name generated before
/// regions were part of generated names and its role is someone else's now
/// (a cluster of the same name in another region tagged it first), the
/// regional name is read too, for the plan to move to.
pub async fn observe_roles_of(
    ctx: &Context,
    subject: &Subject,
    role: Option<&RoleSpec>,
) -> Result<ObservedRoles, Error> {
    let previous = subject.previous_roles();
    let wanted = role.map(|role| desired_role_name(role, &subject.owner, &ctx.defaults, &previous));
    let names = role_candidates(previous.iter().copied().chain(wanted.as_deref()));
    let mut observed = observe_roles(ctx, names).await?;
    let regional = role.map(|role| regional_role_name(role, &subject.owner, &ctx.defaults));
    if let (Some(wanted), Some(regional)) = (&wanted, regional)
        && !observed
            .0
            .iter()
            .any(|(name, _)| same_role_name(name, &regional))
        && observed
            .get(wanted)
            .is_some_and(|role| subject.owner.classify(&role.state.tags) != Ownership::Ours)
    {
        observed
            .0
            .extend(observe_roles(ctx, vec![regional]).await?.0);
    }
    Ok(observed)
}

async fn observe_roles(ctx: &Context, names: Vec<String>) -> Result<ObservedRoles, Error> {
    let mut roles = Vec::with_capacity(names.len());
    for name in names {
        let role = ctx.iam.observe_role(&name).await?;
        roles.push((name, role));
    }
    Ok(ObservedRoles(roles))
}

pub async fn get_service_account(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Option<ServiceAccount>, Error> {
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    Ok(api.get_opt(name).await?)
}

pub fn as_observed(sa: &ServiceAccount, uid: &str) -> ObservedServiceAccount {
    ObservedServiceAccount::from_service_account(sa, &annotation_manager(uid), uid)
}

/// The oldest other object of the kind claiming the same ServiceAccount,
/// if it is older than `obj`: that one wins, so the outcome does not depend
/// on which reconcile ran first. Judged only from a cache that has finished
/// its first list, or a rival not yet seen would be missed.
pub async fn older_claim<K: ManagedKind>(obj: &K, ctx: &Context) -> Result<Option<String>, Error> {
    let Some(store) = K::store(ctx).get() else {
        return Err(Error::Unexpected(format!(
            "the {} cache is not running",
            K::KIND
        )));
    };
    store
        .wait_until_ready()
        .await
        .map_err(|e| Error::Unexpected(format!("the {} cache stopped: {e}", K::KIND)))?;
    let me = (obj.creation_timestamp(), obj.name_any());
    Ok(store
        .state()
        .iter()
        .filter(|other| {
            other.namespace() == obj.namespace()
                && other.name_any() != obj.name_any()
                && other.service_account_name() == obj.service_account_name()
                && other.meta().deletion_timestamp.is_none()
        })
        .map(|other| (other.creation_timestamp(), other.name_any()))
        .filter(|other| *other < me)
        .min()
        .map(|(_, name)| name))
}
