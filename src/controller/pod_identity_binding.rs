//! The PodIdentityBinding reconciler: the role (created, or an existing one
//! checked), the EKS Pod Identity association, status and cleanup.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{ObjectReference, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};

use super::lifecycle::{ManagedKind, claim_conflict, owner_of};
use super::role::{remove_role, sync_role};
use super::service_account::ROLE_ARN;
use super::status::{self, Outcome, ReadyStatus};
use super::{Context, Error, events};
use crate::api::conditions::reason;
use crate::api::{PodIdentityBinding, PodIdentityBindingStatus};
use crate::aws::AwsError;
use crate::policy::association_plan::{
    AssociationAction, DesiredAssociation, ObservedAssociation, plan_association,
    plan_association_removal,
};
use crate::policy::desire::{BindingRole, DesiredBinding, desired_binding, desired_role_name};
use crate::policy::ownership::Owner;
use crate::policy::role_plan::RoleState;
use crate::policy::trust::pod_identity_trust_gaps;
use crate::policy::validate::RoleArn;

/// How long after a role's creation EKS refusing it counts as IAM still
/// propagating. IAM documents "a few seconds"; past this bound the refusal
/// is reported as the error it then is.
pub const PROPAGATION_WINDOW: Duration = Duration::from_secs(120);

impl ManagedKind for PodIdentityBinding {
    const KIND: &'static str = crate::api::pod_identity_binding::KIND;

    fn service_account_name(&self) -> String {
        self.spec.service_account_name.clone()
    }

    fn store(ctx: &Context) -> &OnceLock<Store<Self>> {
        &ctx.pod_identity_bindings
    }

    async fn apply(&self, ctx: &Context) -> Result<Action, Error> {
        apply(self, ctx).await
    }

    async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        cleanup(self, ctx).await
    }
}

impl ReadyStatus for PodIdentityBindingStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    fn set_ready(&mut self, observed_generation: Option<i64>, ready: Condition) {
        self.observed_generation = observed_generation;
        self.conditions = vec![ready];
    }
}

/// Whether EKS refusing a role made at `created` may be IAM propagation
/// rather than a real problem.
pub fn within_propagation_window(created: Option<SystemTime>, now: SystemTime) -> bool {
    created.is_some_and(|created| {
        now.duration_since(created)
            .map(|age| age < PROPAGATION_WINDOW)
            // A creation time ahead of our clock: certainly new.
            .unwrap_or(true)
    })
}

/// The role the association points at.
struct BoundRole {
    arn: String,
    created: Option<SystemTime>,
}

/// Where the role comes from: made by the operator (not yet synced), or an
/// existing one already read.
enum RoleSource<'a> {
    Created(&'a RoleState),
    Existing(BoundRole),
}

/// Status fields the reconcile learned, written with the outcome; `None`
/// keeps what status says.
#[derive(Default)]
struct Learned {
    role_arn: Option<String>,
    /// `Some(None)`: the binding now has no role of its own.
    role_name: Option<Option<String>>,
    /// `Some(None)`: the binding now has no association.
    association: Option<Option<ObservedAssociation>>,
}

async fn apply(pib: &PodIdentityBinding, ctx: &Context) -> Result<Action, Error> {
    let mut learned = Learned::default();
    let result = sync(pib, ctx, &mut learned).await;
    report(pib, ctx, learned, Outcome::of(&result, reason::SYNCED)).await?;
    result.map(|_| Action::requeue(ctx.settings.resync))
}

async fn sync(
    pib: &PodIdentityBinding,
    ctx: &Context,
    learned: &mut Learned,
) -> Result<String, Error> {
    let owner = owner_of(pib, ctx);
    let object = pib.object_ref(&());
    let sa_name = pib.spec.service_account_name.clone();
    let status = pib.status.clone().unwrap_or_default();

    // Desire: everything from the spec is checked before any AWS call.
    let desired = desired_binding(&pib.spec, &owner, &ctx.settings)?;
    if let Some(conflict) = claim_conflict(pib, ctx) {
        // An association this object made before it lost the claim would
        // block the winner for ever: it goes.
        if status.association_id.is_some() {
            release_associations(ctx, pib, &owner).await?;
            learned.association = Some(None);
        }
        return Err(conflict);
    }
    ensure_cluster(ctx).await?;

    // Everything that can refuse is read before anything is written: a
    // foreign association or a bad existing role leaves AWS untouched.
    let source = match &desired.role {
        BindingRole::Existing(arn) => RoleSource::Existing(existing_role(ctx, arn).await?),
        BindingRole::Created(state) => RoleSource::Created(state),
    };
    let role_arn = match &source {
        RoleSource::Existing(role) => role.arn.clone(),
        RoleSource::Created(state) => created_role_arn(&ctx.settings, state),
    };
    if let Some(target) = &desired.target_role {
        check_target_role(ctx, target).await?;
    }
    // An untagged association is adopted only when it points at a role the
    // operator made; one to an existing role was made by someone else.
    let our_role_arn = matches!(source, RoleSource::Created(_)).then_some(role_arn.as_str());
    let planned = plan_for(ctx, pib, &owner, &desired, &role_arn, our_role_arn).await?;

    let role = match source {
        RoleSource::Existing(role) => role,
        RoleSource::Created(state) => {
            let synced = sync_role(ctx, &object, state, &owner).await?;
            BoundRole {
                arn: synced.arn,
                created: synced.created,
            }
        }
    };
    learned.role_arn = Some(role.arn.clone());
    if role.arn != role_arn {
        return Err(Error::Unexpected(format!(
            "IAM named the role {} where {role_arn} was expected",
            role.arn
        )));
    }

    let association = apply_association_plan(ctx, pib, &object, &owner, planned, &role).await?;
    let association_id = association.association_id.clone();
    learned.association = Some(Some(association));

    // A role of ours the association no longer uses (renamed, or the spec
    // moved to roleArn) goes only now that nothing points at it.
    let created_name = match &desired.role {
        BindingRole::Created(state) => Some(state.name.clone()),
        BindingRole::Existing(_) => None,
    };
    // A roleArn naming the very role the operator made keeps it in use.
    let bound_name = role.arn.rsplit('/').next().unwrap_or_default();
    if let Some(previous) = status
        .role_name
        .filter(|p| Some(p) != created_name.as_ref() && p != bound_name)
    {
        remove_role(ctx, &object, &previous, &owner).await?;
    }
    learned.role_name = Some(created_name);

    if let Some(irsa_role) = irsa_annotation(ctx, &owner.namespace, &sa_name).await? {
        return Err(Error::IrsaRoleTakesPrecedence {
            service_account: sa_name,
            irsa_role,
            pod_identity_role: role.arn,
        });
    }
    let target = desired
        .target_role
        .map(|t| format!(", then target role {t}"))
        .unwrap_or_default();
    Ok(format!(
        "ServiceAccount {sa_name} gets role {}{target} through Pod Identity association {association_id}",
        role.arn
    ))
}

/// `DescribeCluster` once per process: a wrong cluster name or region is
/// then a named reason on every object instead of an opaque EKS error.
async fn ensure_cluster(ctx: &Context) -> Result<(), Error> {
    if ctx.cluster_found.get().is_some() {
        return Ok(());
    }
    let cluster = &ctx.settings.cluster_name;
    if ctx.eks.describe_cluster_exists(cluster).await? {
        let _ = ctx.cluster_found.set(());
        Ok(())
    } else {
        Err(cluster_not_found(
            ctx,
            "DescribeCluster: ResourceNotFoundException".into(),
        ))
    }
}

fn cluster_not_found(ctx: &Context, detail: String) -> Error {
    Error::ClusterNotFound {
        cluster: ctx.settings.cluster_name.clone(),
        region: ctx.settings.region.clone(),
        detail,
    }
}

/// A role named by `roleArn`: it must exist and trust Pod Identity, or the
/// association would hand pods nothing. Only read.
async fn existing_role(ctx: &Context, arn: &RoleArn) -> Result<BoundRole, Error> {
    let wanted = arn.to_string();
    let not_found = || Error::RoleNotFound {
        field: "spec.roleArn",
        role_arn: wanted.clone(),
    };
    let summary = ctx
        .iam
        .role_summary(&arn.name)
        .await?
        .ok_or_else(not_found)?;
    // Same name under another path is another ARN: not the role asked for.
    if summary.arn != wanted {
        return Err(not_found());
    }
    let missing = match &summary.trust_policy {
        Some(trust) => pod_identity_trust_gaps(trust),
        None => crate::policy::POD_IDENTITY_ACTIONS.to_vec(),
    };
    if !missing.is_empty() {
        return Err(Error::RoleDoesNotTrustPodIdentity {
            role_arn: wanted,
            missing,
        });
    }
    Ok(BoundRole {
        arn: summary.arn,
        created: summary.created,
    })
}

/// A target role in this account can be looked up; one in another account
/// cannot, and EKS checks it when pods ask for credentials.
async fn check_target_role(ctx: &Context, target: &RoleArn) -> Result<(), Error> {
    if target.account != ctx.settings.account_id {
        return Ok(());
    }
    match ctx.iam.role_summary(&target.name).await? {
        Some(found) if found.arn == target.to_string() => Ok(()),
        _ => Err(Error::RoleNotFound {
            field: "spec.targetRoleArn",
            role_arn: target.to_string(),
        }),
    }
}

/// The ARN IAM gives a role made from `state`: known before it exists, so
/// associations can be judged before the role is created.
fn created_role_arn(settings: &crate::config::Settings, state: &RoleState) -> String {
    RoleArn {
        partition: settings.partition.clone(),
        account: settings.account_id.clone(),
        path: state.path.clone(),
        name: state.name.clone(),
    }
    .to_string()
}

/// What the association calls will be, and the ServiceAccount's current
/// association; only reads. Refuses an association someone else made.
struct AssociationPlan {
    actions: Vec<AssociationAction>,
    current: Option<ObservedAssociation>,
}

async fn plan_for(
    ctx: &Context,
    pib: &PodIdentityBinding,
    owner: &Owner,
    desired: &DesiredBinding,
    role_arn: &str,
    our_role_arn: Option<&str>,
) -> Result<AssociationPlan, Error> {
    let cluster = &ctx.settings.cluster_name;
    let namespace = &owner.namespace;
    let sa_name = &pib.spec.service_account_name;
    let found = ctx
        .eks
        .find_associations(cluster, namespace, sa_name)
        .await
        .map_err(|e| match e.is_not_found() {
            true => cluster_not_found(ctx, e.to_string()),
            false => e.into(),
        })?;
    let want = DesiredAssociation {
        namespace: namespace.clone(),
        service_account: sa_name.clone(),
        role_arn: role_arn.to_string(),
        target_role_arn: desired.target_role.as_ref().map(ToString::to_string),
        disable_session_tags: desired.disable_session_tags,
        tags: owner.tags(),
        // The association last recorded is part of it: one deleted behind
        // the operator's back is then made again, not answered with the
        // replay of its own creation.
        request_scope: format!(
            "{}/{}/{}",
            pib.uid().unwrap_or_default(),
            pib.meta().generation.unwrap_or_default(),
            pib.status
                .as_ref()
                .and_then(|s| s.association_id.as_deref())
                .unwrap_or_default()
        ),
    };
    let actions = plan_association(&want, &found, owner, our_role_arn)?;
    let current = found
        .into_iter()
        .find(|a| a.namespace == *namespace && a.service_account == *sa_name);
    Ok(AssociationPlan { actions, current })
}

/// Runs the planned association calls, then removes the association an
/// earlier ServiceAccount name had. Returns the association as EKS has it.
async fn apply_association_plan(
    ctx: &Context,
    pib: &PodIdentityBinding,
    object: &ObjectReference,
    owner: &Owner,
    plan: AssociationPlan,
    role: &BoundRole,
) -> Result<ObservedAssociation, Error> {
    let cluster = &ctx.settings.cluster_name;
    let mut current = plan.current;
    for action in &plan.actions {
        tracing::info!(operation = action.operation(), "applying");
        match ctx.eks.apply(cluster, action).await {
            Ok(Some(after)) => current = Some(after),
            Ok(None) => {}
            Err(e)
                if e.is_role_not_visible()
                    && within_propagation_window(role.created, SystemTime::now()) =>
            {
                return Err(Error::WaitingForPropagation {
                    role_arn: role.arn.clone(),
                    detail: e.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        events::changed(ctx, object, action.operation(), action.describe()).await;
    }
    let current = current.ok_or_else(|| {
        Error::Unexpected(format!(
            "no Pod Identity association for ServiceAccount {} after the sync",
            pib.spec.service_account_name
        ))
    })?;

    // The ServiceAccount was renamed: the new association is in place, so
    // the old one can go without leaving a moment with neither.
    let status = pib.status.clone().unwrap_or_default();
    if let Some(old_id) = status
        .association_id
        .as_ref()
        .filter(|id| **id != current.association_id)
    {
        let old = ctx.eks.association(cluster, old_id).await?;
        remove_associations(
            ctx,
            object,
            old.as_slice(),
            owner,
            our_previous_role(&status),
        )
        .await?;
    }
    Ok(current)
}

/// The role status names, when the operator made it: only then does an
/// untagged association pointing at it count as ours.
fn our_previous_role(status: &PodIdentityBindingStatus) -> Option<&str> {
    status.role_name.as_ref().and(status.role_arn.as_deref())
}

/// Deletes this object's associations for its ServiceAccount, found by
/// their tags.
async fn release_associations(
    ctx: &Context,
    pib: &PodIdentityBinding,
    owner: &Owner,
) -> Result<(), Error> {
    let found = ctx
        .eks
        .find_associations(
            &ctx.settings.cluster_name,
            &owner.namespace,
            &pib.spec.service_account_name,
        )
        .await?;
    remove_associations(ctx, &pib.object_ref(&()), &found, owner, None).await?;
    Ok(())
}

/// Deletes those of `found` that are ours; Events say which.
async fn remove_associations(
    ctx: &Context,
    object: &ObjectReference,
    found: &[ObservedAssociation],
    owner: &Owner,
    our_role_arn: Option<&str>,
) -> Result<(), AwsError> {
    for action in plan_association_removal(found, owner, our_role_arn) {
        ctx.eks.apply(&ctx.settings.cluster_name, &action).await?;
        events::changed(ctx, object, action.operation(), action.describe()).await;
    }
    Ok(())
}

/// The IRSA role annotation on the ServiceAccount, if it has one.
async fn irsa_annotation(
    ctx: &Context,
    namespace: &str,
    sa_name: &str,
) -> Result<Option<String>, Error> {
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    Ok(api
        .get_opt(sa_name)
        .await?
        .and_then(|sa| sa.annotations().get(ROLE_ARN).cloned())
        .filter(|arn| !arn.is_empty()))
}

async fn report(
    pib: &PodIdentityBinding,
    ctx: &Context,
    learned: Learned,
    outcome: Outcome,
) -> Result<(), Error> {
    let current = pib.status.clone().unwrap_or_default();
    let (association_id, association_arn) = match learned.association {
        Some(Some(a)) => (Some(a.association_id), Some(a.association_arn)),
        Some(None) => (None, None),
        None => (
            current.association_id.clone(),
            current.association_arn.clone(),
        ),
    };
    let next = PodIdentityBindingStatus {
        role_arn: learned.role_arn.or(current.role_arn.clone()),
        role_name: learned.role_name.unwrap_or(current.role_name.clone()),
        association_id,
        association_arn,
        ..current.clone()
    };
    status::report(pib, ctx, &current, next, outcome).await
}

async fn cleanup(pib: &PodIdentityBinding, ctx: &Context) -> Result<Action, Error> {
    if pib.spec.deletion_policy.retains() {
        tracing::info!("deletionPolicy Retain: keeping the association and the role");
        return Ok(Action::await_change());
    }
    if let Err(e) = remove_everything(pib, ctx).await {
        let outcome = Outcome::failed(&e, format!("deleting: {e}"));
        let _ = report(pib, ctx, Learned::default(), outcome).await;
        return Err(e);
    }
    Ok(Action::await_change())
}

/// The association first, so no pod is handed credentials for a role on its
/// way out; then the role, if the operator made it.
async fn remove_everything(pib: &PodIdentityBinding, ctx: &Context) -> Result<(), Error> {
    let owner = owner_of(pib, ctx);
    let object = pib.object_ref(&());
    let cluster = &ctx.settings.cluster_name;
    let status = pib.status.clone().unwrap_or_default();

    let mut found = match ctx
        .eks
        .find_associations(cluster, &owner.namespace, &pib.spec.service_account_name)
        .await
    {
        Ok(found) => found,
        // No cluster, no associations.
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    // The ServiceAccount may have been renamed since the association was made.
    if let Some(id) = &status.association_id
        && !found.iter().any(|a| a.association_id == *id)
    {
        match ctx.eks.association(cluster, id).await {
            Ok(old) => found.extend(old),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    remove_associations(ctx, &object, &found, &owner, our_previous_role(&status)).await?;

    // The name the role was made under wins, and the spec's own is tried
    // too: the spec may have changed, and a role not ours is never touched.
    let mut role_names: Vec<String> = status.role_name.into_iter().collect();
    if let Some(role) = &pib.spec.role {
        let name = desired_role_name(role, &owner, &ctx.settings);
        if !role_names.contains(&name) {
            role_names.push(name);
        }
    }
    for name in role_names {
        remove_role(ctx, &object, &name, &owner).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_of_a_new_role_are_propagation() {
        let now = SystemTime::now();
        assert!(within_propagation_window(Some(now), now));
        assert!(within_propagation_window(
            Some(now - Duration::from_secs(30)),
            now
        ));
        assert!(within_propagation_window(
            Some(now + Duration::from_secs(5)),
            now
        ));
    }

    #[test]
    fn the_arn_of_a_role_to_be_made_is_known_before_it_exists() {
        let mut settings = crate::config::Settings {
            cluster_name: "prod".into(),
            issuer: None,
            account_id: "123456789012".into(),
            partition: "aws-cn".into(),
            region: "cn-north-1".into(),
            role_name_prefix: String::new(),
            forced_role_path: None,
            forced_permissions_boundary: None,
            resync: Duration::from_secs(600),
            watch_namespaces: Vec::new(),
        };
        let state = RoleState {
            name: "web_pod-identity".into(),
            path: "/team/".into(),
            description: None,
            max_session_seconds: 3600,
            permissions_boundary: None,
            tags: Default::default(),
            trust_policy: crate::policy::pod_identity_trust_policy(),
            managed_policies: Default::default(),
            inline_policies: Default::default(),
        };
        assert_eq!(
            created_role_arn(&settings, &state),
            "arn:aws-cn:iam::123456789012:role/team/web_pod-identity"
        );
        settings.partition = "aws".into();
        let root = RoleState {
            path: "/".into(),
            ..state
        };
        assert_eq!(
            created_role_arn(&settings, &root),
            "arn:aws:iam::123456789012:role/web_pod-identity"
        );
    }

    #[test]
    fn only_a_role_the_operator_made_makes_untagged_associations_ours() {
        let made = PodIdentityBindingStatus {
            role_name: Some("web".into()),
            role_arn: Some("arn:aws:iam::1:role/web".into()),
            ..Default::default()
        };
        assert_eq!(our_previous_role(&made), Some("arn:aws:iam::1:role/web"));
        let existing = PodIdentityBindingStatus {
            role_name: None,
            ..made
        };
        assert_eq!(our_previous_role(&existing), None);
    }

    #[test]
    fn refusals_of_an_old_or_unknown_role_are_errors() {
        let now = SystemTime::now();
        assert!(!within_propagation_window(
            Some(now - PROPAGATION_WINDOW),
            now
        ));
        assert!(!within_propagation_window(
            Some(now - Duration::from_secs(3600)),
            now
        ));
        assert!(!within_propagation_window(None, now));
    }
}
