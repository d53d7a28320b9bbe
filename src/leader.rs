//! Leader election over one Kubernetes `Lease`, so that of several replicas
//! exactly one runs the controllers. Taking and renewing the lease is
//! `kube-lease-manager`'s; this module owns the settings, standing by, and
//! the one rule that matters for safety: a leader that cannot show it still
//! holds the lease stops before anyone else may take it. Does I/O (the Lease
//! only).

use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerBuilder, LeaseParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Args;
use crate::health::Readiness;

/// The lease this process competes for, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// Unique among the replicas: the pod name in a cluster.
    pub identity: String,
    pub duration_seconds: u64,
    pub grace_seconds: u64,
}

impl LeaseSettings {
    /// `None` when leader election is off. `env` reads the environment
    /// (`POD_NAME`, `POD_NAMESPACE`), `hostname` is the fallback identity's
    /// host: both are parameters so the defaults can be tested.
    pub fn from_args(
        args: &Args,
        env: impl Fn(&str) -> Option<String>,
        hostname: impl FnOnce() -> String,
    ) -> Result<Option<Self>, String> {
        if !args.leader_election {
            return Ok(None);
        }
        let (duration, grace) = (
            args.leader_election_lease_duration_seconds,
            args.leader_election_renew_grace_seconds,
        );
        // kube-lease-manager panics on these; a flag typo must be a message.
        if grace >= duration {
            return Err(format!(
                "--leader-election-renew-grace-seconds ({grace}) must be below \
                 --leader-election-lease-duration-seconds ({duration}): the leader renews \
                 that many seconds before the lease runs out"
            ));
        }
        let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
        let namespace = args
            .leader_election_namespace
            .clone()
            .or_else(|| non_empty("POD_NAMESPACE"))
            .unwrap_or_else(|| "default".to_string());
        // Two processes of one identity would both believe they lead. A pod
        // name is unique; outside a pod, host and process id are.
        let identity = non_empty("POD_NAME")
            .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
        Ok(Some(LeaseSettings {
            namespace,
            name: args.leader_election_lease_name.clone(),
            identity,
            duration_seconds: duration,
            grace_seconds: grace,
        }))
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// How often the leader reads its lease back: often enough that a
    /// renewal late by half the grace is noticed with a quarter of the
    /// grace to spare.
    fn check_interval(&self) -> Duration {
        Duration::from_millis((self.grace_seconds * 1000 / 4).clamp(250, 1000))
    }
}

/// The host name, for an identity outside a pod.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "iam-operator".to_string())
}

/// Whether a leader whose last renewal visible in the Lease is `renewed`
/// must stop now. Others may take the lease at `renewed + duration` by
/// their clocks; the lease manager renews at `duration - grace`. A renewal
/// late by half the grace means the apiserver is not taking them, and the
/// other half is left for clock skew and for noticing.
pub fn must_stop(renewed: SystemTime, now: SystemTime, duration: u64, grace: u64) -> bool {
    let valid_for = Duration::from_millis(duration * 1000 - grace * 500);
    match renewed.checked_add(valid_for) {
        Some(deadline) => now >= deadline,
        None => true,
    }
}

/// Held while this process is the leader.
pub struct Leadership {
    settings: LeaseSettings,
    leases: Api<Lease>,
    /// `true` while kube-lease-manager holds the lease for us; dropping it
    /// makes the manager's task release the lease and end.
    state: watch::Receiver<bool>,
    manager: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    acquired: SystemTime,
}

/// Waits until this process holds the lease. A standby is marked ready: a
/// rolling update starts the new pod first and stops the old one only once
/// the new one is Ready, and the new pod stands by for as long as the old one
/// holds the lease, so an unready standby would stall every rollout. A
/// standby needs no signal handling: SIGTERM's default, ending the process,
/// is right for a process that holds nothing and writes nothing.
pub async fn acquire(
    client: kube::Client,
    settings: LeaseSettings,
    readiness: &Readiness,
) -> Result<Leadership, String> {
    let lease = settings.describe();
    let manager = LeaseManagerBuilder::new(client.clone(), &settings.name)
        .with_namespace(&settings.namespace)
        .with_parameters(LeaseParams::new(
            &settings.identity,
            settings.duration_seconds,
            settings.grace_seconds,
        ))
        .with_create_mode(LeaseCreateMode::AutoCreate)
        .build()
        .await
        .map_err(|e| refused(&lease, e))?;
    let leases = Api::<Lease>::namespaced(client, &settings.namespace);
    // The manager retries every failure quietly, a missing permission
    // included, which would leave a replica waiting for ever: an empty
    // dry-run patch asks the apiserver's authorizer once, at start.
    leases
        .patch(
            &settings.name,
            &PatchParams::default().dry_run(),
            &Patch::Merge(serde_json::json!({})),
        )
        .await
        .map_err(|e| refused(&lease, e))?;
    let (mut state, manager) = manager.watch().await;
    let mut standing_by = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(1), state.wait_for(|leader| *leader)).await {
            Ok(Ok(_)) => break,
            Ok(Err(_)) => {
                let ended = manager.await;
                return Err(format!(
                    "leader election: the lease manager for {lease} stopped: {ended:?}"
                ));
            }
            // A free lease is taken within a second; still waiting, the
            // lease has another holder (known only from the Lease itself).
            Err(_) if !standing_by => {
                if let Ok(current) = leases.get(&settings.name).await
                    && let Some(holder) = holder_of(&current)
                    && holder != settings.identity
                {
                    tracing::info!(%lease, %holder, identity = %settings.identity, "standing by: another process holds the lease");
                    while !readiness.is_ready() {
                        readiness.controller_running();
                    }
                    standing_by = true;
                }
            }
            Err(_) => {}
        }
    }
    tracing::info!(%lease, identity = %settings.identity, "acquired the lease: this process leads and runs the controllers");
    Ok(Leadership {
        settings,
        leases,
        state,
        manager,
        acquired: SystemTime::now(),
    })
}

fn refused(lease: &str, error: impl std::fmt::Display) -> String {
    format!(
        "leader election: lease {lease}: {error}; the operator needs get, create and patch on \
         coordination.k8s.io leases there (or --leader-election=false for a single process)"
    )
}

fn holder_of(lease: &Lease) -> Option<String> {
    lease.spec.as_ref()?.holder_identity.clone()
}

impl Leadership {
    /// Resolves, with the reason, as soon as this process may no longer act
    /// as leader: the lease manager saw another holder, the Lease names
    /// another holder, or our renewals stopped reaching the Lease (the
    /// manager retries those quietly, which is no use to a leader that must
    /// stop before the lease expires).
    pub async fn lost(&mut self) -> String {
        let lease = self.settings.describe();
        // The first check runs at once and replaces this with the lease's own
        // renewal time, written from this process's clock.
        let mut renewed = self.acquired;
        let interval = self.settings.check_interval();
        let mut checks = tokio::time::interval(interval);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = self.state.changed() => match changed {
                    Ok(()) if !*self.state.borrow_and_update() => {
                        return format!("lost the lease {lease}: another process holds it");
                    }
                    Ok(()) => {}
                    Err(_) => return format!("the lease manager for {lease} stopped"),
                },
                _ = checks.tick() => {
                    match tokio::time::timeout(interval, self.leases.get(&self.settings.name)).await {
                        Ok(Ok(current)) => {
                            let holder = holder_of(&current);
                            if holder.as_deref() != Some(self.settings.identity.as_str()) {
                                return format!(
                                    "lost the lease {lease}: it is now held by {}",
                                    holder.as_deref().unwrap_or("no one")
                                );
                            }
                            if let Some(time) = current.spec.and_then(|s| s.renew_time) {
                                renewed = time.0.into();
                            }
                        }
                        Ok(Err(e)) => tracing::warn!(%lease, error = %e, "could not read the lease back"),
                        Err(_) => tracing::warn!(%lease, "reading the lease back timed out"),
                    }
                    if must_stop(
                        renewed,
                        SystemTime::now(),
                        self.settings.duration_seconds,
                        self.settings.grace_seconds,
                    ) {
                        return format!(
                            "lost the lease {lease}: not renewed in time (last renewal {:.1} s ago), \
                             so another process may take it",
                            SystemTime::now().duration_since(renewed).unwrap_or_default().as_secs_f64()
                        );
                    }
                }
            }
        }
    }

    /// Gives the lease up after the controllers stopped, so a standby need
    /// not wait for it to expire.
    pub async fn release(self) {
        let lease = self.settings.describe();
        drop(self.state);
        match tokio::time::timeout(Duration::from_secs(5), self.manager).await {
            Ok(Ok(Ok(_))) => tracing::info!(%lease, "released the lease"),
            other => {
                tracing::warn!(%lease, outcome = ?other, "could not release the lease; it expires by itself")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let mut all = vec!["iam-operator", "--cluster-name", "c"];
        all.extend_from_slice(extra);
        Args::try_parse_from(all).expect("parses")
    }

    fn settings(extra: &[&str], env: &[(&str, &str)]) -> Result<Option<LeaseSettings>, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LeaseSettings::from_args(
            &args(extra),
            |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            || "host".to_string(),
        )
    }

    #[test]
    fn on_by_default_with_the_pod_as_identity_and_namespace() {
        let got = settings(&[], &[("POD_NAME", "op-7"), ("POD_NAMESPACE", "iam")])
            .expect("valid")
            .expect("on");
        assert_eq!(
            got,
            LeaseSettings {
                namespace: "iam".into(),
                name: "iam-operator".into(),
                identity: "op-7".into(),
                duration_seconds: 15,
                grace_seconds: 5,
            }
        );
    }

    #[test]
    fn outside_a_pod_the_default_namespace_and_host_with_pid() {
        let got = settings(&[], &[("POD_NAME", "")])
            .expect("valid")
            .expect("on");
        assert_eq!(got.namespace, "default");
        assert_eq!(got.identity, format!("host-{}", std::process::id()));
    }

    #[test]
    fn flags_win_over_the_pod_environment() {
        let got = settings(
            &[
                "--leader-election-namespace",
                "ops",
                "--leader-election-lease-name",
                "mine",
                "--leader-election-lease-duration-seconds",
                "30",
                "--leader-election-renew-grace-seconds",
                "10",
            ],
            &[("POD_NAMESPACE", "iam")],
        )
        .expect("valid")
        .expect("on");
        assert_eq!((got.namespace.as_str(), got.name.as_str()), ("ops", "mine"));
        assert_eq!((got.duration_seconds, got.grace_seconds), (30, 10));
    }

    #[test]
    fn can_be_switched_off_and_bare_flag_means_on() {
        assert_eq!(settings(&["--leader-election=false"], &[]), Ok(None));
        assert_eq!(settings(&["--leader-election", "false"], &[]), Ok(None));
        assert!(
            settings(&["--leader-election"], &[])
                .expect("valid")
                .is_some()
        );
    }

    #[test]
    fn grace_at_or_above_duration_is_refused_with_a_message() {
        let refused = settings(
            &[
                "--leader-election-lease-duration-seconds",
                "5",
                "--leader-election-renew-grace-seconds",
                "5",
            ],
            &[],
        );
        assert!(refused.is_err_and(|e| e.contains("must be below")));
        // Out of clap's ranges: refused while parsing.
        for bad in [
            ["--leader-election-lease-duration-seconds", "1"],
            ["--leader-election-renew-grace-seconds", "0"],
        ] {
            let mut all = vec!["iam-operator", "--cluster-name", "c"];
            all.extend_from_slice(&bad);
            assert!(Args::try_parse_from(all).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_leader_stops_once_a_renewal_is_half_the_grace_late() {
        let renewed = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let at = |ms: u64| renewed + Duration::from_millis(ms);
        // Duration 15, grace 5: renewals are due at 10 s; others may take
        // the lease at 15 s; the leader stops at 12.5 s.
        assert!(!must_stop(renewed, at(0), 15, 5));
        assert!(!must_stop(renewed, at(10_000), 15, 5));
        assert!(!must_stop(renewed, at(12_499), 15, 5));
        assert!(must_stop(renewed, at(12_500), 15, 5));
        assert!(must_stop(renewed, at(15_000), 15, 5));
    }

    #[test]
    fn checks_run_often_enough_to_leave_a_quarter_of_the_grace() {
        let with_grace = |grace_seconds| LeaseSettings {
            namespace: "n".into(),
            name: "l".into(),
            identity: "i".into(),
            duration_seconds: 60,
            grace_seconds,
        };
        assert_eq!(with_grace(5).check_interval(), Duration::from_secs(1));
        assert_eq!(with_grace(2).check_interval(), Duration::from_millis(500));
        assert_eq!(with_grace(1).check_interval(), Duration::from_millis(250));
    }
}
