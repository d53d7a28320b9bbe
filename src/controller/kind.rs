//! What a kind supplies to the shared lifecycle: its types, its pure
//! desire and plan, its reads; what its status must offer the one status
//! writer; and what the executor hands back.

use std::fmt::Debug;
use std::future::Future;
use std::sync::OnceLock;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::Resource;
use kube::runtime::reflector::Store;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::claim_index::ClaimIndex;
use super::{Context, Error};
use crate::api::conditions::{READY, find};
use crate::policy::association_plan::ObservedAssociation;
use crate::policy::desire::Defaults;
use crate::policy::plan::{Plan, Recorded, Subject};
use crate::policy::refusal::Refusal;

/// A kind the operator reconciles: one object binds one ServiceAccount in its
/// namespace to an IAM role. Each kind supplies the pure parts (desire and
/// plan) and its reads; `lifecycle` drives the same four steps for every
/// kind: observe, plan, execute, report.
pub trait ManagedKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    const KIND: &'static str;
    type Desired: Send + Sync + Debug;
    type Observed: Send + Sync;
    type Status: ReadyStatus;

    fn service_account_name(&self) -> String;

    /// The cache of every object of this kind, filled once the controller
    /// exists (it owns the reflector).
    fn store(ctx: &Context) -> &OnceLock<Store<Self>>;

    /// Which objects of this kind claim each ServiceAccount.
    fn claim_index(ctx: &Context) -> &ClaimIndex;

    fn current_status(&self) -> Self::Status;

    /// Whether the ServiceAccount's metadata still shows what the last sync
    /// left on it (read after a restart, before trusting the status; and
    /// from the ServiceAccount watch, to ignore changes that alter nothing).
    fn service_account_agrees(&self, service_account: &ObjectMeta) -> bool;

    /// Brings up to date what AWS tells about the cluster that desire
    /// takes for every object of this kind (`Context::defaults`); shared,
    /// so most calls make no request.
    fn refresh_shared_facts(_ctx: &Context) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// Pure: what the spec and the operator's configuration ask for.
    fn desire(&self, subject: &Subject, defaults: &Defaults) -> Result<Self::Desired, Refusal>;

    /// Pure: what the record must name before anything is made for `desired`
    /// (written with the finalizer, in one request).
    fn record_before_create(&self, desired: &Self::Desired) -> Recorded;

    /// Every read the plan needs, and no write. For cleanup (`deleting`)
    /// the reads do not depend on the spec being valid. `defaults` are the
    /// ones desire and plan take in the same reconcile.
    fn observe(
        &self,
        ctx: &Context,
        defaults: &Defaults,
        subject: Subject,
        desired: Option<&Self::Desired>,
        deleting: bool,
    ) -> impl Future<Output = Result<Self::Observed, Error>> + Send;

    /// Pure: the writes that make AWS and the ServiceAccount match.
    fn plan(
        desired: &Result<Self::Desired, Refusal>,
        observed: &Self::Observed,
        defaults: &Defaults,
    ) -> Plan<Self::Status>;

    /// Pure: the writes that undo what `plan` made, as the deletion policy says.
    fn plan_cleanup(observed: &Self::Observed) -> Plan<Self::Status>;
}

/// A kind's status: its own fields plus `observedGeneration` and the
/// `Ready` condition, which `status` writes the same way for every kind.
pub trait ReadyStatus: Serialize + Clone + Default + PartialEq + Send + Sync {
    fn conditions(&self) -> &[Condition];
    fn observed_generation(&self) -> Option<i64>;
    /// Replaces the conditions (Ready, and Reconciling or Stalled).
    fn set_conditions(&mut self, observed_generation: Option<i64>, conditions: Vec<Condition>);
    /// The role the object's status names.
    fn role_name(&self) -> Option<&str>;
    fn synced_fingerprint(&self) -> Option<&str>;
    fn set_synced_fingerprint(&mut self, fingerprint: String);
    /// What the executor learned that the plan could not know.
    fn learn(&mut self, _executed: &Executed) {}
}

/// The `ReadyStatus` methods every kind's status implements the same way,
/// over its `conditions`, `observed_generation` and `role_name` fields.
macro_rules! ready_status_fields {
    () => {
        fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
            &self.conditions
        }

        fn observed_generation(&self) -> Option<i64> {
            self.observed_generation
        }

        fn set_conditions(
            &mut self,
            observed_generation: Option<i64>,
            conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
        ) {
            self.observed_generation = observed_generation;
            self.conditions = conditions;
        }

        fn role_name(&self) -> Option<&str> {
            self.role_name.as_deref()
        }

        fn synced_fingerprint(&self) -> Option<&str> {
            self.synced_fingerprint.as_deref()
        }

        fn set_synced_fingerprint(&mut self, fingerprint: String) {
            self.synced_fingerprint = Some(fingerprint);
        }
    };
}
pub(crate) use ready_status_fields;

/// What running the steps taught that the plan could not know.
#[derive(Debug, Default)]
pub struct Executed {
    /// The association as EKS answered the last create or update.
    pub association: Option<ObservedAssociation>,
}

/// The status says Ready for the spec as it is now.
pub fn ready_at_its_generation<K: ManagedKind>(obj: &K) -> bool {
    let status = obj.current_status();
    status.observed_generation() == obj.meta().generation
        && find(status.conditions(), READY).is_some_and(|c| c.status == "True")
}

/// `namespace/name`, as metrics count objects.
pub fn object_key<K: kube::ResourceExt>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}
