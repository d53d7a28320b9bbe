//! Deterministic IAM role names for the roles the operator creates. A retry
//! after a crash must compute the same name and so find the role it already
//! created instead of creating a second one.
//!
//! Pure: no I/O, no async.
//!
//! IAM role names are unique per account *case-insensitively* (`MyRole` and
//! `myrole` cannot both exist), but IAM keeps and returns the case it was
//! given. Names generated here keep the case of their inputs; Kubernetes
//! namespaces and names are lowercase already, so only a mixed-case prefix or
//! cluster name matters, and it is the same for every role of one operator.

use sha2::{Digest, Sha256};

/// Longest role name IAM accepts (CreateRole `RoleName`: length 1–64).
pub const ROLE_NAME_MAX_LEN: usize = 64;

/// Hex characters of the digest appended to names that had to be truncated.
/// 40 bits: a collision needs about a million truncated names in one account,
/// far beyond IAM's role quota (1,000 by default, 5,000 at most).
const HASH_SUFFIX_LEN: usize = 10;

/// Characters IAM allows in role names (CreateRole `RoleName` pattern
/// `[\w+=,.@-]+`, where `\w` is ASCII letters, digits and `_`).
pub fn is_role_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | ',' | '.' | '@' | '_' | '-')
}

/// Role name for one custom resource: the non-empty parts joined with `-`,
/// characters IAM refuses replaced with `-`.
///
/// When that is longer than 64 characters it is cut to 53 and `-` plus 10 hex
/// characters of a SHA-256 digest is appended, so that long inputs differing
/// only past the cut still get distinct names. The digest covers all four
/// parts with their lengths (not the joined string), so `("a-b", "c")` and
/// `("a", "b-c")` differ too once truncated.
///
/// Short names are readable rather than collision-proof: `team-a`/`x` and
/// `team`/`a-x` both give `…-team-a-x`. The ownership tags (which record
/// namespace and name) make the second claimant see a foreign role instead of
/// silently sharing it.
///
/// The result is always 1–64 characters from IAM's role-name set; with every
/// part empty it is the bare digest.
pub fn role_name(prefix: &str, cluster: &str, namespace: &str, name: &str) -> String {
    let parts = [prefix, cluster, namespace, name];
    let joined: String = parts
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .map(|c| if is_role_name_char(c) { c } else { '-' })
        .collect();
    // `joined` is ASCII now, so its byte length is its character count.
    if !joined.is_empty() && joined.len() <= ROLE_NAME_MAX_LEN {
        return joined;
    }
    let digest = parts_digest(&parts);
    if joined.is_empty() {
        return digest;
    }
    let keep = ROLE_NAME_MAX_LEN - 1 - HASH_SUFFIX_LEN;
    let head: String = joined.chars().take(keep).collect();
    format!("{head}-{digest}")
}

fn parts_digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixing makes the encoding of the tuple unambiguous.
        hasher.update(part.len().to_string().as_bytes());
        hasher.update(b":");
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .take(HASH_SUFFIX_LEN / 2)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn is_valid(name: &str) -> bool {
        (1..=ROLE_NAME_MAX_LEN).contains(&name.chars().count())
            && name.chars().all(is_role_name_char)
    }

    #[test]
    fn joins_parts_with_dashes() {
        assert_eq!(
            role_name("iam-op", "prod", "kube-system", "external-dns"),
            "iam-op-prod-kube-system-external-dns"
        );
    }

    #[test]
    fn skips_empty_parts() {
        let cases = [
            (("", "prod", "ns", "sa"), "prod-ns-sa"),
            (("p", "", "ns", "sa"), "p-ns-sa"),
            (("", "", "ns", "sa"), "ns-sa"),
            (("", "", "", "sa"), "sa"),
            (("p", "c", "", ""), "p-c"),
        ];
        for ((prefix, cluster, ns, name), expected) in cases {
            assert_eq!(role_name(prefix, cluster, ns, name), expected);
        }
    }

    #[test]
    fn replaces_characters_iam_refuses() {
        let cases = [
            ("my prefix", "my-prefix-c-ns-n"),
            ("a/b", "a-b-c-ns-n"),
            ("a:b", "a-b-c-ns-n"),
            ("ünï", "-n--c-ns-n"),
            ("ok+=,.@_-", "ok+=,.@_--c-ns-n"),
        ];
        for (prefix, expected) in cases {
            let name = role_name(prefix, "c", "ns", "n");
            assert_eq!(name, expected, "{prefix}");
            assert!(is_valid(&name));
        }
    }

    #[test]
    fn exactly_64_characters_is_kept() {
        let name = "n".repeat(64 - "p-c-ns-".len());
        let result = role_name("p", "c", "ns", &name);
        assert_eq!(result.len(), 64);
        assert_eq!(result, format!("p-c-ns-{name}"));
    }

    #[test]
    fn sixty_five_characters_is_truncated_with_digest() {
        let name = "n".repeat(65 - "p-c-ns-".len());
        let result = role_name("p", "c", "ns", &name);
        assert_eq!(result.len(), 64);
        let (head, digest) = result.split_at(53);
        assert_eq!(head, &format!("p-c-ns-{name}")[..53]);
        assert!(digest.starts_with('-'));
        assert_eq!(digest.len(), 11);
        assert!(
            digest[1..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn truncation_keeps_distinct_inputs_distinct() {
        let long = "x".repeat(60);
        let a = role_name("p", "c", "ns-a", &long);
        let b = role_name("p", "c", "ns-b", &long);
        let c = role_name("p", "c", "ns-a", &format!("{long}y"));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
    }

    #[test]
    fn truncated_names_distinguish_where_the_dash_was() {
        let long = "x".repeat(70);
        assert_ne!(
            role_name("p", "c", "a-b", &format!("c{long}")),
            role_name("p", "c", "a", &format!("b-c{long}"))
        );
    }

    #[test]
    fn all_parts_empty_gives_the_bare_digest() {
        let name = role_name("", "", "", "");
        assert_eq!(name.len(), HASH_SUFFIX_LEN);
        assert!(is_valid(&name));
        assert_eq!(name, role_name("", "", "", ""));
    }

    #[test]
    fn known_digest_is_stable() {
        // Pins the algorithm: changing it would rename every truncated role.
        let name = role_name(
            "iam-operator",
            "production-cluster",
            "some-long-namespace",
            "a-very-long-service-account-name",
        );
        assert_eq!(
            name,
            "iam-operator-production-cluster-some-long-namespace-a-f3a9e78ca5"
        );
    }

    #[test]
    fn role_name_chars_table() {
        for c in ['a', 'Z', '0', '9', '+', '=', ',', '.', '@', '_', '-'] {
            assert!(is_role_name_char(c), "{c}");
        }
        for c in [' ', '/', ':', '*', '#', 'é', '\n', '\u{0}'] {
            assert!(!is_role_name_char(c), "{c:?}");
        }
    }

    proptest! {
        #[test]
        fn prop_always_valid(
            prefix in "\\PC{0,30}",
            cluster in "\\PC{0,40}",
            ns in "\\PC{0,63}",
            name in "\\PC{0,253}",
        ) {
            let result = role_name(&prefix, &cluster, &ns, &name);
            prop_assert!(is_valid(&result), "{result:?}");
        }

        #[test]
        fn prop_deterministic(ns in "[a-z0-9-]{1,63}", name in "[a-z0-9.-]{1,253}") {
            prop_assert_eq!(
                role_name("iam-op", "prod", &ns, &name),
                role_name("iam-op", "prod", &ns, &name)
            );
        }

        #[test]
        fn prop_distinct_long_inputs_stay_distinct(
            ns_a in "[a-z0-9-]{1,63}",
            name_a in "[a-z0-9.-]{60,253}",
            ns_b in "[a-z0-9-]{1,63}",
            name_b in "[a-z0-9.-]{60,253}",
        ) {
            prop_assume!((&ns_a, &name_a) != (&ns_b, &name_b));
            prop_assert_ne!(
                role_name("iam-op", "prod", &ns_a, &name_a),
                role_name("iam-op", "prod", &ns_b, &name_b)
            );
        }

        #[test]
        fn prop_prefix_kept_when_it_fits(
            prefix in "[A-Za-z0-9_-]{1,53}",
            ns in "[a-z0-9-]{1,63}",
            name in "[a-z0-9.-]{1,253}",
        ) {
            let result = role_name(&prefix, "cluster", &ns, &name);
            // Up to 53 characters survive truncation, and the digest is
            // joined with `-`, so the prefix and its dash always stay.
            let expected_start = format!("{prefix}-");
            prop_assert!(result.starts_with(&expected_start), "{result} does not start with {prefix}-");
        }

        #[test]
        fn prop_short_names_are_the_plain_join(ns in "[a-z0-9-]{1,20}", name in "[a-z0-9.-]{1,20}") {
            prop_assert_eq!(role_name("op", "c", &ns, &name), format!("op-c-{ns}-{name}"));
        }
    }
}
