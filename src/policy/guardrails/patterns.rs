//! Wildcard patterns (`*` any run, `?` one character) compared with each
//! other, not only with plain text: a policy's `iam:Pass*` must be seen to
//! reach a rule's `iam:PassRole`, and `iam:Get*` to lie inside an exception
//! `iam:Get*`. Pure.

use super::super::trust::glob_match;

/// Whether some text matches both patterns.
pub fn reach(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut memo = vec![vec![None; b.len() + 1]; a.len() + 1];
    reach_from(&a, &b, 0, 0, &mut memo)
}

fn reach_from(a: &[char], b: &[char], i: usize, j: usize, memo: &mut [Vec<Option<bool>>]) -> bool {
    if let Some(known) = memo[i][j] {
        return known;
    }
    let result = match (a.get(i), b.get(j)) {
        (None, None) => true,
        (Some('*'), _) => {
            reach_from(a, b, i + 1, j, memo) || (j < b.len() && reach_from(a, b, i, j + 1, memo))
        }
        (_, Some('*')) => {
            reach_from(a, b, i, j + 1, memo) || (i < a.len() && reach_from(a, b, i + 1, j, memo))
        }
        (Some(x), Some(y)) => {
            (*x == '?' || *y == '?' || x == y) && reach_from(a, b, i + 1, j + 1, memo)
        }
        _ => false,
    };
    memo[i][j] = Some(result);
    result
}

/// Whether every text `inner` matches also matches `outer`. Exact for the
/// patterns policies use: a wildcard of `inner` can only be absorbed by a
/// wildcard of `outer` at least as wide.
pub fn covers(outer: &str, inner: &str) -> bool {
    let o: Vec<char> = outer.chars().collect();
    let n: Vec<char> = inner.chars().collect();
    let mut memo = vec![vec![None; n.len() + 1]; o.len() + 1];
    covers_from(&o, &n, 0, 0, &mut memo)
}

fn covers_from(o: &[char], n: &[char], i: usize, j: usize, memo: &mut [Vec<Option<bool>>]) -> bool {
    if let Some(known) = memo[i][j] {
        return known;
    }
    let result = match (o.get(i), n.get(j)) {
        (None, None) => true,
        (Some('*'), _) => {
            covers_from(o, n, i + 1, j, memo) || (j < n.len() && covers_from(o, n, i, j + 1, memo))
        }
        (Some(_), Some('*')) | (None, Some(_)) | (Some(_), None) => false,
        (Some('?'), Some(_)) => covers_from(o, n, i + 1, j + 1, memo),
        (Some(_), Some('?')) => false,
        (Some(x), Some(y)) => x == y && covers_from(o, n, i + 1, j + 1, memo),
    };
    memo[i][j] = Some(result);
    result
}

/// Whether an ARN (plain text) matches an ARN pattern. Without case: IAM
/// finds roles and policies by name without it, so
/// `policy/administratoraccess` is `AdministratorAccess`.
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    glob_match(&pattern.to_lowercase(), &arn.to_lowercase())
}

/// Whether an action pattern of a policy may grant an action a rule names
/// (`rule`), leaving out what the rule's exceptions cover. IAM compares
/// action names without case.
pub fn action_reaches(statement_action: &str, rule: &str, except: &[String]) -> bool {
    let action = statement_action.to_lowercase();
    let rule = rule.to_lowercase();
    if !reach(&action, &rule) {
        return false;
    }
    // `*:Get*` against a rule on `iam:*` grants within IAM only `iam:Get*`:
    // narrow the statement to the rule's service before asking whether the
    // exceptions cover it.
    let narrowed = match (action.split_once(':'), rule.split_once(':')) {
        (Some((service, name)), Some((rule_service, _)))
            if !rule_service.contains(['*', '?']) && glob_match(service, rule_service) =>
        {
            format!("{rule_service}:{name}")
        }
        (None, Some((rule_service, _))) if action == "*" && !rule_service.contains(['*', '?']) => {
            format!("{rule_service}:*")
        }
        _ => action,
    };
    !except.iter().any(|e| covers(&e.to_lowercase(), &narrowed))
}

/// Whether an action pattern grants every action of a service (`*`,
/// `s3:*`, `*:*`, `i*:*`).
pub fn is_service_wildcard(action: &str) -> bool {
    match action.split_once(':') {
        None => action.chars().all(|c| c == '*'),
        Some((_, name)) => name.chars().all(|c| c == '*') && !name.is_empty(),
    }
}

/// Whether a resource pattern names every resource: `*`, or an ARN whose
/// every part is a wildcard (`arn:*:*:*:*:*`).
pub fn is_every_resource(resource: &str) -> bool {
    resource.chars().all(|c| c == '*')
        || resource
            .strip_prefix("arn:")
            .is_some_and(|rest| rest.split(':').all(|part| part.chars().all(|c| c == '*')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_reach_each_other_through_wildcards_on_either_side() {
        for (a, b) in [
            ("iam:Pass*", "iam:PassRole"),
            ("iam:*", "iam:PassRole"),
            ("*", "iam:PassRole"),
            ("i*:*Role", "iam:Pass*"),
            ("iam:Pass?ole", "iam:PassRole"),
            ("arn:aws:s3:::prod-*", "arn:aws:s3:::*-logs"),
        ] {
            assert!(reach(a, b), "{a} {b}");
            assert!(reach(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("iam:Get*", "iam:PassRole"),
            ("s3:*", "iam:*"),
            ("arn:aws:s3:::prod-*", "arn:aws:s3:::test-*"),
        ] {
            assert!(!reach(a, b), "{a} {b}");
        }
    }

    #[test]
    fn covering_needs_a_wildcard_as_wide_as_the_inner_one() {
        assert!(covers("iam:Get*", "iam:Get*Role"));
        assert!(covers("iam:Get*", "iam:GetRole"));
        assert!(covers("*", "iam:*"));
        assert!(covers("iam:Get?", "iam:GetX"));
        assert!(!covers("iam:Get*", "iam:*"));
        assert!(!covers("iam:GetRole", "iam:Get*"));
        assert!(!covers("iam:Get?", "iam:Get*"));
        assert!(!covers("iam:GetX", "iam:Get?"));
    }

    #[test]
    fn exceptions_leave_out_what_they_cover_after_narrowing_to_the_service() {
        let reads = ["iam:Get*".to_string(), "iam:List*".to_string()];
        assert!(!action_reaches("iam:GetRole", "iam:*", &reads));
        assert!(!action_reaches("*:Get*", "iam:*", &reads));
        assert!(!action_reaches("IAM:listroles", "iam:*", &reads));
        assert!(action_reaches("*", "iam:*", &reads));
        assert!(action_reaches("*:*", "iam:*", &reads));
        assert!(action_reaches("iam:*", "iam:*", &reads));
        assert!(action_reaches("iam:Put*", "iam:*", &reads));
        assert!(action_reaches("IAM:passrole", "iam:PassRole", &[]));
        assert!(!action_reaches("s3:*", "iam:*", &[]));
    }

    #[test]
    fn service_wildcards_and_every_resource() {
        for a in ["*", "s3:*", "*:*", "i*:*", "ec2:**"] {
            assert!(is_service_wildcard(a), "{a}");
        }
        for a in ["s3:Get*", "s3:", "iam:PassRole"] {
            assert!(!is_service_wildcard(a), "{a}");
        }
        for r in ["*", "**", "arn:*:*:*:*:*", "arn:*"] {
            assert!(is_every_resource(r), "{r}");
        }
        for r in ["arn:aws:s3:::*", "arn:*:*:*:*:role/*"] {
            assert!(!is_every_resource(r), "{r}");
        }
    }
}
