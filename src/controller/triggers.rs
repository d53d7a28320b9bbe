//! What wakes which object: the predicates on the object's own changes, the
//! ServiceAccount changes that concern its claimants, and the rivals an
//! object's change may settle. Each wake costs a round of AWS reads, so
//! every rule here says why a change cannot be ignored.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::FIELD_MANAGER;
use super::claim_index::ClaimIndex;
use super::kind::{ManagedKind, ready_at_its_generation};
use super::observe::{annotation_manager, claimants, rivals};
use crate::policy::plan::{RECORDED_ROLES, RECORDED_SERVICE_ACCOUNTS};

/// Annotations, except the operator's own record of what it made: writing
/// that record must not cost a second round of AWS reads.
pub fn annotations_but_records<K: Resource>(obj: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    obj.annotations()
        .iter()
        .filter(|(key, _)| ![RECORDED_ROLES, RECORDED_SERVICE_ACCOUNTS].contains(&key.as_str()))
        .for_each(|entry| entry.hash(&mut hasher));
    Some(hasher.finish())
}

pub fn deletion_requested<K: Resource>(obj: &K) -> Option<u64> {
    obj.meta().deletion_timestamp.as_ref().map(|_| 1)
}

/// The objects of the kind a ServiceAccount change wakes (see `wakes`).
pub fn claims_touched<K: ManagedKind>(
    store: &Store<K>,
    index: &ClaimIndex,
    event: watcher::Event<PartialObjectMeta<ServiceAccount>>,
) -> Vec<ObjectRef<K>> {
    let (service_account, deleted) = match event {
        watcher::Event::Apply(sa) | watcher::Event::InitApply(sa) => (sa, false),
        watcher::Event::Delete(sa) => (sa, true),
        watcher::Event::Init | watcher::Event::InitDone => return Vec::new(),
    };
    let meta = &service_account.metadata;
    let Some(name) = meta.name.as_deref() else {
        return Vec::new();
    };
    claimants(
        store,
        index,
        meta.namespace.as_deref().unwrap_or_default(),
        name,
    )
    .iter()
    .filter(|obj| wakes(obj.as_ref(), meta, deleted))
    .map(|obj| ObjectRef::from_obj(obj.as_ref()))
    .collect()
}

/// Whether a change to the ServiceAccount `obj` names calls for a look at
/// `obj`. A deleted one always does (it is made again, or its loss
/// reported). For an object in sync, only a ServiceAccount that no longer
/// shows what the sync left on it. For one not yet in sync, any change but
/// the echo of its own write, which lands before the status that follows it:
/// without that rule every new IamServiceAccount cost a second round of AWS
/// reads.
pub fn wakes<K: ManagedKind>(obj: &K, service_account: &ObjectMeta, deleted: bool) -> bool {
    if deleted {
        return true;
    }
    if ready_at_its_generation(obj) {
        !obj.service_account_agrees(service_account)
    } else {
        !changed_last_by_operator_for(service_account, &obj.uid().unwrap_or_default())
    }
}

/// Whether the latest write to the object was the operator's, on behalf of
/// the object with `uid` (its annotations) or of the operator itself (a
/// ServiceAccount it created). Field managers keep their time to the
/// second: a write by anyone else in the same second counts as theirs.
pub fn changed_last_by_operator_for(meta: &ObjectMeta, uid: &str) -> bool {
    let managers = meta.managed_fields.as_deref().unwrap_or_default();
    let Some(latest) = managers.iter().filter_map(|m| m.time.as_ref()).max() else {
        return false;
    };
    let ours = annotation_manager(uid);
    managers
        .iter()
        .filter(|m| m.time.as_ref() == Some(latest))
        .all(
            |m| matches!(m.manager.as_deref(), Some(name) if name == ours || name == FIELD_MANAGER),
        )
}

/// The other objects of the kind claiming the ServiceAccount of an object
/// that changed or went away. (The first list reconciles every object
/// anyway.)
pub fn rivals_touched_by<K: ManagedKind>(
    store: &Store<K>,
    index: &ClaimIndex,
    event: &watcher::Event<K>,
) -> Vec<ObjectRef<K>> {
    match event {
        watcher::Event::Apply(obj) | watcher::Event::Delete(obj) => rivals(store, index, obj)
            .iter()
            .map(|other| ObjectRef::from_obj(other.as_ref()))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        Condition, ManagedFieldsEntry, ObjectMeta, Time,
    };
    use k8s_openapi::jiff::Timestamp;

    use super::{changed_last_by_operator_for, wakes};
    use crate::api::{
        IamServiceAccount, IamServiceAccountSpec, IamServiceAccountStatus, PodIdentityBinding,
        PodIdentityBindingSpec,
    };
    use crate::policy::service_account_plan::ROLE_ARN;

    const UID: &str = "3f1c";
    const ARN: &str = "arn:aws:iam::111122223333:role/web";

    fn entry(manager: &str, second: i64) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Apply".into()),
            time: Some(Time(Timestamp::from_second(second).expect("valid"))),
            ..Default::default()
        }
    }

    fn service_account(annotated: Option<&str>, managers: Vec<ManagedFieldsEntry>) -> ObjectMeta {
        ObjectMeta {
            name: Some("web".into()),
            namespace: Some("team".into()),
            annotations: annotated
                .map(|arn| BTreeMap::from([(ROLE_ARN.to_string(), arn.to_string())])),
            managed_fields: Some(managers),
            ..Default::default()
        }
    }

    fn ready(generation: i64) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "Synced".into(),
            message: String::new(),
            observed_generation: Some(generation),
            last_transition_time: Time(Timestamp::from_second(1).expect("valid")),
        }
    }

    fn isa(in_sync: bool) -> IamServiceAccount {
        let mut obj = IamServiceAccount::new("web", IamServiceAccountSpec::default());
        obj.metadata.uid = Some(UID.into());
        obj.metadata.generation = Some(2);
        if in_sync {
            obj.status = Some(IamServiceAccountStatus {
                role_arn: Some(ARN.into()),
                observed_generation: Some(2),
                conditions: vec![ready(2)],
                ..Default::default()
            });
        }
        obj
    }

    #[test]
    fn the_echo_of_the_operators_own_write_wakes_nobody() {
        let ours = format!("iam-operator/{UID}");
        let echo = service_account(
            Some(ARN),
            vec![entry("kubectl-client-side-apply", 10), entry(&ours, 20)],
        );
        assert!(changed_last_by_operator_for(&echo, UID));
        assert!(!wakes(&isa(false), &echo, false));
        // Created by the operator and annotated in the same second.
        let created = service_account(Some(ARN), vec![entry("iam-operator", 20), entry(&ours, 20)]);
        assert!(!wakes(&isa(false), &created, false));
    }

    #[test]
    fn anyone_elses_write_wakes_an_object_not_yet_in_sync() {
        let ours = format!("iam-operator/{UID}");
        let later = service_account(Some(ARN), vec![entry(&ours, 20), entry("kubectl-edit", 21)]);
        assert!(wakes(&isa(false), &later, false));
        let same_second =
            service_account(Some(ARN), vec![entry(&ours, 20), entry("kubectl-edit", 20)]);
        assert!(wakes(&isa(false), &same_second, false));
        // Another object's manager is not this object's.
        let other = service_account(Some(ARN), vec![entry("iam-operator/other-uid", 20)]);
        assert!(wakes(&isa(false), &other, false));
        let unmanaged = service_account(None, vec![]);
        assert!(wakes(&isa(false), &unmanaged, false));
    }

    #[test]
    fn an_object_in_sync_wakes_only_when_the_service_account_stopped_agreeing() {
        let edited_elsewhere = service_account(Some(ARN), vec![entry("kubectl-label", 30)]);
        assert!(!wakes(&isa(true), &edited_elsewhere, false));
        let annotation_removed = service_account(None, vec![entry("iam-operator/3f1c", 20)]);
        assert!(wakes(&isa(true), &annotation_removed, false));
        let annotation_changed =
            service_account(Some("arn:aws:iam::111122223333:role/other"), vec![]);
        assert!(wakes(&isa(true), &annotation_changed, false));
    }

    #[test]
    fn a_deleted_service_account_always_wakes() {
        let gone = service_account(Some(ARN), vec![entry(&format!("iam-operator/{UID}"), 20)]);
        assert!(wakes(&isa(true), &gone, true));
        assert!(wakes(&isa(false), &gone, true));
    }

    #[test]
    fn a_binding_in_sync_wakes_when_an_irsa_role_appears_on_its_service_account() {
        let mut binding = PodIdentityBinding::new("web", PodIdentityBindingSpec::default());
        binding.metadata.generation = Some(1);
        binding.status = Some(crate::api::PodIdentityBindingStatus {
            observed_generation: Some(1),
            conditions: vec![ready(1)],
            ..Default::default()
        });
        let plain = service_account(None, vec![entry("kubectl-edit", 5)]);
        assert!(!wakes(&binding, &plain, false));
        let irsa = service_account(Some(ARN), vec![entry("kubectl-edit", 6)]);
        assert!(wakes(&binding, &irsa, false));
    }
}
