//! The reads both kinds share, all made before a plan is decided: roles by
//! every name that may be theirs, the ServiceAccount, rival claims. Only
//! reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::ListParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};

use super::claim_index::ClaimIndex;
use super::kind::ManagedKind;
use super::kind::ReadyStatus;
use super::{Context, Error, FIELD_MANAGER};
use crate::api::RoleSpec;
use crate::aws::IamApi;
use crate::policy::desire::{Defaults, desired_role_name, regional_role_name};
use crate::policy::ownership::Owner;
use crate::policy::ownership::Ownership;
use crate::policy::plan::{ObservedRoles, Recorded, Subject, role_candidates};
use crate::policy::role_plan::same_role_name;
use crate::policy::service_account_plan::ObservedServiceAccount;
use crate::policy::stale_pods::{Binding, ObservedPod, RESTARTED_FOR, Workload, stale_pods};

/// The object as every plan needs it.
pub fn subject_of<K: ManagedKind>(obj: &K, ctx: &Context) -> Subject {
    Subject {
        owner: Owner {
            cluster: ctx.settings.cluster_name.clone(),
            region: ctx.settings.region.clone(),
            kind: K::KIND.into(),
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
        },
        uid: obj.uid().unwrap_or_default(),
        generation: obj.meta().generation.unwrap_or_default(),
        recorded: Recorded::from_annotations(obj.annotations()),
        status_role: obj.current_status().role_name().map(str::to_string),
        namespace_labels: None,
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
    iam: &impl IamApi,
    defaults: &Defaults,
    subject: &Subject,
    role: Option<&RoleSpec>,
) -> Result<ObservedRoles, Error> {
    let previous = subject.previous_roles();
    let wanted = role.map(|role| desired_role_name(role, &subject.owner, defaults, &previous));
    let names = role_candidates(previous.iter().copied().chain(wanted.as_deref()));
    let mut observed = observe_roles(iam, names).await?;
    let regional = role.map(|role| regional_role_name(role, &subject.owner, defaults));
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
            .extend(observe_roles(iam, vec![regional]).await?.0);
    }
    Ok(observed)
}

/// Under `Retain`, the role the spec names (`None` when it names none to
/// create), and whether the object's record or status names another: a
/// role an unfinished rename was yet to delete, which needs reading then.
pub fn retained_role(
    defaults: &Defaults,
    subject: &Subject,
    role: Option<&RoleSpec>,
) -> (Option<String>, bool) {
    let previous = subject.previous_roles();
    let kept = role.map(|role| desired_role_name(role, &subject.owner, defaults, &previous));
    let others = previous.iter().any(|name| {
        kept.as_deref()
            .is_none_or(|kept| !same_role_name(name, kept))
    });
    (kept, others)
}

async fn observe_roles(iam: &impl IamApi, names: Vec<String>) -> Result<ObservedRoles, Error> {
    let mut roles = Vec::with_capacity(names.len());
    for name in names {
        let role = iam.observe_role(&name).await?;
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

/// The running (or starting) pods of a ServiceAccount, with the variables
/// that tell whether EKS gave them its credentials: one list, by fields.
/// RBAC refusing it (an upgrade whose RBAC was not applied) skips the check,
/// with a warning, instead of stopping the object's work.
async fn pods_of(
    ctx: &Context,
    namespace: &str,
    service_account: &str,
) -> Result<Vec<ObservedPod>, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    // From the API server's watch cache, not a quorum read of etcd: the
    // latter took 50-65 ms per reconcile in the bench, more than the rest
    // of a reconcile. A list a moment old at worst names a pod already
    // replaced, and the object is looked at again shortly.
    let params = ListParams::default()
        .fields(&format!(
            "spec.serviceAccountName={service_account},status.phase!=Succeeded,status.phase!=Failed"
        ))
        .match_any();
    let pods = match api.list(&params).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(status)) if status.code == 403 => {
            tracing::warn!(%namespace, "may not list pods, so pods started before their binding are not looked for: {}", status.message);
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    Ok(pods
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .map(|pod| ObservedPod {
            controller: pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true) && o.api_version.starts_with("apps/"))
                .map(|o| (o.kind.clone(), o.name.clone())),
            workload: None,
            name: pod.name_any(),
            containers: pod
                .spec
                .map(|spec| {
                    spec.containers
                        .iter()
                        .map(|c| {
                            ObservedPod::credential_env(
                                c.env
                                    .iter()
                                    .flatten()
                                    .map(|e| (e.name.as_str(), e.value.as_deref())),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect())
}

/// The ServiceAccount's pods, and, when the object asks for stale pods to
/// be restarted and the operator may, the workloads of those not created
/// under `binding`.
pub async fn pods_bound_to(
    ctx: &Context,
    namespace: &str,
    service_account: &str,
    binding: Binding<'_>,
    restart_asked: bool,
) -> Result<Vec<ObservedPod>, Error> {
    let mut pods = pods_of(ctx, namespace, service_account).await?;
    if restart_asked && ctx.settings.restart_stale_pods {
        let stale = stale_pods(&pods, binding);
        workloads_of(ctx, namespace, service_account, &mut pods, &stale).await?;
    }
    Ok(pods)
}

/// Finds the workload of each pod named in `stale` (a ReplicaSet's is its
/// Deployment), with the binding its pod template was last restarted for.
/// Only a workload whose pods run as `service_account` counts: an owner
/// reference is written by whoever makes the pod, so it alone must not
/// point the operator at another team's workload.
async fn workloads_of(
    ctx: &Context,
    namespace: &str,
    service_account: &str,
    pods: &mut [ObservedPod],
    stale: &[String],
) -> Result<(), Error> {
    let mut owners: BTreeMap<(String, String), Option<(String, String)>> = BTreeMap::new();
    let mut read: BTreeMap<(String, String), Option<Workload>> = BTreeMap::new();
    for pod in pods.iter_mut().filter(|p| stale.contains(&p.name)) {
        let Some(controller) = pod.controller.clone() else {
            continue;
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = owners.entry(controller.clone()) {
            slot.insert(workload_of_controller(ctx, namespace, &controller).await?);
        }
        let Some(key) = owners.get(&controller).cloned().flatten() else {
            continue;
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = read.entry(key.clone()) {
            slot.insert(workload(ctx, namespace, service_account, &key.0, &key.1).await?);
        }
        pod.workload = read.get(&key).cloned().flatten();
    }
    Ok(())
}

/// The workload a pod's controller stands for: a ReplicaSet's Deployment,
/// or the StatefulSet or DaemonSet itself.
async fn workload_of_controller(
    ctx: &Context,
    namespace: &str,
    (kind, name): &(String, String),
) -> Result<Option<(String, String)>, Error> {
    Ok(match kind.as_str() {
        "ReplicaSet" => {
            let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), namespace);
            api.get_opt(name)
                .await?
                .and_then(|rs| {
                    rs.metadata.owner_references?.into_iter().find(|o| {
                        o.controller == Some(true)
                            && o.kind == "Deployment"
                            && o.api_version.starts_with("apps/")
                    })
                })
                .map(|deployment| (deployment.kind, deployment.name))
        }
        "StatefulSet" | "DaemonSet" => Some((kind.clone(), name.clone())),
        _ => None,
    })
}

async fn workload(
    ctx: &Context,
    namespace: &str,
    service_account: &str,
    kind: &str,
    name: &str,
) -> Result<Option<Workload>, Error> {
    let template = match kind {
        "Deployment" => Api::<Deployment>::namespaced(ctx.client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(|d| d.spec.template),
        "StatefulSet" => Api::<StatefulSet>::namespaced(ctx.client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(|d| d.spec.template),
        _ => Api::<DaemonSet>::namespaced(ctx.client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(|d| d.spec.template),
    };
    let Some(template) = template else {
        return Ok(None);
    };
    let runs_as = template
        .spec
        .as_ref()
        .and_then(|spec| spec.service_account_name.as_deref())
        .unwrap_or("default");
    if runs_as != service_account {
        return Ok(None);
    }
    Ok(Some(Workload {
        kind: kind.to_string(),
        name: name.to_string(),
        restarted_for: template
            .metadata
            .and_then(|m| m.annotations)
            .and_then(|mut a| a.remove(RESTARTED_FOR)),
    }))
}

/// A namespace's labels, for guardrails that grant by label selector.
pub async fn namespace_labels(
    ctx: &Context,
    namespace: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    Ok(api
        .get_metadata(namespace)
        .await?
        .metadata
        .labels
        .unwrap_or_default())
}

pub fn as_observed(sa: &ServiceAccount, uid: &str) -> ObservedServiceAccount {
    ObservedServiceAccount::from_service_account(sa, &annotation_manager(uid), uid)
}

/// The objects of the kind in the cache claiming the ServiceAccount
/// `namespace/service_account`.
pub fn claimants<K: ManagedKind>(
    store: &Store<K>,
    index: &ClaimIndex,
    namespace: &str,
    service_account: &str,
) -> Vec<Arc<K>> {
    index
        .claimants(namespace, service_account)
        .into_iter()
        .filter_map(|name| store.get(&ObjectRef::new(&name).within(namespace)))
        .collect()
}

/// The other objects of the kind in the cache claiming `obj`'s
/// ServiceAccount.
pub fn rivals<K: ManagedKind>(store: &Store<K>, index: &ClaimIndex, obj: &K) -> Vec<Arc<K>> {
    let name = obj.name_any();
    let mut found = claimants(
        store,
        index,
        &obj.namespace().unwrap_or_default(),
        &obj.service_account_name(),
    );
    found.retain(|other| other.name_any() != name);
    found
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
    Ok(rivals(store, K::claim_index(ctx), obj)
        .into_iter()
        .filter(|other| other.meta().deletion_timestamp.is_none())
        .map(|other| (other.creation_timestamp(), other.name_any()))
        .filter(|other| *other < me)
        .min()
        .map(|(_, name)| name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::stand_ins::RecordingIam;
    use crate::policy::desire::desired_role;
    use crate::policy::fixtures::{defaults, owner};
    use crate::policy::ownership::REGION_KEY;
    use crate::policy::pod_identity_trust_policy;
    use crate::policy::role_plan::ObservedRole;

    fn subject(previous: &[&str]) -> Subject {
        Subject {
            owner: owner("IamServiceAccount"),
            uid: "uid-1".into(),
            generation: 1,
            recorded: Recorded {
                roles: previous.iter().map(|r| r.to_string()).collect(),
                ..Default::default()
            },
            status_role: previous.first().map(|r| r.to_string()),
            namespace_labels: None,
        }
    }

    fn ours(name: &str) -> ObservedRole {
        let mut state = desired_role(
            &RoleSpec::default(),
            &Default::default(),
            crate::policy::chain::Chaining::default(),
            pod_identity_trust_policy(),
            &owner("IamServiceAccount"),
            &defaults(),
            &[],
        )
        .expect("valid");
        state.name = name.into();
        ObservedRole {
            arn: defaults().role_arn("/", name),
            created: None,
            state,
        }
    }

    #[tokio::test]
    async fn only_the_names_that_may_be_ours_are_read_each_once() {
        let iam = RecordingIam::default();
        let spec = RoleSpec {
            name: Some("B".into()),
            ..Default::default()
        };
        observe_roles_of(&iam, &defaults(), &subject(&["a", "b"]), Some(&spec))
            .await
            .expect("read");
        assert_eq!(iam.calls(), ["GetRole:a", "GetRole:b"]);
    }

    async fn observe_generated(iam: &RecordingIam, previous: &str) -> ObservedRoles {
        observe_roles_of(
            iam,
            &defaults(),
            &subject(&[previous]),
            Some(&RoleSpec::default()),
        )
        .await
        .expect("read")
    }

    #[tokio::test]
    async fn the_regional_name_is_read_only_when_the_kept_name_is_taken() {
        let legacy = "prod-apps-web";
        let regional = "prod-us-east-1-apps-web";
        let iam = RecordingIam::with([ours(legacy)]);
        let seen = observe_generated(&iam, legacy).await;
        assert_eq!(iam.calls(), [format!("GetRole:{legacy}")]);
        assert!(seen.get(legacy).is_some());

        let mut theirs = ours(legacy);
        theirs
            .state
            .tags
            .insert(REGION_KEY.into(), "us-west-2".into());
        let iam = RecordingIam::with([theirs]);
        observe_generated(&iam, legacy).await;
        assert_eq!(
            iam.calls(),
            [format!("GetRole:{legacy}"), format!("GetRole:{regional}")]
        );
    }

    #[test]
    fn retain_reads_roles_only_when_another_name_is_on_record() {
        let named = |name: &str| RoleSpec {
            name: Some(name.into()),
            ..Default::default()
        };
        let settled = subject(&["new"]);
        assert_eq!(
            retained_role(&defaults(), &settled, Some(&named("new"))),
            (Some("new".to_string()), false)
        );
        let renaming = subject(&["old", "new"]);
        assert_eq!(
            retained_role(&defaults(), &renaming, Some(&named("NEW"))),
            (Some("NEW".to_string()), true)
        );
        // No role to make (a binding naming roleArn): any recorded one is
        // another name.
        assert_eq!(retained_role(&defaults(), &settled, None), (None, true));
        assert_eq!(
            retained_role(&defaults(), &subject(&[]), None),
            (None, false)
        );
    }
}
