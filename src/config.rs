//! Operator configuration: flags with environment twins, checked once at start
//! and then held immutable in the controller context.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::controller::backoff::Schedule;
use crate::policy::desire::Defaults;
use crate::policy::guardrails::Guardrails;
use crate::policy::issuer::IssuerSource;
use crate::policy::{ValidationError, validate_permissions_boundary_arn, validate_role_path};

/// Reconciles AWS IAM roles for IRSA and EKS Pod Identity from Kubernetes
/// custom resources. AWS credentials, region and endpoint come from the
/// standard AWS SDK configuration (`AWS_REGION`, `AWS_ENDPOINT_URL`, ...).
#[derive(Parser, Debug, Clone)]
#[command(name = "iam-operator", version, about)]
pub struct Args {
    /// EKS cluster name: used in role names, ownership tags and Pod Identity
    /// associations, and to discover the OIDC issuer.
    #[arg(long, env = "IAM_OPERATOR_CLUSTER_NAME")]
    pub cluster_name: String,

    /// The cluster's service-account issuer URL. When empty, read from EKS
    /// `DescribeCluster` (give it for clusters that are not EKS).
    #[arg(long, env = "IAM_OPERATOR_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// AWS account ID. When empty, read from STS `GetCallerIdentity`.
    #[arg(long, env = "IAM_OPERATOR_AWS_ACCOUNT_ID")]
    pub aws_account_id: Option<String>,

    /// Prefix of generated role names.
    #[arg(long, env = "IAM_OPERATOR_ROLE_NAME_PREFIX", default_value = "")]
    pub role_name_prefix: String,

    /// IAM path every created role gets, whatever the resource asks for.
    #[arg(long, env = "IAM_OPERATOR_ROLE_PATH")]
    pub role_path: Option<String>,

    /// Managed policy ARN set as permissions boundary on every created role,
    /// whatever the resource asks for.
    #[arg(long, env = "IAM_OPERATOR_PERMISSIONS_BOUNDARY")]
    pub permissions_boundary: Option<String>,

    /// The platform's guardrails (YAML): what specs may ask for, per
    /// namespace. Read again when it changes. Without it the built-in
    /// rules hold (see the README's security model).
    #[arg(long, env = "IAM_OPERATOR_GUARDRAILS_FILE")]
    pub guardrails_file: Option<std::path::PathBuf>,

    /// Reconciles run at once, across both kinds: bounds the AWS calls in
    /// flight after a restart or a large sync.
    #[arg(
        long,
        env = "IAM_OPERATOR_MAX_CONCURRENT_RECONCILES",
        default_value_t = 8
    )]
    pub max_concurrent_reconciles: u16,

    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "IAM_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds between resyncs of an object that is in sync.
    #[arg(long, env = "IAM_OPERATOR_RESYNC_SECONDS", default_value_t = 600)]
    pub resync_seconds: u64,

    /// Seconds before the first retry of an object whose error only a
    /// person can fix (AccessDenied, a malformed policy, a limit, a
    /// guardrail violation); each further wait doubles, up to
    /// --terminal-retry-cap-seconds. A spec change is tried at once.
    #[arg(long, env = "IAM_OPERATOR_TERMINAL_RETRY_SECONDS", default_value_t = 600,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub terminal_retry_seconds: u64,

    /// The longest wait between retries of such an object.
    #[arg(long, env = "IAM_OPERATOR_TERMINAL_RETRY_CAP_SECONDS", default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub terminal_retry_cap_seconds: u64,

    /// Namespaces to watch, comma separated; empty: all namespaces.
    #[arg(long, env = "IAM_OPERATOR_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,

    /// Address of the /healthz, /readyz and /metrics endpoints.
    #[arg(
        long,
        env = "IAM_OPERATOR_METRICS_ADDRESS",
        default_value = "127.0.0.1:8080"
    )]
    pub metrics_address: std::net::SocketAddr,

    /// Run the controllers only while holding a Lease, so that of several
    /// replicas exactly one reconciles and the others stand by. `false`
    /// for a single process that must not touch Leases.
    #[arg(
        long,
        env = "IAM_OPERATOR_LEADER_ELECTION",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub leader_election: bool,

    /// Namespace of the Lease. Default: the `POD_NAMESPACE` environment
    /// variable (the pod's own, from the downward API), else `default`.
    #[arg(long, env = "IAM_OPERATOR_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Name of the Lease; replicas of one deployment share it.
    #[arg(
        long,
        env = "IAM_OPERATOR_LEADER_ELECTION_LEASE_NAME",
        default_value = "iam-operator"
    )]
    pub leader_election_lease_name: String,

    /// Seconds a lease stays valid after its holder's last renewal: how long
    /// a standby waits after the leader dies without releasing it.
    #[arg(
        long,
        env = "IAM_OPERATOR_LEADER_ELECTION_LEASE_DURATION_SECONDS",
        default_value_t = 15,
        value_parser = clap::value_parser!(u64).range(2..=3600)
    )]
    pub leader_election_lease_duration_seconds: u64,

    /// Seconds before expiry at which the leader renews its lease; also the
    /// clock skew between nodes tolerated. Must be below the duration.
    #[arg(
        long,
        env = "IAM_OPERATOR_LEADER_ELECTION_RENEW_GRACE_SECONDS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..=3599)
    )]
    pub leader_election_renew_grace_seconds: u64,

    /// How to know that the EKS Pod Identity Agent runs, without which no
    /// association gives pods credentials: `addon` asks EKS for the
    /// eks-pod-identity-agent add-on; `self-managed` says it runs without
    /// the add-on (EKS Auto Mode, or a DaemonSet of the platform's).
    #[arg(long, env = "IAM_OPERATOR_POD_IDENTITY_AGENT", value_enum, default_value_t = AgentSource::Addon)]
    pub pod_identity_agent: AgentSource,

    /// Create the cluster's IAM OIDC provider when it is missing (tagged as
    /// the cluster's, never deleted), and add an object's audience to one
    /// the operator made; off: a missing provider or audience is reported.
    #[arg(
        long,
        env = "IAM_OPERATOR_MANAGE_OIDC_PROVIDER",
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub manage_oidc_provider: bool,

    /// The audiences `--manage-oidc-provider` may make the provider for or
    /// add to it (comma separated): any other is reported, not added, as
    /// every role trusting the issuer without an audience condition would
    /// accept tokens minted for it.
    #[arg(
        long,
        env = "IAM_OPERATOR_OIDC_PROVIDER_AUDIENCES",
        value_delimiter = ',',
        default_value = "sts.amazonaws.com"
    )]
    pub oidc_provider_audiences: Vec<String>,

    /// Let objects ask (`restartStalePods`) for the workloads of pods that
    /// started before their binding to be restarted; off: such pods are
    /// only named. Needs RBAC to patch Deployments, StatefulSets and
    /// DaemonSets (the chart adds it with `restartStalePods: true`).
    #[arg(
        long,
        env = "IAM_OPERATOR_RESTART_STALE_PODS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub restart_stale_pods: bool,

    /// Print the operator's own least-privilege AWS policy for these flags
    /// (cluster, --aws-account-id, AWS_REGION, role path and prefix,
    /// boundary) and exit, without contacting AWS or Kubernetes.
    #[arg(long, env = "IAM_OPERATOR_PRINT_AWS_POLICY")]
    pub print_aws_policy: bool,
}

/// How the operator learns that the EKS Pod Identity Agent runs.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentSource {
    /// The EKS add-on, asked with `DescribeAddon`.
    Addon,
    /// Running without the add-on (built into EKS Auto Mode, or a DaemonSet
    /// of the platform's), which the add-on API cannot show: the
    /// configuration vouches for it.
    SelfManaged,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What reconciles need from the configuration, with the AWS-discovered parts
/// filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub cluster_name: String,
    /// `None` when it could not be discovered: IRSA objects then report the
    /// missing cluster instead of the operator refusing to start.
    pub issuer: Option<String>,
    pub issuer_source: IssuerSource,
    /// Read from the API server's discovery document at start.
    pub api_server_issuer: Option<String>,
    pub manage_oidc_provider: bool,
    pub oidc_provider_audiences: Vec<String>,
    pub restart_stale_pods: bool,
    pub account_id: String,
    pub partition: String,
    pub region: String,
    pub role_name_prefix: String,
    pub forced_role_path: Option<String>,
    pub forced_permissions_boundary: Option<String>,
    pub resync: Duration,
    /// Retries of errors only a person can fix.
    pub terminal_retry: Schedule,
    pub max_concurrent_reconciles: u16,
    /// Empty: every namespace.
    pub watch_namespaces: Vec<String>,
    pub pod_identity_agent: AgentSource,
}

impl Settings {
    /// What desire takes from the configuration and the guardrails in
    /// force; the guardrails' path and boundary win over the flags'.
    pub fn defaults(&self, guardrails: Arc<Guardrails>) -> Defaults {
        let roles = guardrails.roles();
        Defaults {
            role_name_prefix: guardrails.generated_name_prefix(&self.role_name_prefix),
            default_role_path: roles.path.clone(),
            forced_permissions_boundary: roles
                .permissions_boundary
                .clone()
                .or_else(|| self.forced_permissions_boundary.clone()),
            cluster_name: self.cluster_name.clone(),
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            partition: self.partition.clone(),
            issuer: self.issuer.clone(),
            issuer_source: self.issuer_source,
            api_server_issuer: self.api_server_issuer.clone(),
            manage_oidc_provider: self.manage_oidc_provider,
            oidc_provider_audiences: self.oidc_provider_audiences.clone(),
            restart_stale_pods: self.restart_stale_pods,
            forced_role_path: self.forced_role_path.clone(),
            guardrails,
        }
    }

    pub fn watches(&self, namespace: &str) -> bool {
        self.watch_namespaces.is_empty() || self.watch_namespaces.iter().any(|n| n == namespace)
    }
}

impl Args {
    /// Checks what can be checked before talking to AWS, so a typo fails the
    /// start with a message instead of every reconcile.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(path) = &self.role_path {
            validate_role_path("--role-path", path)?;
        }
        if let Some(boundary) = &self.permissions_boundary {
            validate_permissions_boundary_arn("--permissions-boundary", boundary)?;
        }
        Ok(())
    }
}

/// The AWS partition a region belongs to, which every ARN must name.
pub fn partition_for_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn partitions_follow_region_prefixes() {
        for (region, partition) in [
            ("us-east-1", "aws"),
            ("eu-west-1", "aws"),
            ("cn-north-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
        ] {
            assert_eq!(partition_for_region(region), partition, "{region}");
        }
    }

    #[test]
    fn namespaces_split_on_commas() {
        let args = Args::try_parse_from([
            "iam-operator",
            "--cluster-name",
            "c",
            "--watch-namespaces",
            "a,b",
        ])
        .expect("parses");
        assert_eq!(args.watch_namespaces, ["a", "b"]);
        assert_eq!(args.resync_seconds, 600);
    }

    #[test]
    fn the_agent_is_asked_of_eks_unless_declared_self_managed() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["iam-operator", "--cluster-name", "c"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv)
        };
        assert_eq!(
            parse(&[]).expect("parses").pod_identity_agent,
            AgentSource::Addon
        );
        assert_eq!(
            parse(&["--pod-identity-agent", "self-managed"])
                .expect("parses")
                .pod_identity_agent,
            AgentSource::SelfManaged
        );
        assert!(parse(&["--pod-identity-agent", "daemonset"]).is_err());
    }

    #[test]
    fn empty_namespace_list_watches_everything() {
        let mut settings = Settings {
            cluster_name: "c".into(),
            issuer: Some("https://i".into()),
            issuer_source: IssuerSource::Eks,
            api_server_issuer: None,
            manage_oidc_provider: false,
            oidc_provider_audiences: Vec::new(),
            restart_stale_pods: false,
            account_id: "1".into(),
            partition: "aws".into(),
            region: "us-east-1".into(),
            role_name_prefix: String::new(),
            forced_role_path: None,
            forced_permissions_boundary: None,
            resync: Duration::from_secs(1),
            terminal_retry: Schedule {
                base: Duration::from_secs(600),
                cap: Duration::from_secs(3600),
                jitter: 0.1,
            },
            max_concurrent_reconciles: 8,
            watch_namespaces: Vec::new(),
            pod_identity_agent: AgentSource::Addon,
        };
        assert!(settings.watches("any"));
        settings.watch_namespaces = vec!["a".into(), "b".into()];
        assert!(settings.watches("b"));
        assert!(!settings.watches("c"));
    }

    #[test]
    fn bad_forced_path_is_refused_at_start() {
        let args = Args::try_parse_from([
            "iam-operator",
            "--cluster-name",
            "c",
            "--role-path",
            "no-slashes",
        ])
        .expect("parses");
        assert!(args.validate().is_err());
    }
}
