//! The operator's own AWS policy: the least an IAM role (or IRSA / Pod
//! Identity role) running iam-operator needs, rendered for one cluster in one
//! account, region and partition. Pure: no I/O.
//!
//! The policy follows from what `crate::aws` calls and from the ownership
//! tags of [`super::ownership`]:
//! - reads may look at any role of the account (a `roleArn` names roles the
//!   operator did not make, and a role found untagged must be read to be
//!   refused), at OIDC providers, and at this cluster and its associations;
//! - a role is created only carrying this cluster's ownership tag (and the
//!   enforced permissions boundary, when there is one), under the enforced
//!   path and name prefix;
//! - an existing role is changed only when it already carries this cluster's
//!   ownership tag, so roles made by people, other tools or other clusters
//!   are out of reach even with the operator's credentials in hand;
//! - a boundary is never removed, and ownership tags are never untagged;
//! - roles are passed only to EKS Pod Identity, and only ours (plus the
//!   existing roles the platform team lets bindings name);
//! - associations are written only in this cluster.
//!
//! `iam-operator --print-aws-policy` prints [`render`]'s result; the test
//! command evaluates it with an IAM policy simulator against every call the
//! operator made in the e2e run (`e2e/policy-proof/`).

use serde_json::{Value, json};

use super::ownership::{
    CLUSTER_KEY, KIND_KEY, MANAGED_BY_KEY, NAME_KEY, NAMESPACE_KEY, REGION_KEY,
};
use super::pod_identity_agent::AGENT_ADDON;
use super::{
    CURRENT_POLICY_VERSION, POD_IDENTITY_SERVICE, ValidationError, is_known_partition,
    is_role_name_char, issuer_host_path, validate_permissions_boundary_arn, validate_role_path,
};

/// The tag keys whose removal the policy denies: without them a role is no
/// longer recognisably ours, and a stripped role could be claimed by anyone.
pub const OWNERSHIP_TAG_KEYS: [&str; 6] = [
    MANAGED_BY_KEY,
    CLUSTER_KEY,
    REGION_KEY,
    NAMESPACE_KEY,
    KIND_KEY,
    NAME_KEY,
];

/// What the operator's policy depends on. Built from the operator's flags
/// (`--role-path`, `--role-name-prefix`, `--permissions-boundary`), or from
/// the guardrails document when one is given, which then also supplies the
/// existing roles bindings may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorPolicyInputs {
    pub partition: String,
    pub account_id: String,
    pub region: String,
    pub cluster_name: String,
    /// The path every created role gets; `/` when none is enforced.
    pub role_path: String,
    /// The start of every created role's name; empty when none is enforced.
    pub role_name_prefix: String,
    /// The boundary every created role gets, when one is enforced.
    pub permissions_boundary: Option<String>,
    /// Role ARN patterns (IAM wildcards allowed) of existing roles that
    /// PodIdentityBindings may name in `roleArn`, and which the operator must
    /// therefore be able to pass to EKS.
    pub passable_role_patterns: Vec<String>,
    /// Whether the operator asks EKS if the Pod Identity Agent add-on runs
    /// (`--pod-identity-agent=addon`).
    pub reads_agent_addon: bool,
    /// `--manage-oidc-provider`: it may create the cluster's IAM OIDC
    /// provider and add client IDs to it.
    pub manages_oidc_provider: bool,
    /// Whether the guardrails let some namespace adopt roles someone else
    /// made (`namespaces[].adoptRoles`): the one way it may tag an untagged
    /// role as its own.
    pub adopts_roles: bool,
    /// `--oidc-issuer`, when given: the one provider it may manage. Without
    /// it, the issuer comes from EKS and is one of the region's.
    pub configured_issuer: Option<String>,
}

impl OperatorPolicyInputs {
    /// Inputs with nothing enforced: root path, no prefix, no boundary, no
    /// existing roles to pass.
    pub fn new(partition: &str, account_id: &str, region: &str, cluster_name: &str) -> Self {
        OperatorPolicyInputs {
            partition: partition.to_string(),
            account_id: account_id.to_string(),
            region: region.to_string(),
            cluster_name: cluster_name.to_string(),
            role_path: "/".to_string(),
            role_name_prefix: String::new(),
            permissions_boundary: None,
            passable_role_patterns: Vec::new(),
            reads_agent_addon: true,
            manages_oidc_provider: false,
            adopts_roles: false,
            configured_issuer: None,
        }
    }

    /// The ARN (pattern) of the OIDC provider the operator may manage: the
    /// configured issuer's, else any EKS issuer of the region (EKS names
    /// them `oidc.eks.<region>.<domain>/id/<id>`).
    pub fn managed_provider_pattern(&self) -> String {
        let host_path = match &self.configured_issuer {
            Some(issuer) => issuer_host_path(issuer).to_string(),
            None => format!(
                "oidc.eks.{}.{}/id/*",
                self.region,
                partition_domain(&self.partition)
            ),
        };
        format!(
            "arn:{}:iam::{}:oidc-provider/{host_path}",
            self.partition, self.account_id
        )
    }

    /// The ARN pattern of every role the operator may create or change.
    pub fn owned_role_pattern(&self) -> String {
        format!(
            "arn:{}:iam::{}:role{}{}*",
            self.partition, self.account_id, self.role_path, self.role_name_prefix
        )
    }

    /// This cluster's ARN.
    pub fn cluster_arn(&self) -> String {
        format!(
            "arn:{}:eks:{}:{}:cluster/{}",
            self.partition, self.region, self.account_id, self.cluster_name
        )
    }

    /// The ARN pattern of this cluster's Pod Identity Agent add-on (EKS
    /// ends an add-on's ARN with an ID of its own).
    pub fn agent_addon_pattern(&self) -> String {
        format!(
            "arn:{}:eks:{}:{}:addon/{}/{}/*",
            self.partition, self.region, self.account_id, self.cluster_name, AGENT_ADDON
        )
    }

    /// The ARN pattern of this cluster's Pod Identity associations.
    pub fn association_pattern(&self) -> String {
        format!(
            "arn:{}:eks:{}:{}:podidentityassociation/{}/*",
            self.partition, self.region, self.account_id, self.cluster_name
        )
    }

    /// Refuses inputs that would widen the policy or make it invalid: in an
    /// ARN pattern `*`, `?` and `${` are wildcards and policy variables, so a
    /// value carrying one would reach further than it says.
    pub fn validate(&self) -> Result<(), OperatorPolicyError> {
        if !is_known_partition(&self.partition) {
            return Err(OperatorPolicyError::new(
                "partition",
                &self.partition,
                "is not an AWS partition (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b)",
            ));
        }
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OperatorPolicyError::new(
                "account id",
                &self.account_id,
                "must be 12 digits",
            ));
        }
        let region_ok = !self.region.is_empty()
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(OperatorPolicyError::new(
                "region",
                &self.region,
                "must be an AWS region such as us-east-1",
            ));
        }
        // EKS cluster names: a letter or digit, then letters, digits, - and _.
        let cluster_ok = self
            .cluster_name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && self
                .cluster_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && self.cluster_name.len() <= 100;
        if !cluster_ok {
            return Err(OperatorPolicyError::new(
                "cluster name",
                &self.cluster_name,
                "must be an EKS cluster name (letters, digits, - and _, up to 100)",
            ));
        }
        validate_role_path("role path", &self.role_path)
            .map_err(|e| OperatorPolicyError::invalid("role path", e))?;
        if has_wildcard(&self.role_path) {
            return Err(OperatorPolicyError::new(
                "role path",
                &self.role_path,
                "must not contain *, ? or ${, which a policy reads as wildcards",
            ));
        }
        if !self.role_name_prefix.chars().all(is_role_name_char) {
            return Err(OperatorPolicyError::new(
                "role name prefix",
                &self.role_name_prefix,
                "may hold only letters, digits and + = , . @ _ -",
            ));
        }
        if let Some(boundary) = &self.permissions_boundary {
            validate_permissions_boundary_arn("permissions boundary", boundary)
                .map_err(|e| OperatorPolicyError::invalid("permissions boundary", e))?;
            if has_wildcard(boundary) {
                return Err(OperatorPolicyError::new(
                    "permissions boundary",
                    boundary,
                    "must name one policy, without wildcards",
                ));
            }
            if !boundary.starts_with(&format!("arn:{}:", self.partition)) {
                return Err(OperatorPolicyError::new(
                    "permissions boundary",
                    boundary,
                    &format!("must be in partition {}", self.partition),
                ));
            }
        }
        let role_arn_start = format!("arn:{}:iam::", self.partition);
        for pattern in &self.passable_role_patterns {
            let rest = pattern.strip_prefix(&role_arn_start);
            let well_formed = rest.is_some_and(|rest| {
                rest.split_once(":role/")
                    .is_some_and(|(account, _)| !account.is_empty())
            }) && !pattern.contains("${");
            if !well_formed {
                return Err(OperatorPolicyError::new(
                    "passable role pattern",
                    pattern,
                    &format!(
                        "must be a role ARN pattern such as {role_arn_start}<account>:role/<path><name>, \
                         wildcards allowed, no policy variables"
                    ),
                ));
            }
        }
        if let Some(issuer) = &self.configured_issuer {
            let host_path = issuer_host_path(issuer);
            if host_path.is_empty()
                || has_wildcard(issuer)
                || host_path.contains(char::is_whitespace)
            {
                return Err(OperatorPolicyError::new(
                    "OIDC issuer",
                    issuer,
                    "must be an issuer URL without *, ? or ${, which a policy reads as wildcards",
                ));
            }
        }
        Ok(())
    }
}

/// The domain of AWS's endpoints in a partition, which EKS issuers are under.
fn partition_domain(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "amazonaws.com.cn",
        "aws-iso" => "c2s.ic.gov",
        "aws-iso-b" => "sc2s.sgov.gov",
        _ => "amazonaws.com",
    }
}

fn has_wildcard(text: &str) -> bool {
    text.contains('*') || text.contains('?') || text.contains("${")
}

/// Why no policy could be rendered. Shown to a person as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} {problem}")]
pub struct OperatorPolicyError {
    pub field: &'static str,
    pub value: String,
    pub problem: String,
}

impl OperatorPolicyError {
    fn new(field: &'static str, value: &str, problem: &str) -> Self {
        OperatorPolicyError {
            field,
            value: value.to_string(),
            problem: problem.to_string(),
        }
    }

    fn invalid(field: &'static str, error: ValidationError) -> Self {
        OperatorPolicyError {
            field,
            value: String::new(),
            problem: format!("is invalid: {error}"),
        }
    }
}

/// The operator's policy document for `inputs`. Statements keep the order
/// written here (a person reads them top-down: reads, creation, changes,
/// passing, EKS, denials); keys within a statement are sorted by serde_json.
pub fn render(inputs: &OperatorPolicyInputs) -> Result<Value, OperatorPolicyError> {
    inputs.validate()?;
    let p = &inputs.partition;
    let account = &inputs.account_id;
    let cluster = &inputs.cluster_name;
    let owned_roles = inputs.owned_role_pattern();
    let resource_tag = format!("aws:ResourceTag/{CLUSTER_KEY}");
    let resource_region_tag = format!("aws:ResourceTag/{REGION_KEY}");
    let request_tag = format!("aws:RequestTag/{CLUSTER_KEY}");
    let request_region_tag = format!("aws:RequestTag/{REGION_KEY}");

    // A role is this cluster's when it carries the cluster tag; the region
    // tag, where present, must be ours too, so a cluster of the same name in
    // another region of the account is another owner. Roles tagged before
    // regions were told apart lack it, hence IfExists.
    let ours = json!({
        "StringEquals": { &resource_tag: cluster },
        "StringEqualsIfExists": { &resource_region_tag: &inputs.region },
    });

    let mut create_condition = json!({
        "StringEquals": {
            &request_tag: cluster,
            &request_region_tag: &inputs.region,
        },
    });
    if let Some(boundary) = &inputs.permissions_boundary {
        create_condition["StringEquals"]["iam:PermissionsBoundary"] = json!(boundary);
    }

    let mut change_actions = vec![
        "iam:DeleteRole",
        "iam:UpdateRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:UntagRole",
    ];
    if inputs.permissions_boundary.is_none() {
        // Without an enforced boundary a spec may ask for its own.
        change_actions.push("iam:PutRolePermissionsBoundary");
    }

    let mut passable = vec![owned_roles.clone()];
    for pattern in &inputs.passable_role_patterns {
        if !passable.contains(pattern) {
            passable.push(pattern.clone());
        }
    }

    let mut statements = vec![
        json!({
            "Sid": "ReadRoles",
            "Effect": "Allow",
            "Action": [
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListRolePolicies",
            ],
            // Any role of the account: roles named by roleArn and roles found
            // without our tags are read to be checked and refused.
            "Resource": format!("arn:{p}:iam::{account}:role/*"),
        }),
        json!({
            "Sid": "ReadOidcProviders",
            "Effect": "Allow",
            "Action": "iam:GetOpenIDConnectProvider",
            "Resource": format!("arn:{p}:iam::{account}:oidc-provider/*"),
        }),
        json!({
            "Sid": "ReadThisCluster",
            "Effect": "Allow",
            "Action": ["eks:DescribeCluster", "eks:ListPodIdentityAssociations"],
            "Resource": inputs.cluster_arn(),
        }),
        json!({
            "Sid": "ReadThisClustersAssociations",
            "Effect": "Allow",
            "Action": "eks:DescribePodIdentityAssociation",
            "Resource": inputs.association_pattern(),
        }),
        json!({
            "Sid": "LearnTheAccount",
            "Effect": "Allow",
            "Action": "sts:GetCallerIdentity",
            // GetCallerIdentity has no resource to name.
            "Resource": "*",
        }),
        json!({
            "Sid": "CreateRolesTaggedForThisCluster",
            "Effect": "Allow",
            "Action": "iam:CreateRole",
            "Resource": &owned_roles,
            "Condition": create_condition,
        }),
        json!({
            "Sid": "TagOnlyThisClustersRolesAsThisClusters",
            "Effect": "Allow",
            "Action": "iam:TagRole",
            "Resource": &owned_roles,
            "Condition": {
                "StringEquals": { &resource_tag: cluster, &request_tag: cluster },
                "StringEqualsIfExists": {
                    &resource_region_tag: &inputs.region,
                    &request_region_tag: &inputs.region,
                },
            },
        }),
        json!({
            "Sid": "ChangeOnlyThisClustersRoles",
            "Effect": "Allow",
            "Action": change_actions,
            "Resource": &owned_roles,
            "Condition": ours,
        }),
    ];
    if inputs.reads_agent_addon {
        statements.push(json!({
            // Only whether the agent runs: a binding is not Ready without it.
            "Sid": "ReadThisClustersPodIdentityAgent",
            "Effect": "Allow",
            "Action": "eks:DescribeAddon",
            "Resource": inputs.agent_addon_pattern(),
        }));
    }
    if inputs.adopts_roles {
        statements.push(json!({
            // Taking over a role someone else made starts with tagging it as
            // this cluster's: only a role no cluster's operator has tagged,
            // under the role path and prefix, with this cluster's tags.
            "Sid": "AdoptUntaggedRolesAsThisClustersWhereGranted",
            "Effect": "Allow",
            "Action": "iam:TagRole",
            "Resource": &owned_roles,
            "Condition": {
                "Null": { &resource_tag: "true" },
                "StringEquals": { &request_tag: cluster, &request_region_tag: &inputs.region },
            },
        }));
    }
    if inputs.manages_oidc_provider {
        let provider = inputs.managed_provider_pattern();
        let region = &inputs.region;
        statements.extend([
            json!({
                // Only the configured issuer's provider, or (issuer read from
                // EKS) one of the region's EKS issuers, and only tagged as
                // this cluster's.
                "Sid": "CreateThisClustersOidcProviderTaggedForIt",
                "Effect": "Allow",
                "Action": "iam:CreateOpenIDConnectProvider",
                "Resource": &provider,
                "Condition": {
                    "StringEquals": { &request_tag: cluster, &request_region_tag: region },
                },
            }),
            json!({
                // IAM authorizes the tags sent with the create as this
                // action too; as for roles, only a provider already this
                // cluster's, with this cluster's tags in the request.
                "Sid": "TagOnlyThisClustersOidcProviderAsItsOwn",
                "Effect": "Allow",
                "Action": "iam:TagOpenIDConnectProvider",
                "Resource": &provider,
                "Condition": {
                    "StringEquals": {
                        &resource_tag: cluster,
                        &resource_region_tag: region,
                        &request_tag: cluster,
                        &request_region_tag: region,
                    },
                },
            }),
            json!({
                // Never to a provider someone else made: it is theirs.
                "Sid": "AddAudiencesOnlyToTheOidcProviderItMade",
                "Effect": "Allow",
                "Action": "iam:AddClientIDToOpenIDConnectProvider",
                "Resource": &provider,
                "Condition": {
                    "StringEquals": { &resource_tag: cluster, &resource_region_tag: region },
                },
            }),
        ]);
    }
    if let Some(boundary) = &inputs.permissions_boundary {
        statements.push(json!({
            "Sid": "SetOnlyTheEnforcedBoundary",
            "Effect": "Allow",
            "Action": "iam:PutRolePermissionsBoundary",
            "Resource": &owned_roles,
            "Condition": {
                "StringEquals": {
                    &resource_tag: cluster,
                    "iam:PermissionsBoundary": boundary,
                },
                "StringEqualsIfExists": { &resource_region_tag: &inputs.region },
            },
        }));
    }
    statements.extend([
        json!({
            "Sid": "PassRolesOnlyToPodIdentity",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": passable,
            "Condition": {
                "StringEquals": { "iam:PassedToService": POD_IDENTITY_SERVICE },
            },
        }),
        json!({
            "Sid": "CreateAssociationsInThisCluster",
            "Effect": "Allow",
            "Action": "eks:CreatePodIdentityAssociation",
            "Resource": inputs.cluster_arn(),
        }),
        json!({
            "Sid": "ChangeThisClustersAssociations",
            "Effect": "Allow",
            "Action": [
                "eks:UpdatePodIdentityAssociation",
                "eks:DeletePodIdentityAssociation",
                "eks:TagResource",
            ],
            "Resource": inputs.association_pattern(),
        }),
        // Denials hold whatever else is attached to the operator's role.
        json!({
            "Sid": "NeverRemoveABoundary",
            "Effect": "Deny",
            "Action": "iam:DeleteRolePermissionsBoundary",
            "Resource": "*",
        }),
        json!({
            "Sid": "NeverRemoveOwnershipTags",
            "Effect": "Deny",
            "Action": "iam:UntagRole",
            "Resource": "*",
            "Condition": {
                "ForAnyValue:StringEquals": { "aws:TagKeys": OWNERSHIP_TAG_KEYS },
            },
        }),
    ]);
    if let Some(boundary) = &inputs.permissions_boundary {
        // A missing key makes StringNotEquals true: a role created without
        // the boundary is denied as well as one created with another.
        statements.push(json!({
            "Sid": "NeverSetAnotherBoundary",
            "Effect": "Deny",
            "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
            "Resource": "*",
            "Condition": {
                "StringNotEquals": { "iam:PermissionsBoundary": boundary },
            },
        }));
    }
    Ok(json!({
        "Version": CURRENT_POLICY_VERSION,
        "Statement": statements,
    }))
}

/// [`render`] as the pretty JSON `--print-aws-policy` prints and
/// `config/aws-iam-policy.json` holds, ending in a newline.
pub fn render_pretty(inputs: &OperatorPolicyInputs) -> Result<String, OperatorPolicyError> {
    let value = render(inputs)?;
    // safe unwrap: a serde_json::Value always serialises.
    let mut text = serde_json::to_string_pretty(&value).expect("a JSON value serialises");
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyDocument;

    const ACCOUNT: &str = "123456789012";
    const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/k8s-boundary";

    /// (partition, a region in it)
    const PARTITIONS: [(&str, &str); 3] = [
        ("aws", "us-east-1"),
        ("aws-cn", "cn-north-1"),
        ("aws-us-gov", "us-gov-west-1"),
    ];

    fn inputs(partition: &str, region: &str) -> OperatorPolicyInputs {
        OperatorPolicyInputs::new(partition, ACCOUNT, region, "my-cluster")
    }

    fn statements(policy: &Value) -> &Vec<Value> {
        policy["Statement"].as_array().expect("Statement list")
    }

    fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
        statements(policy)
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}"))
    }

    fn has_statement(policy: &Value, sid: &str) -> bool {
        statements(policy).iter().any(|s| s["Sid"] == sid)
    }

    fn list(value: &Value) -> Vec<String> {
        match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().expect("string").to_string())
                .collect(),
            other => panic!("not a string or list: {other}"),
        }
    }

    fn actions(statement: &Value) -> Vec<String> {
        list(&statement["Action"])
    }

    /// Writes are every action that is not a read: how each is scoped is
    /// what the policy is for.
    fn is_read(action: &str) -> bool {
        let name = action.split(':').nth(1).unwrap_or_default();
        ["Get", "List", "Describe"]
            .iter()
            .any(|verb| name.starts_with(verb))
    }

    fn allow_statements(policy: &Value) -> impl Iterator<Item = &Value> {
        statements(policy).iter().filter(|s| s["Effect"] == "Allow")
    }

    #[test]
    fn renders_a_well_formed_document_in_every_partition() {
        for (partition, region) in PARTITIONS {
            let policy = render(&inputs(partition, region)).expect("renders");
            assert_eq!(policy["Version"], "2012-10-17");
            PolicyDocument::from_value(&policy).expect("a well-formed policy");
            let sids: Vec<&str> = statements(&policy)
                .iter()
                .map(|s| s["Sid"].as_str().expect("every statement has a Sid"))
                .collect();
            let mut unique = sids.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), sids.len(), "Sids are unique: {sids:?}");
            assert!(
                sids.iter()
                    .all(|sid| sid.chars().all(|c| c.is_ascii_alphanumeric())),
                "IAM allows only alphanumeric Sids: {sids:?}"
            );
        }
    }

    #[test]
    fn every_arn_names_the_partition_account_and_region() {
        for (partition, region) in PARTITIONS {
            let policy = render(&inputs(partition, region)).expect("renders");
            for statement in statements(&policy) {
                for resource in list(&statement["Resource"]) {
                    if resource == "*" {
                        continue;
                    }
                    assert!(
                        resource.starts_with(&format!("arn:{partition}:")),
                        "{resource} in {partition}"
                    );
                    assert!(resource.contains(ACCOUNT), "{resource} names the account");
                    if resource.contains(":eks:") {
                        assert!(
                            resource.starts_with(&format!("arn:{partition}:eks:{region}:")),
                            "{resource} names the region"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn no_write_is_allowed_on_every_resource() {
        for (partition, region) in PARTITIONS {
            let policy = render(&inputs(partition, region)).expect("renders");
            for statement in allow_statements(&policy) {
                if list(&statement["Resource"]).iter().any(|r| r == "*") {
                    for action in actions(statement) {
                        assert!(
                            action == "sts:GetCallerIdentity",
                            "{action} allowed on * in {partition}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_allowed_role_write_is_bound_to_this_clusters_tag() {
        let policy = render(&inputs("aws", "us-east-1")).expect("renders");
        for statement in allow_statements(&policy) {
            let writes: Vec<String> = actions(statement)
                .into_iter()
                .filter(|a| a.starts_with("iam:") && !is_read(a) && a != "iam:PassRole")
                .collect();
            if writes.is_empty() {
                continue;
            }
            let equals = &statement["Condition"]["StringEquals"];
            let tagged = if writes == ["iam:CreateRole"] {
                equals["aws:RequestTag/iam-operator.io/cluster"] == "my-cluster"
            } else {
                equals["aws:ResourceTag/iam-operator.io/cluster"] == "my-cluster"
            };
            assert!(tagged, "{writes:?} without the cluster tag: {statement}");
            assert_eq!(
                list(&statement["Resource"]),
                ["arn:aws:iam::123456789012:role/*"],
                "{writes:?}"
            );
        }
    }

    #[test]
    fn create_and_tag_require_the_cluster_tag_in_the_request() {
        let policy = render(&inputs("aws", "us-east-1")).expect("renders");
        for sid in [
            "CreateRolesTaggedForThisCluster",
            "TagOnlyThisClustersRolesAsThisClusters",
        ] {
            assert_eq!(
                statement(&policy, sid)["Condition"]["StringEquals"]["aws:RequestTag/iam-operator.io/cluster"],
                "my-cluster",
                "{sid}"
            );
        }
        let tag = statement(&policy, "TagOnlyThisClustersRolesAsThisClusters");
        assert_eq!(actions(tag), ["iam:TagRole"]);
        assert_eq!(
            tag["Condition"]["StringEquals"]["aws:ResourceTag/iam-operator.io/cluster"],
            "my-cluster",
            "an untagged role cannot be claimed by tagging it"
        );
    }

    #[test]
    fn a_region_tag_of_another_region_is_another_owner() {
        let policy = render(&inputs("aws", "eu-west-1")).expect("renders");
        let change = statement(&policy, "ChangeOnlyThisClustersRoles");
        assert_eq!(
            change["Condition"]["StringEqualsIfExists"]["aws:ResourceTag/iam-operator.io/region"],
            "eu-west-1"
        );
        let create = statement(&policy, "CreateRolesTaggedForThisCluster");
        assert_eq!(
            create["Condition"]["StringEquals"]["aws:RequestTag/iam-operator.io/region"],
            "eu-west-1"
        );
    }

    #[test]
    fn boundary_and_ownership_tags_can_never_be_removed() {
        for boundary in [None, Some(BOUNDARY)] {
            let mut i = inputs("aws", "us-east-1");
            i.permissions_boundary = boundary.map(str::to_string);
            let policy = render(&i).expect("renders");
            let keep = statement(&policy, "NeverRemoveABoundary");
            assert_eq!(keep["Effect"], "Deny");
            assert_eq!(actions(keep), ["iam:DeleteRolePermissionsBoundary"]);
            assert!(keep.get("Condition").is_none(), "denied unconditionally");
            assert!(
                allow_statements(&policy)
                    .all(|s| !actions(s).contains(&"iam:DeleteRolePermissionsBoundary".into())),
                "never allowed either"
            );
            let tags = statement(&policy, "NeverRemoveOwnershipTags");
            assert_eq!(tags["Effect"], "Deny");
            assert_eq!(actions(tags), ["iam:UntagRole"]);
            let keys = list(&tags["Condition"]["ForAnyValue:StringEquals"]["aws:TagKeys"]);
            for key in [
                MANAGED_BY_KEY,
                CLUSTER_KEY,
                REGION_KEY,
                NAMESPACE_KEY,
                KIND_KEY,
                NAME_KEY,
            ] {
                assert!(keys.contains(&key.to_string()), "{key}");
            }
        }
    }

    #[test]
    fn without_a_boundary_a_spec_may_set_its_own() {
        let policy = render(&inputs("aws", "us-east-1")).expect("renders");
        assert!(
            actions(statement(&policy, "ChangeOnlyThisClustersRoles"))
                .contains(&"iam:PutRolePermissionsBoundary".to_string())
        );
        assert!(!has_statement(&policy, "SetOnlyTheEnforcedBoundary"));
        assert!(!has_statement(&policy, "NeverSetAnotherBoundary"));
        assert!(
            statement(&policy, "CreateRolesTaggedForThisCluster")["Condition"]["StringEquals"]
                .get("iam:PermissionsBoundary")
                .is_none()
        );
    }

    #[test]
    fn an_enforced_boundary_binds_create_and_put() {
        for (partition, region) in PARTITIONS {
            let boundary = format!("arn:{partition}:iam::{ACCOUNT}:policy/k8s-boundary");
            let mut i = inputs(partition, region);
            i.permissions_boundary = Some(boundary.clone());
            let policy = render(&i).expect("renders");
            assert_eq!(
                statement(&policy, "CreateRolesTaggedForThisCluster")["Condition"]["StringEquals"]
                    ["iam:PermissionsBoundary"],
                boundary.as_str()
            );
            assert!(
                !actions(statement(&policy, "ChangeOnlyThisClustersRoles"))
                    .contains(&"iam:PutRolePermissionsBoundary".to_string())
            );
            let put = statement(&policy, "SetOnlyTheEnforcedBoundary");
            assert_eq!(actions(put), ["iam:PutRolePermissionsBoundary"]);
            assert_eq!(
                put["Condition"]["StringEquals"]["iam:PermissionsBoundary"],
                boundary.as_str()
            );
            assert_eq!(
                put["Condition"]["StringEquals"]["aws:ResourceTag/iam-operator.io/cluster"],
                "my-cluster"
            );
            let deny = statement(&policy, "NeverSetAnotherBoundary");
            assert_eq!(deny["Effect"], "Deny");
            assert_eq!(
                deny["Condition"]["StringNotEquals"]["iam:PermissionsBoundary"],
                boundary.as_str()
            );
        }
    }

    #[test]
    fn role_writes_stay_under_the_enforced_path_and_prefix() {
        for (partition, region) in PARTITIONS {
            let mut i = inputs(partition, region);
            i.role_path = "/k8s/".into();
            i.role_name_prefix = "team-".into();
            let expected = format!("arn:{partition}:iam::{ACCOUNT}:role/k8s/team-*");
            assert_eq!(i.owned_role_pattern(), expected);
            let policy = render(&i).expect("renders");
            for sid in [
                "CreateRolesTaggedForThisCluster",
                "TagOnlyThisClustersRolesAsThisClusters",
                "ChangeOnlyThisClustersRoles",
            ] {
                assert_eq!(
                    list(&statement(&policy, sid)["Resource"]),
                    [expected.as_str()],
                    "{sid}"
                );
            }
            assert_eq!(
                list(&statement(&policy, "PassRolesOnlyToPodIdentity")["Resource"]),
                [expected.as_str()]
            );
            // Reads still reach every role: a roleArn may name any of them.
            assert_eq!(
                list(&statement(&policy, "ReadRoles")["Resource"]),
                [format!("arn:{partition}:iam::{ACCOUNT}:role/*")]
            );
        }
    }

    #[test]
    fn a_prefix_alone_keeps_the_root_path() {
        let mut i = inputs("aws", "us-east-1");
        i.role_name_prefix = "k8s".into();
        assert_eq!(
            i.owned_role_pattern(),
            "arn:aws:iam::123456789012:role/k8s*"
        );
    }

    #[test]
    fn roles_are_passed_only_to_pod_identity() {
        let mut i = inputs("aws", "us-east-1");
        i.passable_role_patterns = vec![
            "arn:aws:iam::123456789012:role/shared/*".into(),
            "arn:aws:iam::210987654321:role/cross-account-target".into(),
            // Already covered: listed once.
            "arn:aws:iam::123456789012:role/*".into(),
        ];
        let policy = render(&i).expect("renders");
        let pass: Vec<&Value> = allow_statements(&policy)
            .filter(|s| actions(s).iter().any(|a| a == "iam:PassRole"))
            .collect();
        assert_eq!(pass.len(), 1, "one statement passes roles");
        assert_eq!(actions(pass[0]), ["iam:PassRole"]);
        assert_eq!(
            pass[0]["Condition"]["StringEquals"]["iam:PassedToService"],
            "pods.eks.amazonaws.com"
        );
        assert_eq!(
            list(&pass[0]["Resource"]),
            [
                "arn:aws:iam::123456789012:role/*",
                "arn:aws:iam::123456789012:role/shared/*",
                "arn:aws:iam::210987654321:role/cross-account-target",
            ]
        );
    }

    #[test]
    fn eks_writes_reach_only_this_cluster() {
        for (partition, region) in PARTITIONS {
            let policy = render(&inputs(partition, region)).expect("renders");
            let cluster = format!("arn:{partition}:eks:{region}:{ACCOUNT}:cluster/my-cluster");
            let associations = format!(
                "arn:{partition}:eks:{region}:{ACCOUNT}:podidentityassociation/my-cluster/*"
            );
            let create = statement(&policy, "CreateAssociationsInThisCluster");
            assert_eq!(actions(create), ["eks:CreatePodIdentityAssociation"]);
            assert_eq!(list(&create["Resource"]), [cluster.as_str()]);
            let change = statement(&policy, "ChangeThisClustersAssociations");
            assert_eq!(
                actions(change),
                [
                    "eks:UpdatePodIdentityAssociation",
                    "eks:DeletePodIdentityAssociation",
                    "eks:TagResource"
                ]
            );
            assert_eq!(list(&change["Resource"]), [associations.as_str()]);
            let agent = format!(
                "arn:{partition}:eks:{region}:{ACCOUNT}:addon/my-cluster/eks-pod-identity-agent/*"
            );
            let read_agent = statement(&policy, "ReadThisClustersPodIdentityAgent");
            assert_eq!(actions(read_agent), ["eks:DescribeAddon"]);
            assert_eq!(list(&read_agent["Resource"]), [agent.as_str()]);
            let mut self_managed = inputs(partition, region);
            self_managed.reads_agent_addon = false;
            let without = render(&self_managed).expect("renders");
            assert!(
                !without.to_string().contains("eks:DescribeAddon"),
                "a self-managed agent is not asked of EKS, so the policy grants no read of it"
            );
            for statement in allow_statements(&policy) {
                for resource in list(&statement["Resource"]) {
                    if resource.contains(":eks:") {
                        assert!(
                            resource == cluster || resource == associations || resource == agent,
                            "{resource}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn covers_every_call_the_operator_makes() {
        // The operations crate::aws sends (RoleAction::operation,
        // AssociationAction::operation, and the reads), bar
        // DeleteRolePermissionsBoundary, which the policy denies on purpose.
        let made = [
            "iam:GetRole",
            "iam:GetRolePolicy",
            "iam:ListAttachedRolePolicies",
            "iam:ListRolePolicies",
            "iam:GetOpenIDConnectProvider",
            "iam:CreateRole",
            "iam:DeleteRole",
            "iam:UpdateRole",
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePermissionsBoundary",
            "iam:TagRole",
            "iam:UntagRole",
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:PassRole",
            "eks:DescribeCluster",
            "eks:ListPodIdentityAssociations",
            "eks:DescribePodIdentityAssociation",
            "eks:DescribeAddon",
            "eks:CreatePodIdentityAssociation",
            "eks:UpdatePodIdentityAssociation",
            "eks:DeletePodIdentityAssociation",
            "eks:TagResource",
            "sts:GetCallerIdentity",
        ];
        for boundary in [None, Some(BOUNDARY)] {
            let mut i = inputs("aws", "us-east-1");
            i.permissions_boundary = boundary.map(str::to_string);
            let policy = render(&i).expect("renders");
            let allowed: Vec<String> = allow_statements(&policy).flat_map(actions).collect();
            for action in made {
                assert!(allowed.iter().any(|a| a == action), "{action} not allowed");
            }
            for action in &allowed {
                assert!(
                    made.contains(&action.as_str()),
                    "{action} allowed, never made"
                );
            }
        }
    }

    #[test]
    fn adoption_is_granted_only_where_the_guardrails_allow_it_and_only_of_untagged_roles() {
        let off = render(&inputs("aws", "us-east-1")).expect("renders");
        assert!(
            !statements(&off)
                .iter()
                .any(|s| s["Sid"] == "AdoptUntaggedRolesAsThisClustersWhereGranted"),
            "no adoption without a grant"
        );
        let mut adopting = inputs("aws", "us-east-1");
        adopting.adopts_roles = true;
        adopting.role_path = "/k8s/".into();
        adopting.role_name_prefix = "team-".into();
        let policy = render(&adopting).expect("renders");
        let adopt = statement(&policy, "AdoptUntaggedRolesAsThisClustersWhereGranted");
        assert_eq!(actions(adopt), ["iam:TagRole"]);
        assert_eq!(
            list(&adopt["Resource"]),
            [format!("arn:aws:iam::{ACCOUNT}:role/k8s/team-*")]
        );
        assert_eq!(
            adopt["Condition"]["Null"]["aws:ResourceTag/iam-operator.io/cluster"],
            "true"
        );
        assert_eq!(
            adopt["Condition"]["StringEquals"]["aws:RequestTag/iam-operator.io/cluster"],
            "my-cluster"
        );
    }

    #[test]
    fn managing_the_oidc_provider_grants_only_this_clusters_and_only_tagged() {
        let off = render(&inputs("aws", "us-east-1")).expect("renders");
        assert!(
            !off.to_string().contains("iam:CreateOpenIDConnectProvider")
                && !off
                    .to_string()
                    .contains("iam:AddClientIDToOpenIDConnectProvider"),
            "not managing: no provider write"
        );
        for (partition, region, domain) in [
            ("aws", "us-east-1", "amazonaws.com"),
            ("aws-cn", "cn-north-1", "amazonaws.com.cn"),
            ("aws-us-gov", "us-gov-west-1", "amazonaws.com"),
        ] {
            let mut managing = inputs(partition, region);
            managing.manages_oidc_provider = true;
            let policy = render(&managing).expect("renders");
            let eks_issuers = format!(
                "arn:{partition}:iam::{ACCOUNT}:oidc-provider/oidc.eks.{region}.{domain}/id/*"
            );
            let create = statement(&policy, "CreateThisClustersOidcProviderTaggedForIt");
            assert_eq!(actions(create), ["iam:CreateOpenIDConnectProvider"]);
            assert_eq!(list(&create["Resource"]), [eks_issuers.as_str()]);
            assert_eq!(
                create["Condition"]["StringEquals"]["aws:RequestTag/iam-operator.io/cluster"],
                "my-cluster"
            );
            let add = statement(&policy, "AddAudiencesOnlyToTheOidcProviderItMade");
            assert_eq!(actions(add), ["iam:AddClientIDToOpenIDConnectProvider"]);
            assert_eq!(
                add["Condition"]["StringEquals"]["aws:ResourceTag/iam-operator.io/cluster"],
                "my-cluster"
            );
            let tag = statement(&policy, "TagOnlyThisClustersOidcProviderAsItsOwn");
            assert_eq!(
                tag["Condition"]["StringEquals"]["aws:ResourceTag/iam-operator.io/cluster"],
                "my-cluster"
            );
            assert!(
                !policy
                    .to_string()
                    .contains("iam:DeleteOpenIDConnectProvider"),
                "a provider is never deleted"
            );
        }
        let mut configured = inputs("aws", "us-east-1");
        configured.manages_oidc_provider = true;
        configured.configured_issuer = Some("https://issuer.example.com/cluster/".into());
        let policy = render(&configured).expect("renders");
        assert_eq!(
            list(&statement(&policy, "CreateThisClustersOidcProviderTaggedForIt")["Resource"]),
            [format!(
                "arn:aws:iam::{ACCOUNT}:oidc-provider/issuer.example.com/cluster"
            )]
        );
    }

    #[test]
    fn refuses_inputs_that_would_widen_the_policy() {
        type Change = Box<dyn Fn(&mut OperatorPolicyInputs)>;
        let cases: Vec<(&str, Change)> = vec![
            ("partition", Box::new(|i| i.partition = "aws-mars".into())),
            ("account id", Box::new(|i| i.account_id = "*".into())),
            ("account id", Box::new(|i| i.account_id = "12345".into())),
            ("region", Box::new(|i| i.region = "*".into())),
            ("region", Box::new(|i| i.region = String::new())),
            ("cluster name", Box::new(|i| i.cluster_name = "*".into())),
            ("cluster name", Box::new(|i| i.cluster_name = "a/b".into())),
            ("cluster name", Box::new(|i| i.cluster_name = String::new())),
            ("cluster name", Box::new(|i| i.cluster_name = "-x".into())),
            ("role path", Box::new(|i| i.role_path = "/*/".into())),
            (
                "role path",
                Box::new(|i| i.role_path = "/${aws:username}/".into()),
            ),
            ("role path", Box::new(|i| i.role_path = "k8s".into())),
            (
                "role name prefix",
                Box::new(|i| i.role_name_prefix = "*".into()),
            ),
            (
                "role name prefix",
                Box::new(|i| i.role_name_prefix = "a?".into()),
            ),
            (
                "permissions boundary",
                Box::new(|i| {
                    i.permissions_boundary = Some("arn:aws:iam::123456789012:policy/*".into())
                }),
            ),
            (
                "permissions boundary",
                Box::new(|i| {
                    i.permissions_boundary = Some("arn:aws-cn:iam::123456789012:policy/b".into())
                }),
            ),
            (
                "permissions boundary",
                Box::new(|i| i.permissions_boundary = Some("not-an-arn".into())),
            ),
            (
                "passable role pattern",
                Box::new(|i| i.passable_role_patterns = vec!["*".into()]),
            ),
            (
                "passable role pattern",
                Box::new(|i| i.passable_role_patterns = vec!["arn:aws:s3:::bucket/*".into()]),
            ),
            (
                "passable role pattern",
                Box::new(|i| {
                    i.passable_role_patterns = vec!["arn:aws-cn:iam::123456789012:role/x".into()]
                }),
            ),
            (
                "passable role pattern",
                Box::new(|i| {
                    i.passable_role_patterns =
                        vec!["arn:aws:iam::123456789012:role/${aws:username}".into()]
                }),
            ),
            (
                "OIDC issuer",
                Box::new(|i| i.configured_issuer = Some("https://*".into())),
            ),
            (
                "OIDC issuer",
                Box::new(|i| i.configured_issuer = Some("https://".into())),
            ),
            (
                "OIDC issuer",
                Box::new(|i| i.configured_issuer = Some("https://a/${aws:username}".into())),
            ),
        ];
        for (field, change) in cases {
            let mut i = inputs("aws", "us-east-1");
            change(&mut i);
            let error = render(&i).expect_err(&format!("{i:?} refused"));
            assert_eq!(error.field, field, "{i:?}: {error}");
        }
    }

    #[test]
    fn pretty_rendering_is_stable_and_ends_in_a_newline() {
        let i = inputs("aws", "us-east-1");
        let text = render_pretty(&i).expect("renders");
        assert!(text.ends_with("}\n"));
        assert_eq!(text, render_pretty(&i).expect("renders again"));
        let reparsed: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(reparsed, render(&i).expect("renders"));
    }

    #[test]
    fn fits_the_managed_policy_size_limit() {
        // 6,144 characters (whitespace not counted) for a managed policy,
        // with a boundary, path, prefix and a few passable patterns.
        let mut i = inputs("aws-us-gov", "us-gov-west-1");
        i.role_path = "/platform/kubernetes/".into();
        i.role_name_prefix = "k8s-prod-".into();
        i.permissions_boundary = Some(format!("arn:aws-us-gov:iam::{ACCOUNT}:policy/boundary"));
        i.passable_role_patterns = (0..10)
            .map(|n| format!("arn:aws-us-gov:iam::{ACCOUNT}:role/shared/app-{n}-*"))
            .collect();
        let policy = render(&i).expect("renders");
        let size = crate::policy::non_whitespace_len(&policy.to_string());
        assert!(size < 6144, "{size} characters");
    }
}
