//! Trust policies: the ones the operator generates for IRSA and EKS Pod
//! Identity, and the checks run on trust policies found on existing roles so
//! that a mismatch becomes a named reason before a pod ever fails to assume
//! the role.
//!
//! Pure: no I/O, no async. The checks are a deliberately small model of IAM's
//! evaluation; where they cannot be sure they say so instead of guessing.

use serde_json::{Map, Value, json};

use super::document::{CURRENT_POLICY_VERSION, PolicyDocument};

/// The service principal EKS Pod Identity assumes roles as.
pub const POD_IDENTITY_SERVICE: &str = "pods.eks.amazonaws.com";
/// The action a projected ServiceAccount token is exchanged with (IRSA).
pub const ASSUME_ROLE_WITH_WEB_IDENTITY: &str = "sts:AssumeRoleWithWebIdentity";
/// Actions EKS Pod Identity needs: it assumes the role and tags the session.
pub const POD_IDENTITY_ACTIONS: [&str; 2] = ["sts:AssumeRole", "sts:TagSession"];

/// The issuer URL without `https://` and trailing slashes, which is how IAM
/// names the OIDC provider and prefixes its condition keys
/// (`<host/path>:sub`, `<host/path>:aud`).
pub fn issuer_host_path(issuer_url: &str) -> &str {
    let scheme = "https://";
    let without_scheme = match issuer_url.get(..scheme.len()) {
        Some(head) if head.eq_ignore_ascii_case(scheme) => &issuer_url[scheme.len()..],
        _ => issuer_url,
    };
    without_scheme.trim_end_matches('/')
}

/// ARN of the IAM OIDC provider for an issuer:
/// `arn:<partition>:iam::<account>:oidc-provider/<host/path>`.
pub fn oidc_provider_arn(partition: &str, account_id: &str, issuer_url: &str) -> String {
    format!(
        "arn:{partition}:iam::{account_id}:oidc-provider/{}",
        issuer_host_path(issuer_url)
    )
}

/// The `sub` claim Kubernetes puts in a ServiceAccount token.
pub fn service_account_subject(namespace: &str, service_account: &str) -> String {
    format!("system:serviceaccount:{namespace}:{service_account}")
}

/// Trust policy for IRSA: the cluster's OIDC provider may assume the role
/// with a token for exactly this ServiceAccount and audience.
pub fn irsa_trust_policy(
    provider_arn: &str,
    issuer_url: &str,
    namespace: &str,
    service_account: &str,
    audience: &str,
) -> PolicyDocument {
    let host = issuer_host_path(issuer_url);
    let mut string_equals = Map::new();
    string_equals.insert(
        format!("{host}:sub"),
        json!(service_account_subject(namespace, service_account)),
    );
    string_equals.insert(format!("{host}:aud"), json!(audience));
    PolicyDocument::from_checked(&json!({
        "Version": CURRENT_POLICY_VERSION,
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": provider_arn },
            "Action": ASSUME_ROLE_WITH_WEB_IDENTITY,
            "Condition": { "StringEquals": string_equals },
        }],
    }))
}

/// Whether a role's trust admits tokens of exactly one ServiceAccount and
/// nothing else, proven from the document's shape rather than by trying
/// other subjects: every Allow statement is `sts:AssumeRoleWithWebIdentity`
/// from `provider_arn` alone, with a condition on `<issuer>:sub` that names
/// this ServiceAccount and only it (`StringEquals`, or `StringLike` without
/// `*` or `?`), and no condition the operator does not model; and this
/// ServiceAccount's token is admitted (no Deny takes it away). `Err` says
/// why not, for a person to read.
pub fn irsa_trust_is_exactly(
    doc: &PolicyDocument,
    provider_arn: &str,
    issuer_url: &str,
    namespace: &str,
    service_account: &str,
    audience: &str,
) -> Result<(), String> {
    let subject = service_account_subject(namespace, service_account);
    let host = issuer_host_path(issuer_url);
    let sub_key = format!("{host}:sub");
    let aud_key = format!("{host}:aud");
    for statement in doc.statements().filter(|st| effect_is(st, "Allow")) {
        let shown = || Value::Object(statement.clone()).to_string();
        let principal_is_provider = match statement.get("Principal") {
            Some(Value::Object(kinds)) => {
                kinds.len() == 1
                    && kinds.get("Federated").is_some_and(|ids| {
                        string_values(ids).all(|id| id.eq_ignore_ascii_case(provider_arn))
                    })
            }
            _ => false,
        };
        let actions_are_web_identity = statement.get("Action").is_some_and(|actions| {
            string_values(actions).all(|a| a.eq_ignore_ascii_case(ASSUME_ROLE_WITH_WEB_IDENTITY))
        });
        if !principal_is_provider || !actions_are_web_identity {
            return Err(format!(
                "its trust policy allows more than {ASSUME_ROLE_WITH_WEB_IDENTITY} from \
                 {provider_arn}: {}",
                shown()
            ));
        }
        let mut names_only_this_subject = false;
        for (operator, block) in statement
            .get("Condition")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let Some(block) = block.as_object() else {
                return Err(format!(
                    "its trust policy has a malformed condition: {}",
                    shown()
                ));
            };
            for (key, values) in block {
                let is_sub = key.eq_ignore_ascii_case(&sub_key);
                let modelled = matches!(operator.as_str(), "StringEquals" | "StringLike")
                    && (is_sub || key.eq_ignore_ascii_case(&aud_key));
                if !modelled {
                    return Err(format!(
                        "its trust policy has a condition ({operator} on {key}) beyond what the \
                         operator can vouch for: {}",
                        shown()
                    ));
                }
                if is_sub {
                    let listed: Vec<&str> = string_values(values).collect();
                    let exact = listed.len() == 1
                        && listed[0] == subject
                        && (operator == "StringEquals" || !listed[0].contains(['*', '?']));
                    if !exact {
                        return Err(format!(
                            "its trust policy admits other ServiceAccounts too ({operator} \
                             {key}: {}), not exactly {subject}",
                            Value::from(listed)
                        ));
                    }
                    names_only_this_subject = true;
                }
            }
        }
        if !names_only_this_subject {
            return Err(format!(
                "a statement of its trust policy admits any ServiceAccount of the cluster (no \
                 condition on {sub_key}): {}",
                shown()
            ));
        }
    }
    let verdict = irsa_trust_admits(
        doc,
        provider_arn,
        issuer_url,
        namespace,
        service_account,
        audience,
    );
    if !verdict.is_admitted() {
        return Err(format!(
            "its trust policy does not admit {subject}: {}",
            verdict.explain()
        ));
    }
    Ok(())
}

/// The one statement of [`irsa_trust_policy`], as compact JSON: what to add
/// to the trust of a role someone else manages.
pub fn irsa_trust_statement(
    provider_arn: &str,
    issuer_url: &str,
    namespace: &str,
    service_account: &str,
    audience: &str,
) -> String {
    let policy = irsa_trust_policy(
        provider_arn,
        issuer_url,
        namespace,
        service_account,
        audience,
    );
    let statement = policy.statements().next().cloned().unwrap_or_default();
    serde_json::to_string(&statement).unwrap_or_default()
}

/// Trust policy for EKS Pod Identity, as the EKS documentation gives it:
/// the Pod Identity service principal may assume the role and tag the session.
pub fn pod_identity_trust_policy() -> PolicyDocument {
    pod_identity_trust(None)
}

fn pod_identity_trust(string_equals: Option<Map<String, Value>>) -> PolicyDocument {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": { "Service": POD_IDENTITY_SERVICE },
        "Action": POD_IDENTITY_ACTIONS,
    });
    if let Some(conditions) = string_equals {
        statement["Condition"] = json!({ "StringEquals": conditions });
    }
    PolicyDocument::from_checked(&json!({
        "Version": CURRENT_POLICY_VERSION,
        "Statement": [statement],
    }))
}

/// Who may use a role the operator creates for Pod Identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentityScope<'a> {
    pub account: &'a str,
    pub cluster_arn: &'a str,
    pub namespace: &'a str,
    pub service_account: &'a str,
    /// Whether EKS passes its session tags (`disableSessionTags` unset).
    pub session_tags: bool,
}

/// Session tags EKS Pod Identity sets when it assumes a role.
pub const SESSION_TAG_CLUSTER_ARN: &str = "aws:RequestTag/eks-cluster-arn";
pub const SESSION_TAG_NAMESPACE: &str = "aws:RequestTag/kubernetes-namespace";
pub const SESSION_TAG_SERVICE_ACCOUNT: &str = "aws:RequestTag/kubernetes-service-account";

/// Trust policy for a role the operator creates for Pod Identity: the EKS
/// user guide's, with conditions on the session tags EKS sets, so that only
/// an association of this cluster, namespace and ServiceAccount can use
/// it; without the conditions any association in the account could. With
/// session tags off there are no tags to check: the role is kept to the
/// account only, and status says so.
pub fn scoped_pod_identity_trust_policy(scope: &PodIdentityScope) -> PolicyDocument {
    let mut string_equals = Map::new();
    string_equals.insert("aws:SourceAccount".into(), json!(scope.account));
    if scope.session_tags {
        string_equals.insert(SESSION_TAG_CLUSTER_ARN.into(), json!(scope.cluster_arn));
        string_equals.insert(SESSION_TAG_NAMESPACE.into(), json!(scope.namespace));
        string_equals.insert(
            SESSION_TAG_SERVICE_ACCOUNT.into(),
            json!(scope.service_account),
        );
    }
    pod_identity_trust(Some(string_equals))
}

/// Whether an action pattern from a policy (`sts:*`, `sts:Assume*`, `*`,
/// `s3:Get?bject`) covers an action. IAM action names are case-insensitive;
/// `*` matches any run of characters and `?` exactly one.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    glob_match(&pattern.to_lowercase(), &action.to_lowercase())
}

/// IAM-style wildcard match, case-sensitive (as `StringLike` is).
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was seen and how much text it has swallowed: on a
    // mismatch we let that star take one more character and retry, which
    // keeps the match linear-ish without recursion.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, swallowed)) => {
                    p = star + 1;
                    t = swallowed + 1;
                    backtrack = Some((star, swallowed + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether EKS Pod Identity can assume a role with this trust policy: Allow
/// statements naming the `pods.eks.amazonaws.com` service principal together
/// allow both `sts:AssumeRole` and `sts:TagSession`, and no Deny takes either
/// away.
///
/// Conditions are not evaluated: a conditional Allow counts as allowing and a
/// conditional Deny is assumed not to fire (such conditions are typically
/// `aws:SourceAccount` guards that the legitimate caller satisfies). So
/// `false` means the policy certainly does not admit Pod Identity; `true`
/// means it does unless a condition says otherwise.
pub fn trusts_pod_identity(doc: &PolicyDocument) -> bool {
    pod_identity_trust_gaps(doc).is_empty()
}

/// The actions Pod Identity needs that this trust policy does not give the
/// `pods.eks.amazonaws.com` principal, as [`trusts_pod_identity`] judges
/// them; empty when it gives all.
pub fn pod_identity_trust_gaps(doc: &PolicyDocument) -> Vec<&'static str> {
    POD_IDENTITY_ACTIONS
        .iter()
        .copied()
        .filter(|action| {
            let allowed = doc.statements().any(|st| {
                effect_is(st, "Allow")
                    && names_principal(st, "Service", POD_IDENTITY_SERVICE)
                    && covers_action(st, action)
            });
            let denied = doc.statements().any(|st| {
                effect_is(st, "Deny")
                    && !st.contains_key("Condition")
                    && names_principal(st, "Service", POD_IDENTITY_SERVICE)
                    && covers_action(st, action)
            });
            !allowed || denied
        })
        .collect()
}

/// Outcome of checking an IRSA trust policy for one ServiceAccount and
/// audience. Each failure carries what the operator needs to say what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustVerdict {
    /// A web-identity token for the ServiceAccount and audience can assume
    /// the role.
    Admitted,
    /// No Allow statement grants `sts:AssumeRoleWithWebIdentity` to a
    /// federated principal.
    NoWebIdentityStatement,
    /// Web-identity statements exist, but for other OIDC providers (for
    /// example another cluster's issuer).
    WrongProvider { found: Vec<String> },
    /// The `:sub` conditions admit other ServiceAccounts, not this one.
    SubjectMismatch { allowed: Vec<String> },
    /// The subject matches but the `:aud` conditions admit other audiences
    /// (the classic `sts.amazon.com` vs `sts.amazonaws.com`).
    AudienceMismatch { allowed: Vec<String> },
    /// An unconditional (or certainly matching) Deny removes the access.
    Denied,
    /// A condition uses an operator or key this check does not model, so it
    /// cannot say the token is admitted.
    CannotEvaluate { operator: String, key: String },
}

impl TrustVerdict {
    pub fn is_admitted(&self) -> bool {
        matches!(self, TrustVerdict::Admitted)
    }

    /// Why a token is not admitted, in the words of the policy's fields.
    pub fn explain(&self) -> String {
        let list = |items: &[String]| match items.is_empty() {
            true => "none".to_string(),
            false => items.join(", "),
        };
        match self {
            TrustVerdict::Admitted => "it is admitted".into(),
            TrustVerdict::NoWebIdentityStatement => {
                "no statement allows sts:AssumeRoleWithWebIdentity to a Federated principal".into()
            }
            TrustVerdict::WrongProvider { found } => format!(
                "its web identity statements federate other OIDC providers ({})",
                list(found)
            ),
            TrustVerdict::SubjectMismatch { allowed } => {
                format!("its :sub condition admits {} only", list(allowed))
            }
            TrustVerdict::AudienceMismatch { allowed } => {
                format!("its :aud condition admits audience {} only", list(allowed))
            }
            TrustVerdict::Denied => "a Deny statement takes the access away".into(),
            TrustVerdict::CannotEvaluate { operator, key } => format!(
                "a condition ({operator} on {key}) is beyond what the operator can check, so \
                 it cannot vouch for the role"
            ),
        }
    }
}

/// Checks whether a web-identity token for
/// `system:serviceaccount:<namespace>:<service_account>` with `audience`,
/// issued by `issuer_url`, could assume a role with this trust policy.
///
/// Modelled: Allow/Deny statements whose principal is the provider ARN (or
/// `"*"`), action patterns, and `StringEquals`/`StringLike` on
/// `<host/path>:sub` and `<host/path>:aud` (keys compared case-insensitively,
/// as IAM does). Any other operator (`…IfExists`, `ForAnyValue:…`,
/// `StringNotEquals`, …) or key yields [`TrustVerdict::CannotEvaluate`]
/// rather than a guess. That the OIDC provider itself lists the audience is
/// checked elsewhere: it is not part of the trust policy.
pub fn irsa_trust_admits(
    doc: &PolicyDocument,
    provider_arn: &str,
    issuer_url: &str,
    namespace: &str,
    service_account: &str,
    audience: &str,
) -> TrustVerdict {
    let request = WebIdentityRequest {
        sub_key: format!("{}:sub", issuer_host_path(issuer_url)),
        aud_key: format!("{}:aud", issuer_host_path(issuer_url)),
        subject: service_account_subject(namespace, service_account),
        audience,
    };

    let web_identity: Vec<&Map<String, Value>> = doc
        .statements()
        .filter(|st| {
            effect_is(st, "Allow")
                && covers_action(st, ASSUME_ROLE_WITH_WEB_IDENTITY)
                && has_federated_principal(st)
        })
        .collect();
    if web_identity.is_empty() {
        return TrustVerdict::NoWebIdentityStatement;
    }

    let ours: Vec<ConditionEval> = web_identity
        .iter()
        .filter(|st| names_principal(st, "Federated", provider_arn))
        .map(|st| request.evaluate(st))
        .collect();
    if ours.is_empty() {
        let found = sorted_unique(
            web_identity
                .iter()
                .flat_map(|st| principal_ids(st, "Federated"))
                .map(str::to_owned),
        );
        return TrustVerdict::WrongProvider { found };
    }

    if ours.iter().any(ConditionEval::admits) {
        return deny_verdict(doc, provider_arn, &request);
    }

    let audience_failures: Vec<&ConditionEval> = ours
        .iter()
        .filter(|e| e.sub == KeyState::Matched && e.aud == KeyState::Mismatched)
        .collect();
    if !audience_failures.is_empty() {
        let allowed = sorted_unique(
            audience_failures
                .iter()
                .flat_map(|e| e.aud_allowed.iter().cloned()),
        );
        return TrustVerdict::AudienceMismatch { allowed };
    }

    let subject_failures: Vec<&ConditionEval> = ours
        .iter()
        .filter(|e| e.sub == KeyState::Mismatched)
        .collect();
    if !subject_failures.is_empty() {
        let allowed = sorted_unique(
            subject_failures
                .iter()
                .flat_map(|e| e.sub_allowed.iter().cloned()),
        );
        return TrustVerdict::SubjectMismatch { allowed };
    }

    let (operator, key) = ours
        .iter()
        .find_map(|e| e.unsupported.clone())
        .unwrap_or_default();
    TrustVerdict::CannotEvaluate { operator, key }
}

/// With access granted, a Deny for the same principal and action can still
/// take it away.
fn deny_verdict(
    doc: &PolicyDocument,
    provider_arn: &str,
    request: &WebIdentityRequest<'_>,
) -> TrustVerdict {
    let mut unsure: Option<(String, String)> = None;
    for st in doc.statements().filter(|st| {
        effect_is(st, "Deny")
            && covers_action(st, ASSUME_ROLE_WITH_WEB_IDENTITY)
            && names_principal(st, "Federated", provider_arn)
    }) {
        let eval = request.evaluate(st);
        if eval.sub == KeyState::Mismatched || eval.aud == KeyState::Mismatched {
            // One failing condition is enough for the Deny not to apply.
            continue;
        }
        if eval.admits() {
            return TrustVerdict::Denied;
        }
        if unsure.is_none() {
            unsure = eval.unsupported;
        }
    }
    match unsure {
        Some((operator, key)) => TrustVerdict::CannotEvaluate { operator, key },
        None => TrustVerdict::Admitted,
    }
}

struct WebIdentityRequest<'a> {
    sub_key: String,
    aud_key: String,
    subject: String,
    audience: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyState {
    /// No condition on the key, or every condition on it holds.
    Matched,
    /// Some condition on the key certainly fails.
    Mismatched,
    /// A condition on the key uses an operator we do not model.
    Unknown,
}

#[derive(Debug)]
struct ConditionEval {
    sub: KeyState,
    aud: KeyState,
    sub_allowed: Vec<String>,
    aud_allowed: Vec<String>,
    /// The first operator/key pair that could not be evaluated.
    unsupported: Option<(String, String)>,
}

impl ConditionEval {
    fn admits(&self) -> bool {
        self.sub == KeyState::Matched && self.aud == KeyState::Matched && self.unsupported.is_none()
    }
}

impl WebIdentityRequest<'_> {
    fn evaluate(&self, st: &Map<String, Value>) -> ConditionEval {
        let mut eval = ConditionEval {
            sub: KeyState::Matched,
            aud: KeyState::Matched,
            sub_allowed: Vec::new(),
            aud_allowed: Vec::new(),
            unsupported: None,
        };
        let operators = match st.get("Condition") {
            None => return eval,
            Some(Value::Object(operators)) => operators,
            Some(_) => {
                eval.unsupported = Some(("Condition".to_owned(), String::new()));
                return eval;
            }
        };
        for (operator, keys) in operators {
            let Value::Object(keys) = keys else {
                eval.unsupported
                    .get_or_insert_with(|| (operator.clone(), String::new()));
                continue;
            };
            for (key, values) in keys {
                // Condition key names are case-insensitive in IAM.
                let (actual, state, allowed) = if key.eq_ignore_ascii_case(&self.sub_key) {
                    (self.subject.as_str(), &mut eval.sub, &mut eval.sub_allowed)
                } else if key.eq_ignore_ascii_case(&self.aud_key) {
                    (self.audience, &mut eval.aud, &mut eval.aud_allowed)
                } else {
                    eval.unsupported
                        .get_or_insert_with(|| (operator.clone(), key.clone()));
                    continue;
                };
                let patterns: Vec<&str> = string_values(values).collect();
                let holds = match operator.as_str() {
                    "StringEquals" => patterns.contains(&actual),
                    "StringLike" => patterns.iter().any(|p| glob_match(p, actual)),
                    _ => {
                        if *state == KeyState::Matched {
                            *state = KeyState::Unknown;
                        }
                        eval.unsupported
                            .get_or_insert_with(|| (operator.clone(), key.clone()));
                        continue;
                    }
                };
                allowed.extend(patterns.iter().map(|p| (*p).to_owned()));
                if !holds {
                    *state = KeyState::Mismatched;
                }
            }
        }
        eval
    }
}

fn effect_is(st: &Map<String, Value>, effect: &str) -> bool {
    st.get("Effect").and_then(Value::as_str) == Some(effect)
}

/// Strings of a canonical list (or a lone string, for robustness).
fn string_values(value: &Value) -> impl Iterator<Item = &str> {
    let items: &[Value] = match value {
        Value::Array(items) => items,
        single => std::slice::from_ref(single),
    };
    items.iter().filter_map(Value::as_str)
}

fn covers_action(st: &Map<String, Value>, action: &str) -> bool {
    if let Some(actions) = st.get("Action") {
        string_values(actions).any(|p| action_matches(p, action))
    } else if let Some(excluded) = st.get("NotAction") {
        !string_values(excluded).any(|p| action_matches(p, action))
    } else {
        false
    }
}

/// Whether a Principal/NotPrincipal block lists `id` under `kind`, or is `"*"`.
fn principal_block_lists(block: &Value, kind: &str, id: &str) -> bool {
    match block {
        Value::String(star) => star == "*",
        Value::Object(kinds) => kinds
            .get(kind)
            .map(|ids| string_values(ids).any(|listed| listed.eq_ignore_ascii_case(id)))
            .unwrap_or(false),
        _ => false,
    }
}

fn names_principal(st: &Map<String, Value>, kind: &str, id: &str) -> bool {
    if let Some(block) = st.get("Principal") {
        principal_block_lists(block, kind, id)
    } else if let Some(block) = st.get("NotPrincipal") {
        !principal_block_lists(block, kind, id)
    } else {
        false
    }
}

fn has_federated_principal(st: &Map<String, Value>) -> bool {
    match st.get("Principal") {
        Some(Value::String(star)) => star == "*",
        Some(Value::Object(kinds)) => kinds.contains_key("Federated"),
        _ => false,
    }
}

fn principal_ids<'a>(st: &'a Map<String, Value>, kind: &str) -> Vec<&'a str> {
    match st.get("Principal") {
        Some(Value::Object(kinds)) => kinds
            .get(kind)
            .map(string_values)
            .into_iter()
            .flatten()
            .collect(),
        Some(Value::String(star)) => vec![star.as_str()],
        _ => Vec::new(),
    }
}

fn sorted_unique(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.into_iter().collect();
    items.sort();
    items.dedup();
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ISSUER: &str = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789";
    const HOST: &str = "oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789";
    const PROVIDER: &str = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789";
    const AUD: &str = "sts.amazonaws.com";

    fn doc(text: &str) -> PolicyDocument {
        PolicyDocument::parse(text).expect("test document parses")
    }

    fn admits(d: &PolicyDocument, ns: &str, sa: &str, aud: &str) -> TrustVerdict {
        irsa_trust_admits(d, PROVIDER, ISSUER, ns, sa, aud)
    }

    #[test]
    fn a_trust_is_exactly_one_service_accounts_only_when_nothing_else_gets_in() {
        let exactly =
            |d: &PolicyDocument| irsa_trust_is_exactly(d, PROVIDER, ISSUER, "apps", "web", AUD);
        assert_eq!(
            exactly(&irsa_trust_policy(PROVIDER, ISSUER, "apps", "web", AUD)),
            Ok(())
        );
        assert_eq!(
            exactly(&irsa_with_condition(&format!(
                r#"{{"StringLike":{{"{HOST}:sub":"system:serviceaccount:apps:web"}},"StringEquals":{{"{HOST}:aud":"{AUD}"}}}}"#
            ))),
            Ok(()),
            "StringLike without a wildcard is exact"
        );
        let ours = irsa_trust_policy(PROVIDER, ISSUER, "apps", "web", AUD)
            .statements()
            .next()
            .map(|st| Value::Object(st.clone()).to_string())
            .unwrap_or_default();
        let with = |extra: &str| {
            doc(&format!(
                r#"{{"Version":"2012-10-17","Statement":[{ours},{extra}]}}"#
            ))
        };
        let cases = [
            (
                irsa_with_condition(&format!(
                    r#"{{"StringLike":{{"{HOST}:sub":"system:serviceaccount:apps:*","{HOST}:aud":"{AUD}"}}}}"#
                )),
                "admits other ServiceAccounts too",
            ),
            (
                irsa_with_condition(&format!(
                    r#"{{"StringLike":{{"{HOST}:sub":"system:serviceaccount:apps:we?","{HOST}:aud":"{AUD}"}}}}"#
                )),
                "admits other ServiceAccounts too",
            ),
            (
                irsa_with_condition(&format!(
                    r#"{{"StringEquals":{{"{HOST}:sub":["system:serviceaccount:apps:web","system:serviceaccount:prod:deployer"],"{HOST}:aud":"{AUD}"}}}}"#
                )),
                "system:serviceaccount:prod:deployer",
            ),
            (
                with(&format!(
                    r#"{{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{HOST}:sub":"system:serviceaccount:team-b:x"}}}}}}"#
                )),
                "system:serviceaccount:team-b:x",
            ),
            (
                with(&format!(
                    r#"{{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringLikeIfExists":{{"{HOST}:sub":"system:serviceaccount:*"}}}}}}"#
                )),
                "beyond what the operator can vouch for",
            ),
            (
                irsa_with_condition(&format!(r#"{{"StringEquals":{{"{HOST}:aud":"{AUD}"}}}}"#)),
                "admits any ServiceAccount",
            ),
            (
                irsa_trust_policy(PROVIDER, ISSUER, "apps", "api", AUD),
                "not exactly system:serviceaccount:apps:web",
            ),
            (
                with(
                    r#"{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}"#,
                ),
                "allows more than sts:AssumeRoleWithWebIdentity",
            ),
            (
                with(&format!(
                    r#"{{"Effect":"Deny","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity"}}"#
                )),
                "does not admit system:serviceaccount:apps:web",
            ),
        ];
        for (trust, why) in cases {
            let error = exactly(&trust).expect_err(why);
            assert!(error.contains(why), "{why:?} not in {error}");
        }
    }

    /// An IRSA statement with a caller-supplied Condition block.
    fn irsa_with_condition(condition: &str) -> PolicyDocument {
        doc(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
                "Principal":{{"Federated":"{PROVIDER}"}},
                "Action":"sts:AssumeRoleWithWebIdentity",
                "Condition":{condition}}}]}}"#
        ))
    }

    #[test]
    fn issuer_host_path_strips_scheme_and_trailing_slashes() {
        let cases = [
            (ISSUER, HOST),
            ("https://example.com/", "example.com"),
            ("https://example.com//", "example.com"),
            ("HTTPS://example.com/path/", "example.com/path"),
            ("example.com/id/1", "example.com/id/1"),
            ("https://", ""),
            ("", ""),
            ("ü", "ü"),
        ];
        for (input, expected) in cases {
            assert_eq!(issuer_host_path(input), expected, "{input}");
        }
    }

    #[test]
    fn oidc_provider_arn_is_built_from_the_issuer() {
        assert_eq!(oidc_provider_arn("aws", "123456789012", ISSUER), PROVIDER);
        assert_eq!(
            oidc_provider_arn("aws-cn", "123456789012", "https://oidc.example.cn/"),
            "arn:aws-cn:iam::123456789012:oidc-provider/oidc.example.cn"
        );
    }

    #[test]
    fn irsa_trust_policy_has_the_expected_shape() {
        let d = irsa_trust_policy(PROVIDER, ISSUER, "kube-system", "external-dns", AUD);
        let expected = doc(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
                "Principal":{{"Federated":"{PROVIDER}"}},
                "Action":"sts:AssumeRoleWithWebIdentity",
                "Condition":{{"StringEquals":{{
                    "{HOST}:sub":"system:serviceaccount:kube-system:external-dns",
                    "{HOST}:aud":"sts.amazonaws.com"}}}}}}]}}"#
        ));
        assert_eq!(d, expected);
        assert_eq!(d.version(), "2012-10-17");
    }

    #[test]
    fn irsa_trust_policy_round_trips_through_json() {
        let d = irsa_trust_policy(PROVIDER, ISSUER, "ns", "sa", AUD);
        assert_eq!(PolicyDocument::parse(&d.to_json()).expect("parses"), d);
    }

    #[test]
    fn pod_identity_trust_policy_has_the_expected_shape() {
        let expected = doc(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
                "Principal":{"Service":"pods.eks.amazonaws.com"},
                "Action":["sts:TagSession","sts:AssumeRole"]}]}"#);
        assert_eq!(pod_identity_trust_policy(), expected);
        assert!(trusts_pod_identity(&pod_identity_trust_policy()));
    }

    #[test]
    fn action_glob_table() {
        let cases = [
            ("sts:AssumeRole", "sts:AssumeRole", true),
            ("sts:assumerole", "sts:AssumeRole", true),
            ("STS:*", "sts:TagSession", true),
            ("*", "sts:AssumeRole", true),
            ("sts:Assume*", "sts:AssumeRole", true),
            ("sts:Assume*", "sts:AssumeRoleWithWebIdentity", true),
            ("sts:Assume*", "sts:TagSession", false),
            ("sts:AssumeRol?", "sts:AssumeRole", true),
            ("sts:AssumeRol?", "sts:AssumeRol", false),
            ("sts:*Role", "sts:AssumeRole", true),
            ("sts:*Role", "sts:AssumeRoleWithSAML", false),
            ("s*:*Ro*e", "sts:AssumeRole", true),
            ("sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", false),
            ("", "", true),
            ("", "a", false),
            ("**", "", true),
            ("?", "", false),
        ];
        for (pattern, action, expected) in cases {
            assert_eq!(
                action_matches(pattern, action),
                expected,
                "{pattern} vs {action}"
            );
        }
    }

    #[test]
    fn glob_is_case_sensitive_for_string_like() {
        assert!(glob_match(
            "system:serviceaccount:ns:*",
            "system:serviceaccount:ns:sa"
        ));
        assert!(!glob_match(
            "system:serviceaccount:NS:*",
            "system:serviceaccount:ns:sa"
        ));
    }

    #[test]
    fn glob_handles_pathological_patterns() {
        let text = "a".repeat(200);
        assert!(!glob_match(&format!("{}b", "*a".repeat(30)), &text));
        assert!(glob_match(&"*a".repeat(30), &text));
    }

    #[test]
    fn pod_identity_accepts_wildcard_actions() {
        for actions in [r#""sts:*""#, r#""*""#, r#"["sts:Assume*","sts:Tag*"]"#] {
            let d = doc(&format!(
                r#"{{"Statement":{{"Effect":"Allow","Principal":{{"Service":"pods.eks.amazonaws.com"}},"Action":{actions}}}}}"#
            ));
            assert!(trusts_pod_identity(&d), "{actions}");
        }
    }

    #[test]
    fn pod_identity_actions_may_come_from_separate_statements() {
        let d = doc(r#"{"Statement":[
                {"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"},
                {"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","pods.eks.amazonaws.com"]},"Action":"sts:TagSession"}]}"#);
        assert!(trusts_pod_identity(&d));
    }

    #[test]
    fn pod_identity_requires_tag_session() {
        let d = doc(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}}"#,
        );
        assert!(!trusts_pod_identity(&d));
        assert_eq!(pod_identity_trust_gaps(&d), ["sts:TagSession"]);
    }

    #[test]
    fn pod_identity_gaps_name_every_missing_action() {
        let irsa_style = doc(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/x"},"Action":"sts:AssumeRoleWithWebIdentity"}}"#,
        );
        assert_eq!(
            pod_identity_trust_gaps(&irsa_style),
            ["sts:AssumeRole", "sts:TagSession"]
        );
        assert!(pod_identity_trust_gaps(&pod_identity_trust_policy()).is_empty());
        let denied = doc(r#"{"Statement":[
                {"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:*"},
                {"Effect":"Deny","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#);
        assert_eq!(pod_identity_trust_gaps(&denied), ["sts:AssumeRole"]);
    }

    #[test]
    fn pod_identity_requires_the_service_principal() {
        let d = doc(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}}"#,
        );
        assert!(!trusts_pod_identity(&d));
        let federated = doc(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Federated":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}}"#,
        );
        assert!(!trusts_pod_identity(&federated));
    }

    #[test]
    fn pod_identity_principal_star_counts() {
        let d = doc(r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:*"}}"#);
        assert!(trusts_pod_identity(&d));
    }

    #[test]
    fn pod_identity_unconditional_deny_removes_access() {
        let d = doc(r#"{"Statement":[
                {"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]},
                {"Effect":"Deny","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:TagSession"}]}"#);
        assert!(!trusts_pod_identity(&d));
    }

    #[test]
    fn pod_identity_deny_for_other_principal_is_irrelevant() {
        let d = doc(r#"{"Statement":[
                {"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]},
                {"Effect":"Deny","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:*"}]}"#);
        assert!(trusts_pod_identity(&d));
    }

    #[test]
    fn pod_identity_conditional_deny_is_assumed_not_to_fire() {
        let d = doc(r#"{"Statement":[
                {"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"],
                 "Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}},
                {"Effect":"Deny","Principal":"*","Action":"sts:*",
                 "Condition":{"StringNotEquals":{"aws:SourceAccount":"123456789012"}}}]}"#);
        assert!(trusts_pod_identity(&d));
    }

    #[test]
    fn pod_identity_deny_via_not_principal() {
        // Deny everyone except ec2: Pod Identity is denied.
        let d = doc(r#"{"Statement":[
                {"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]},
                {"Effect":"Deny","NotPrincipal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#);
        assert!(!trusts_pod_identity(&d));
    }

    #[test]
    fn pod_identity_not_action_allow() {
        let d = doc(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"NotAction":"iam:*"}}"#,
        );
        assert!(trusts_pod_identity(&d));
        let excluded = doc(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"NotAction":"sts:Tag*"}}"#,
        );
        assert!(!trusts_pod_identity(&excluded));
    }

    #[test]
    fn irsa_generated_policy_is_admitted() {
        let d = irsa_trust_policy(PROVIDER, ISSUER, "kube-system", "external-dns", AUD);
        assert_eq!(
            admits(&d, "kube-system", "external-dns", AUD),
            TrustVerdict::Admitted
        );
        assert!(admits(&d, "kube-system", "external-dns", AUD).is_admitted());
    }

    #[test]
    fn irsa_other_service_account_is_a_subject_mismatch() {
        let d = irsa_trust_policy(PROVIDER, ISSUER, "kube-system", "external-dns", AUD);
        assert_eq!(
            admits(&d, "kube-system", "cert-manager", AUD),
            TrustVerdict::SubjectMismatch {
                allowed: vec!["system:serviceaccount:kube-system:external-dns".to_owned()]
            }
        );
    }

    #[test]
    fn irsa_wrong_audience_is_an_audience_mismatch() {
        let d = irsa_trust_policy(PROVIDER, ISSUER, "ns", "sa", "sts.amazon.com");
        assert_eq!(
            admits(&d, "ns", "sa", AUD),
            TrustVerdict::AudienceMismatch {
                allowed: vec!["sts.amazon.com".to_owned()]
            }
        );
    }

    #[test]
    fn irsa_other_provider_is_reported_with_what_was_found() {
        let other =
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/OTHER";
        let d = irsa_trust_policy(
            other,
            "https://oidc.eks.us-east-1.amazonaws.com/id/OTHER",
            "ns",
            "sa",
            AUD,
        );
        assert_eq!(
            admits(&d, "ns", "sa", AUD),
            TrustVerdict::WrongProvider {
                found: vec![other.to_owned()]
            }
        );
    }

    #[test]
    fn irsa_pod_identity_policy_has_no_web_identity_statement() {
        assert_eq!(
            admits(&pod_identity_trust_policy(), "ns", "sa", AUD),
            TrustVerdict::NoWebIdentityStatement
        );
    }

    #[test]
    fn irsa_federated_statement_without_the_action_does_not_count() {
        let d = doc(&format!(
            r#"{{"Statement":{{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithSAML"}}}}"#
        ));
        assert_eq!(
            admits(&d, "ns", "sa", AUD),
            TrustVerdict::NoWebIdentityStatement
        );
    }

    #[test]
    fn irsa_without_conditions_admits_everything_from_the_provider() {
        let d = doc(&format!(
            r#"{{"Statement":{{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity"}}}}"#
        ));
        assert_eq!(
            admits(&d, "any", "thing", "whatever"),
            TrustVerdict::Admitted
        );
    }

    #[test]
    fn irsa_string_like_wildcard_on_subject() {
        let d = irsa_with_condition(&format!(
            r#"{{"StringLike":{{"{HOST}:sub":"system:serviceaccount:team-a:*"}},"StringEquals":{{"{HOST}:aud":"{AUD}"}}}}"#
        ));
        assert_eq!(
            admits(&d, "team-a", "anything", AUD),
            TrustVerdict::Admitted
        );
        assert_eq!(
            admits(&d, "team-b", "anything", AUD),
            TrustVerdict::SubjectMismatch {
                allowed: vec!["system:serviceaccount:team-a:*".to_owned()]
            }
        );
    }

    #[test]
    fn irsa_condition_keys_are_case_insensitive() {
        let upper = HOST.to_uppercase();
        let d = irsa_with_condition(&format!(
            r#"{{"StringEquals":{{"{upper}:SUB":"system:serviceaccount:ns:sa","{upper}:Aud":"{AUD}"}}}}"#
        ));
        assert_eq!(admits(&d, "ns", "sa", AUD), TrustVerdict::Admitted);
    }

    #[test]
    fn irsa_subject_values_are_case_sensitive() {
        let d = irsa_with_condition(&format!(
            r#"{{"StringEquals":{{"{HOST}:sub":"system:serviceaccount:NS:sa"}}}}"#
        ));
        assert!(matches!(
            admits(&d, "ns", "sa", AUD),
            TrustVerdict::SubjectMismatch { .. }
        ));
    }

    #[test]
    fn irsa_list_of_subjects_admits_any_listed() {
        let d = irsa_with_condition(&format!(
            r#"{{"StringEquals":{{"{HOST}:sub":["system:serviceaccount:a:x","system:serviceaccount:b:y"]}}}}"#
        ));
        assert_eq!(admits(&d, "a", "x", AUD), TrustVerdict::Admitted);
        assert_eq!(admits(&d, "b", "y", AUD), TrustVerdict::Admitted);
        assert_eq!(
            admits(&d, "a", "y", AUD),
            TrustVerdict::SubjectMismatch {
                allowed: vec![
                    "system:serviceaccount:a:x".to_owned(),
                    "system:serviceaccount:b:y".to_owned()
                ]
            }
        );
    }

    #[test]
    fn irsa_unknown_operator_cannot_be_evaluated() {
        let d = irsa_with_condition(&format!(
            r#"{{"StringEqualsIgnoreCase":{{"{HOST}:sub":"system:serviceaccount:ns:sa"}}}}"#
        ));
        assert_eq!(
            admits(&d, "ns", "sa", AUD),
            TrustVerdict::CannotEvaluate {
                operator: "StringEqualsIgnoreCase".to_owned(),
                key: format!("{HOST}:sub"),
            }
        );
    }

    #[test]
    fn irsa_for_any_value_is_out_of_scope() {
        let d = irsa_with_condition(&format!(
            r#"{{"ForAnyValue:StringLike":{{"{HOST}:sub":"system:serviceaccount:ns:*"}}}}"#
        ));
        assert!(matches!(
            admits(&d, "ns", "sa", AUD),
            TrustVerdict::CannotEvaluate { .. }
        ));
    }

    #[test]
    fn irsa_unknown_key_cannot_be_evaluated() {
        let d = irsa_with_condition(&format!(
            r#"{{"StringEquals":{{"{HOST}:sub":"system:serviceaccount:ns:sa","aws:SourceIp":"10.0.0.1"}}}}"#
        ));
        assert_eq!(
            admits(&d, "ns", "sa", AUD),
            TrustVerdict::CannotEvaluate {
                operator: "StringEquals".to_owned(),
                key: "aws:SourceIp".to_owned(),
            }
        );
    }

    #[test]
    fn irsa_subject_mismatch_wins_over_unknown_operator() {
        let d = irsa_with_condition(&format!(
            r#"{{"StringEquals":{{"{HOST}:sub":"system:serviceaccount:other:sa"}},"StringNotEquals":{{"{HOST}:aud":"x"}}}}"#
        ));
        assert!(matches!(
            admits(&d, "ns", "sa", AUD),
            TrustVerdict::SubjectMismatch { .. }
        ));
    }

    #[test]
    fn irsa_one_admitting_statement_is_enough() {
        let d = doc(&format!(
            r#"{{"Statement":[
                {{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity",
                  "Condition":{{"StringEquals":{{"{HOST}:sub":"system:serviceaccount:ns:other"}}}}}},
                {{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity",
                  "Condition":{{"StringEquals":{{"{HOST}:sub":"system:serviceaccount:ns:sa","{HOST}:aud":"{AUD}"}}}}}}]}}"#
        ));
        assert_eq!(admits(&d, "ns", "sa", AUD), TrustVerdict::Admitted);
    }

    #[test]
    fn irsa_audience_mismatch_is_preferred_when_subject_matches_somewhere() {
        let d = doc(&format!(
            r#"{{"Statement":[
                {{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity",
                  "Condition":{{"StringEquals":{{"{HOST}:sub":"system:serviceaccount:ns:other"}}}}}},
                {{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity",
                  "Condition":{{"StringEquals":{{"{HOST}:sub":"system:serviceaccount:ns:sa","{HOST}:aud":"sts.amazon.com"}}}}}}]}}"#
        ));
        assert_eq!(
            admits(&d, "ns", "sa", AUD),
            TrustVerdict::AudienceMismatch {
                allowed: vec!["sts.amazon.com".to_owned()]
            }
        );
    }

    #[test]
    fn irsa_wildcard_action_and_star_principal_count() {
        let d = doc(&format!(
            r#"{{"Statement":{{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRoleWith*",
                "Condition":{{"StringEquals":{{"{HOST}:sub":"system:serviceaccount:ns:sa"}}}}}}}}"#
        ));
        assert_eq!(admits(&d, "ns", "sa", AUD), TrustVerdict::Admitted);
    }

    #[test]
    fn irsa_unconditional_deny_wins() {
        let d = doc(&format!(
            r#"{{"Statement":[
                {{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity"}},
                {{"Effect":"Deny","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:*"}}]}}"#
        ));
        assert_eq!(admits(&d, "ns", "sa", AUD), TrustVerdict::Denied);
    }

    #[test]
    fn irsa_deny_for_another_subject_does_not_apply() {
        let d = doc(&format!(
            r#"{{"Statement":[
                {{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity"}},
                {{"Effect":"Deny","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:*",
                  "Condition":{{"StringLike":{{"{HOST}:sub":"system:serviceaccount:kube-system:*"}}}}}}]}}"#
        ));
        assert_eq!(admits(&d, "ns", "sa", AUD), TrustVerdict::Admitted);
        assert_eq!(admits(&d, "kube-system", "sa", AUD), TrustVerdict::Denied);
    }

    #[test]
    fn irsa_deny_with_unknown_condition_is_reported_as_unsure() {
        let d = doc(&format!(
            r#"{{"Statement":[
                {{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER}"}},"Action":"sts:AssumeRoleWithWebIdentity"}},
                {{"Effect":"Deny","Principal":"*","Action":"sts:*",
                  "Condition":{{"IpAddress":{{"aws:SourceIp":"10.0.0.0/8"}}}}}}]}}"#
        ));
        assert_eq!(
            admits(&d, "ns", "sa", AUD),
            TrustVerdict::CannotEvaluate {
                operator: "IpAddress".to_owned(),
                key: "aws:SourceIp".to_owned()
            }
        );
    }

    #[test]
    fn irsa_accepts_issuer_with_trailing_slash() {
        let d = irsa_trust_policy(PROVIDER, ISSUER, "ns", "sa", AUD);
        let verdict = irsa_trust_admits(&d, PROVIDER, &format!("{ISSUER}/"), "ns", "sa", AUD);
        assert_eq!(verdict, TrustVerdict::Admitted);
    }

    #[test]
    fn irsa_checks_an_iam_encoded_trust_policy() {
        let generated = irsa_trust_policy(PROVIDER, ISSUER, "ns", "sa", AUD);
        let encoded: String = percent_encoding::utf8_percent_encode(
            &generated.to_json(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        let observed = PolicyDocument::parse(&encoded).expect("parses");
        assert_eq!(observed, generated);
        assert!(admits(&observed, "ns", "sa", AUD).is_admitted());
    }

    fn dns_label() -> impl Strategy<Value = String> {
        "[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?"
    }

    fn sa_name() -> impl Strategy<Value = String> {
        "[a-z0-9]([-a-z0-9.]{0,30}[a-z0-9])?"
    }

    proptest! {
        #[test]
        fn prop_irsa_admits_exactly_its_subject_and_audience(
            ns in dns_label(),
            sa in sa_name(),
            other_ns in dns_label(),
            other_sa in sa_name(),
            aud in "[a-z0-9.:/-]{1,40}",
            other_aud in "[a-z0-9.:/-]{1,40}",
        ) {
            let d = irsa_trust_policy(PROVIDER, ISSUER, &ns, &sa, &aud);
            prop_assert_eq!(admits(&d, &ns, &sa, &aud), TrustVerdict::Admitted);
            let subject = vec![service_account_subject(&ns, &sa)];
            if other_ns != ns {
                prop_assert_eq!(
                    admits(&d, &other_ns, &sa, &aud),
                    TrustVerdict::SubjectMismatch { allowed: subject.clone() }
                );
            }
            if other_sa != sa {
                prop_assert_eq!(
                    admits(&d, &ns, &other_sa, &aud),
                    TrustVerdict::SubjectMismatch { allowed: subject.clone() }
                );
            }
            if other_aud != aud {
                prop_assert_eq!(
                    admits(&d, &ns, &sa, &other_aud),
                    TrustVerdict::AudienceMismatch { allowed: vec![aud.clone()] }
                );
            }
        }

        #[test]
        fn prop_action_matches_itself_and_star(action in "[a-zA-Z0-9]{1,10}:[a-zA-Z0-9]{1,20}") {
            prop_assert!(action_matches(&action, &action));
            prop_assert!(action_matches(&action.to_uppercase(), &action));
            prop_assert!(action_matches("*", &action));
            let service = action.split(':').next().unwrap_or_default();
            let service_star = format!("{}:*", service);
            prop_assert!(action_matches(&service_star, &action));
        }
    }
}
