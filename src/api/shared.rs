//! Spec fragments both kinds share: the IAM role to create, the policies to
//! attach, and what happens to them on deletion.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

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
    pub inline: BTreeMap<String, InlineDocument>,

    /// ARNs of roles, usually in other accounts, the pods may assume with
    /// this role's credentials (role chaining). The operator grants exactly
    /// these `sts:AssumeRole` (and `sts:TagSession` for Pod Identity's
    /// session tags) in an inline policy of its own,
    /// `iam-operator-assume-roles`; the guardrails decide which ARNs a
    /// namespace may name. Each role's trust must admit this role too
    /// (with `sts:TagSession` for Pod Identity). Exact ARNs, no wildcards;
    /// not beside a PodIdentityBinding's `targetRoleArn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 20, "x-kubernetes-list-type" = "set"))]
    pub assume_roles: Vec<String>,
}

/// One inline policy document, kept as compact JSON text. The cache holds
/// every object for the operator's whole life, and a parsed tree of a small
/// document took 2 KB (a map node of eleven slots per JSON object) where
/// its text takes a tenth of that; the policy code parses a document only
/// while it judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineDocument(Box<str>);

impl InlineDocument {
    /// The document as a JSON value, as the user wrote it.
    pub fn to_value(&self) -> Value {
        // The text was written from a `Value` by `From` below, the only way
        // to make one, so it always reads back.
        serde_json::from_str(&self.0).expect("an inline document is JSON written by serde_json")
    }
}

impl From<Value> for InlineDocument {
    fn from(value: Value) -> Self {
        Self(value.to_string().into_boxed_str())
    }
}

impl Serialize for InlineDocument {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for InlineDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from)
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec_from_yaml(text: &str) -> PolicySpec {
        serde_yaml::from_str(text).expect("a policy spec")
    }

    #[test]
    fn an_inline_document_reads_back_as_written() {
        let written = json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": "*", "Condition": {"NumericLessThan": {"s3:max-keys": 10.5}}}]
        });
        let spec: PolicySpec =
            serde_json::from_value(json!({"inline": {"read": written.clone()}})).expect("spec");
        assert_eq!(spec.inline["read"].to_value(), written);
        assert_eq!(
            serde_json::to_value(&spec).expect("serialises"),
            json!({"inline": {"read": written}})
        );
    }

    #[test]
    fn the_same_document_in_another_key_order_or_layout_is_equal() {
        let a = spec_from_yaml(
            "inline:\n  p:\n    Version: '2012-10-17'\n    Statement: [{Effect: Allow, Action: 's3:*', Resource: '*'}]\n",
        );
        let b = spec_from_yaml(
            "inline: {p: {Statement: [{Resource: '*', Action: 's3:*', Effect: Allow}], Version: '2012-10-17'}}\n",
        );
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_string(&a.inline["p"]).expect("serialises"),
            r#"{"Statement":[{"Action":"s3:*","Effect":"Allow","Resource":"*"}],"Version":"2012-10-17"}"#
        );
        let other = spec_from_yaml("inline: {p: {Version: '2012-10-17', Statement: []}}\n");
        assert_ne!(a, other);
    }

    #[test]
    fn a_document_that_is_not_an_object_is_kept_for_the_grammar_to_refuse() {
        let spec = spec_from_yaml("inline: {p: just text, q: [1, 2]}\n");
        assert_eq!(spec.inline["p"].to_value(), json!("just text"));
        assert_eq!(spec.inline["q"].to_value(), json!([1, 2]));
    }
}
