//! IAM policy documents in canonical form. This module owns parsing (raw JSON
//! or the URL-encoded JSON that `GetRole`/`GetRolePolicy` return),
//! canonicalisation, semantic equality and IAM's whitespace-free size measure.
//!
//! Pure: no I/O, no async. Comparing canonical forms instead of raw strings is
//! what keeps a no-op resync from planning writes: IAM hands documents back
//! URL-encoded, with keys and list elements in an order of its choosing.

use std::cmp::Ordering;
use std::fmt;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

/// The policy language version IAM assumes when a document has no `Version`.
pub const DEFAULT_POLICY_VERSION: &str = "2008-10-17";

/// The current policy language version; documents the operator generates use it.
pub const CURRENT_POLICY_VERSION: &str = "2012-10-17";

/// Why a policy document was refused. Messages are shown to users as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("policy document is not valid JSON at line {line} column {column}: {message}")]
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "policy document looks URL-encoded but does not decode to UTF-8 text; \
         give the document as plain JSON"
    )]
    InvalidEncoding,
    #[error("policy document must be a JSON object with a Statement")]
    MissingStatement,
    #[error(
        "policy document Statement[{index}] is not a JSON object; each statement must be \
         an object with Effect, Action and Resource (or Principal in a trust policy)"
    )]
    StatementNotObject { index: usize },
    #[error(
        "policy document Statement[{index}] has no Effect; add \"Effect\": \"Allow\" \
         or \"Effect\": \"Deny\""
    )]
    MissingEffect { index: usize },
    #[error(
        "policy document Statement[{index}] has Effect {found}; it must be \"Allow\" or \"Deny\""
    )]
    InvalidEffect { index: usize, found: String },
}

/// An IAM policy document held in canonical form, so that `==` is semantic
/// equality and [`PolicyDocument::to_json`] is stable across round trips
/// through IAM.
///
/// Canonical form:
/// - a missing `Version` is made explicit as [`DEFAULT_POLICY_VERSION`];
/// - a single `Statement` object becomes a one-element list; statements are
///   sorted by their canonical serialisation and deduplicated (their order
///   carries no meaning);
/// - `Action`, `NotAction`, `Resource`, `NotResource`: a string becomes a
///   one-element list; lists are sorted and deduplicated;
/// - `Principal`/`NotPrincipal`: `"*"` is kept; each map value becomes a
///   sorted, deduplicated list;
/// - `Condition`: operator → key → sorted, deduplicated list of strings, with
///   booleans and numbers stringified (IAM compares them as strings);
/// - object keys sorted.
///
/// Not folded: case of action names and condition keys, account-id vs. root
/// ARN principals, `"*"` vs. `{"AWS": "*"}`. IAM returns what it was sent for
/// these, so leaving them alone cannot cause a diff loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    canonical: Value,
}

impl PolicyDocument {
    /// Parses a document given as raw JSON or as the URL-encoded JSON IAM
    /// returns (`%7B%22Version%22...`).
    ///
    /// Percent-decoding is tried only when the text is not valid JSON and
    /// starts with `%`, so a `%` inside a JSON string is never touched. `+`
    /// stays `+`: IAM encodes per RFC 3986, not as an HTML form.
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let value = match serde_json::from_str::<Value>(text) {
            Ok(value) => value,
            Err(raw_error) => {
                if !text.trim_start().starts_with('%') {
                    return Err(json_error(&raw_error));
                }
                let decoded = percent_decode_str(text.trim())
                    .decode_utf8()
                    .map_err(|_| DocumentError::InvalidEncoding)?;
                serde_json::from_str::<Value>(&decoded).map_err(|e| json_error(&e))?
            }
        };
        Self::from_value(&value)
    }

    /// Builds a document from an already-parsed JSON value (for example the
    /// `policies.inline` map of a custom resource).
    pub fn from_value(value: &Value) -> Result<Self, DocumentError> {
        check_document(value)?;
        Ok(Self::from_checked(value))
    }

    /// Canonicalises a value the caller has built itself and knows to be
    /// well formed. Only for documents generated in this crate; anything from
    /// a user or from AWS goes through [`PolicyDocument::from_value`].
    pub(crate) fn from_checked(value: &Value) -> Self {
        debug_assert!(
            check_document(value).is_ok(),
            "generated document is invalid"
        );
        let canonical = match value {
            Value::Object(map) => canonical_document(map),
            other => other.clone(),
        };
        Self { canonical }
    }

    /// Compact JSON of the canonical form, ready to send to IAM.
    pub fn to_json(&self) -> String {
        self.canonical.to_string()
    }

    /// The canonical JSON value.
    pub fn as_value(&self) -> &Value {
        &self.canonical
    }

    /// The policy language version; [`DEFAULT_POLICY_VERSION`] when the
    /// document did not say.
    pub fn version(&self) -> &str {
        self.canonical
            .get("Version")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_POLICY_VERSION)
    }

    /// The statements, each a canonical JSON object.
    pub fn statements(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.canonical
            .get("Statement")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
    }

    /// Size as IAM counts it against its quotas (whitespace ignored) for the
    /// JSON this document is sent as.
    pub fn non_whitespace_len(&self) -> usize {
        non_whitespace_len(&self.to_json())
    }
}

impl fmt::Display for PolicyDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// Number of characters IAM counts against its policy size quotas: IAM does
/// not count whitespace (IAM User Guide, "IAM and AWS STS quotas").
pub fn non_whitespace_len(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

fn json_error(err: &serde_json::Error) -> DocumentError {
    // serde_json appends the position to its message; we put it first, where
    // a person looks for it, so strip it from the tail.
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    DocumentError::InvalidJson {
        line: err.line(),
        column: err.column(),
        message,
    }
}

fn check_document(value: &Value) -> Result<(), DocumentError> {
    let Value::Object(map) = value else {
        return Err(DocumentError::MissingStatement);
    };
    let statements: Vec<&Value> = match map.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => return Err(DocumentError::MissingStatement),
    };
    for (index, statement) in statements.into_iter().enumerate() {
        let Value::Object(statement) = statement else {
            return Err(DocumentError::StatementNotObject { index });
        };
        match statement.get("Effect") {
            None => return Err(DocumentError::MissingEffect { index }),
            Some(Value::String(effect)) if effect == "Allow" || effect == "Deny" => {}
            Some(other) => {
                return Err(DocumentError::InvalidEffect {
                    index,
                    found: other.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn canonical_document(map: &Map<String, Value>) -> Value {
    let mut entries: Vec<(String, Value)> = map
        .iter()
        .map(|(key, value)| {
            let value = if key == "Statement" {
                canonical_statements(value)
            } else {
                value.clone()
            };
            (key.clone(), value)
        })
        .collect();
    if !map.contains_key("Version") {
        entries.push((
            "Version".to_owned(),
            Value::String(DEFAULT_POLICY_VERSION.to_owned()),
        ));
    }
    sorted_object(entries)
}

fn canonical_statements(value: &Value) -> Value {
    let mut statements: Vec<Value> = match value {
        Value::Array(items) => items.iter().map(canonical_statement).collect(),
        single @ Value::Object(_) => vec![canonical_statement(single)],
        other => return other.clone(),
    };
    // Statement order carries no meaning in IAM's evaluation, and a duplicate
    // statement grants or denies nothing more.
    statements.sort_by_cached_key(Value::to_string);
    statements.dedup();
    Value::Array(statements)
}

fn canonical_statement(value: &Value) -> Value {
    let Value::Object(map) = value else {
        return value.clone();
    };
    sorted_object(map.iter().map(|(key, value)| {
        let value = match key.as_str() {
            "Action" | "NotAction" | "Resource" | "NotResource" => canonical_set(value),
            "Principal" | "NotPrincipal" => canonical_principal(value),
            "Condition" => canonical_condition(value),
            _ => value.clone(),
        };
        (key.clone(), value)
    }))
}

fn canonical_principal(value: &Value) -> Value {
    match value {
        Value::Object(map) => sorted_object(
            map.iter()
                .map(|(kind, ids)| (kind.clone(), canonical_set(ids))),
        ),
        // "*" and shapes IAM itself would refuse are kept verbatim.
        other => other.clone(),
    }
}

fn canonical_condition(value: &Value) -> Value {
    let Value::Object(operators) = value else {
        return value.clone();
    };
    sorted_object(operators.iter().map(|(operator, keys)| {
        let keys = match keys {
            Value::Object(keys) => sorted_object(
                keys.iter()
                    .map(|(key, values)| (key.clone(), condition_values(values))),
            ),
            other => other.clone(),
        };
        (operator.clone(), keys)
    }))
}

fn condition_values(value: &Value) -> Value {
    let mut values: Vec<String> = match value {
        Value::Array(items) => items.iter().map(condition_scalar).collect(),
        single => vec![condition_scalar(single)],
    };
    values.sort();
    values.dedup();
    Value::Array(values.into_iter().map(Value::String).collect())
}

fn condition_scalar(value: &Value) -> String {
    // IAM evaluates condition values as strings: `true` and `"true"` mean the
    // same, so they must canonicalise the same.
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn canonical_set(value: &Value) -> Value {
    let mut items: Vec<Value> = match value {
        Value::Array(items) => items.clone(),
        single => vec![single.clone()],
    };
    items.sort_by(compare_elements);
    items.dedup();
    Value::Array(items)
}

fn compare_elements(a: &Value, b: &Value) -> Ordering {
    // Strings by content (readable output); anything else by its JSON text,
    // with the JSON text as tie-breaker so the order is total and equal
    // values end up adjacent for dedup.
    fn key(value: &Value) -> (String, String) {
        let text = value.to_string();
        match value {
            Value::String(s) => (s.clone(), text),
            _ => (text.clone(), text),
        }
    }
    key(a).cmp(&key(b))
}

fn sorted_object(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    // serde_json's Map is sorted already unless some crate in the graph turns
    // on `preserve_order`; sorting here keeps the canonical form independent
    // of that feature.
    let mut entries: Vec<(String, Value)> = entries.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(entries.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    use proptest::prelude::*;
    use serde_json::json;

    /// RFC 3986 unreserved characters stay, everything else is encoded: the
    /// way IAM encodes the documents it returns.
    const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');

    fn doc(text: &str) -> PolicyDocument {
        PolicyDocument::parse(text).expect("test document parses")
    }

    fn encode(text: &str) -> String {
        utf8_percent_encode(text, RFC3986).to_string()
    }

    const S3_READ: &str = r#"{
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::bucket", "arn:aws:s3:::bucket/*"]
        }]
    }"#;

    #[test]
    fn parses_raw_json() {
        let d = doc(S3_READ);
        assert_eq!(d.version(), "2012-10-17");
        assert_eq!(d.statements().count(), 1);
    }

    #[test]
    fn parses_url_encoded_document_from_iam() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect\
                       %22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource\
                       %22%3A%22arn%3Aaws%3As3%3A%3A%3Abucket%2F%2A%22%7D%5D%7D";
        let d = doc(encoded);
        let expected = doc(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}}"#,
        );
        assert_eq!(d, expected);
    }

    #[test]
    fn encoded_asterisk_decodes_to_wildcard() {
        let d = doc(&encode(
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ));
        assert!(encode("*").contains("%2A"));
        assert_eq!(d.as_value()["Statement"][0]["Action"], json!(["*"]));
    }

    #[test]
    fn plus_is_not_a_space_in_encoded_documents() {
        let text = "%7B%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3A*%22%2C\
                    %22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Aa+b%22%7D%7D";
        let d = doc(text);
        assert_eq!(
            d.as_value()["Statement"][0]["Resource"],
            json!(["arn:aws:s3:::a+b"])
        );
    }

    #[test]
    fn percent_inside_valid_json_is_left_alone() {
        let d = doc(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/100%25"}}"#,
        );
        assert_eq!(
            d.as_value()["Statement"][0]["Resource"],
            json!(["arn:aws:s3:::b/100%25"])
        );
    }

    #[test]
    fn encoded_and_raw_forms_are_equal() {
        assert_eq!(doc(S3_READ), doc(&encode(S3_READ)));
    }

    #[test]
    fn missing_version_means_2008() {
        let d = doc(r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#);
        assert_eq!(d.version(), DEFAULT_POLICY_VERSION);
        assert_eq!(d.as_value()["Version"], json!("2008-10-17"));
    }

    #[test]
    fn missing_version_equals_explicit_2008_but_not_2012() {
        let bare = doc(r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#);
        let v2008 = doc(
            r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        );
        let v2012 = doc(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        );
        assert_eq!(bare, v2008);
        assert_ne!(bare, v2012);
    }

    #[test]
    fn single_statement_object_equals_one_element_list() {
        let a = doc(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#);
        let b = doc(r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#);
        assert_eq!(a, b);
        assert!(a.as_value()["Statement"].is_array());
    }

    #[test]
    fn string_and_list_forms_are_equal() {
        let cases = [
            ("Action", r#""s3:GetObject""#, r#"["s3:GetObject"]"#),
            ("NotAction", r#""iam:*""#, r#"["iam:*"]"#),
            ("Resource", r#""*""#, r#"["*"]"#),
            (
                "NotResource",
                r#""arn:aws:s3:::x""#,
                r#"["arn:aws:s3:::x"]"#,
            ),
        ];
        for (field, single, list) in cases {
            let a = doc(&format!(
                r#"{{"Statement":{{"Effect":"Allow","{field}":{single}}}}}"#
            ));
            let b = doc(&format!(
                r#"{{"Statement":{{"Effect":"Allow","{field}":{list}}}}}"#
            ));
            assert_eq!(a, b, "{field}");
        }
    }

    #[test]
    fn duplicate_actions_are_removed() {
        let a = doc(
            r#"{"Statement":{"Effect":"Allow","Action":["s3:GetObject","s3:GetObject","s3:ListBucket"],"Resource":"*"}}"#,
        );
        let b = doc(
            r#"{"Statement":{"Effect":"Allow","Action":["s3:ListBucket","s3:GetObject"],"Resource":"*"}}"#,
        );
        assert_eq!(a, b);
        assert_eq!(
            a.as_value()["Statement"][0]["Action"],
            json!(["s3:GetObject", "s3:ListBucket"])
        );
    }

    #[test]
    fn list_order_does_not_matter() {
        let a = doc(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":["b","a","c"]}}"#);
        let b = doc(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":["c","b","a"]}}"#);
        assert_eq!(a, b);
    }

    #[test]
    fn action_case_is_preserved_and_significant() {
        let a = doc(r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#);
        let b = doc(r#"{"Statement":{"Effect":"Allow","Action":"s3:getobject","Resource":"*"}}"#);
        assert_ne!(a, b);
    }

    #[test]
    fn statement_reordering_is_equal() {
        let a = doc(r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},
                {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#);
        let b = doc(r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"},
                {"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#);
        assert_eq!(a, b);
        assert_eq!(a.to_json(), b.to_json());
    }

    #[test]
    fn duplicate_statements_collapse() {
        let a = doc(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},
                             {"Effect":"Allow","Action":["s3:*"],"Resource":["*"]}]}"#,
        );
        assert_eq!(a.statements().count(), 1);
    }

    #[test]
    fn different_effect_is_not_equal() {
        let a = doc(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#);
        let b = doc(r#"{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*"}}"#);
        assert_ne!(a, b);
    }

    #[test]
    fn different_resource_is_not_equal() {
        let a =
            doc(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::a"}}"#);
        let b =
            doc(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b"}}"#);
        assert_ne!(a, b);
    }

    #[test]
    fn key_order_does_not_matter() {
        let a = doc(
            r#"{"Version":"2012-10-17","Statement":{"Resource":"*","Action":"s3:*","Effect":"Allow"}}"#,
        );
        let b = doc(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"},"Version":"2012-10-17"}"#,
        );
        assert_eq!(a, b);
        assert_eq!(a.to_json(), b.to_json());
    }

    #[test]
    fn whitespace_does_not_matter() {
        let compact = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::bucket","arn:aws:s3:::bucket/*"]}]}"#;
        assert_eq!(doc(S3_READ), doc(compact));
    }

    #[test]
    fn principal_star_is_kept() {
        let d =
            doc(r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}"#);
        assert_eq!(d.as_value()["Statement"][0]["Principal"], json!("*"));
    }

    #[test]
    fn principal_map_values_become_sorted_lists() {
        let a = doc(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["pods.eks.amazonaws.com","ec2.amazonaws.com","ec2.amazonaws.com"]},"Action":"sts:AssumeRole"}}"#,
        );
        let b = doc(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","pods.eks.amazonaws.com"]},"Action":"sts:AssumeRole"}}"#,
        );
        assert_eq!(a, b);
        let single = doc(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}"#,
        );
        assert_eq!(
            single.as_value()["Statement"][0]["Principal"]["Service"],
            json!(["ec2.amazonaws.com"])
        );
    }

    #[test]
    fn not_principal_is_canonicalised_like_principal() {
        let a = doc(
            r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"*","Resource":"*"}}"#,
        );
        let b = doc(
            r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::123456789012:root"]},"Action":["*"],"Resource":["*"]}}"#,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn condition_bool_equals_string() {
        let a = doc(
            r#"{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false}}}}"#,
        );
        let b = doc(
            r#"{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}"#,
        );
        assert_eq!(a, b);
        assert_eq!(
            a.as_value()["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"],
            json!(["false"])
        );
    }

    #[test]
    fn condition_number_equals_string() {
        let a = doc(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":[10, "5"]}}}}"#,
        );
        let b = doc(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":["5", "10"]}}}}"#,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn condition_values_are_sorted_and_deduplicated() {
        let d = doc(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":["eu-west-1","us-east-1","eu-west-1"]}}}}"#,
        );
        assert_eq!(
            d.as_value()["Statement"][0]["Condition"]["StringEquals"]["aws:RequestedRegion"],
            json!(["eu-west-1", "us-east-1"])
        );
    }

    #[test]
    fn condition_different_values_are_not_equal() {
        let a = doc(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"k":"a"}}}}"#,
        );
        let b = doc(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"k":"b"}}}}"#,
        );
        assert_ne!(a, b);
    }

    #[test]
    fn sid_and_id_are_kept() {
        let d = doc(
            r#"{"Id":"doc1","Statement":{"Sid":"ReadOnly","Effect":"Allow","Action":"s3:Get*","Resource":"*"}}"#,
        );
        assert_eq!(d.as_value()["Id"], json!("doc1"));
        assert_eq!(d.as_value()["Statement"][0]["Sid"], json!("ReadOnly"));
    }

    #[test]
    fn to_json_is_compact_and_sorted() {
        let d = doc(
            r#"{"Version":"2012-10-17","Statement":{"Resource":"*","Effect":"Allow","Action":"s3:*"}}"#,
        );
        assert_eq!(
            d.to_json(),
            r#"{"Statement":[{"Action":["s3:*"],"Effect":"Allow","Resource":["*"]}],"Version":"2012-10-17"}"#
        );
        assert_eq!(d.to_string(), d.to_json());
    }

    #[test]
    fn from_value_matches_parse() {
        let value: Value = serde_json::from_str(S3_READ).expect("valid");
        assert_eq!(
            PolicyDocument::from_value(&value).expect("valid"),
            doc(S3_READ)
        );
    }

    #[test]
    fn invalid_json_reports_line_and_column() {
        let err = PolicyDocument::parse("{\n  \"Statement\": [\n  }").expect_err("invalid");
        let DocumentError::InvalidJson { line, column, .. } = &err else {
            panic!("unexpected error {err:?}");
        };
        assert_eq!(*line, 3);
        assert!(*column > 0);
        let message = err.to_string();
        assert!(
            message.starts_with("policy document is not valid JSON at line 3 column "),
            "{message}"
        );
        assert!(
            !message.ends_with(&format!("at line 3 column {column}")),
            "{message}"
        );
    }

    #[test]
    fn empty_text_is_invalid_json() {
        assert!(matches!(
            PolicyDocument::parse(""),
            Err(DocumentError::InvalidJson { .. })
        ));
    }

    #[test]
    fn broken_encoded_document_reports_decoded_position() {
        let err = PolicyDocument::parse(&encode("{\"Statement\": [")).expect_err("invalid");
        assert!(
            matches!(err, DocumentError::InvalidJson { line: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn encoded_invalid_utf8_is_refused() {
        assert_eq!(
            PolicyDocument::parse("%7B%FF%FE%7D"),
            Err(DocumentError::InvalidEncoding)
        );
    }

    #[test]
    fn non_object_documents_are_refused() {
        for text in [
            "[]",
            "\"text\"",
            "42",
            "null",
            "{}",
            r#"{"Version":"2012-10-17"}"#,
        ] {
            assert_eq!(
                PolicyDocument::parse(text),
                Err(DocumentError::MissingStatement),
                "{text}"
            );
        }
        assert_eq!(
            DocumentError::MissingStatement.to_string(),
            "policy document must be a JSON object with a Statement"
        );
    }

    #[test]
    fn statement_of_wrong_type_is_refused() {
        for text in [
            r#"{"Statement":"Allow"}"#,
            r#"{"Statement":null}"#,
            r#"{"Statement":1}"#,
        ] {
            assert_eq!(
                PolicyDocument::parse(text),
                Err(DocumentError::MissingStatement),
                "{text}"
            );
        }
    }

    #[test]
    fn statement_element_not_object_is_refused() {
        let err = PolicyDocument::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},"oops"]}"#,
        )
        .expect_err("invalid");
        assert_eq!(err, DocumentError::StatementNotObject { index: 1 });
        assert!(
            err.to_string()
                .contains("Statement[1] is not a JSON object")
        );
    }

    #[test]
    fn missing_effect_is_refused() {
        let err = PolicyDocument::parse(r#"{"Statement":{"Action":"s3:*","Resource":"*"}}"#)
            .expect_err("invalid");
        assert_eq!(err, DocumentError::MissingEffect { index: 0 });
        assert!(err.to_string().contains("has no Effect"));
    }

    #[test]
    fn bad_effect_values_are_refused() {
        for (effect, shown) in [
            (r#""allow""#, r#""allow""#),
            (r#""Permit""#, r#""Permit""#),
            ("true", "true"),
            (r#"["Allow"]"#, r#"["Allow"]"#),
        ] {
            let err = PolicyDocument::parse(&format!(
                r#"{{"Statement":{{"Effect":{effect},"Action":"s3:*","Resource":"*"}}}}"#
            ))
            .expect_err("invalid");
            assert_eq!(
                err,
                DocumentError::InvalidEffect {
                    index: 0,
                    found: shown.to_owned()
                }
            );
            assert!(err.to_string().contains("must be \"Allow\" or \"Deny\""));
        }
    }

    #[test]
    fn empty_statement_list_is_accepted() {
        // IAM refuses it with its own message; nothing here depends on it.
        let d = doc(r#"{"Statement":[]}"#);
        assert_eq!(d.statements().count(), 0);
    }

    #[test]
    fn non_whitespace_len_ignores_all_whitespace() {
        let cases = [
            ("", 0),
            ("   \n\t", 0),
            ("{}", 2),
            ("{ \"a\" : 1 }", 7),
            ("é ü", 2),
        ];
        for (text, expected) in cases {
            assert_eq!(non_whitespace_len(text), expected, "{text:?}");
        }
        assert_eq!(
            doc(S3_READ).non_whitespace_len(),
            non_whitespace_len(&doc(S3_READ).to_json())
        );
    }

    fn arb_word() -> impl Strategy<Value = String> {
        // Includes characters that need escaping in JSON and in URLs.
        "[a-zA-Z0-9:*/+%_.\\- \"\\\\é]{1,12}"
    }

    fn arb_string_or_list() -> impl Strategy<Value = Value> {
        prop_oneof![
            arb_word().prop_map(Value::String),
            prop::collection::vec(arb_word(), 0..4)
                .prop_map(|v| Value::Array(v.into_iter().map(Value::String).collect())),
        ]
    }

    fn arb_condition() -> impl Strategy<Value = Value> {
        let scalar = prop_oneof![
            arb_word().prop_map(Value::String),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
        ];
        let values = prop_oneof![
            scalar.clone(),
            prop::collection::vec(scalar, 1..3).prop_map(Value::Array),
        ];
        prop::collection::btree_map(
            "(StringEquals|StringLike|Bool|NumericLessThan)",
            prop::collection::btree_map(arb_word(), values, 1..3),
            0..3,
        )
        .prop_map(|ops| {
            Value::Object(
                ops.into_iter()
                    .map(|(op, keys)| (op, Value::Object(keys.into_iter().collect())))
                    .collect(),
            )
        })
    }

    fn arb_statement() -> impl Strategy<Value = Value> {
        (
            prop_oneof![Just("Allow"), Just("Deny")],
            arb_string_or_list(),
            arb_string_or_list(),
            prop::option::of(prop_oneof![
                Just(json!("*")),
                arb_string_or_list().prop_map(|ids| json!({ "AWS": ids })),
            ]),
            prop::option::of(arb_condition()),
            prop::option::of("[A-Za-z0-9]{1,8}"),
        )
            .prop_map(|(effect, action, resource, principal, condition, sid)| {
                let mut map = Map::new();
                map.insert("Effect".into(), json!(effect));
                map.insert("Action".into(), action);
                map.insert("Resource".into(), resource);
                if let Some(p) = principal {
                    map.insert("Principal".into(), p);
                }
                if let Some(c) = condition {
                    map.insert("Condition".into(), c);
                }
                if let Some(s) = sid {
                    map.insert("Sid".into(), json!(s));
                }
                Value::Object(map)
            })
    }

    fn arb_document() -> impl Strategy<Value = Value> {
        (
            prop::option::of(prop_oneof![Just("2012-10-17"), Just("2008-10-17")]),
            prop_oneof![
                arb_statement(),
                prop::collection::vec(arb_statement(), 0..4).prop_map(Value::Array),
            ],
        )
            .prop_map(|(version, statement)| {
                let mut map = Map::new();
                if let Some(v) = version {
                    map.insert("Version".into(), json!(v));
                }
                map.insert("Statement".into(), statement);
                Value::Object(map)
            })
    }

    proptest! {
        #[test]
        fn prop_canonical_form_is_idempotent(value in arb_document()) {
            let d = PolicyDocument::from_value(&value).expect("generated documents are valid");
            let again = PolicyDocument::parse(&d.to_json()).expect("canonical JSON parses");
            prop_assert_eq!(&again, &d);
            prop_assert_eq!(again.to_json(), d.to_json());
        }

        #[test]
        fn prop_url_encoding_round_trips(value in arb_document(), pretty in any::<bool>()) {
            let d = PolicyDocument::from_value(&value).expect("generated documents are valid");
            let text = if pretty {
                serde_json::to_string_pretty(&value).expect("serialisable")
            } else {
                value.to_string()
            };
            let rfc = PolicyDocument::parse(&encode(&text)).expect("encoded parses");
            prop_assert_eq!(&rfc, &d);
            let all = utf8_percent_encode(&text, NON_ALPHANUMERIC).to_string();
            prop_assert_eq!(&PolicyDocument::parse(&all).expect("encoded parses"), &d);
        }

        #[test]
        fn prop_statement_order_is_irrelevant(
            statements in prop::collection::vec(arb_statement(), 1..5),
            seed in any::<u64>(),
        ) {
            let mut shuffled = statements.clone();
            // A cheap deterministic permutation: rotate by the seed.
            let len = shuffled.len();
            shuffled.rotate_left((seed as usize) % len);
            shuffled.reverse();
            let a = PolicyDocument::from_value(&json!({ "Statement": statements })).expect("valid");
            let b = PolicyDocument::from_value(&json!({ "Statement": shuffled })).expect("valid");
            prop_assert_eq!(a, b);
        }
    }
}
