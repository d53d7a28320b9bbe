//! Role chaining declared on the object: the roles (usually of other
//! accounts) a workload may assume with its own role's credentials. The
//! operator writes exactly those `sts:AssumeRole` grants into an inline
//! policy of its own on the role it manages, so that nobody hand-writes
//! the JSON, and the guardrails can judge the ARNs by name. Pure.

use serde_json::json;

use super::document::{CURRENT_POLICY_VERSION, PolicyDocument};
use super::validate::parse_role_arn;

/// The inline policy the operator writes the chain into; a spec may not
/// name an inline policy of its own so.
pub const CHAIN_POLICY_NAME: &str = "iam-operator-assume-roles";

/// Most roles one object may chain to: each is a line of the policy, and
/// the role's inline policies share 10240 characters.
pub const CHAIN_MAX: usize = 20;

/// What the role's credentials must be allowed to assume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Chaining<'a> {
    /// `spec.policies.assumeRoles`.
    pub assume_roles: &'a [String],
    /// A Pod Identity association's `targetRoleArn`: EKS assumes it with
    /// the created role's credentials, so the role needs the same grant.
    pub target_role: Option<&'a str>,
    /// Whether the chained call passes session tags (Pod Identity's, unless
    /// disabled), which IAM authorizes as `sts:TagSession`.
    pub tag_session: bool,
}

impl Chaining<'_> {
    /// Every role to grant, in order, once each (paths and names kept as
    /// written: `Role/a` and `role/a` stay two).
    pub fn targets(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .assume_roles
            .iter()
            .map(String::as_str)
            .chain(self.target_role)
            .filter(|arn| !arn.is_empty())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Each problem with `spec.policies.assumeRoles` (the target role is
    /// checked where it is declared).
    pub fn problems(&self, partition: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.assume_roles.len() > CHAIN_MAX {
            problems.push(format!(
                "spec.policies.assumeRoles: {} roles, at most {CHAIN_MAX}",
                self.assume_roles.len()
            ));
        }
        for (i, arn) in self.assume_roles.iter().enumerate() {
            let field = format!("spec.policies.assumeRoles[{i}]");
            match parse_role_arn(&field, arn) {
                Err(e) => problems.push(e.to_string()),
                Ok(_) if has_wildcard(arn) => problems.push(format!(
                    "{field}: {arn} has a wildcard; name each role exactly, the operator grants \
                     no more than the roles listed"
                )),
                Ok(parsed) if parsed.partition != partition => problems.push(format!(
                    "{field}: {arn} is in partition {}, the cluster is in {partition}; roles \
                     cannot be assumed across partitions",
                    parsed.partition
                )),
                Ok(_) => {}
            }
        }
        problems
    }

    /// The inline policy granting exactly the targets, or `None` when
    /// there are none (and any earlier one is to go).
    pub fn policy(&self) -> Option<PolicyDocument> {
        let targets = self.targets();
        if targets.is_empty() {
            return None;
        }
        let actions = match self.tag_session {
            true => json!(["sts:AssumeRole", "sts:TagSession"]),
            false => json!(["sts:AssumeRole"]),
        };
        Some(PolicyDocument::from_checked(&json!({
            "Version": CURRENT_POLICY_VERSION,
            "Statement": [{
                "Sid": "AssumeRolesDeclaredOnTheObject",
                "Effect": "Allow",
                "Action": actions,
                "Resource": targets,
            }],
        })))
    }
}

/// IAM role paths may hold `*` and `?`, which a policy's Resource reads as
/// wildcards.
pub fn has_wildcard(arn: &str) -> bool {
    arn.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    const REMOTE: &str = "arn:aws:iam::222222222222:role/elb-reader";
    const OTHER: &str = "arn:aws:iam::333333333333:role/team/reports";

    fn roles(arns: &[&str]) -> Vec<String> {
        arns.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn nothing_declared_asks_for_no_policy() {
        assert_eq!(Chaining::default().policy(), None);
        let empty = roles(&[""]);
        let blank = Chaining {
            assume_roles: &empty,
            ..Default::default()
        };
        assert_eq!(blank.policy(), None);
    }

    #[test]
    fn the_policy_grants_exactly_the_declared_roles_once_each() {
        let declared = roles(&[OTHER, REMOTE, OTHER]);
        let chaining = Chaining {
            assume_roles: &declared,
            ..Default::default()
        };
        let policy = chaining.policy().expect("a policy");
        let statement = policy.statements().next().expect("one statement");
        assert_eq!(statement["Action"], json!(["sts:AssumeRole"]));
        assert_eq!(statement["Resource"], json!([REMOTE, OTHER]));
        assert_eq!(policy.statements().count(), 1);
    }

    #[test]
    fn a_pod_identity_target_is_granted_with_its_session_tags() {
        let declared = roles(&[REMOTE]);
        let chaining = Chaining {
            assume_roles: &declared,
            target_role: Some(OTHER),
            tag_session: true,
        };
        let policy = chaining.policy().expect("a policy");
        let statement = policy.statements().next().expect("one statement");
        assert_eq!(
            statement["Action"],
            json!(["sts:AssumeRole", "sts:TagSession"])
        );
        assert_eq!(statement["Resource"], json!([REMOTE, OTHER]));
    }

    #[test]
    fn wildcards_other_partitions_and_non_roles_are_refused_by_index() {
        let declared = roles(&[
            REMOTE,
            "arn:aws:iam::222222222222:role/*",
            "arn:aws-cn:iam::222222222222:role/x",
            "arn:aws:iam::222222222222:user/x",
            "arn:aws:iam::222222222222:role/te?m/reader",
            "arn:aws:iam::222222222222:role/*/reader",
        ]);
        let chaining = Chaining {
            assume_roles: &declared,
            ..Default::default()
        };
        let problems = chaining.problems("aws");
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems[0].starts_with("spec.policies.assumeRoles[1]"));
        assert!(problems[1].contains("across partitions"));
        assert!(problems[2].starts_with("spec.policies.assumeRoles[3]"));
        for (problem, index) in problems[3..].iter().zip([4, 5]) {
            assert!(
                problem.starts_with(&format!("spec.policies.assumeRoles[{index}]"))
                    && problem.contains("wildcard"),
                "{problem}"
            );
        }
    }

    #[test]
    fn too_many_roles_are_refused() {
        let many: Vec<String> = (0..=CHAIN_MAX)
            .map(|i| format!("arn:aws:iam::222222222222:role/r{i}"))
            .collect();
        let chaining = Chaining {
            assume_roles: &many,
            ..Default::default()
        };
        assert_eq!(chaining.problems("aws").len(), 1);
    }
}
