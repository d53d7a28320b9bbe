//! Every reason a plan refuses to write, or stops short of Ready, decided
//! from what was observed: what the user must change (terminal) and what
//! resolves by itself (waiting). Pure, so that the plan can return it; the
//! controller wraps it with the errors only I/O can produce.

use std::time::Duration;

use super::association_plan::AssociationConflict;
use super::desire::InvalidSpec;
use super::guardrails::Violation;
use super::issuer::IssuerSource;
use super::pod_identity_agent::{AGENT_ADDON, AgentProblem};
use super::role_plan::RoleNotOwned;
use crate::api::conditions::reason;

/// How soon to look again at something that fixes itself (a provider being
/// created, a ServiceAccount being applied by the same Git sync).
pub const WAITING_REQUEUE: Duration = Duration::from_secs(30);

/// When to look at a refused object again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Something that fixes itself: look again this soon.
    Soon(Duration),
    /// Something only a person can fix: slowly, backing off (the
    /// controller's terminal schedule), but not never, so a fix made outside
    /// Kubernetes (in IAM) is noticed; a spec change is tried at once.
    Terminal,
}
/// How soon to try again while IAM propagates a new role to EKS, which
/// usually takes seconds.
pub const PROPAGATION_REQUEUE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] InvalidSpec),

    #[error(
        "invalid policy, not sent to AWS (IAM would answer MalformedPolicyDocument): {}",
        problems.join("; ")
    )]
    InvalidPolicy { problems: Vec<String> },

    #[error(
        "the platform's guardrails refuse this spec, so nothing was written to AWS: {}",
        violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    GuardrailViolation { violations: Vec<Violation> },

    #[error("{0}")]
    RoleNotOwned(#[from] RoleNotOwned),

    #[error(
        "No OpenIDConnect provider found in your account for issuer {issuer}: pods would fail with \
         \"InvalidIdentityToken: No OpenIDConnect provider found in your account\". Create the IAM OIDC \
         provider {provider_arn} with client ID {audience} (for example `eksctl utils \
         associate-iam-oidc-provider --cluster {cluster} --approve`), or let the operator make it \
         (--manage-oidc-provider){not_made}"
    )]
    OidcProviderNotFound {
        issuer: String,
        provider_arn: String,
        audience: String,
        cluster: String,
        /// Why the operator, managing the provider, did not make it.
        not_made: String,
    },

    #[error(
        "Incorrect token audience: the IAM OIDC provider {provider_arn} lists client IDs [{}] but the \
         ServiceAccount's tokens carry audience {audience}; add {audience} to the provider's client IDs \
         (aws iam add-client-id-to-open-id-connect-provider) or set spec.audience to one it lists{}",
        allowed.join(", "),
        not_added
    )]
    AudienceNotAllowed {
        provider_arn: String,
        audience: String,
        allowed: Vec<String>,
        /// Why the operator, managing the provider, did not add it.
        not_added: String,
    },

    #[error(
        "ServiceAccount {service_account} is annotated with eks.amazonaws.com/role-arn={found}, set by \
         someone else; pods would assume that role, and fail with \"Not authorized to perform \
         sts:AssumeRoleWithWebIdentity\" {detail}. Remove the annotation (or point this object at \
         another ServiceAccount) and the operator will set {expected}"
    )]
    ServiceAccountAnnotationMismatch {
        service_account: String,
        found: String,
        expected: String,
        detail: String,
    },

    #[error(
        "ServiceAccount {service_account} is annotated with eks.amazonaws.com/audience={found}, set by \
         someone else: the pod identity webhook would mint tokens for audience {found}, and the \
         role's trust policy admits only {expected}, so every AssumeRoleWithWebIdentity would fail \
         with \"Incorrect token audience\". Remove that annotation (the operator then sets \
         {expected}) or set spec.audience: {found}"
    )]
    ServiceAccountAudienceMismatch {
        service_account: String,
        found: String,
        expected: String,
    },

    #[error(
        "ServiceAccount {service_account} carries {key}={found}, set by someone else, and this \
         object wants {wanted}; the operator does not overwrite another manager's annotation. \
         Remove it, or set the object's field to the same value"
    )]
    ServiceAccountAnnotationTaken {
        service_account: String,
        key: String,
        found: String,
        wanted: String,
    },

    #[error(
        "ServiceAccount {service_account} is already claimed by {kind} {winner}, which is older; \
         delete one of the two or point this one at another ServiceAccount"
    )]
    ServiceAccountConflict {
        kind: &'static str,
        service_account: String,
        winner: String,
    },

    #[error(
        "ServiceAccount {service_account} does not exist yet: create it, or set \
         spec.serviceAccount.create: true; the role {role_arn} is ready"
    )]
    ServiceAccountNotFound {
        service_account: String,
        role_arn: String,
    },

    #[error(
        "IAM role {role_arn} ({field}) does not exist; create it or correct the ARN. Pods were \
         not given it, as it would give them no credentials"
    )]
    RoleNotFound {
        field: &'static str,
        role_arn: String,
    },

    #[error(
        "IAM role {role_arn} ({field}) is the role iam-operator manages for {owner}; a role made \
         for one object is never handed to another. Give this object a role of its own \
         (spec.role) or name a role the operator does not manage"
    )]
    BorrowedRole {
        field: &'static str,
        role_arn: String,
        owner: String,
    },

    #[error(
        "the trust policy of IAM role {role_arn} does not allow the EKS Pod Identity principal \
         pods.eks.amazonaws.com to {}; pods would get no credentials. Add a statement allowing \
         Service pods.eks.amazonaws.com the actions sts:AssumeRole and sts:TagSession (the operator \
         never edits a role it did not create)",
        missing.join(" and ")
    )]
    RoleDoesNotTrustPodIdentity {
        role_arn: String,
        missing: Vec<&'static str>,
    },

    #[error(
        "the trust policy of IAM role {role_arn} (spec.roleArn) does not admit {subject} with \
         audience {audience}: {why}; pods would fail with \"Not authorized to perform \
         sts:AssumeRoleWithWebIdentity\". The operator never edits a role it did not create: add \
         this statement to the role's trust policy: {statement}"
    )]
    RoleDoesNotTrustServiceAccount {
        role_arn: String,
        /// `system:serviceaccount:<namespace>:<name>`.
        subject: String,
        audience: String,
        why: String,
        /// The statement to add, as JSON.
        statement: String,
    },

    #[error(
        "IAM role {role_name} was made outside the operator and spec.adoptRole asks to take it \
         over, but {why}; nothing was written. The operator adopts only a role whose trust admits \
         exactly this ServiceAccount, so that taking it over takes nothing from anyone else"
    )]
    AdoptionRefused { role_name: String, why: String },

    #[error(
        "{count} pod{} of ServiceAccount {service_account} ({}{}) started before it was bound to \
         {role_arn}: {consequence}. Restart them (`kubectl rollout restart` of their Deployment, \
         StatefulSet or DaemonSet){restarting}",
        if *count == 1 { "" } else { "s" },
        named.join(", "),
        match count.saturating_sub(named.len()) { 0 => String::new(), more => format!(" and {more} more") }
    )]
    PodsNeedRestart {
        service_account: String,
        role_arn: String,
        count: usize,
        /// The first few, by name.
        named: Vec<String>,
        consequence: &'static str,
        /// What the operator does about it (`restartStalePods`), if anything.
        restarting: String,
    },

    #[error("{0}")]
    AssociationConflict(#[from] AssociationConflict),

    #[error(
        "EKS does not see IAM role {role_arn} yet ({detail}); the role is new and IAM changes take \
         a few seconds to reach EKS, so the operator retries shortly"
    )]
    WaitingForPropagation { role_arn: String, detail: String },

    #[error(
        "IAM answered that role {role} does not exist, then that it does: it was made moments \
         ago and IAM's reads have not caught up yet (IAM is eventually consistent); the operator \
         looks again shortly"
    )]
    IamCatchingUp { role: String },

    #[error(
        "EKS cluster {cluster} was not found in region {region} ({detail}); Pod Identity \
         associations live in the cluster. Check the operator's --cluster-name and AWS region"
    )]
    ClusterNotFound {
        cluster: String,
        region: String,
        detail: String,
    },

    #[error(
        "ServiceAccount {service_account} also carries the IRSA annotation \
         eks.amazonaws.com/role-arn={irsa_role}. The AWS SDKs' default credential provider chain \
         tries web identity credentials (IRSA) before the container credential provider that \
         serves EKS Pod Identity, so pods using it get {irsa_role}, not {pod_identity_role}. \
         Remove the annotation to switch the pods to Pod Identity (the association is in place; \
         see https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html)"
    )]
    IrsaRoleTakesPrecedence {
        service_account: String,
        irsa_role: String,
        pod_identity_role: String,
    },

    #[error("{}", issuer_mismatch(api_server, in_use, *from, cluster, region))]
    IssuerMismatch {
        /// The issuer the API server signs ServiceAccount tokens with.
        api_server: String,
        /// The issuer roles would trust.
        in_use: String,
        from: IssuerSource,
        cluster: String,
        region: String,
    },

    #[error("{}", agent_not_ready(cluster, service_account, problem))]
    PodIdentityAgentNotReady {
        cluster: String,
        service_account: String,
        problem: AgentProblem,
    },
}

/// Why a role trusting `in_use` would refuse this cluster's tokens, and the
/// fix for where `in_use` came from.
fn issuer_mismatch(
    api_server: &str,
    in_use: &str,
    source: IssuerSource,
    cluster: &str,
    region: &str,
) -> String {
    let consequence = format!(
        "the API server signs ServiceAccount tokens with issuer {api_server}, so a role trusting \
         {in_use} would refuse every pod's token (\"InvalidIdentityToken\"); no role was written"
    );
    match source {
        IssuerSource::Eks => format!(
            "EKS cluster {cluster} in {region} reports OIDC issuer {in_use}, but {consequence}. The \
             operator runs in another cluster than the one --cluster-name and the region name: \
             point them at this cluster (EKS is asked again shortly)"
        ),
        IssuerSource::Configured => format!(
            "the operator's --oidc-issuer is {in_use}, but {consequence}. Set --oidc-issuer to \
             {api_server} (on EKS, leave it empty to read the issuer from DescribeCluster), or \
             start the API server with --service-account-issuer={in_use}"
        ),
    }
}

/// What is wrong with the agent and what to do, in the words of the tools a
/// platform engineer would use to fix it.
fn agent_not_ready(cluster: &str, service_account: &str, problem: &AgentProblem) -> String {
    let consequence = format!(
        "pods of ServiceAccount {service_account} get no credentials from the association (it is \
         in place) until the agent runs"
    );
    // EKS Auto Mode runs the agent itself, without the add-on.
    let self_managed = "if the agent runs without the add-on (EKS Auto Mode, or a DaemonSet of \
                        your own), start the operator with --pod-identity-agent=self-managed";
    match problem {
        AgentProblem::Absent => format!(
            "the EKS Pod Identity Agent add-on ({AGENT_ADDON}) is not installed in cluster \
             {cluster}: {consequence}. Install it with `aws eks create-addon --cluster-name \
             {cluster} --addon-name {AGENT_ADDON}`; {self_managed}"
        ),
        AgentProblem::NotActive { status } => format!(
            "the EKS Pod Identity Agent add-on ({AGENT_ADDON}) of cluster {cluster} is {status}, \
             not ACTIVE: {consequence}. See why with `aws eks describe-addon --cluster-name \
             {cluster} --addon-name {AGENT_ADDON}` (its health issues)"
        ),
        AgentProblem::Unreadable { error } => format!(
            "whether the EKS Pod Identity Agent runs in cluster {cluster} is unknown ({error}), \
             so this binding cannot be vouched for: without the agent {consequence}. Grant the \
             operator eks:DescribeAddon on its add-on {AGENT_ADDON} (see its --print-aws-policy); \
             {self_managed}"
        ),
    }
}

impl Refusal {
    /// The `Ready` condition's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::InvalidSpec(_) => reason::INVALID_SPEC,
            Refusal::InvalidPolicy { .. } => reason::INVALID_POLICY,
            Refusal::GuardrailViolation { .. } => reason::GUARDRAIL_VIOLATION,
            Refusal::RoleNotOwned(_) => reason::ROLE_NOT_OWNED,
            Refusal::OidcProviderNotFound { .. } => reason::OIDC_PROVIDER_NOT_FOUND,
            Refusal::AudienceNotAllowed { .. } => reason::AUDIENCE_NOT_ALLOWED,
            Refusal::ServiceAccountAnnotationMismatch { .. } => {
                reason::SERVICE_ACCOUNT_ANNOTATION_MISMATCH
            }
            Refusal::ServiceAccountAudienceMismatch { .. } => {
                reason::SERVICE_ACCOUNT_AUDIENCE_MISMATCH
            }
            Refusal::ServiceAccountAnnotationTaken { .. } => {
                reason::SERVICE_ACCOUNT_ANNOTATION_MISMATCH
            }
            Refusal::ServiceAccountConflict { .. } => reason::SERVICE_ACCOUNT_CONFLICT,
            Refusal::ServiceAccountNotFound { .. } => reason::SERVICE_ACCOUNT_NOT_FOUND,
            Refusal::RoleNotFound { .. } => reason::ROLE_NOT_FOUND,
            Refusal::BorrowedRole { .. } => reason::BORROWED_ROLE,
            Refusal::RoleDoesNotTrustPodIdentity { .. } => reason::ROLE_DOES_NOT_TRUST_POD_IDENTITY,
            Refusal::RoleDoesNotTrustServiceAccount { .. } => {
                reason::ROLE_DOES_NOT_TRUST_SERVICE_ACCOUNT
            }
            Refusal::AdoptionRefused { .. } => reason::ADOPTION_REFUSED,
            Refusal::PodsNeedRestart { .. } => reason::PODS_NEED_RESTART,
            Refusal::AssociationConflict(_) => reason::ASSOCIATION_CONFLICT,
            Refusal::WaitingForPropagation { .. } | Refusal::IamCatchingUp { .. } => {
                reason::WAITING_FOR_PROPAGATION
            }
            Refusal::ClusterNotFound { .. } => reason::CLUSTER_NOT_FOUND,
            Refusal::IrsaRoleTakesPrecedence { .. } => reason::IRSA_ROLE_TAKES_PRECEDENCE,
            Refusal::PodIdentityAgentNotReady { .. } => reason::POD_IDENTITY_AGENT_NOT_READY,
            Refusal::IssuerMismatch { .. } => reason::SERVICE_ACCOUNT_ISSUER_MISMATCH,
        }
    }

    /// A static label for metrics; never formatted from the content.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Refusal::InvalidSpec(_) => "invalid_spec",
            Refusal::InvalidPolicy { .. } => "invalid_policy",
            Refusal::GuardrailViolation { .. } => "guardrail_violation",
            Refusal::RoleNotOwned(_) => "role_not_owned",
            Refusal::OidcProviderNotFound { .. } => "oidc_provider_not_found",
            Refusal::AudienceNotAllowed { .. } => "audience_not_allowed",
            Refusal::ServiceAccountAnnotationMismatch { .. } => {
                "service_account_annotation_mismatch"
            }
            Refusal::ServiceAccountAudienceMismatch { .. } => "service_account_audience_mismatch",
            Refusal::ServiceAccountAnnotationTaken { .. } => "service_account_annotation_taken",
            Refusal::ServiceAccountConflict { .. } => "service_account_conflict",
            Refusal::ServiceAccountNotFound { .. } => "service_account_not_found",
            Refusal::RoleNotFound { .. } => "role_not_found",
            Refusal::BorrowedRole { .. } => "borrowed_role",
            Refusal::RoleDoesNotTrustPodIdentity { .. } => "role_does_not_trust_pod_identity",
            Refusal::RoleDoesNotTrustServiceAccount { .. } => "role_does_not_trust_service_account",
            Refusal::AdoptionRefused { .. } => "adoption_refused",
            Refusal::PodsNeedRestart { .. } => "pods_need_restart",
            Refusal::AssociationConflict(_) => "association_conflict",
            Refusal::WaitingForPropagation { .. } => "waiting_for_propagation",
            Refusal::IamCatchingUp { .. } => "iam_catching_up",
            Refusal::ClusterNotFound { .. } => "cluster_not_found",
            Refusal::IrsaRoleTakesPrecedence { .. } => "irsa_role_takes_precedence",
            Refusal::PodIdentityAgentNotReady { .. } => "pod_identity_agent_not_ready",
            Refusal::IssuerMismatch { .. } => "service_account_issuer_mismatch",
        }
    }

    /// Waiting is not failing: these clear by themselves, so they are told
    /// as Normal Events, not Warnings.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            Refusal::WaitingForPropagation { .. }
                | Refusal::IamCatchingUp { .. }
                | Refusal::ServiceAccountNotFound { .. }
        )
    }

    /// When to look again.
    pub fn retry(&self) -> Retry {
        match self {
            Refusal::OidcProviderNotFound { .. }
            | Refusal::AudienceNotAllowed { .. }
            | Refusal::ServiceAccountNotFound { .. }
            | Refusal::ServiceAccountAnnotationMismatch { .. }
            | Refusal::ServiceAccountAudienceMismatch { .. }
            | Refusal::ServiceAccountAnnotationTaken { .. }
            | Refusal::ServiceAccountConflict { .. }
            | Refusal::RoleNotFound { .. }
            | Refusal::RoleDoesNotTrustPodIdentity { .. }
            | Refusal::RoleDoesNotTrustServiceAccount { .. }
            | Refusal::AdoptionRefused { .. }
            | Refusal::PodsNeedRestart { .. }
            | Refusal::AssociationConflict(_)
            | Refusal::PodIdentityAgentNotReady { .. } => Retry::Soon(WAITING_REQUEUE),
            // EKS is read again as reconciles go; a flag needs a restart.
            Refusal::IssuerMismatch { from, .. } => match from {
                IssuerSource::Eks => Retry::Soon(WAITING_REQUEUE),
                IssuerSource::Configured => Retry::Terminal,
            },
            Refusal::WaitingForPropagation { .. } | Refusal::IamCatchingUp { .. } => {
                Retry::Soon(PROPAGATION_REQUEUE)
            }
            Refusal::InvalidSpec(_)
            | Refusal::InvalidPolicy { .. }
            | Refusal::GuardrailViolation { .. }
            | Refusal::BorrowedRole { .. }
            | Refusal::RoleNotOwned(_)
            | Refusal::ClusterNotFound { .. }
            | Refusal::IrsaRoleTakesPrecedence { .. } => Retry::Terminal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_classic_aws_wording_and_the_fix() {
        let e = Refusal::OidcProviderNotFound {
            issuer: "https://oidc.example/id/1".into(),
            provider_arn: "arn:aws:iam::1:oidc-provider/oidc.example/id/1".into(),
            audience: "sts.amazonaws.com".into(),
            cluster: "prod".into(),
            not_made: String::new(),
        };
        assert!(
            e.to_string()
                .contains("No OpenIDConnect provider found in your account")
        );
        assert!(e.to_string().contains("associate-iam-oidc-provider"));
        let e = Refusal::AudienceNotAllowed {
            provider_arn: "p".into(),
            audience: "sts.amazonaws.com".into(),
            allowed: vec!["sts.amazon.com".into()],
            not_added: String::new(),
        };
        assert!(e.to_string().contains("Incorrect token audience"));
        assert!(e.to_string().contains("sts.amazon.com"));
        assert_eq!(e.retry(), Retry::Soon(WAITING_REQUEUE));
        let e = Refusal::ServiceAccountAudienceMismatch {
            service_account: "web".into(),
            found: "sts.amazon.com".into(),
            expected: "sts.amazonaws.com".into(),
        };
        assert!(e.to_string().contains("Incorrect token audience"));
        assert_eq!(e.reason(), reason::SERVICE_ACCOUNT_AUDIENCE_MISMATCH);
    }

    #[test]
    fn an_issuer_mismatch_names_both_issuers_and_the_fix_for_its_source() {
        let mismatch = |source| Refusal::IssuerMismatch {
            api_server: "https://oidc.example/id/NEW".into(),
            in_use: "https://oidc.example/id/OLD".into(),
            from: source,
            cluster: "prod".into(),
            region: "eu-west-1".into(),
        };
        let from_eks = mismatch(IssuerSource::Eks);
        let configured = mismatch(IssuerSource::Configured);
        for refusal in [&from_eks, &configured] {
            let message = refusal.to_string();
            for words in [
                "signs ServiceAccount tokens with issuer https://oidc.example/id/NEW",
                "trusting https://oidc.example/id/OLD",
                "InvalidIdentityToken",
                "no role was written",
            ] {
                assert!(message.contains(words), "{words:?} not in {message}");
            }
            assert_eq!(refusal.reason(), reason::SERVICE_ACCOUNT_ISSUER_MISMATCH);
            assert!(!refusal.is_waiting(), "a Warning: a person must act");
        }
        let message = from_eks.to_string();
        assert!(
            message.contains("EKS cluster prod in eu-west-1") && message.contains("--cluster-name")
        );
        assert_eq!(from_eks.retry(), Retry::Soon(WAITING_REQUEUE));
        let message = configured.to_string();
        assert!(message.contains("Set --oidc-issuer to https://oidc.example/id/NEW"));
        assert_eq!(configured.retry(), Retry::Terminal);
    }

    #[test]
    fn only_states_that_clear_by_themselves_are_waiting() {
        let propagation = Refusal::WaitingForPropagation {
            role_arn: "r".into(),
            detail: "d".into(),
        };
        assert!(propagation.is_waiting());
        assert_eq!(propagation.retry(), Retry::Soon(PROPAGATION_REQUEUE));
        assert!(
            Refusal::ServiceAccountNotFound {
                service_account: "a".into(),
                role_arn: "r".into()
            }
            .is_waiting()
        );
        assert!(!Refusal::InvalidSpec(InvalidSpec(vec!["x".into()])).is_waiting());
        assert_eq!(
            Refusal::InvalidSpec(InvalidSpec(vec![])).retry(),
            Retry::Terminal
        );
    }

    #[test]
    fn a_missing_or_unhealthy_agent_names_the_fix_and_is_looked_at_again_soon() {
        let missing = Refusal::PodIdentityAgentNotReady {
            cluster: "prod".into(),
            service_account: "app".into(),
            problem: AgentProblem::Absent,
        };
        let text = missing.to_string();
        assert!(text.contains("not installed in cluster prod"), "{text}");
        assert!(
            text.contains(
                "aws eks create-addon --cluster-name prod --addon-name eks-pod-identity-agent"
            ),
            "{text}"
        );
        assert!(text.contains("--pod-identity-agent=self-managed"), "{text}");
        assert!(text.contains("ServiceAccount app"), "{text}");
        assert_eq!(missing.reason(), "PodIdentityAgentNotReady");
        assert_eq!(missing.retry(), Retry::Soon(WAITING_REQUEUE));
        assert!(!missing.is_waiting(), "only a person installs the add-on");

        let degraded = Refusal::PodIdentityAgentNotReady {
            cluster: "prod".into(),
            service_account: "app".into(),
            problem: AgentProblem::NotActive {
                status: "DEGRADED".into(),
            },
        };
        let text = degraded.to_string();
        assert!(text.contains("is DEGRADED, not ACTIVE"), "{text}");
        assert!(text.contains("aws eks describe-addon"), "{text}");
        assert_eq!(degraded.reason(), "PodIdentityAgentNotReady");

        let unreadable = Refusal::PodIdentityAgentNotReady {
            cluster: "prod".into(),
            service_account: "app".into(),
            problem: AgentProblem::Unreadable {
                error: "DescribeAddon: AccessDeniedException".into(),
            },
        };
        let text = unreadable.to_string();
        assert!(text.contains("AccessDeniedException"), "{text}");
        assert!(text.contains("eks:DescribeAddon"), "{text}");
        assert!(text.contains("EKS Auto Mode"), "{text}");
    }
}
