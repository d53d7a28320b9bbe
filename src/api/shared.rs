//! Spec fragments both kinds share: the IAM role to create, the policies to
//! attach, and what happens to them on deletion.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The IAM role the operator creates and owns.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoleSpec {
    /// Role name. Empty: a deterministic name from the operator's prefix, the
    /// cluster, the namespace and this object's name (at most 64 characters).
    /// Changing it creates a new role and removes the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), regex(pattern = r"^[\w+=,.@-]*$"))]
    pub name: Option<String>,

    /// IAM path of the role, `/` or `/segment/.../`. The operator's
    /// configuration may enforce a path, which then wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^/([\x21-\x7E]*/)?$"))]
    pub path: Option<String>,

    /// Description stored on the role (at most 1000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub description: Option<String>,

    /// Longest session, in seconds, a token exchange for this role may ask
    /// for: 3600 (the default) to 43200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 3600, max = 43200))]
    pub max_session_duration_seconds: Option<i32>,

    /// ARN of a managed policy used as the role's permissions boundary. The
    /// operator's configuration may enforce one, which then wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,

    /// Tags put on the role, next to the operator's ownership tags (whose
    /// keys start with `iam-operator.io/`). Keys starting with `aws:` are
    /// reserved by AWS.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, !k.lowerAscii().startsWith('aws:') && !k.lowerAscii().startsWith('iam-operator.io/'))").message("tag keys starting with aws: or iam-operator.io/ are reserved"))]
    #[schemars(extend("maxProperties" = 45))]
    pub tags: BTreeMap<String, String>,
}

/// Permissions granted to the role.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// ARNs of managed policies to attach (AWS managed or customer managed).
    /// The role ends up with exactly these attached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 20, "x-kubernetes-list-type" = "set"))]
    pub managed: Vec<String>,

    /// Inline policies by name: each value is an IAM policy document, written
    /// as YAML/JSON (an object with `Version` and `Statement`). The role ends
    /// up with exactly these inline policies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "inline_policies_schema")]
    pub inline: BTreeMap<String, serde_json::Value>,
}

/// A policy document is free-form JSON; the apiserver must keep every field
/// of it rather than prune what the schema does not name.
fn inline_policies_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        }
    })
}

/// What happens in AWS when the Kubernetes object is deleted.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Remove what the operator created (the default).
    #[default]
    Delete,
    /// Keep the role, its policies and the association in AWS.
    Retain,
}

impl DeletionPolicy {
    pub fn retains(self) -> bool {
        self == DeletionPolicy::Retain
    }
}
