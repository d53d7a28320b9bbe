//! Pods that use a ServiceAccount but started before it was bound to the
//! role they should get. EKS's webhooks put the credentials' settings into
//! a pod only when it is created: IRSA's sets `AWS_ROLE_ARN` (and the token
//! file) from the ServiceAccount's annotation, Pod Identity's sets
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` when an association exists. A pod
//! created before holds no credentials for the binding, or another role's,
//! until it is restarted. Pure.

use std::collections::BTreeMap;

use super::refusal::Refusal;

/// Set by the IRSA webhook: the role the pod's SDKs assume.
pub const ROLE_ARN_ENV: &str = "AWS_ROLE_ARN";
/// Set by the Pod Identity webhook: where the agent serves credentials.
pub const POD_IDENTITY_ENV: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";

/// How many stale pods a message names; the count says the rest.
pub const NAMED_AT_MOST: usize = 5;

/// On a restarted workload's pod template: the binding the restart was for,
/// so that it is asked once per binding, not at every look while the
/// rollout runs.
pub const RESTARTED_FOR: &str = "iam-operator.io/restarted-for";
/// What `kubectl rollout restart` sets, which starts the rollout.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// A running (or starting) pod of the ServiceAccount, with what each of
/// its containers was given of the variables above.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedPod {
    pub name: String,
    pub containers: Vec<BTreeMap<String, String>>,
    /// Its controller, as its owner references name it: (kind, name).
    pub controller: Option<(String, String)>,
    /// The Deployment, StatefulSet or DaemonSet it belongs to, when read
    /// (only to restart it).
    pub workload: Option<Workload>,
}

/// A workload `kubectl rollout restart` can restart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Workload {
    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub kind: String,
    pub name: String,
    /// Its pod template's `RESTARTED_FOR`, as read.
    pub restarted_for: Option<String>,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// Whether the object asked for its stale pods' workloads to be restarted,
/// whether the operator may, and whether the binding stood before this
/// reconcile: a restart in the same reconcile that binds could start pods
/// before EKS's webhook sees the annotation or association, and they would
/// be marked restarted for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartWish {
    pub asked: bool,
    pub allowed: bool,
    pub binding_in_place: bool,
}

/// The workloads of `stale` pods to restart for `binding_id` (those not
/// restarted for it already, each once), and what to tell about it.
pub fn plan_restarts(
    pods: &[ObservedPod],
    stale: &[String],
    wish: RestartWish,
    binding_id: &str,
) -> (Vec<Workload>, String) {
    if stale.is_empty() || !wish.asked {
        return (Vec::new(), String::new());
    }
    if !wish.binding_in_place {
        return (
            Vec::new(),
            "; their workloads are restarted at the next look, once the binding is in place \
             (spec.restartStalePods)"
                .into(),
        );
    }
    if !wish.allowed {
        return (
            Vec::new(),
            "; spec.restartStalePods is set, but the operator is not allowed to restart \
             workloads (start it with --restart-stale-pods; chart: restartStalePods: true)"
                .into(),
        );
    }
    let of_stale = || {
        pods.iter()
            .filter(|pod| stale.contains(&pod.name))
            .filter_map(|pod| pod.workload.as_ref())
    };
    let mut restart: Vec<Workload> = of_stale()
        .filter(|w| w.restarted_for.as_deref() != Some(binding_id))
        .cloned()
        .collect();
    restart.sort();
    restart.dedup_by(|a, b| a.kind == b.kind && a.name == b.name);
    let mut asked_before: Vec<String> = of_stale()
        .filter(|w| w.restarted_for.as_deref() == Some(binding_id))
        .map(ToString::to_string)
        .collect();
    asked_before.sort();
    asked_before.dedup();
    let bare = pods
        .iter()
        .filter(|pod| stale.contains(&pod.name) && pod.workload.is_none())
        .count();
    let list = |items: Vec<String>| items.join(", ");
    let mut note = String::new();
    if !restart.is_empty() {
        note += &format!(
            "; restarting {} as spec.restartStalePods asks",
            list(restart.iter().map(ToString::to_string).collect())
        );
    }
    if !asked_before.is_empty() {
        note += &format!(
            "; a restart of {} for this binding was asked already and is rolling out",
            list(asked_before)
        );
    }
    if bare > 0 {
        note += &format!(
            "; {bare} of them belong to no Deployment, StatefulSet or DaemonSet: delete them"
        );
    }
    (restart, note)
}

impl ObservedPod {
    /// Keeps of a container's environment only what tells its credentials.
    pub fn credential_env<'a>(
        env: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> BTreeMap<String, String> {
        env.into_iter()
            .filter(|(name, _)| *name == ROLE_ARN_ENV || *name == POD_IDENTITY_ENV)
            .map(|(name, value)| (name.to_string(), value.unwrap_or_default().to_string()))
            .collect()
    }
}

/// What the ServiceAccount is bound to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding<'a> {
    Irsa { role_arn: &'a str },
    PodIdentity,
}

impl Binding<'_> {
    /// Why a pod started before the binding has no use of it.
    pub fn consequence(&self) -> &'static str {
        match self {
            Binding::Irsa { .. } => {
                "the IRSA webhook sets AWS_ROLE_ARN and the token only on pods created after the \
                 annotation, so they assume no role, or the one before"
            }
            Binding::PodIdentity => {
                "EKS gives a pod the Pod Identity credentials only when it is created after the \
                 association"
            }
        }
    }
}

/// The names of the pods not created under `binding`, sorted. The webhooks
/// leave some containers alone (those a pod lists to skip, sidecars added
/// by a later webhook, one that sets the variables itself), so a pod is
/// judged by whether any container got the binding, and for IRSA by no
/// container holding another role. A pod given Pod Identity credentials is
/// not an IRSA object's to judge: EKS prefers them, and a restart would not
/// change that.
pub fn stale_pods(pods: &[ObservedPod], binding: Binding<'_>) -> Vec<String> {
    let pod_identity = |env: &BTreeMap<String, String>| {
        env.get(POD_IDENTITY_ENV).is_some_and(|uri| !uri.is_empty())
    };
    let stale = |pod: &ObservedPod| match binding {
        Binding::Irsa { role_arn } => {
            let roles = || {
                pod.containers
                    .iter()
                    .filter_map(|env| env.get(ROLE_ARN_ENV))
            };
            !pod.containers.iter().any(pod_identity)
                && (!roles().any(|role| role == role_arn) || roles().any(|role| role != role_arn))
        }
        Binding::PodIdentity => !pod.containers.iter().any(pod_identity),
    };
    let mut names: Vec<String> = pods
        .iter()
        .filter(|pod| stale(pod))
        .map(|pod| pod.name.clone())
        .collect();
    names.sort();
    names
}

/// `PodsNeedRestart` when pods of `service_account` were not created under
/// `binding` (to `role_arn`), with the workloads to restart when the object
/// asks; `Ok` passes a verdict through otherwise.
pub fn unless_pods_are_stale(
    verdict: Result<String, Refusal>,
    pods: &[ObservedPod],
    binding: Binding<'_>,
    wish: RestartWish,
    service_account: &str,
    role_arn: &str,
) -> (Result<String, Refusal>, Vec<Workload>) {
    let Ok(ok) = verdict else {
        return (verdict, Vec::new());
    };
    let stale = stale_pods(pods, binding);
    if stale.is_empty() {
        return (Ok(ok), Vec::new());
    }
    let (restart, restarting) = plan_restarts(pods, &stale, wish, role_arn);
    let refusal = Refusal::PodsNeedRestart {
        service_account: service_account.to_string(),
        role_arn: role_arn.to_string(),
        count: stale.len(),
        named: stale.into_iter().take(NAMED_AT_MOST).collect(),
        consequence: binding.consequence(),
        restarting,
    };
    (Err(refusal), restart)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/web";

    fn pod(name: &str, containers: &[&[(&str, &str)]]) -> ObservedPod {
        ObservedPod {
            name: name.into(),
            containers: containers
                .iter()
                .map(|env| ObservedPod::credential_env(env.iter().map(|(k, v)| (*k, Some(*v)))))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_pod_is_stale_when_no_container_got_the_binding_or_one_holds_another_role() {
        let old = "arn:aws:iam::123456789012:role/old";
        let uri = "http://169.254.170.23/v1/credentials";
        let pods = [
            pod(
                "made-after",
                &[&[(ROLE_ARN_ENV, ROLE)], &[(ROLE_ARN_ENV, ROLE)]],
            ),
            pod("made-before", &[&[("PATH", "/bin")]]),
            pod("old-role", &[&[(ROLE_ARN_ENV, old)]]),
            pod("with-a-skipped-sidecar", &[&[(ROLE_ARN_ENV, ROLE)], &[]]),
            pod(
                "half-old",
                &[&[(ROLE_ARN_ENV, ROLE)], &[(ROLE_ARN_ENV, old)]],
            ),
            pod("pod-identity-wins", &[&[(POD_IDENTITY_ENV, uri)]]),
        ];
        assert_eq!(
            stale_pods(&pods, Binding::Irsa { role_arn: ROLE }),
            ["half-old", "made-before", "old-role"]
        );
        let pods = [
            pod("after", &[&[(POD_IDENTITY_ENV, uri)]]),
            pod("before", &[&[(ROLE_ARN_ENV, ROLE)]]),
            pod("empty", &[&[(POD_IDENTITY_ENV, "")]]),
            pod("with-a-skipped-sidecar", &[&[(POD_IDENTITY_ENV, uri)], &[]]),
        ];
        assert_eq!(stale_pods(&pods, Binding::PodIdentity), ["before", "empty"]);
        assert!(stale_pods(&[], Binding::PodIdentity).is_empty());
    }

    const NO_RESTART: RestartWish = RestartWish {
        asked: false,
        allowed: true,
        binding_in_place: true,
    };

    #[test]
    fn stale_pods_turn_a_good_verdict_into_a_refusal_that_names_them() {
        let pods: Vec<ObservedPod> = (1..=7).map(|i| pod(&format!("web-{i}"), &[&[]])).collect();
        let irsa = Binding::Irsa { role_arn: ROLE };
        let check = |verdict, pods: &[ObservedPod]| {
            unless_pods_are_stale(verdict, pods, irsa, NO_RESTART, "web", ROLE)
        };
        let (verdict, restarts) = check(Ok("bound".into()), &pods);
        assert!(restarts.is_empty(), "not asked");
        let refusal = verdict.expect_err("stale");
        assert_eq!(refusal.reason(), "PodsNeedRestart");
        let message = refusal.to_string();
        for words in [
            "7 pods of ServiceAccount web",
            "web-1, web-2, web-3, web-4, web-5 and 2 more",
            "AWS_ROLE_ARN",
            "kubectl rollout restart",
        ] {
            assert!(message.contains(words), "{words:?} not in {message}");
        }
        assert!(!message.contains("web-6"), "{message}");
        assert_eq!(check(Ok("bound".into()), &[]).0, Ok("bound".into()));
        // A refusal already decided is kept: it says more.
        let earlier = Refusal::ServiceAccountNotFound {
            service_account: "web".into(),
            role_arn: ROLE.into(),
        };
        assert_eq!(check(Err(earlier.clone()), &pods).0, Err(earlier));
    }

    fn of(
        mut pod: ObservedPod,
        kind: &str,
        name: &str,
        restarted_for: Option<&str>,
    ) -> ObservedPod {
        pod.workload = Some(Workload {
            kind: kind.into(),
            name: name.into(),
            restarted_for: restarted_for.map(str::to_string),
        });
        pod
    }

    #[test]
    fn each_workload_of_stale_pods_is_restarted_once_per_binding_and_only_when_asked_and_allowed() {
        let pods = [
            of(pod("web-a", &[&[]]), "Deployment", "web", None),
            of(pod("web-b", &[&[]]), "Deployment", "web", None),
            of(pod("db-0", &[&[]]), "StatefulSet", "db", Some(ROLE)),
            of(
                pod("fresh", &[&[(ROLE_ARN_ENV, ROLE)]]),
                "Deployment",
                "api",
                None,
            ),
            pod("bare", &[&[]]),
        ];
        let stale = stale_pods(&pods, Binding::Irsa { role_arn: ROLE });
        let asked = RestartWish {
            asked: true,
            allowed: true,
            binding_in_place: true,
        };
        let (restart, note) = plan_restarts(&pods, &stale, asked, ROLE);
        assert_eq!(
            restart.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["Deployment/web"],
            "once each; not the one restarted for this binding already; not a fresh pod's"
        );
        for words in [
            "restarting Deployment/web",
            "StatefulSet/db for this binding was asked already",
            "1 of them belong to no Deployment",
        ] {
            assert!(note.contains(words), "{words:?} not in {note}");
        }
        // Restarted for another binding: restarted again for this one.
        let (restart, _) =
            plan_restarts(&pods, &stale, asked, "arn:aws:iam::123456789012:role/new");
        assert_eq!(restart.len(), 2);
        let (restart, note) = plan_restarts(
            &pods,
            &stale,
            RestartWish {
                asked: true,
                allowed: false,
                binding_in_place: true,
            },
            ROLE,
        );
        assert!(
            restart.is_empty() && note.contains("--restart-stale-pods"),
            "{note}"
        );
        let (restart, note) = plan_restarts(
            &pods,
            &stale,
            RestartWish {
                binding_in_place: false,
                ..asked
            },
            ROLE,
        );
        assert!(
            restart.is_empty() && note.contains("at the next look"),
            "never in the reconcile that binds: {note}"
        );
        assert_eq!(
            plan_restarts(&pods, &stale, NO_RESTART, ROLE),
            (Vec::new(), String::new())
        );
    }

    #[test]
    fn only_the_credential_variables_are_kept() {
        let env = ObservedPod::credential_env([
            ("PATH", Some("/bin")),
            (ROLE_ARN_ENV, Some(ROLE)),
            (POD_IDENTITY_ENV, None),
        ]);
        assert_eq!(
            env,
            BTreeMap::from([
                (ROLE_ARN_ENV.to_string(), ROLE.to_string()),
                (POD_IDENTITY_ENV.to_string(), String::new()),
            ])
        );
    }
}
