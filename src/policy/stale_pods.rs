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

/// A running (or starting) pod of the ServiceAccount, with what each of
/// its containers was given of the variables above.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedPod {
    pub name: String,
    pub containers: Vec<BTreeMap<String, String>>,
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

/// The names of the pods not created under `binding`, sorted.
pub fn stale_pods(pods: &[ObservedPod], binding: Binding<'_>) -> Vec<String> {
    let bound = |env: &BTreeMap<String, String>| match binding {
        Binding::Irsa { role_arn } => env.get(ROLE_ARN_ENV).map(String::as_str) == Some(role_arn),
        Binding::PodIdentity => env.get(POD_IDENTITY_ENV).is_some_and(|uri| !uri.is_empty()),
    };
    let mut stale: Vec<String> = pods
        .iter()
        .filter(|pod| !pod.containers.iter().all(bound))
        .map(|pod| pod.name.clone())
        .collect();
    stale.sort();
    stale
}

/// `PodsNeedRestart` when pods of `service_account` were not created under
/// `binding` (to `role_arn`); `Ok` passes a verdict through otherwise.
pub fn unless_pods_are_stale(
    verdict: Result<String, Refusal>,
    pods: &[ObservedPod],
    binding: Binding<'_>,
    service_account: &str,
    role_arn: &str,
) -> Result<String, Refusal> {
    let ok = verdict?;
    let stale = stale_pods(pods, binding);
    if stale.is_empty() {
        return Ok(ok);
    }
    Err(Refusal::PodsNeedRestart {
        service_account: service_account.to_string(),
        role_arn: role_arn.to_string(),
        count: stale.len(),
        named: stale.into_iter().take(NAMED_AT_MOST).collect(),
        consequence: binding.consequence(),
    })
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
        }
    }

    #[test]
    fn a_pod_is_stale_when_any_container_lacks_the_binding() {
        let pods = [
            pod(
                "made-after",
                &[&[(ROLE_ARN_ENV, ROLE)], &[(ROLE_ARN_ENV, ROLE)]],
            ),
            pod("made-before", &[&[("PATH", "/bin")]]),
            pod(
                "old-role",
                &[&[(ROLE_ARN_ENV, "arn:aws:iam::123456789012:role/old")]],
            ),
            pod("half", &[&[(ROLE_ARN_ENV, ROLE)], &[]]),
        ];
        assert_eq!(
            stale_pods(&pods, Binding::Irsa { role_arn: ROLE }),
            ["half", "made-before", "old-role"]
        );
        let pods = [
            pod(
                "after",
                &[&[(POD_IDENTITY_ENV, "http://169.254.170.23/v1/credentials")]],
            ),
            pod("before", &[&[(ROLE_ARN_ENV, ROLE)]]),
            pod("empty", &[&[(POD_IDENTITY_ENV, "")]]),
        ];
        assert_eq!(stale_pods(&pods, Binding::PodIdentity), ["before", "empty"]);
        assert!(stale_pods(&[], Binding::PodIdentity).is_empty());
    }

    #[test]
    fn stale_pods_turn_a_good_verdict_into_a_refusal_that_names_them() {
        let pods: Vec<ObservedPod> = (1..=7).map(|i| pod(&format!("web-{i}"), &[&[]])).collect();
        let irsa = Binding::Irsa { role_arn: ROLE };
        let refusal =
            unless_pods_are_stale(Ok("bound".into()), &pods, irsa, "web", ROLE).expect_err("stale");
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
        assert_eq!(
            unless_pods_are_stale(Ok("bound".into()), &[], irsa, "web", ROLE),
            Ok("bound".into())
        );
        // A refusal already decided is kept: it says more.
        let earlier = Refusal::ServiceAccountNotFound {
            service_account: "web".into(),
            role_arn: ROLE.into(),
        };
        assert_eq!(
            unless_pods_are_stale(Err(earlier.clone()), &pods, irsa, "web", ROLE),
            Err(earlier)
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
