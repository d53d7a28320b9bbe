//! `PodIdentityBinding`: an IAM role for one ServiceAccount through an EKS Pod
//! Identity association.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::conditions::conditions_schema;
use super::shared::{DeletionPolicy, PolicySpec, RoleSpec};

/// The kind's name, as ownership tags and generated role names use it.
pub const KIND: &str = "PodIdentityBinding";

/// Binds a ServiceAccount to an IAM role through an EKS Pod Identity
/// association. Either the operator creates and owns the role (`role` +
/// `policies`), or it uses an existing one (`roleArn`) and manages only the
/// association.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "iam-operator.io",
    version = "v1alpha1",
    kind = "PodIdentityBinding",
    namespaced,
    doc = "An IAM role for a ServiceAccount through an EKS Pod Identity association, managed by iam-operator",
    shortname = "pib",
    category = "iam",
    status = "PodIdentityBindingStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"ServiceAccount","type":"string","jsonPath":".spec.serviceAccountName"}"#,
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".status.roleArn"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#
)]
#[x_kube(validation = Rule::new("has(self.role) != has(self.roleArn)").message("set exactly one of role (a role the operator creates; `role: {}` for all defaults) or roleArn (an existing role)"))]
#[x_kube(validation = Rule::new("!has(self.roleArn) || !has(self.policies)").message("policies apply only to a role the operator creates; with roleArn, attach policies to that role yourself"))]
#[serde(rename_all = "camelCase")]
pub struct PodIdentityBindingSpec {
    /// The ServiceAccount, in this object's namespace, whose pods get the role.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub service_account_name: String,

    /// The role to create. Leave out (together with `policies`) when using
    /// `roleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleSpec>,

    /// An existing role to associate. The operator never changes or deletes
    /// it; its trust policy must allow `pods.eks.amazonaws.com` to
    /// `sts:AssumeRole` and `sts:TagSession`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$"))]
    pub role_arn: Option<String>,

    /// Policies the created role gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<PolicySpec>,

    /// A role (possibly in another account) that EKS assumes next, with the
    /// credentials of the first role (role chaining for cross-account access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$"))]
    pub target_role_arn: Option<String>,

    /// Do not add the session tags (cluster, namespace, ServiceAccount, pod)
    /// EKS puts on the credentials by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_session_tags: Option<bool>,

    /// Restart the Deployments, StatefulSets and DaemonSets whose pods
    /// started before the ServiceAccount was bound (as `kubectl rollout
    /// restart` does), once per binding. Needs the operator to be allowed
    /// to (`--restart-stale-pods`, chart `restartStalePods`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_stale_pods: Option<bool>,

    /// `Delete` (default) removes the association and the created role when
    /// this object is deleted; `Retain` keeps both.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
// An object the operator has not looked at yet reads as observedGeneration 0
// (the API server fills the default in on every read), behind
// metadata.generation: kstatus and Flux then see it in progress, not done.
#[schemars(extend("default" = {"observedGeneration": 0}))]
pub struct PodIdentityBindingStatus {
    /// ARN of the role pods get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_arn: Option<String>,
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
