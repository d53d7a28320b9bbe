//! Validation of user input against IAM's limits, so that bad input is refused
//! with a condition naming the field, the limit and the fix before any AWS
//! call is made. Also owns ARN parsing.
//!
//! Pure: no I/O, no async. Limits are IAM's as given in the IAM API reference
//! (CreateRole, TagRole, Tag, PutRolePolicy, AttachRolePolicy,
//! AddClientIDToOpenIDConnectProvider) and the IAM User Guide's quotas page;
//! each constant says which.

use std::collections::BTreeMap;
use std::fmt;

use super::document::PolicyDocument;
use super::naming::{ROLE_NAME_MAX_LEN, is_role_name_char};

/// CreateRole `Path`: length 1–512.
pub const ROLE_PATH_MAX_LEN: usize = 512;
/// CreateRole `Description`: length 0–1000.
pub const DESCRIPTION_MAX_LEN: usize = 1000;
/// CreateRole `MaxSessionDuration`: 3600–43200 seconds (1 to 12 hours).
pub const MIN_SESSION_DURATION_SECONDS: i64 = 3600;
/// See [`MIN_SESSION_DURATION_SECONDS`].
pub const MAX_SESSION_DURATION_SECONDS: i64 = 43_200;
/// TagRole `Tags`: at most 50 items; also the per-role tag quota.
pub const MAX_TAGS_PER_ROLE: usize = 50;
/// Tag `Key`: length 1–128.
pub const TAG_KEY_MAX_LEN: usize = 128;
/// Tag `Value`: length 0–256.
pub const TAG_VALUE_MAX_LEN: usize = 256;
/// PutRolePolicy `PolicyName` and managed policy names: length 1–128.
pub const POLICY_NAME_MAX_LEN: usize = 128;
/// Quota "Role policy size": all inline policies of one role together, in
/// non-whitespace characters. Not adjustable.
pub const INLINE_POLICIES_MAX_SIZE: usize = 10_240;
/// Quota "Managed policies attached to an IAM role": 10 by default, 20 at
/// most after a quota increase. We allow up to the hard maximum and let IAM
/// answer `LimitExceeded` in accounts still on the default.
pub const MAX_MANAGED_POLICIES: usize = 20;
/// The default of the quota above, for messages and for ordering a policy
/// swap so that it fits.
pub const DEFAULT_MANAGED_POLICIES_QUOTA: usize = 10;
/// AddClientIDToOpenIDConnectProvider `ClientID`: length 1–255. The audience
/// has to be registered there, so it cannot be longer.
pub const AUDIENCE_MAX_LEN: usize = 255;
/// AttachRolePolicy `PolicyArn` / CreateRole `PermissionsBoundary`: length
/// 20–2048.
pub const ARN_MAX_LEN: usize = 2048;
/// The partitions IAM roles can live in.
pub const PARTITIONS: [&str; 5] = ["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"];

const NAME_CHARS: &str = "letters, digits and + = , . @ _ -";
const PATH_CHARS: &str = "printable ASCII without spaces (! through ~)";
const DESCRIPTION_CHARS: &str =
    "printable ASCII, Latin-1 letters and symbols (U+00A1 to U+00FF), tab and line breaks";
const TAG_CHARS: &str = "letters, digits, spaces and _ . : / = + - @";
const AUDIENCE_CHARS: &str = "visible characters without spaces";

/// Why user input was refused. Each message names the field, the limit and
/// what to change; they are shown to users as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{field} is empty; IAM requires {what} of 1 to {max} characters")]
    Empty {
        field: String,
        what: &'static str,
        max: usize,
    },
    #[error("{field} is {length} characters long; IAM allows at most {max} for {what}: shorten it")]
    TooLong {
        field: String,
        what: &'static str,
        length: usize,
        max: usize,
    },
    #[error("{field} contains {found:?}, which IAM does not allow in {what}; use only {allowed}")]
    InvalidCharacter {
        field: String,
        what: &'static str,
        found: char,
        allowed: &'static str,
    },
    #[error(
        "{field} is {value:?}; an IAM path is \"/\" or begins and ends with \"/\", \
         e.g. \"/team/app/\""
    )]
    InvalidPath { field: String, value: String },
    #[error("{field} is {value}; IAM allows {min} to {max}")]
    OutOfRange {
        field: String,
        value: i64,
        min: i64,
        max: i64,
    },
    #[error(
        "{field} has {count} tags and the operator adds {reserved} of its own; IAM allows \
         at most {max} tags on a role: remove {excess}"
    )]
    TooManyTags {
        field: String,
        count: usize,
        reserved: usize,
        max: usize,
        excess: usize,
    },
    #[error(
        "{field} key {key:?} starts with \"aws:\", which AWS reserves for its own tags; \
         choose another key"
    )]
    ReservedTagKey { field: String, key: String },
    #[error(
        "{field} has keys {first:?} and {second:?}, which differ only in case; IAM treats \
         tag keys on one role case-insensitively: keep one of them"
    )]
    DuplicateTagKey {
        field: String,
        first: String,
        second: String,
    },
    #[error("{field} is {value:?}, which is not {expected}: {reason}")]
    InvalidArn {
        field: String,
        value: String,
        expected: &'static str,
        reason: String,
    },
    #[error(
        "{field} uses partition {partition:?}; IAM roles live in one of aws, aws-cn, \
         aws-us-gov, aws-iso, aws-iso-b"
    )]
    UnknownPartition { field: String, partition: String },
    #[error(
        "{field} add up to {size} characters (whitespace not counted); IAM allows {max} \
         across all inline policies of a role: move statements into a managed policy"
    )]
    InlinePoliciesTooLarge {
        field: String,
        size: usize,
        max: usize,
    },
    #[error(
        "{field} lists {count} managed policies; IAM attaches at most {max} to a role \
         ({default} unless the account's quota was raised): combine some into one \
         customer managed policy"
    )]
    TooManyManagedPolicies {
        field: String,
        count: usize,
        max: usize,
        default: usize,
    },
}

impl ValidationError {
    /// The field the error is about, as the caller named it.
    pub fn field(&self) -> &str {
        match self {
            ValidationError::Empty { field, .. }
            | ValidationError::TooLong { field, .. }
            | ValidationError::InvalidCharacter { field, .. }
            | ValidationError::InvalidPath { field, .. }
            | ValidationError::OutOfRange { field, .. }
            | ValidationError::TooManyTags { field, .. }
            | ValidationError::ReservedTagKey { field, .. }
            | ValidationError::DuplicateTagKey { field, .. }
            | ValidationError::InvalidArn { field, .. }
            | ValidationError::UnknownPartition { field, .. }
            | ValidationError::InlinePoliciesTooLarge { field, .. }
            | ValidationError::TooManyManagedPolicies { field, .. } => field,
        }
    }
}

/// Role name: 1–64 characters from `[\w+=,.@-]` (CreateRole `RoleName`).
pub fn validate_role_name(field: &str, name: &str) -> Result<(), ValidationError> {
    check_length(field, "a role name", name, true, ROLE_NAME_MAX_LEN)?;
    check_chars(field, "a role name", name, NAME_CHARS, is_role_name_char)
}

/// Role path: `/`, or 1–512 characters that begin and end with `/` with
/// printable ASCII between (CreateRole `Path`).
///
/// IAM's pattern also admits DEL (U+007F); we refuse it, since an invisible
/// control character in a path is a mistake, not a choice.
pub fn validate_role_path(field: &str, path: &str) -> Result<(), ValidationError> {
    check_length(field, "a role path", path, true, ROLE_PATH_MAX_LEN)?;
    check_chars(field, "a role path", path, PATH_CHARS, is_path_char)?;
    let well_formed =
        path == "/" || (path.len() >= 3 && path.starts_with('/') && path.ends_with('/'));
    if !well_formed {
        return Err(ValidationError::InvalidPath {
            field: field.to_owned(),
            value: path.to_owned(),
        });
    }
    Ok(())
}

/// Role description: at most 1000 characters from
/// `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]` (CreateRole
/// `Description`). Emoji and most non-Latin scripts are refused by IAM.
pub fn validate_description(field: &str, description: &str) -> Result<(), ValidationError> {
    check_length(
        field,
        "a role description",
        description,
        false,
        DESCRIPTION_MAX_LEN,
    )?;
    check_chars(
        field,
        "a role description",
        description,
        DESCRIPTION_CHARS,
        is_description_char,
    )
}

/// Maximum session duration: 3600–43200 seconds (CreateRole
/// `MaxSessionDuration`).
pub fn validate_max_session_duration(field: &str, seconds: i64) -> Result<(), ValidationError> {
    if !(MIN_SESSION_DURATION_SECONDS..=MAX_SESSION_DURATION_SECONDS).contains(&seconds) {
        return Err(ValidationError::OutOfRange {
            field: field.to_owned(),
            value: seconds,
            min: MIN_SESSION_DURATION_SECONDS,
            max: MAX_SESSION_DURATION_SECONDS,
        });
    }
    Ok(())
}

/// User tags for a role. `reserved` is how many tags the operator adds itself
/// (its ownership tags), which count against the same 50-tag limit.
///
/// Keys: 1–128 characters; values: 0–256; both from
/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]` (IAM `Tag`). Keys starting with `aws:` in any
/// case are reserved for AWS. Keys differing only in case are refused because
/// IAM does not keep both on one role.
///
/// The character check approximates `\p{L}` with `char::is_alphabetic`, which
/// also admits combining vowel signs of some scripts; IAM would refuse those
/// itself, with its own message.
pub fn validate_tags<I, K, V>(field: &str, tags: I, reserved: usize) -> Result<(), ValidationError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut count = 0usize;
    for (key, value) in tags {
        let (key, value) = (key.as_ref(), value.as_ref());
        count += 1;

        let key_field = format!("{field} key {key:?}");
        check_length(&key_field, "a tag key", key, true, TAG_KEY_MAX_LEN)?;
        check_chars(&key_field, "a tag key", key, TAG_CHARS, is_tag_char)?;
        if key
            .get(..4)
            .is_some_and(|head| head.eq_ignore_ascii_case("aws:"))
        {
            return Err(ValidationError::ReservedTagKey {
                field: field.to_owned(),
                key: key.to_owned(),
            });
        }

        let value_field = format!("{field}[{key:?}]");
        check_length(&value_field, "a tag value", value, false, TAG_VALUE_MAX_LEN)?;
        check_chars(&value_field, "a tag value", value, TAG_CHARS, is_tag_char)?;

        if let Some(first) = seen.insert(key.to_lowercase(), key.to_owned()) {
            return Err(ValidationError::DuplicateTagKey {
                field: field.to_owned(),
                first,
                second: key.to_owned(),
            });
        }
    }
    let total = count.saturating_add(reserved);
    if total > MAX_TAGS_PER_ROLE {
        return Err(ValidationError::TooManyTags {
            field: field.to_owned(),
            count,
            reserved,
            max: MAX_TAGS_PER_ROLE,
            excess: total - MAX_TAGS_PER_ROLE,
        });
    }
    Ok(())
}

/// Inline policy name: 1–128 characters from `[\w+=,.@-]` (PutRolePolicy
/// `PolicyName`).
pub fn validate_inline_policy_name(field: &str, name: &str) -> Result<(), ValidationError> {
    check_length(field, "a policy name", name, true, POLICY_NAME_MAX_LEN)?;
    check_chars(field, "a policy name", name, NAME_CHARS, is_role_name_char)
}

/// Total size of a role's inline policies, as sent (canonical JSON) and as
/// IAM counts it (whitespace ignored), against the 10,240-character quota.
pub fn validate_inline_policies_size<'a, I>(
    field: &str,
    documents: I,
) -> Result<(), ValidationError>
where
    I: IntoIterator<Item = &'a PolicyDocument>,
{
    let size: usize = documents
        .into_iter()
        .map(PolicyDocument::non_whitespace_len)
        .sum();
    if size > INLINE_POLICIES_MAX_SIZE {
        return Err(ValidationError::InlinePoliciesTooLarge {
            field: field.to_owned(),
            size,
            max: INLINE_POLICIES_MAX_SIZE,
        });
    }
    Ok(())
}

/// Number of managed policies to attach: at most 20 (see
/// [`MAX_MANAGED_POLICIES`]).
pub fn validate_managed_policy_count(field: &str, count: usize) -> Result<(), ValidationError> {
    if count > MAX_MANAGED_POLICIES {
        return Err(ValidationError::TooManyManagedPolicies {
            field: field.to_owned(),
            count,
            max: MAX_MANAGED_POLICIES,
            default: DEFAULT_MANAGED_POLICIES_QUOTA,
        });
    }
    Ok(())
}

/// Token audience: 1–255 characters (the OIDC provider's client-ID limit),
/// without whitespace or control characters. IAM sets no format, but an
/// audience with a space in it is a YAML slip, not an identifier.
pub fn validate_audience(field: &str, audience: &str) -> Result<(), ValidationError> {
    check_length(field, "an audience", audience, true, AUDIENCE_MAX_LEN)?;
    check_chars(field, "an audience", audience, AUDIENCE_CHARS, |c| {
        !c.is_whitespace() && !c.is_control()
    })
}

/// Whether `partition` is one IAM roles can live in.
pub fn is_known_partition(partition: &str) -> bool {
    PARTITIONS.contains(&partition)
}

/// Refuses partitions other than [`PARTITIONS`].
pub fn validate_arn_partition(field: &str, partition: &str) -> Result<(), ValidationError> {
    if !is_known_partition(partition) {
        return Err(ValidationError::UnknownPartition {
            field: field.to_owned(),
            partition: partition.to_owned(),
        });
    }
    Ok(())
}

/// The six parts of an ARN, `arn:partition:service:region:account:resource`.
/// The resource keeps any further colons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

/// Why a string is not an ARN at all. Messages complete the sentence
/// "… is not an ARN: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    #[error("it does not start with \"arn:\"")]
    MissingPrefix,
    #[error(
        "it has {found} colon-separated parts; an ARN has six: \
         arn:partition:service:region:account:resource"
    )]
    TooFewParts { found: usize },
    #[error("its {part} is empty")]
    EmptyPart { part: &'static str },
}

impl Arn {
    pub fn parse(text: &str) -> Result<Self, ArnError> {
        let mut parts = text.splitn(6, ':');
        if parts.next() != Some("arn") {
            return Err(ArnError::MissingPrefix);
        }
        let rest: Vec<&str> = parts.collect();
        let &[partition, service, region, account, resource] = rest.as_slice() else {
            return Err(ArnError::TooFewParts {
                found: rest.len() + 1,
            });
        };
        for (part, value) in [
            ("partition", partition),
            ("service", service),
            ("resource", resource),
        ] {
            if value.is_empty() {
                return Err(ArnError::EmptyPart { part });
            }
        }
        Ok(Arn {
            partition: partition.to_owned(),
            service: service.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            resource: resource.to_owned(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

/// A parsed IAM managed policy ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyArn {
    pub partition: String,
    /// A 12-digit account ID, or `aws` for AWS managed policies.
    pub account: String,
    /// `/` or `/…/`.
    pub path: String,
    pub name: String,
}

/// A parsed IAM role ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    pub partition: String,
    pub account: String,
    /// `/` or `/…/`.
    pub path: String,
    pub name: String,
}

impl std::fmt::Display for RoleArn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "arn:{}:iam::{}:role{}{}",
            self.partition, self.account, self.path, self.name
        )
    }
}

const POLICY_ARN_EXPECTED: &str =
    "an IAM managed policy ARN like arn:aws:iam::123456789012:policy/my-policy";
const BOUNDARY_ARN_EXPECTED: &str = "a permissions boundary (an IAM managed policy ARN like arn:aws:iam::123456789012:policy/boundary)";
const ROLE_ARN_EXPECTED: &str = "an IAM role ARN like arn:aws:iam::123456789012:role/my-role";

/// Parses `arn:<partition>:iam::<12 digits or "aws">:policy/<path><name>`.
pub fn parse_managed_policy_arn(field: &str, text: &str) -> Result<PolicyArn, ValidationError> {
    let parts = parse_iam_arn(
        field,
        text,
        POLICY_ARN_EXPECTED,
        "policy",
        true,
        POLICY_NAME_MAX_LEN,
    )?;
    Ok(PolicyArn {
        partition: parts.partition,
        account: parts.account,
        path: parts.path,
        name: parts.name,
    })
}

/// Checks a managed policy ARN to attach; see [`parse_managed_policy_arn`].
pub fn validate_managed_policy_arn(field: &str, text: &str) -> Result<(), ValidationError> {
    parse_managed_policy_arn(field, text).map(|_| ())
}

/// A permissions boundary is a managed policy ARN (AWS or customer managed).
pub fn validate_permissions_boundary_arn(field: &str, text: &str) -> Result<(), ValidationError> {
    parse_iam_arn(
        field,
        text,
        BOUNDARY_ARN_EXPECTED,
        "policy",
        true,
        POLICY_NAME_MAX_LEN,
    )
    .map(|_| ())
}

/// Parses `arn:<partition>:iam::<12 digits>:role/<path><name>`.
pub fn parse_role_arn(field: &str, text: &str) -> Result<RoleArn, ValidationError> {
    let parts = parse_iam_arn(
        field,
        text,
        ROLE_ARN_EXPECTED,
        "role",
        false,
        ROLE_NAME_MAX_LEN,
    )?;
    Ok(RoleArn {
        partition: parts.partition,
        account: parts.account,
        path: parts.path,
        name: parts.name,
    })
}

struct IamArnParts {
    partition: String,
    account: String,
    path: String,
    name: String,
}

fn parse_iam_arn(
    field: &str,
    text: &str,
    expected: &'static str,
    resource_type: &str,
    allow_aws_account: bool,
    name_max: usize,
) -> Result<IamArnParts, ValidationError> {
    let invalid = |reason: String| ValidationError::InvalidArn {
        field: field.to_owned(),
        value: text.to_owned(),
        expected,
        reason,
    };
    let length = text.chars().count();
    if length > ARN_MAX_LEN {
        return Err(invalid(format!(
            "it is {length} characters long; IAM accepts at most {ARN_MAX_LEN}"
        )));
    }
    let arn = Arn::parse(text).map_err(|e| invalid(e.to_string()))?;
    if !is_known_partition(&arn.partition) {
        return Err(invalid(format!(
            "partition {:?} is not one of {}",
            arn.partition,
            PARTITIONS.join(", ")
        )));
    }
    if arn.service != "iam" {
        return Err(invalid(format!(
            "its service is {:?}, not \"iam\"",
            arn.service
        )));
    }
    if !arn.region.is_empty() {
        return Err(invalid(format!(
            "IAM is global, so the region part must be empty, not {:?}",
            arn.region
        )));
    }
    let account_ok = is_account_id(&arn.account) || (allow_aws_account && arn.account == "aws");
    if !account_ok {
        let wanted = if allow_aws_account {
            "a 12-digit account ID or \"aws\""
        } else {
            "a 12-digit account ID"
        };
        return Err(invalid(format!(
            "its account {:?} is not {wanted}",
            arn.account
        )));
    }
    let Some(path_and_name) = arn
        .resource
        .strip_prefix(resource_type)
        .filter(|rest| rest.starts_with('/'))
    else {
        return Err(invalid(format!(
            "its resource {:?} does not start with \"{resource_type}/\"",
            arn.resource
        )));
    };
    // `path_and_name` starts with '/', so a last '/' always exists.
    let split = path_and_name.rfind('/').unwrap_or(0) + 1;
    let (path, name) = path_and_name.split_at(split);
    if path.len() > ROLE_PATH_MAX_LEN {
        return Err(invalid(format!(
            "its path is {} characters long; IAM allows at most {ROLE_PATH_MAX_LEN}",
            path.len()
        )));
    }
    if let Some(c) = path.chars().find(|&c| !is_path_char(c)) {
        return Err(invalid(format!(
            "its path contains {c:?}; use only {PATH_CHARS}"
        )));
    }
    if name.is_empty() {
        return Err(invalid("its name is empty".to_owned()));
    }
    let name_length = name.chars().count();
    if name_length > name_max {
        return Err(invalid(format!(
            "its name is {name_length} characters long; IAM allows at most {name_max}"
        )));
    }
    if let Some(c) = name.chars().find(|&c| !is_role_name_char(c)) {
        return Err(invalid(format!(
            "its name contains {c:?}; use only {NAME_CHARS}"
        )));
    }
    Ok(IamArnParts {
        partition: arn.partition,
        account: arn.account,
        path: path.to_owned(),
        name: name.to_owned(),
    })
}

fn is_account_id(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

fn is_path_char(c: char) -> bool {
    ('!'..='~').contains(&c)
}

fn is_description_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{A1}'..='\u{FF}')
}

fn is_tag_char(c: char) -> bool {
    // `\p{Z}` is exactly the whitespace that is not a control character.
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

fn check_length(
    field: &str,
    what: &'static str,
    value: &str,
    required: bool,
    max: usize,
) -> Result<(), ValidationError> {
    // IAM's length limits count characters, not UTF-8 bytes.
    let length = value.chars().count();
    if required && length == 0 {
        return Err(ValidationError::Empty {
            field: field.to_owned(),
            what,
            max,
        });
    }
    if length > max {
        return Err(ValidationError::TooLong {
            field: field.to_owned(),
            what,
            length,
            max,
        });
    }
    Ok(())
}

fn check_chars(
    field: &str,
    what: &'static str,
    value: &str,
    allowed: &'static str,
    is_allowed: impl Fn(char) -> bool,
) -> Result<(), ValidationError> {
    match value.chars().find(|&c| !is_allowed(c)) {
        Some(found) => Err(ValidationError::InvalidCharacter {
            field: field.to_owned(),
            what,
            found,
            allowed,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap};

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn role_name_table() {
        let ok = ["a", "MyRole", "role+=,.@_-1", &"r".repeat(64)];
        for name in ok {
            assert_eq!(validate_role_name("spec.role.name", name), Ok(()), "{name}");
        }
        let too_long = "r".repeat(65);
        let bad = [
            ("", "is empty"),
            (
                too_long.as_str(),
                "is 65 characters long; IAM allows at most 64",
            ),
            ("my role", "contains ' '"),
            ("a/b", "contains '/'"),
            ("rôle", "contains 'ô'"),
        ];
        for (name, message) in bad {
            let err = validate_role_name("spec.role.name", name).expect_err(name);
            let text = err.to_string();
            assert!(text.starts_with("spec.role.name "), "{text}");
            assert!(text.contains(message), "{text}");
            assert_eq!(err.field(), "spec.role.name");
        }
    }

    #[test]
    fn role_name_error_tells_the_fix() {
        let err = validate_role_name("spec.role.name", "a b").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "spec.role.name contains ' ', which IAM does not allow in a role name; \
             use only letters, digits and + = , . @ _ -"
        );
    }

    #[test]
    fn role_path_table() {
        let max = format!("/{}/", "p".repeat(510));
        for path in [
            "/",
            "/a/",
            "/team/app/",
            "/a//b/",
            "///",
            "/!~/",
            max.as_str(),
        ] {
            assert_eq!(validate_role_path("spec.role.path", path), Ok(()), "{path}");
        }
        let too_long = format!("/{}/", "p".repeat(511));
        let cases: [(&str, &str); 8] = [
            ("", "is empty"),
            ("//", "an IAM path is \"/\" or begins and ends with \"/\""),
            ("team", "an IAM path is"),
            ("/team", "an IAM path is"),
            ("team/", "an IAM path is"),
            ("/te am/", "contains ' '"),
            ("/t\u{7f}/", "contains '\\u{7f}'"),
            (
                too_long.as_str(),
                "is 513 characters long; IAM allows at most 512",
            ),
        ];
        for (path, message) in cases {
            let err = validate_role_path("spec.role.path", path).expect_err(path);
            assert!(err.to_string().contains(message), "{path}: {err}");
        }
    }

    #[test]
    fn description_table() {
        let ok = [
            "",
            "Role for external-dns in kube-system",
            "tabs\tand\nnewlines\r",
            "Größe ¡ÿ",
        ];
        for d in ok {
            assert_eq!(
                validate_description("spec.role.description", d),
                Ok(()),
                "{d}"
            );
        }
        assert_eq!(
            validate_description("spec.role.description", &"d".repeat(1000)),
            Ok(())
        );
        let err =
            validate_description("spec.role.description", &"d".repeat(1001)).expect_err("too long");
        assert!(
            err.to_string()
                .contains("is 1001 characters long; IAM allows at most 1000")
        );
        for (d, c) in [
            ("emoji 🚀", '🚀'),
            ("日本", '日'),
            ("nbsp\u{A0}", '\u{A0}'),
            ("bell\u{7}", '\u{7}'),
            ("\u{7f}", '\u{7f}'),
        ] {
            let err = validate_description("spec.role.description", d).expect_err(d);
            assert!(
                matches!(err, ValidationError::InvalidCharacter { found, .. } if found == c),
                "{d}: {err}"
            );
        }
    }

    #[test]
    fn description_length_counts_characters_not_bytes() {
        // 1000 two-byte Latin-1 characters are 2000 bytes but within the limit.
        assert_eq!(
            validate_description("spec.role.description", &"é".repeat(1000)),
            Ok(())
        );
    }

    #[test]
    fn max_session_duration_table() {
        for s in [3600, 7200, 43_200] {
            assert_eq!(
                validate_max_session_duration("spec.role.maxSessionDurationSeconds", s),
                Ok(())
            );
        }
        for s in [i64::MIN, -1, 0, 100, 3599, 43_201, i64::MAX] {
            assert!(validate_max_session_duration("x", s).is_err(), "{s}");
        }
    }

    #[test]
    fn max_session_duration_message_matches_the_contract() {
        let err = validate_max_session_duration("spec.role.maxSessionDurationSeconds", 100)
            .expect_err("out of range");
        assert_eq!(
            err.to_string(),
            "spec.role.maxSessionDurationSeconds is 100; IAM allows 3600 to 43200"
        );
    }

    #[test]
    fn tags_accept_typical_and_unicode_values() {
        let t = tags(&[
            ("team", "dns"),
            ("cost-center", "41200"),
            ("Owner Name", "Zoë Ünal"),
            ("path/like:key", "a=b+c@d_e.f"),
            ("日本語", "東京"),
            ("empty", ""),
            ("ideographic space", "a\u{3000}b"),
        ]);
        assert_eq!(validate_tags("spec.role.tags", &t, 5), Ok(()));
    }

    #[test]
    fn tags_accept_hashmap_and_str_pairs() {
        let mut map = HashMap::new();
        map.insert("team".to_owned(), "dns".to_owned());
        assert_eq!(validate_tags("spec.role.tags", &map, 0), Ok(()));
        assert_eq!(validate_tags("spec.role.tags", [("a", "b")], 0), Ok(()));
    }

    #[test]
    fn tag_key_limits() {
        assert_eq!(
            validate_tags("t", [("k".repeat(128), String::new())], 0),
            Ok(())
        );
        let err = validate_tags("t", [("k".repeat(129), String::new())], 0).expect_err("long");
        assert!(
            matches!(
                err,
                ValidationError::TooLong {
                    max: 128,
                    length: 129,
                    ..
                }
            ),
            "{err}"
        );
        let err = validate_tags("t", [("", "v")], 0).expect_err("empty");
        assert!(matches!(err, ValidationError::Empty { .. }), "{err}");
        // 128 multi-byte characters are fine: limits count characters.
        assert_eq!(
            validate_tags("t", [("ü".repeat(128), "v".to_owned())], 0),
            Ok(())
        );
    }

    #[test]
    fn tag_value_limits() {
        assert_eq!(validate_tags("t", [("k", "v".repeat(256))], 0), Ok(()));
        let err = validate_tags("spec.role.tags", [("k", "v".repeat(257))], 0).expect_err("long");
        assert!(
            err.to_string()
                .starts_with("spec.role.tags[\"k\"] is 257 characters long"),
            "{err}"
        );
    }

    #[test]
    fn tag_characters_outside_the_set_are_refused() {
        for (key, value, bad) in [
            ("a!b", "v", '!'),
            ("k", "v#1", '#'),
            ("k", "tab\there", '\t'),
            ("k", "new\nline", '\n'),
            ("emoji🚀", "v", '🚀'),
            ("k", "*", '*'),
            ("k", "a,b", ','),
        ] {
            let err = validate_tags("spec.role.tags", [(key, value)], 0).expect_err(key);
            assert!(
                matches!(err, ValidationError::InvalidCharacter { found, .. } if found == bad),
                "{key}={value}: {err}"
            );
        }
    }

    #[test]
    fn aws_prefixed_keys_are_refused_in_any_case() {
        for key in ["aws:team", "AWS:team", "Aws:x", "aWs:"] {
            let err = validate_tags("spec.role.tags", [(key, "v")], 0).expect_err(key);
            assert_eq!(
                err,
                ValidationError::ReservedTagKey {
                    field: "spec.role.tags".to_owned(),
                    key: key.to_owned()
                }
            );
            assert!(err.to_string().contains("reserves"));
        }
        // Only the prefix is reserved.
        assert_eq!(
            validate_tags("t", [("my-aws:key", "v"), ("aws", "v")], 0),
            Ok(())
        );
    }

    #[test]
    fn tag_keys_differing_only_in_case_are_refused() {
        let t = tags(&[("Team", "a"), ("team", "b")]);
        let err = validate_tags("spec.role.tags", &t, 0).expect_err("dup");
        assert!(
            matches!(err, ValidationError::DuplicateTagKey { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("differ only in case"));
    }

    #[test]
    fn tag_count_includes_reserved_tags() {
        let fifty: BTreeMap<String, String> =
            (0..50).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(validate_tags("t", &fifty, 0), Ok(()));
        let forty_five: BTreeMap<String, String> =
            (0..45).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(validate_tags("t", &forty_five, 5), Ok(()));
        let err = validate_tags("spec.role.tags", &forty_five, 6).expect_err("too many");
        assert_eq!(
            err.to_string(),
            "spec.role.tags has 45 tags and the operator adds 6 of its own; IAM allows at \
             most 50 tags on a role: remove 1"
        );
        assert!(validate_tags("t", &fifty, 1).is_err());
        assert!(validate_tags("t", tags(&[]), usize::MAX).is_err());
    }

    #[test]
    fn inline_policy_name_table() {
        for name in ["route53-changes", "a", "A_b.c@d=e+f,g", &"p".repeat(128)] {
            assert_eq!(
                validate_inline_policy_name("spec.policies.inline", name),
                Ok(())
            );
        }
        for name in ["", "has space", "slash/", &"p".repeat(129), "ü"] {
            assert!(
                validate_inline_policy_name("spec.policies.inline", name).is_err(),
                "{name}"
            );
        }
    }

    fn policy_of_size(resource_len: usize) -> PolicyDocument {
        PolicyDocument::parse(&format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"s3:GetObject","Resource":"{}"}}}}"#,
            "r".repeat(resource_len)
        ))
        .expect("valid")
    }

    #[test]
    fn inline_policies_size_limit_is_across_all_policies() {
        let base = policy_of_size(0).non_whitespace_len();
        let exact_half = policy_of_size(5120 - base);
        assert_eq!(exact_half.non_whitespace_len(), 5120);
        assert_eq!(
            validate_inline_policies_size("spec.policies.inline", [&exact_half, &exact_half]),
            Ok(())
        );
        let one_more = policy_of_size(5121 - base);
        let err = validate_inline_policies_size("spec.policies.inline", [&exact_half, &one_more])
            .expect_err("too large");
        assert_eq!(
            err,
            ValidationError::InlinePoliciesTooLarge {
                field: "spec.policies.inline".to_owned(),
                size: 10_241,
                max: 10_240
            }
        );
        assert!(
            err.to_string()
                .contains("move statements into a managed policy")
        );
        assert_eq!(
            validate_inline_policies_size("x", std::iter::empty()),
            Ok(())
        );
    }

    #[test]
    fn inline_policies_size_ignores_whitespace_in_the_source() {
        let spaced = PolicyDocument::parse(
            "{ \"Statement\" :\n [ { \"Effect\" : \"Allow\" , \"Action\" : \"s3:*\" , \"Resource\" : \"*\" } ] }",
        )
        .expect("valid");
        let compact = PolicyDocument::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        )
        .expect("valid");
        assert_eq!(spaced.non_whitespace_len(), compact.non_whitespace_len());
    }

    #[test]
    fn managed_policy_count_table() {
        for n in [0, 1, 10, 11, 20] {
            assert_eq!(
                validate_managed_policy_count("spec.policies.managed", n),
                Ok(())
            );
        }
        let err = validate_managed_policy_count("spec.policies.managed", 21).expect_err("21");
        assert_eq!(
            err.to_string(),
            "spec.policies.managed lists 21 managed policies; IAM attaches at most 20 to a \
             role (10 unless the account's quota was raised): combine some into one customer \
             managed policy"
        );
    }

    #[test]
    fn audience_table() {
        for aud in [
            "sts.amazonaws.com",
            "https://example.com/aud",
            &"a".repeat(255),
        ] {
            assert_eq!(validate_audience("spec.audience", aud), Ok(()));
        }
        let long = "a".repeat(256);
        for (aud, message) in [
            ("", "is empty"),
            (long.as_str(), "is 256 characters long"),
            ("sts.amazonaws.com ", "contains ' '"),
            ("a\tb", "contains '\\t'"),
        ] {
            let err = validate_audience("spec.audience", aud).expect_err(aud);
            assert!(err.to_string().contains(message), "{err}");
        }
    }

    #[test]
    fn partition_table() {
        for p in PARTITIONS {
            assert!(is_known_partition(p));
            assert_eq!(validate_arn_partition("x", p), Ok(()));
        }
        for p in ["", "AWS", "aws-us", "azure"] {
            assert!(!is_known_partition(p));
            let err = validate_arn_partition("spec.roleArn", p).expect_err(p);
            assert!(err.to_string().contains("aws-iso-b"), "{err}");
        }
    }

    #[test]
    fn arn_parse_splits_six_parts() {
        let arn = Arn::parse("arn:aws:s3:::bucket/key:with:colons").expect("valid");
        assert_eq!(arn.partition, "aws");
        assert_eq!(arn.service, "s3");
        assert_eq!(arn.region, "");
        assert_eq!(arn.account, "");
        assert_eq!(arn.resource, "bucket/key:with:colons");
        assert_eq!(arn.to_string(), "arn:aws:s3:::bucket/key:with:colons");
    }

    #[test]
    fn arn_parse_errors() {
        assert_eq!(Arn::parse(""), Err(ArnError::MissingPrefix));
        assert_eq!(
            Arn::parse("ARN:aws:iam::1:role/x"),
            Err(ArnError::MissingPrefix)
        );
        assert_eq!(
            Arn::parse("arn:aws:iam"),
            Err(ArnError::TooFewParts { found: 3 })
        );
        assert_eq!(
            Arn::parse("arn::iam::123456789012:role/x"),
            Err(ArnError::EmptyPart { part: "partition" })
        );
        assert_eq!(
            Arn::parse("arn:aws:::123456789012:role/x"),
            Err(ArnError::EmptyPart { part: "service" })
        );
        assert_eq!(
            Arn::parse("arn:aws:iam::123456789012:"),
            Err(ArnError::EmptyPart { part: "resource" })
        );
    }

    #[test]
    fn managed_policy_arns_accepted() {
        let cases = [
            (
                "arn:aws:iam::aws:policy/AmazonRoute53ReadOnlyAccess",
                "aws",
                "aws",
                "/",
                "AmazonRoute53ReadOnlyAccess",
            ),
            (
                "arn:aws:iam::aws:policy/service-role/AmazonEKSClusterPolicy",
                "aws",
                "aws",
                "/service-role/",
                "AmazonEKSClusterPolicy",
            ),
            (
                "arn:aws:iam::123456789012:policy/team/dns/route53-changes",
                "aws",
                "123456789012",
                "/team/dns/",
                "route53-changes",
            ),
            (
                "arn:aws-cn:iam::123456789012:policy/p",
                "aws-cn",
                "123456789012",
                "/",
                "p",
            ),
            (
                "arn:aws-us-gov:iam::123456789012:policy/p",
                "aws-us-gov",
                "123456789012",
                "/",
                "p",
            ),
            (
                "arn:aws-iso-b:iam::123456789012:policy/p",
                "aws-iso-b",
                "123456789012",
                "/",
                "p",
            ),
        ];
        for (text, partition, account, path, name) in cases {
            let parsed = parse_managed_policy_arn("spec.policies.managed[0]", text).expect(text);
            assert_eq!(
                parsed,
                PolicyArn {
                    partition: partition.to_owned(),
                    account: account.to_owned(),
                    path: path.to_owned(),
                    name: name.to_owned()
                }
            );
            assert_eq!(validate_managed_policy_arn("x", text), Ok(()));
            assert_eq!(validate_permissions_boundary_arn("x", text), Ok(()));
        }
    }

    #[test]
    fn managed_policy_arns_refused_with_reason() {
        let long_name = format!("arn:aws:iam::123456789012:policy/{}", "n".repeat(129));
        let too_long = format!("arn:aws:iam::123456789012:policy/{}/n", "p".repeat(2048));
        let cases: [(&str, &str); 13] = [
            ("AmazonS3ReadOnlyAccess", "does not start with \"arn:\""),
            ("arn:aws:iam::aws", "colon-separated parts"),
            ("arn:azure:iam::aws:policy/x", "partition \"azure\""),
            ("arn:aws:s3::aws:policy/x", "service is \"s3\""),
            (
                "arn:aws:iam:us-east-1:aws:policy/x",
                "region part must be empty",
            ),
            (
                "arn:aws:iam::12345:policy/x",
                "not a 12-digit account ID or \"aws\"",
            ),
            (
                "arn:aws:iam::12345678901a:policy/x",
                "not a 12-digit account ID",
            ),
            (
                "arn:aws:iam::123456789012:role/x",
                "does not start with \"policy/\"",
            ),
            (
                "arn:aws:iam::123456789012:policyx/y",
                "does not start with \"policy/\"",
            ),
            ("arn:aws:iam::123456789012:policy/team/", "name is empty"),
            (
                "arn:aws:iam::123456789012:policy/bad name",
                "name contains ' '",
            ),
            (long_name.as_str(), "name is 129 characters long"),
            (too_long.as_str(), "IAM accepts at most 2048"),
        ];
        for (text, reason) in cases {
            let err =
                validate_managed_policy_arn("spec.policies.managed[0]", text).expect_err(text);
            let message = err.to_string();
            assert!(message.contains(reason), "{text}: {message}");
            assert!(
                message.starts_with("spec.policies.managed[0] is "),
                "{message}"
            );
            assert!(
                message.contains("an IAM managed policy ARN like"),
                "{message}"
            );
        }
    }

    #[test]
    fn permissions_boundary_error_names_the_boundary() {
        let err = validate_permissions_boundary_arn(
            "spec.role.permissionsBoundary",
            "arn:aws:iam::123456789012:role/x",
        )
        .expect_err("role is not a policy");
        assert!(err.to_string().contains("a permissions boundary"), "{err}");
    }

    #[test]
    fn role_arns_parse_into_parts() {
        let parsed = parse_role_arn(
            "spec.roleArn",
            "arn:aws:iam::123456789012:role/platform/s3-reader",
        )
        .expect("valid");
        assert_eq!(
            parsed,
            RoleArn {
                partition: "aws".to_owned(),
                account: "123456789012".to_owned(),
                path: "/platform/".to_owned(),
                name: "s3-reader".to_owned()
            }
        );
        let root = parse_role_arn("x", "arn:aws-cn:iam::123456789012:role/r").expect("valid");
        assert_eq!(root.path, "/");
        assert_eq!(root.name, "r");
    }

    #[test]
    fn role_arns_print_as_they_were_parsed() {
        for text in [
            "arn:aws:iam::123456789012:role/platform/s3-reader",
            "arn:aws-cn:iam::123456789012:role/r",
            "arn:aws-us-gov:iam::210987654321:role/a/b/c/name+=,.@_-",
        ] {
            assert_eq!(parse_role_arn("x", text).expect(text).to_string(), text);
        }
    }

    #[test]
    fn role_arns_refused() {
        let long = format!("arn:aws:iam::123456789012:role/{}", "r".repeat(65));
        for (text, reason) in [
            ("arn:aws:iam::aws:role/x", "not a 12-digit account ID"),
            (
                "arn:aws:iam::123456789012:policy/x",
                "does not start with \"role/\"",
            ),
            (
                "arn:aws:iam::123456789012:user/x",
                "does not start with \"role/\"",
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/x/session",
                "service is \"sts\"",
            ),
            (
                long.as_str(),
                "name is 65 characters long; IAM allows at most 64",
            ),
            ("arn:aws:iam::123456789012:role/a b/c", "path contains ' '"),
        ] {
            let err = parse_role_arn("spec.roleArn", text).expect_err(text);
            assert!(err.to_string().contains(reason), "{text}: {err}");
            assert!(err.to_string().contains("an IAM role ARN like"));
        }
    }

    proptest! {
        #[test]
        fn prop_role_arn_round_trips(
            account in "[0-9]{12}",
            segments in prop::collection::vec("[A-Za-z0-9_.-]{1,10}", 0..4),
            name in "[A-Za-z0-9+=,.@_-]{1,64}",
        ) {
            let path = if segments.is_empty() { "/".to_owned() } else { format!("/{}/", segments.join("/")) };
            let text = format!("arn:aws:iam::{account}:role{path}{name}");
            let parsed = parse_role_arn("x", &text).expect("valid");
            prop_assert_eq!(&parsed.account, &account);
            prop_assert_eq!(&parsed.path, &path);
            prop_assert_eq!(&parsed.name, &name);
            prop_assert_eq!(validate_role_path("x", &parsed.path), Ok(()));
            prop_assert_eq!(validate_role_name("x", &parsed.name), Ok(()));
        }

        #[test]
        fn prop_generated_role_names_validate(ns in "\\PC{0,70}", name in "\\PC{0,260}") {
            let generated = super::super::naming::role_name("iam-operator", "prod", &ns, &name);
            prop_assert_eq!(validate_role_name("x", &generated), Ok(()));
        }

        #[test]
        fn prop_session_duration_in_range(seconds in any::<i64>()) {
            let ok = (3600..=43_200).contains(&seconds);
            prop_assert_eq!(validate_max_session_duration("x", seconds).is_ok(), ok);
        }
    }
}
