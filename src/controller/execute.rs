//! The one executor of plans, for both kinds: runs the steps in order, stops
//! at the first failure, and publishes one Event per step that changed
//! something. The only rule of its own is IAM propagation: EKS refusing a
//! role made moments ago is waiting, not failure.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::kind::{Executed, ManagedKind};
use super::observe::annotation_manager;
use super::{Context, Error, FIELD_MANAGER, events};
use crate::policy::plan::Step;
use crate::policy::refusal::Refusal;
use crate::policy::role_plan::RoleAction;

/// How long after a role's creation EKS refusing it counts as IAM still
/// propagating. IAM documents "a few seconds"; past this bound the refusal
/// is reported as the error it then is.
pub const PROPAGATION_WINDOW: Duration = Duration::from_secs(120);

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

pub async fn execute<K: ManagedKind>(
    obj: &K,
    ctx: &Context,
    steps: &[Step],
) -> Result<Executed, Error> {
    let object = obj.object_ref(&());
    let namespace = obj.namespace().unwrap_or_default();
    let uid = obj.uid().unwrap_or_default();
    let mut executed = Executed::default();
    let mut created_now = None;
    for step in steps {
        tracing::info!(step = ?step_name(step), "applying");
        match step {
            Step::Record(recorded) => {
                let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
                let patch = json!({"metadata": {"annotations": recorded.to_annotations()}});
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                api.patch(&obj.name_any(), &params, &Patch::Merge(&patch))
                    .await?;
            }
            Step::Role { role, action } => {
                ctx.iam.apply(role, action).await?;
                if matches!(action, RoleAction::CreateRole(_)) {
                    created_now = Some(SystemTime::now());
                }
            }
            Step::Association {
                action,
                role_arn,
                role_created,
            } => match ctx.eks.apply(&ctx.defaults.cluster_name, action).await {
                Ok(Some(after)) => executed.association = Some(after),
                Ok(None) => {}
                Err(e)
                    if e.is_role_not_visible()
                        && within_propagation_window(
                            created_now.or(*role_created),
                            SystemTime::now(),
                        ) =>
                {
                    return Err(Refusal::WaitingForPropagation {
                        role_arn: role_arn.clone(),
                        detail: e.to_string(),
                    }
                    .into());
                }
                Err(e) => return Err(e.into()),
            },
            Step::AnnotateServiceAccount {
                name,
                annotations,
                owner,
            } => {
                annotate(
                    ctx,
                    &namespace,
                    name,
                    annotations,
                    owner,
                    &annotation_manager(&uid),
                )
                .await?
            }
            Step::ReleaseServiceAccount { name } => {
                let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
                // Applying an object without the fields we owned removes
                // exactly those.
                let patch = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}});
                match api
                    .patch(
                        name,
                        &PatchParams::apply(&annotation_manager(&uid)),
                        &Patch::Apply(&patch),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Step::DeleteServiceAccount { name } => {
                let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if let Some((reason, note)) = step.event() {
            events::changed(ctx, &object, reason, note).await;
        }
    }
    Ok(executed)
}

fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Record(_) => "Record",
        Step::Role { action, .. } => action.operation(),
        Step::Association { action, .. } => action.operation(),
        Step::AnnotateServiceAccount { .. } => "AnnotateServiceAccount",
        Step::ReleaseServiceAccount { .. } => "ReleaseServiceAccount",
        Step::DeleteServiceAccount { .. } => "DeleteServiceAccount",
    }
}

async fn annotate(
    ctx: &Context,
    namespace: &str,
    name: &str,
    annotations: &std::collections::BTreeMap<String, String>,
    owner: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
    manager: &str,
) -> Result<(), Error> {
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let mut metadata = json!({"name": name, "annotations": annotations});
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    let patch = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata});
    // Not forced: if another manager owns one of these fields with another
    // value, the apiserver refuses (409) rather than us taking it over.
    match api
        .patch(name, &PatchParams::apply(manager), &Patch::Apply(&patch))
        .await
    {
        Ok(_) => Ok(()),
        // Someone annotated it between the read and the write: the next
        // reconcile reads it again and names what is in the way.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            Err(Refusal::ServiceAccountAnnotationTaken {
                service_account: name.to_string(),
                key: "(changed since it was read)".into(),
                found: status.message,
                wanted: format!("{annotations:?}"),
            }
            .into())
        }
        Err(e) => Err(e.into()),
    }
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
