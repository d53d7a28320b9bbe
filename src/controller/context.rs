//! What every reconcile shares: clients, settings, the event recorder, the
//! backoff book and the caches of watched objects.

use std::sync::OnceLock;

use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;

use super::backoff::Backoff;
use crate::api::{IamServiceAccount, PodIdentityBinding};
use crate::aws::{Eks, Iam};
use crate::config::Settings;
use crate::policy::desire::Defaults;

pub struct Context {
    pub client: kube::Client,
    pub iam: Iam,
    pub eks: Eks,
    pub settings: Settings,
    /// What desire takes from the settings, fixed at start.
    pub defaults: Defaults,
    pub recorder: Recorder,
    pub backoff: Backoff,
    /// Every IamServiceAccount, to find which one owns a ServiceAccount;
    /// filled once the controller exists (it owns the reflector).
    pub iam_service_accounts: OnceLock<Store<IamServiceAccount>>,
    pub pod_identity_bindings: OnceLock<Store<PodIdentityBinding>>,
    /// Set once `DescribeCluster` found the configured cluster: it is not
    /// asked again for every object.
    pub cluster_found: OnceLock<()>,
}

impl Context {
    pub fn new(client: kube::Client, iam: Iam, eks: Eks, settings: Settings) -> Self {
        let reporter = Reporter {
            controller: "iam-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            iam,
            eks,
            defaults: settings.defaults(),
            settings,
            backoff: Backoff::default(),
            iam_service_accounts: OnceLock::new(),
            pod_identity_bindings: OnceLock::new(),
            cluster_found: OnceLock::new(),
        }
    }
}
