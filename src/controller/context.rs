//! What every reconcile shares: clients, settings, the Events' reporter, the
//! backoff book and the caches of watched objects.

use std::sync::{Arc, OnceLock};

use kube::runtime::events::Reporter;
use kube::runtime::reflector::Store;
use tokio::sync::watch;

use super::backoff::Backoff;
use super::claim_index::ClaimIndex;
use super::first_check::FirstChecks;
use super::shared_facts::SharedFacts;
use crate::api::{IamServiceAccount, PodIdentityBinding};
use crate::aws::{Eks, Iam};
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::policy::desire::Defaults;
use crate::policy::guardrails::Guardrails;
use crate::policy::issuer::IssuerSource;

pub struct Context {
    pub client: kube::Client,
    pub iam: Iam,
    pub eks: Eks,
    pub settings: Settings,
    /// The platform's guardrails, replaced when their file changes.
    pub guardrails: watch::Receiver<Arc<Guardrails>>,
    pub metrics: Arc<Metrics>,
    /// Who publishes the Events (see `events` for why no long-lived recorder).
    pub reporter: Reporter,
    /// Failures retrying may fix, and refusals, counted apart.
    pub backoff: Backoff,
    pub refused: Backoff,
    pub first_checks: FirstChecks,
    /// Every IamServiceAccount, to find which one owns a ServiceAccount;
    /// filled once the controller exists (it owns the reflector).
    pub iam_service_accounts: OnceLock<Store<IamServiceAccount>>,
    pub pod_identity_bindings: OnceLock<Store<PodIdentityBinding>>,
    /// Who claims which ServiceAccount, per kind, kept from the same watch.
    pub iam_service_account_claims: ClaimIndex,
    pub pod_identity_binding_claims: ClaimIndex,
    /// The cluster's existence, issuer, OIDC provider and agent, read for
    /// all objects.
    pub shared: SharedFacts,
}

impl Context {
    pub fn new(
        client: kube::Client,
        iam: Iam,
        eks: Eks,
        settings: Settings,
        guardrails: watch::Receiver<Arc<Guardrails>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Context {
            reporter: Reporter {
                controller: "iam-operator".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
            client,
            iam,
            eks,
            guardrails,
            metrics,
            first_checks: FirstChecks::new(settings.resync),
            shared: SharedFacts::with_issuer(settings.issuer.clone()),
            settings,
            backoff: Backoff::default(),
            refused: Backoff::default(),
            iam_service_accounts: OnceLock::new(),
            pod_identity_bindings: OnceLock::new(),
            iam_service_account_claims: ClaimIndex::default(),
            pod_identity_binding_claims: ClaimIndex::default(),
        }
    }
}

impl Context {
    /// What desire and plan take from the configuration, with the
    /// guardrails in force now.
    pub fn defaults(&self) -> Defaults {
        let mut defaults = self.settings.defaults(self.guardrails.borrow().clone());
        if self.settings.issuer_source == IssuerSource::Eks {
            defaults.issuer = self.shared.issuer();
        }
        defaults
    }
}
