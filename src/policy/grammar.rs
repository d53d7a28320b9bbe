//! The IAM policy grammar for identity policies, checked before anything is
//! sent to AWS: a malformed document would otherwise come back as
//! `MalformedPolicyDocument` only after the role had been made. Each problem
//! names the policy, the statement and the field. Pure.
//!
//! The rules are those of the IAM JSON policy grammar (IAM User Guide,
//! "Grammar of the IAM JSON policy language" and "IAM JSON policy elements")
//! and the `PolicyDocument` character set of `PutRolePolicy`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::document::{CURRENT_POLICY_VERSION, DEFAULT_POLICY_VERSION};
use crate::api::PolicySpec;

const DOCUMENT_KEYS: [&str; 3] = ["Version", "Id", "Statement"];
const STATEMENT_KEYS: [&str; 7] = [
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// Condition operators IAM knows, without the `ForAllValues:` /
/// `ForAnyValue:` qualifiers and the `IfExists` suffix it allows on them.
const CONDITION_OPERATORS: [&str; 27] = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
];

/// Every problem of the inline policies of a spec, each named by its field.
pub fn inline_policies_problems(policies: &PolicySpec) -> Vec<String> {
    policies
        .inline
        .iter()
        .flat_map(|(name, document)| {
            identity_policy_problems(
                &format!("spec.policies.inline.{name}"),
                &document.to_value(),
            )
        })
        .collect()
}

/// Every problem of one identity policy document; empty when IAM would take
/// it. `field` prefixes each message (e.g. `spec.policies.inline.s3`).
pub fn identity_policy_problems(field: &str, document: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut say = |at: String, what: String| problems.push(format!("{field}: {at} {what}"));
    let Value::Object(top) = document else {
        say(
            "the document".into(),
            "is not a JSON object; write {\"Version\": \"2012-10-17\", \"Statement\": [...]}"
                .into(),
        );
        return problems;
    };
    for key in top.keys().filter(|k| !DOCUMENT_KEYS.contains(&k.as_str())) {
        say(
            format!("key {key:?}"),
            "is not a policy element; a document has only Version, Id and Statement".into(),
        );
    }
    // IAM takes a document without Version (or with the 2008 one) as the old
    // language, where policy variables are plain text: a silent change of
    // meaning, which IAM refuses for new policies. Only the current one.
    match top.get("Version") {
        Some(Value::String(v)) if v == CURRENT_POLICY_VERSION => {}
        None => say(
            "Version".into(),
            format!("is missing; write \"Version\": \"{CURRENT_POLICY_VERSION}\""),
        ),
        Some(other) => say(
            "Version".into(),
            format!(
                "is {other}; policies take \"{CURRENT_POLICY_VERSION}\" (\"{DEFAULT_POLICY_VERSION}\" \
                 is the old language IAM refuses for new policies)"
            ),
        ),
    }
    let statements: Vec<&Value> = match top.get("Statement") {
        None => {
            say(
                "Statement".into(),
                "is missing; a policy needs at least one statement".into(),
            );
            return problems;
        }
        Some(Value::Array(items)) if items.is_empty() => {
            say(
                "Statement".into(),
                "is an empty list; a policy needs at least one statement".into(),
            );
            return problems;
        }
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        Some(other) => {
            say(
                "Statement".into(),
                format!(
                    "is {}; it must be an object or a list of objects",
                    kind_of(other)
                ),
            );
            return problems;
        }
    };
    let mut sids = BTreeSet::new();
    for (index, statement) in statements.into_iter().enumerate() {
        let at = format!("Statement[{index}]");
        let Value::Object(statement) = statement else {
            say(at, format!("is {}, not an object", kind_of(statement)));
            continue;
        };
        for problem in statement_problems(statement, &mut sids) {
            say(at.clone(), problem);
        }
    }
    problems
}

fn statement_problems(statement: &Map<String, Value>, sids: &mut BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for key in statement.keys() {
        match key.as_str() {
            "Principal" | "NotPrincipal" => problems.push(format!(
                "has {key}; an identity policy applies to the role it is attached to and names \
                 no principal: remove it"
            )),
            k if STATEMENT_KEYS.contains(&k) => {}
            _ => problems.push(format!(
                "has {key:?}, which is not a statement element (Sid, Effect, Action or \
                 NotAction, Resource or NotResource, Condition)"
            )),
        }
    }
    match statement.get("Sid") {
        None => {}
        Some(Value::String(sid))
            if sid.chars().all(|c| c.is_ascii_alphanumeric()) && !sids.insert(sid.clone()) =>
        {
            problems.push(format!(
                "Sid {sid:?} is used twice; Sids in one policy must be unique"
            ));
        }
        Some(Value::String(sid)) if sid.chars().all(|c| c.is_ascii_alphanumeric()) => {}
        Some(other) => problems.push(format!(
            "Sid is {other}; a Sid holds only ASCII letters and digits"
        )),
    }
    match statement.get("Effect") {
        Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
        None => problems.push("has no Effect; add \"Effect\": \"Allow\" or \"Deny\"".into()),
        Some(other) => problems.push(format!(
            "Effect is {other}; it must be \"Allow\" or \"Deny\""
        )),
    }
    problems.extend(one_of(statement, "Action", "NotAction", action_problem));
    problems.extend(one_of(
        statement,
        "Resource",
        "NotResource",
        resource_problem,
    ));
    if let Some(condition) = statement.get("Condition") {
        problems.extend(condition_problems(condition));
    }
    problems
}

/// Exactly one of two elements, each a string or a non-empty list of
/// strings, every one of which `item_problem` accepts.
fn one_of(
    statement: &Map<String, Value>,
    positive: &str,
    negative: &str,
    item_problem: fn(&str) -> Option<String>,
) -> Vec<String> {
    let (key, value) = match (statement.get(positive), statement.get(negative)) {
        (None, None) => {
            return vec![format!(
                "has neither {positive} nor {negative}; give one of them"
            )];
        }
        (Some(_), Some(_)) => {
            return vec![format!(
                "has both {positive} and {negative}; a statement has exactly one of them"
            )];
        }
        (Some(v), None) => (positive, v),
        (None, Some(v)) => (negative, v),
    };
    let items: Vec<(String, &Value)> = match value {
        Value::Array(list) if list.is_empty() => {
            return vec![format!("{key} is an empty list; name at least one")];
        }
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{key}[{i}]"), v))
            .collect(),
        single => vec![(key.to_string(), single)],
    };
    items
        .into_iter()
        .filter_map(|(at, item)| match item {
            Value::String(text) => item_problem(text).map(|why| format!("{at} {text:?} {why}")),
            other => Some(format!("{at} is {}, not a string", kind_of(other))),
        })
        .collect()
}

/// `*`, or `service:Name` where the service prefix is letters, digits and
/// `-` and the name letters, digits and the wildcards `*` and `?`. Anything
/// else — spaces, control or invisible characters, look-alike letters — is
/// not an action IAM knows, and would silently match nothing.
fn action_problem(action: &str) -> Option<String> {
    if action == "*" {
        return None;
    }
    if let Some(c) = action.chars().find(|c| !c.is_ascii_graphic()) {
        return Some(format!(
            "contains {}; action names are plain ASCII letters and digits",
            describe_char(c)
        ));
    }
    let Some((service, name)) = action.split_once(':') else {
        return Some("is not service:Action (e.g. s3:GetObject) or \"*\"".into());
    };
    if service.is_empty()
        || !service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*' || c == '?')
    {
        return Some(format!(
            "has service prefix {service:?}; a prefix is letters, digits and -"
        ));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
    {
        return Some(format!(
            "has action name {name:?}; a name is letters and digits, with * or ? as wildcards"
        ));
    }
    None
}

/// `*`, or an ARN (`arn:partition:service:region:account:resource`), in
/// the characters IAM takes in a policy document.
fn resource_problem(resource: &str) -> Option<String> {
    if let Some(c) = resource
        .chars()
        .find(|&c| !is_document_char(c) || c.is_control())
    {
        return Some(format!(
            "contains {}, which IAM does not take in a policy",
            describe_char(c)
        ));
    }
    if resource == "*" {
        return None;
    }
    if !resource.starts_with("arn:") || resource.split(':').count() < 6 {
        return Some(
            "is not an ARN (arn:partition:service:region:account:resource) or \"*\"".into(),
        );
    }
    None
}

fn condition_problems(condition: &Value) -> Vec<String> {
    let Value::Object(operators) = condition else {
        return vec![format!(
            "Condition is {}; it must map operators to keys and values",
            kind_of(condition)
        )];
    };
    let mut problems = Vec::new();
    for (operator, block) in operators {
        if !is_known_operator(operator) {
            problems.push(format!(
                "Condition operator {operator:?} is not one IAM knows (e.g. StringEquals, \
                 StringLike, ArnLike, Bool, NumericLessThan, IpAddress, Null, with an optional \
                 ForAnyValue:/ForAllValues: prefix or IfExists suffix)"
            ));
            continue;
        }
        let Value::Object(keys) = block else {
            problems.push(format!(
                "Condition.{operator} is {}; it must map condition keys to values",
                kind_of(block)
            ));
            continue;
        };
        if keys.is_empty() {
            problems.push(format!("Condition.{operator} names no condition key"));
        }
        for (key, values) in keys {
            if key.is_empty() || key.chars().any(|c| !c.is_ascii_graphic()) {
                problems.push(format!(
                    "Condition.{operator} key {key:?} is not a condition key (plain ASCII, \
                     e.g. aws:SourceIp)"
                ));
            }
            let scalars: Vec<&Value> = match values {
                Value::Array(list) if list.is_empty() => {
                    problems.push(format!("Condition.{operator}.{key} is an empty list"));
                    continue;
                }
                Value::Array(list) => list.iter().collect(),
                single => vec![single],
            };
            for value in scalars {
                match value {
                    Value::String(s) => {
                        if let Some(c) = s.chars().find(|&c| !is_document_char(c)) {
                            problems.push(format!(
                                "Condition.{operator}.{key} value {s:?} contains {}, which IAM \
                                 does not take in a policy",
                                describe_char(c)
                            ));
                        }
                    }
                    Value::Bool(_) | Value::Number(_) => {}
                    other => problems.push(format!(
                        "Condition.{operator}.{key} has a value that is {}, not a string, \
                         number or boolean",
                        kind_of(other)
                    )),
                }
            }
        }
    }
    problems
}

fn is_known_operator(operator: &str) -> bool {
    let unqualified = operator
        .strip_prefix("ForAllValues:")
        .or_else(|| operator.strip_prefix("ForAnyValue:"))
        .unwrap_or(operator);
    let base = match unqualified.strip_suffix("IfExists") {
        Some(base) if base != "Null" => base,
        Some(_) => return false,
        None => unqualified,
    };
    CONDITION_OPERATORS.contains(&base)
}

/// The `PolicyDocument` character set of `PutRolePolicy`:
/// `[\u0009\u000A\u000D\u0020-\u00FF]`.
fn is_document_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FF}')
}

fn describe_char(c: char) -> String {
    if c.is_control() || !is_document_char(c) || c == ' ' {
        format!("the character U+{:04X}", u32::from(c))
    } else {
        format!("{c:?}")
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(document: Value) -> Vec<String> {
        identity_policy_problems("spec.policies.inline.p", &document)
    }

    fn statement(extra: Value) -> Value {
        let mut s = json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                s.as_object_mut().unwrap().remove(k);
            } else {
                s[k] = v.clone();
            }
        }
        json!({"Version": "2012-10-17", "Statement": [s]})
    }

    fn single_problem(document: Value, expected: &[&str]) {
        let found = problems(document);
        assert_eq!(found.len(), 1, "{found:?}");
        for part in expected {
            assert!(found[0].contains(part), "{:?} lacks {part:?}", found[0]);
        }
        assert!(
            found[0].starts_with("spec.policies.inline.p: "),
            "{found:?}"
        );
    }

    #[test]
    fn well_formed_documents_pass() {
        for document in [
            statement(json!({})),
            json!({"Version": "2012-10-17", "Statement": {"Effect": "Deny", "NotAction": ["iam:*"], "NotResource": "arn:aws:iam::1:role/x"}}),
            json!({"Version": "2012-10-17", "Id": "x", "Statement": [
                {"Sid": "Read1", "Effect": "Allow", "Action": ["s3:Get*", "s3:List?ucket"], "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                 "Condition": {"StringEquals": {"aws:PrincipalTag/team": ["a", "b"]}, "Bool": {"aws:SecureTransport": true},
                               "ForAnyValue:StringLike": {"aws:TagKeys": "x*"}, "NumericLessThanIfExists": {"s3:max-keys": 10},
                               "Null": {"aws:TokenIssueTime": "false"}}},
                {"Sid": "Read2", "Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/ü-key"}]}),
        ] {
            assert_eq!(
                problems(document.clone()),
                Vec::<String>::new(),
                "{document}"
            );
        }
    }

    #[test]
    fn document_shape_is_checked() {
        single_problem(json!(["x"]), &["not a JSON object"]);
        single_problem(json!({"Version": "2012-10-17"}), &["Statement", "missing"]);
        let v = "2012-10-17";
        single_problem(json!({"Version": v, "Statement": []}), &["empty list"]);
        single_problem(json!({"Version": v, "Statement": "Allow"}), &["a string"]);
        single_problem(
            json!({"Version": v, "Statement": [7]}),
            &["Statement[0]", "a number"],
        );
        single_problem(
            json!({"Version": "2012-10-17", "Statment": [], "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}),
            &["\"Statment\"", "not a policy element"],
        );
    }

    #[test]
    fn version_must_be_one_iam_knows() {
        let mut doc = statement(json!({}));
        doc["Version"] = json!("2012-10-18");
        single_problem(doc.clone(), &["Version", "2012-10-18"]);
        doc["Version"] = json!(2012);
        single_problem(doc.clone(), &["Version"]);
        doc["Version"] = json!("2008-10-17");
        single_problem(doc.clone(), &["Version", "old language"]);
        doc.as_object_mut().unwrap().remove("Version");
        single_problem(doc, &["Version is missing"]);
    }

    #[test]
    fn statement_elements_are_checked() {
        for (extra, expected) in [
            (json!({"Effect": null}), &["Statement[0]", "no Effect"][..]),
            (json!({"Effect": "allow"}), &["Effect", "\"allow\""]),
            (json!({"Action": null}), &["neither Action nor NotAction"]),
            (json!({"NotAction": "s3:*"}), &["both Action and NotAction"]),
            (
                json!({"Resource": null}),
                &["neither Resource nor NotResource"],
            ),
            (
                json!({"NotResource": "*"}),
                &["both Resource and NotResource"],
            ),
            (json!({"Principal": "*"}), &["Principal", "no principal"]),
            (json!({"NotPrincipal": {"AWS": "x"}}), &["NotPrincipal"]),
            (json!({"Sid": "has space"}), &["Sid"]),
            (json!({"Effects": "Allow"}), &["\"Effects\""]),
            (json!({"Action": []}), &["Action is an empty list"]),
            (json!({"Action": 3}), &["Action is a number"]),
            (json!({"Action": [{"a": 1}]}), &["Action[0] is an object"]),
            (
                json!({"Resource": "bucket"}),
                &["Resource \"bucket\"", "not an ARN"],
            ),
            (json!({"Resource": "arn:aws:s3"}), &["not an ARN"]),
            (json!({"Condition": "x"}), &["Condition is a string"]),
            (
                json!({"Condition": {"StringEqualz": {"a:b": "c"}}}),
                &["StringEqualz"],
            ),
            (
                json!({"Condition": {"NullIfExists": {"a:b": "true"}}}),
                &["NullIfExists"],
            ),
            (
                json!({"Condition": {"StringEquals": "x"}}),
                &["Condition.StringEquals"],
            ),
            (
                json!({"Condition": {"StringEquals": {}}}),
                &["no condition key"],
            ),
            (
                json!({"Condition": {"StringEquals": {"a:b": []}}}),
                &["empty list"],
            ),
            (
                json!({"Condition": {"StringEquals": {"a:b": {"x": 1}}}}),
                &["an object"],
            ),
        ] {
            single_problem(statement(extra), expected);
        }
    }

    #[test]
    fn action_names_are_service_colon_name_in_plain_ascii() {
        for (action, expected) in [
            ("s3GetObject", "not service:Action"),
            ("s3 :GetObject", "U+0020"),
            ("s3:Get\u{0}Object", "U+0000"),
            ("s3:Get\u{200B}Object", "U+200B"),
            ("s3:\u{202E}tcejbOteG", "U+202E"),
            ("ѕ3:GetObject", "U+0455"),
            (":GetObject", "service prefix"),
            ("s3:", "action name"),
            ("s3:Get-Object", "action name"),
            ("s3_x:Get", "service prefix"),
        ] {
            single_problem(statement(json!({ "Action": action })), &[expected]);
        }
        for action in [
            "*",
            "s3:*",
            "s3:Get*",
            "S3:getobject",
            "*:*",
            "iam:Pass?ole",
        ] {
            assert!(action_problem(action).is_none(), "{action}");
        }
    }

    #[test]
    fn characters_iam_refuses_are_named() {
        single_problem(
            statement(json!({"Resource": "arn:aws:s3:::b/\u{7}x"})),
            &["U+0007"],
        );
        single_problem(
            statement(json!({"Resource": "arn:aws:s3:::b/✓"})),
            &["U+2713"],
        );
        single_problem(
            statement(json!({"Condition": {"StringEquals": {"aws:PrincipalTag/x": "✓"}}})),
            &["U+2713"],
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_statement() {
        let found = problems(json!({"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Sid": "A", "Effect": "Allow", "Action": "x", "Resource": "*"},
            {"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}]}));
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].contains("Version"));
        assert!(found[1].contains("Statement[1] Action \"x\""));
        assert!(
            found
                .iter()
                .any(|p| p.contains("Statement[2]") && p.contains("twice"))
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("Statement[2]") && p.contains("Principal"))
        );
    }

    #[test]
    fn operators_take_qualifiers_and_if_exists() {
        for op in [
            "StringLike",
            "ForAllValues:StringEquals",
            "ForAnyValue:ArnLikeIfExists",
            "BoolIfExists",
            "Null",
        ] {
            assert!(is_known_operator(op), "{op}");
        }
        for op in [
            "StringLikes",
            "ForSomeValues:StringLike",
            "NullIfExists",
            "",
        ] {
            assert!(!is_known_operator(op), "{op}");
        }
    }
}
