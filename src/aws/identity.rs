//! Who and where the operator is: the account (STS) and the cluster's OIDC
//! issuer (EKS), discovered at start when not configured (and the issuer
//! re-read as reconciles go, by `crate::controller::shared_facts`).

use aws_sdk_eks::error::SdkError;

use super::error::AwsError;

/// The caller's AWS account ID.
pub async fn caller_account(config: &aws_config::SdkConfig) -> Result<String, AwsError> {
    let output = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("GetCallerIdentity", e))?;
    Ok(output.account.unwrap_or_default())
}

/// The cluster's OIDC issuer URL from EKS `DescribeCluster`.
pub async fn cluster_issuer(
    config: &aws_config::SdkConfig,
    cluster: &str,
) -> Result<String, AwsError> {
    let output = aws_sdk_eks::Client::new(config)
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .map_err(|e: SdkError<_, _>| AwsError::from_sdk("DescribeCluster", e))?;
    issuer_of(output).ok_or_else(|| AwsError {
        operation: "DescribeCluster",
        kind: super::AwsErrorKind::NotFound,
        code: "NoOIDCIssuer".into(),
        message: format!("EKS cluster {cluster} reports no identity.oidc.issuer"),
    })
}

/// The `identity.oidc.issuer` of a `DescribeCluster` answer.
pub fn issuer_of(
    output: aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput,
) -> Option<String> {
    output
        .cluster
        .and_then(|c| c.identity)
        .and_then(|i| i.oidc)
        .and_then(|o| o.issuer)
        .filter(|issuer| !issuer.is_empty())
}
