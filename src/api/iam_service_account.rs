//! `IamServiceAccount`: an IAM role for one Kubernetes ServiceAccount through
//! IRSA (the cluster's OIDC issuer federated in the role's trust policy).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::conditions::conditions_schema;
use super::shared::{DeletionPolicy, PolicySpec, RoleSpec};

pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";

/// An AWS IAM role that pods running as one ServiceAccount assume through
/// IAM Roles for Service Accounts (IRSA). The operator creates the role with a
/// trust policy for exactly `system:serviceaccount:<namespace>:<serviceAccount>`,
/// attaches the policies, and annotates the ServiceAccount with the role ARN.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "iam-operator.io",
    version = "v1alpha1",
    kind = "IamServiceAccount",
    namespaced,
    doc = "An IAM role for a ServiceAccount through IRSA, managed by iam-operator",
    shortname = "isa",
    category = "iam",
    status = "IamServiceAccountStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".status.roleArn"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"ServiceAccount","type":"string","jsonPath":".status.serviceAccount","priority":1}"#
)]
#[x_kube(validation = Rule::new("!has(self.adoptRole) || !self.adoptRole || has(self.role.name)").message("adoptRole takes over the role named by role.name: set role.name"))]
#[x_kube(validation = Rule::new("!has(self.adoptRole) || !self.adoptRole || !has(self.roleArn)").message("adoptRole takes over a role to manage it; roleArn uses one without managing it: set only one"))]
// No admission rule keeps roleArn apart from role and policies: the API
// server fills both in as `{}`, and an empty one asks for nothing. Desire
// refuses a roleArn beside a non-empty one, with the reason in status.
#[serde(rename_all = "camelCase")]
pub struct IamServiceAccountSpec {
    /// The ServiceAccount, in this object's namespace, whose pods get the role.
    #[serde(default)]
    pub service_account: ServiceAccountRef,

    /// Audience of the projected token, and the client ID the account's IAM
    /// OIDC provider must list. Default `sts.amazonaws.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub audience: Option<String>,

    /// Sets `eks.amazonaws.com/sts-regional-endpoints`: pods call their
    /// region's STS endpoint instead of the global one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_regional_endpoints: Option<bool>,

    /// Sets `eks.amazonaws.com/token-expiration`: lifetime of the projected
    /// token, 3600 to 86400 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 3600, max = 86400))]
    pub token_expiration_seconds: Option<i64>,

    /// The role to create. Leave out (with `policies`) when using `roleArn`.
    #[serde(default)]
    pub role: RoleSpec,

    /// An existing role of the cluster's account for the ServiceAccount,
    /// instead of one the operator creates (as `eksctl create
    /// iamserviceaccount --attach-role-arn` does). The operator only reads
    /// it: it checks that the role's trust admits this ServiceAccount and
    /// audience (and names the statement to add when it does not), then
    /// annotates the ServiceAccount. It never changes or deletes the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$"))]
    pub role_arn: Option<String>,

    /// Take over the role named `role.name` when someone else made it
    /// (eksctl, Terraform) instead of refusing it as not ours. Only when
    /// its trust admits exactly this ServiceAccount and the guardrails
    /// grant the namespace `adoptRoles`. The operator then owns it as if it
    /// had made it: its trust, tags and policies become exactly this
    /// object's (policies not listed here are removed), and deleting the
    /// object deletes the role unless `deletionPolicy: Retain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt_role: Option<bool>,

    /// Policies the created role gets.
    #[serde(default)]
    pub policies: PolicySpec,

    /// Restart the Deployments, StatefulSets and DaemonSets whose pods
    /// started before the ServiceAccount was bound (as `kubectl rollout
    /// restart` does), once per binding. Needs the operator to be allowed
    /// to (`--restart-stale-pods`, chart `restartStalePods`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_stale_pods: Option<bool>,

    /// `Delete` (default) removes the role when this object is deleted;
    /// `Retain` keeps it in AWS.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Which ServiceAccount gets the role.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.name) ? self.name : '') == (has(oldSelf.name) ? oldSelf.name : '')").message("serviceAccount.name is immutable: create a new IamServiceAccount instead"))]
pub struct ServiceAccountRef {
    /// ServiceAccount name. Default: this object's name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: Option<String>,

    /// Create the ServiceAccount when it does not exist. A created one is
    /// owned by this object and removed with it.
    #[serde(default)]
    pub create: bool,
}

/// What the operator did, or exactly why it could not.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
// An object the operator has not looked at yet reads as observedGeneration 0
// (the API server fills the default in on every read), behind
// metadata.generation: kstatus and Flux then see it in progress, not done.
#[schemars(extend("default" = {"observedGeneration": 0}))]
pub struct IamServiceAccountStatus {
    /// ARN of the role pods assume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    /// The IAM OIDC provider the trust policy federates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_provider_arn: Option<String>,
    /// Name of the annotated ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// What the last successful sync was asked to make (spec, guardrails,
    /// flags, operator version), as a fingerprint: after a restart an
    /// object whose fingerprint still matches is not read from AWS at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_fingerprint: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

impl IamServiceAccount {
    /// The ServiceAccount this object is about.
    pub fn service_account_name(&self) -> String {
        self.spec
            .service_account
            .name
            .clone()
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }

    pub fn audience(&self) -> &str {
        self.spec.audience.as_deref().unwrap_or(DEFAULT_AUDIENCE)
    }
}
