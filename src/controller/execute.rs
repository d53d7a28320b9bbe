//! The one executor of plans, for both kinds: runs the steps in order, stops
//! at the first failure, and publishes one Event listing the steps that
//! changed something. Its only rules of its own are IAM propagation: EKS refusing a
//! role made moments ago, or IAM creating a role it has just said is absent,
//! is waiting, not failure.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::events::{self, NOTE_MAX};
use super::kind::{Executed, ManagedKind};
use super::observe::annotation_manager;
use super::{Context, Error, FIELD_MANAGER};
use crate::aws::{EksApi, IamApi};
use crate::policy::association_plan::ObservedAssociation;
use crate::policy::plan::Step;
use crate::policy::refusal::Refusal;
use crate::policy::role_plan::RoleAction;
use crate::policy::stale_pods::{RESTARTED_AT, RESTARTED_FOR, Workload};

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
    let mut executed = Executed::default();
    let mut created_now = None;
    let mut changes = Vec::new();
    let mut outcome = Ok(());
    for step in steps {
        tracing::info!(step = ?step_name(step), "applying");
        match run_step(obj, ctx, step, &mut created_now).await {
            Ok(StepDone::Changed(association)) => {
                if association.is_some() {
                    executed.association = association;
                }
                changes.extend(step.event());
            }
            Ok(StepDone::ChangedInstead(made)) => changes.extend(made.event()),
            Ok(StepDone::AlreadySo) => {}
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    // The changes made before a failure are told too: they stand in AWS.
    if let Some((reason, note)) = one_event_for(changes) {
        events::changed(ctx, &obj.object_ref(&()), reason, note).await;
    }
    outcome.map(|()| executed)
}

enum StepDone {
    /// With the association after a create or an update.
    Changed(Option<ObservedAssociation>),
    /// Another change than the step's was needed, and made.
    ChangedInstead(Step),
    /// What the step would remove was gone already.
    AlreadySo,
}

/// Every change of a reconcile in one Event, named for the first (the
/// role's creation, when there is one): a create is then one Event write,
/// not one per step, and the note still lists each change in order. Past
/// what a note holds, it says how many more there were rather than
/// cutting one off mid-way.
fn one_event_for(changes: Vec<(&'static str, String)>) -> Option<(&'static str, String)> {
    let reason = changes.first()?.0;
    let total = changes.len();
    let mut note = String::new();
    for (told, (_, change)) in changes.into_iter().enumerate() {
        let more = format!("; and {} more", total - told);
        let separator = if told == 0 { "" } else { "; " };
        let fits_with_room = note.len() + separator.len() + change.len() + more.len() <= NOTE_MAX;
        let last_fits =
            told + 1 == total && note.len() + separator.len() + change.len() <= NOTE_MAX;
        if !(fits_with_room || last_fits) {
            if told == 0 {
                // A single change longer than a note is cut by the publisher.
                return Some((reason, change));
            }
            note.push_str(&more);
            break;
        }
        note.push_str(separator);
        note.push_str(&change);
    }
    Some((reason, note))
}

async fn run_step<K: ManagedKind>(
    obj: &K,
    ctx: &Context,
    step: &Step,
    created_now: &mut Option<SystemTime>,
) -> Result<StepDone, Error> {
    let namespace = obj.namespace().unwrap_or_default();
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
        Step::Role { .. } | Step::Association { .. } => {
            let cluster = &ctx.settings.cluster_name;
            let association = aws_step(&ctx.iam, &ctx.eks, cluster, step, created_now).await?;
            return Ok(StepDone::Changed(association));
        }
        Step::RestartWorkload { workload, binding } => {
            restart(ctx, &namespace, workload, binding).await?;
        }
        Step::OidcProvider { arn, change } => {
            let settings = &ctx.settings;
            let changed = ctx
                .shared
                .change_provider(
                    &ctx.iam,
                    arn,
                    change,
                    &settings.cluster_name,
                    &settings.region,
                )
                .await?;
            return Ok(match changed {
                Some(made) if made == *change => StepDone::Changed(None),
                // Another reconcile made the provider meanwhile: this one
                // added its audience instead, and says so.
                Some(made) => StepDone::ChangedInstead(Step::OidcProvider {
                    arn: arn.clone(),
                    change: made,
                }),
                None => StepDone::AlreadySo,
            });
        }
        Step::AnnotateServiceAccount {
            name,
            annotations,
            owner,
        } => {
            let manager = annotation_manager(&obj.uid().unwrap_or_default());
            annotate(ctx, &namespace, name, annotations, owner, &manager).await?
        }
        Step::ReleaseServiceAccount { name } => {
            let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
            // Applying an object without the fields we owned removes
            // exactly those.
            let patch =
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}});
            let manager = annotation_manager(&obj.uid().unwrap_or_default());
            match api
                .patch(name, &PatchParams::apply(&manager), &Patch::Apply(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    return Ok(StepDone::AlreadySo);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Step::DeleteServiceAccount { name } => {
            let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    return Ok(StepDone::AlreadySo);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(StepDone::Changed(None))
}

/// One IAM or EKS step. `created_now` is when this plan made its role: EKS
/// refusing a role made in the propagation window is waiting, not failure.
/// Returns the association after a create or an update.
async fn aws_step(
    iam: &impl IamApi,
    eks: &impl EksApi,
    cluster: &str,
    step: &Step,
    created_now: &mut Option<SystemTime>,
) -> Result<Option<ObservedAssociation>, Error> {
    match step {
        Step::Role { role, action } => {
            let creating = matches!(action, RoleAction::CreateRole(_));
            match iam.apply_role(role, action).await {
                Ok(_) => {}
                // The plan creates a role only when IAM just said it does
                // not exist: one that exists after all was made moments ago
                // (by us, before a crash or a retry) and IAM's reads lag.
                // The next look judges it, ownership included.
                Err(e) if creating && e.code == "EntityAlreadyExists" => {
                    return Err(Refusal::IamCatchingUp { role: role.clone() }.into());
                }
                Err(e) => return Err(e.into()),
            }
            if creating {
                *created_now = Some(SystemTime::now());
            }
            Ok(None)
        }
        Step::Association {
            action,
            role_arn,
            role_created,
        } => match eks.apply_association(cluster, action).await {
            Ok(after) => Ok(after),
            Err(e)
                if e.is_role_not_visible()
                    && within_propagation_window(
                        created_now.or(*role_created),
                        SystemTime::now(),
                    ) =>
            {
                Err(Refusal::WaitingForPropagation {
                    role_arn: role_arn.clone(),
                    detail: e.to_string(),
                }
                .into())
            }
            Err(e) => Err(e.into()),
        },
        _ => Ok(None),
    }
}

fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Record(_) => "Record",
        Step::Role { action, .. } => action.operation(),
        Step::Association { action, .. } => action.operation(),
        Step::OidcProvider { change, .. } => change.operation(),
        Step::RestartWorkload { .. } => "RestartWorkload",
        Step::AnnotateServiceAccount { .. } => "AnnotateServiceAccount",
        Step::ReleaseServiceAccount { .. } => "ReleaseServiceAccount",
        Step::DeleteServiceAccount { .. } => "DeleteServiceAccount",
    }
}

/// What `kubectl rollout restart` does (a new pod template annotation),
/// plus the binding it was for, so that it is asked once per binding.
async fn restart(
    ctx: &Context,
    namespace: &str,
    workload: &Workload,
    binding: &str,
) -> Result<(), Error> {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        RESTARTED_AT: now,
        RESTARTED_FOR: binding,
    }}}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let client = ctx.client.clone();
    let name = &workload.name;
    let patched = match workload.kind.as_str() {
        "Deployment" => Api::<Deployment>::namespaced(client, namespace)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map(drop),
        "StatefulSet" => Api::<StatefulSet>::namespaced(client, namespace)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map(drop),
        _ => Api::<DaemonSet>::namespaced(client, namespace)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map(drop),
    };
    match patched {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 403 => Err(Error::Unexpected(format!(
            "the operator may not restart {workload} ({}): it needs patch on deployments, \
             statefulsets and daemonsets, which the chart grants with restartStalePods: true",
            status.message
        ))),
        Err(e) => Err(e.into()),
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
    fn one_event_names_the_first_change_and_lists_them_all() {
        assert_eq!(one_event_for(Vec::new()), None);
        let (reason, note) = one_event_for(vec![
            ("CreateRole", "created role web".to_string()),
            (
                "AttachRolePolicy",
                "role web: attached ReadOnly".to_string(),
            ),
            (
                "AnnotatedServiceAccount",
                "ServiceAccount web annotated".to_string(),
            ),
        ])
        .expect("an Event");
        assert_eq!(reason, "CreateRole");
        assert_eq!(
            note,
            "created role web; role web: attached ReadOnly; ServiceAccount web annotated"
        );
    }

    #[test]
    fn a_long_list_says_how_many_more_instead_of_cutting_one_off() {
        let changes: Vec<(&'static str, String)> = (0..40)
            .map(|i| {
                (
                    "AttachRolePolicy",
                    format!("role web: attached arn:aws:iam::aws:policy/Policy{i:02}"),
                )
            })
            .collect();
        let (_, note) = one_event_for(changes).expect("an Event");
        assert!(note.len() <= NOTE_MAX, "{} bytes", note.len());
        let told = note.matches("attached").count();
        assert!(told > 10 && told < 40, "{told} told");
        assert!(
            note.ends_with(&format!("; and {} more", 40 - told)),
            "{note}"
        );
        let exact: Vec<(&'static str, String)> = vec![("CreateRole", "x".repeat(NOTE_MAX))];
        assert_eq!(one_event_for(exact).expect("an Event").1.len(), NOTE_MAX);
    }

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

    use crate::controller::stand_ins::{self, RecordingIam};
    use crate::policy::association_plan::{AssociationAction, DesiredAssociation};
    use crate::policy::pod_identity_trust_policy;
    use crate::policy::role_plan::RoleState;

    const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/web";

    fn create_role() -> Step {
        Step::Role {
            role: "web".into(),
            action: RoleAction::CreateRole(Box::new(RoleState {
                name: "web".into(),
                path: "/".into(),
                description: None,
                max_session_seconds: 3600,
                permissions_boundary: None,
                tags: Default::default(),
                trust_policy: pod_identity_trust_policy(),
                managed_policies: Default::default(),
                inline_policies: Default::default(),
            })),
        }
    }

    fn create_association(role_created: Option<SystemTime>) -> Step {
        Step::Association {
            action: AssociationAction::Create {
                association: DesiredAssociation {
                    namespace: "apps".into(),
                    service_account: "web".into(),
                    role_arn: ROLE_ARN.into(),
                    target_role_arn: None,
                    disable_session_tags: false,
                    tags: Default::default(),
                    request_scope: "uid/1/".into(),
                },
                client_request_token: "t".into(),
            },
            role_arn: ROLE_ARN.into(),
            role_created,
        }
    }

    async fn run(steps: &[Step], refuse: bool) -> Result<Option<ObservedAssociation>, Error> {
        let iam = RecordingIam::default();
        let eks = stand_ins::Eks { refuse };
        let mut created_now = None;
        let mut learned = None;
        for step in steps {
            learned = aws_step(&iam, &eks, "prod", step, &mut created_now).await?;
        }
        Ok(learned)
    }

    #[tokio::test]
    async fn eks_refusing_the_role_this_plan_made_is_waiting() {
        let result = run(&[create_role(), create_association(None)], true).await;
        assert!(
            matches!(
                result,
                Err(Error::Refused(Refusal::WaitingForPropagation { .. }))
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn eks_refusing_an_old_role_is_the_error_it_is() {
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for steps in [
            vec![create_association(Some(an_hour_ago))],
            vec![create_association(None)],
        ] {
            let result = run(&steps, true).await;
            assert!(matches!(result, Err(Error::Aws(_))), "{result:?}");
        }
        // A role observed as made a moment ago is still propagating.
        let result = run(&[create_association(Some(SystemTime::now()))], true).await;
        assert!(matches!(result, Err(Error::Refused(_))), "{result:?}");
    }

    #[tokio::test]
    async fn the_association_eks_made_is_learned() {
        let learned = run(&[create_role(), create_association(None)], false)
            .await
            .expect("accepted");
        assert_eq!(learned.map(|a| a.association_id), Some("a-1".to_string()));
    }
}
