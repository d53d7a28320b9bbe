//! The operator binary: reads configuration, discovers what it can from AWS,
//! and runs the controllers. Wiring only.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::core::PartialObjectMeta;
use tracing_subscriber::EnvFilter;

use iam_operator::api::{IamServiceAccount, PodIdentityBinding};
use iam_operator::aws::{Eks, Iam, identity};
use iam_operator::config::{AgentSource, Args, LogFormat, Settings, partition_for_region};
use iam_operator::controller::backoff::{Schedule, TERMINAL_JITTER};
use iam_operator::controller::{
    Context, api_server_issuer, guardrails_file, initial_state, lifecycle,
};
use iam_operator::health::{self, Readiness};
use iam_operator::metrics::Metrics;
use iam_operator::policy::guardrails::Guardrails;
use iam_operator::policy::issuer::IssuerSource;
use iam_operator::policy::operator_policy::{self, OperatorPolicyInputs};

// Why jemalloc: Cargo.toml, beside the dependency.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    if args.print_aws_policy {
        // Before anything starts: printing must not need AWS or a cluster.
        return match aws_policy(&args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("--print-aws-policy: {message}");
                ExitCode::FAILURE
            }
        };
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The operator's own AWS policy for `args`, as `--print-aws-policy` prints
/// it. The region is read from the environment as the AWS SDK would, but
/// without the SDK's other sources (profiles, instance metadata), which could
/// mean a network call.
fn aws_policy(args: &Args) -> Result<String, String> {
    args.validate().map_err(|e| format!("configuration: {e}"))?;
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|r| !r.is_empty()))
        .ok_or("no AWS region: set AWS_REGION")?;
    let account_id = args.aws_account_id.clone().ok_or(
        "no AWS account: give --aws-account-id (or IAM_OPERATOR_AWS_ACCOUNT_ID); \
         the operator would ask STS, which printing does not",
    )?;
    let mut inputs = OperatorPolicyInputs::new(
        partition_for_region(&region),
        &account_id,
        &region,
        &args.cluster_name,
    );
    // As the reconciles see them (Settings::defaults): the guardrails' path,
    // prefix and boundary, then the flags'; and the existing roles the
    // guardrails let bindings name, which the operator must pass to EKS.
    let guardrails = match &args.guardrails_file {
        Some(path) => guardrails_file::load(path)?.1,
        None => Guardrails::default(),
    };
    let roles = guardrails.roles();
    inputs.role_path = args
        .role_path
        .clone()
        .or_else(|| roles.path.clone())
        .unwrap_or_else(|| "/".to_string());
    inputs.role_name_prefix = guardrails.generated_name_prefix(&args.role_name_prefix);
    inputs.permissions_boundary = roles
        .permissions_boundary
        .clone()
        .or_else(|| args.permissions_boundary.clone());
    inputs.passable_role_patterns = guardrails.granted_role_arns();
    inputs.reads_agent_addon = args.pod_identity_agent == AgentSource::Addon;
    inputs.manages_oidc_provider = args.manage_oidc_provider;
    inputs.adopts_roles = guardrails.adoption_granted();
    inputs.configured_issuer = args.oidc_issuer.clone();
    operator_policy::render_pretty(&inputs).map_err(|e| e.to_string())
}

async fn run(args: Args) -> Result<(), String> {
    args.validate().map_err(|e| format!("configuration: {e}"))?;
    let readiness = Readiness::new(2);
    let metrics = Metrics::new();
    tokio::spawn({
        let readiness = readiness.clone();
        let address = args.metrics_address;
        let metrics = metrics.clone();
        async move {
            if let Err(e) = health::serve(address, readiness, metrics).await {
                tracing::error!(error = %e, "health endpoints stopped");
            }
        }
    });

    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_retry())
        .timeout_config(aws_timeouts())
        .load()
        .await;
    let region = aws
        .region()
        .map(|r| r.to_string())
        .ok_or("no AWS region: set AWS_REGION")?;
    let account_id = match args.aws_account_id.clone() {
        Some(id) => id,
        None => identity::caller_account(&aws)
            .await
            .map_err(|e| format!("could not learn the AWS account (set --aws-account-id): {e}"))?,
    };
    let issuer = match args.oidc_issuer.clone() {
        Some(issuer) => Some(issuer),
        None => match identity::cluster_issuer(&aws, &args.cluster_name).await {
            Ok(issuer) => Some(issuer),
            // Reported on every object as ClusterNotFound, where people look,
            // rather than as a restart loop.
            Err(e) if e.is_not_found() => {
                tracing::error!(
                    "EKS cluster {} not found in {region} ({e}); every object will report \
                     ClusterNotFound. Check --cluster-name and the region, or give --oidc-issuer \
                     for a cluster that is not EKS",
                    args.cluster_name
                );
                None
            }
            Err(e) => {
                return Err(format!(
                    "could not read the OIDC issuer of EKS cluster {} in {region} ({e}); check \
                     --cluster-name and the region, or give --oidc-issuer for a cluster that is \
                     not EKS",
                    args.cluster_name
                ));
            }
        },
    };
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("Kubernetes client: {e}"))?;
    let api_server_issuer = match api_server_issuer::read(&client).await {
        Ok(issuer) => Some(issuer),
        Err(why) => {
            tracing::warn!(
                "the API server's issuer is unknown, so roles are not checked to trust the issuer \
                 that signs the cluster's tokens: {why}"
            );
            None
        }
    };
    let settings = Settings {
        cluster_name: args.cluster_name.clone(),
        issuer,
        issuer_source: match &args.oidc_issuer {
            Some(_) => IssuerSource::Configured,
            None => IssuerSource::Eks,
        },
        api_server_issuer,
        manage_oidc_provider: args.manage_oidc_provider,
        oidc_provider_audiences: args.oidc_provider_audiences.clone(),
        restart_stale_pods: args.restart_stale_pods,
        account_id,
        partition: partition_for_region(&region).to_string(),
        region: region.clone(),
        role_name_prefix: args.role_name_prefix.clone(),
        forced_role_path: args.role_path.clone(),
        forced_permissions_boundary: args.permissions_boundary.clone(),
        resync: Duration::from_secs(args.resync_seconds),
        terminal_retry: Schedule {
            base: Duration::from_secs(args.terminal_retry_seconds),
            cap: Duration::from_secs(args.terminal_retry_cap_seconds),
            jitter: TERMINAL_JITTER,
        },
        max_concurrent_reconciles: args.max_concurrent_reconciles,
        watch_namespaces: args.watch_namespaces.clone(),
        pod_identity_agent: args.pod_identity_agent,
    };
    tracing::info!(cluster = %settings.cluster_name, %region, account = %settings.account_id, issuer = ?settings.issuer, api_server_issuer = ?settings.api_server_issuer, "starting");

    let (isa_api, pib_api, sa_api) = match args.watch_namespaces.as_slice() {
        [namespace] => (
            Api::<IamServiceAccount>::namespaced(client.clone(), namespace),
            Api::<PodIdentityBinding>::namespaced(client.clone(), namespace),
            Api::<PartialObjectMeta<ServiceAccount>>::namespaced(client.clone(), namespace),
        ),
        _ => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };

    let guardrails = guardrails_file::start(args.guardrails_file.clone())?;
    let ctx = Arc::new(Context::new(
        client,
        Iam::new(&aws, &metrics),
        Eks::new(&aws, &metrics),
        settings,
        guardrails,
        metrics,
    ));
    // Standbys stop here: everything above only reads, and doing it before
    // the election means a misconfigured replica fails at its start, not at
    // a takeover.
    use iam_operator::leader;
    let lease =
        leader::LeaseSettings::from_args(&args, |name| std::env::var(name).ok(), leader::hostname)?;
    let mut leadership = match lease {
        Some(lease) => Some(leader::acquire(ctx.client.clone(), lease, &readiness).await?),
        None => None,
    };
    let controllers = async {
        // The API server's answer holds for every watch: asked once.
        let initial_state = initial_state::watcher_config(&sa_api).await;
        tokio::join!(
            lifecycle::run(
                ctx.clone(),
                isa_api,
                sa_api.clone(),
                initial_state.clone(),
                readiness.clone()
            ),
            lifecycle::run(ctx.clone(), pib_api, sa_api, initial_state, readiness),
        )
    };
    let lost = async {
        match leadership.as_mut() {
            Some(leadership) => leadership.lost().await,
            None => std::future::pending().await,
        }
    };
    // Losing the lease drops the controllers mid-flight and ends the
    // process: another replica may already be writing, and a restart comes
    // back as a standby.
    tokio::select! {
        _ = controllers => {}
        reason = lost => return Err(format!("{reason}; stopping at once")),
    }
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Adaptive retry: the SDK also slows its own request rate once AWS
/// throttles, so many objects reconciled at once back off together instead
/// of each retrying on its own schedule.
fn aws_retry() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::adaptive().with_max_attempts(5)
}

/// Bounded waits: one stuck connection must not hold a reconcile (and its
/// slot) for the SDK's default of no operation timeout.
fn aws_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build()
}
