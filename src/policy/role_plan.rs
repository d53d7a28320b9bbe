//! The plan step for IAM roles: the minimal list of IAM calls that turns the
//! role as observed into the role as desired. Pure: the executor in
//! `crate::aws` runs the actions, this module only decides them.

use std::collections::{BTreeMap, BTreeSet};

use super::document::PolicyDocument;
use super::ownership::{Owner, Ownership, is_ownership_key};
use super::validate::{DEFAULT_MANAGED_POLICIES_QUOTA, INLINE_POLICIES_MAX_SIZE};

/// A role as IAM reports it: the state the plan compares, plus what only
/// IAM knows.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRole {
    pub arn: String,
    /// When IAM made the role, which says whether another service may not
    /// see it yet.
    pub created: Option<std::time::SystemTime>,
    pub state: RoleState,
}

/// What the operator reads of a role it does not manage: enough to say
/// whether pods could use it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleSummary {
    pub arn: String,
    pub created: Option<std::time::SystemTime>,
    /// `None` when IAM returned a document that does not parse.
    pub trust_policy: Option<PolicyDocument>,
    /// Whose it is: the operator's ownership tags, if any.
    pub tags: BTreeMap<String, String>,
}

/// IAM role names are unique case-insensitively: `MyRole` and `myrole` are
/// one role, and IAM answers for either.
pub fn same_role_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The name of the role an ARN that AWS or the operator wrote points at:
/// what follows its last `/`, past any path.
pub fn role_name_in_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or_default()
}

/// A role as the operator wants it, or as IAM reports it. Fields hold what
/// IAM stores, already canonical (policy documents compare semantically).
#[derive(Debug, Clone, PartialEq)]
pub struct RoleState {
    pub name: String,
    pub path: String,
    /// IAM has no "empty" description: `None` and `""` both mean none.
    pub description: Option<String>,
    pub max_session_seconds: i32,
    pub permissions_boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub trust_policy: PolicyDocument,
    pub managed_policies: BTreeSet<String>,
    pub inline_policies: BTreeMap<String, PolicyDocument>,
}

/// One IAM call.
#[derive(Debug, Clone, PartialEq)]
pub enum RoleAction {
    /// `CreateRole` with trust policy, description, max session, boundary and
    /// every tag (ownership included) in the one call, so that a role never
    /// exists without the tags that make it ours.
    CreateRole(Box<RoleState>),
    /// `UpdateRole` resets what it is not sent, so both fields always go.
    UpdateRole {
        description: Option<String>,
        max_session_seconds: i32,
    },
    UpdateTrustPolicy(PolicyDocument),
    PutPermissionsBoundary(String),
    TagRole(BTreeMap<String, String>),
    UntagRole(Vec<String>),
    AttachPolicy(String),
    DetachPolicy(String),
    PutInlinePolicy {
        name: String,
        document: PolicyDocument,
    },
    DeleteInlinePolicy(String),
    DeleteRole,
}

impl RoleAction {
    /// The IAM operation's name, for Events, logs and metrics.
    pub fn operation(&self) -> &'static str {
        match self {
            RoleAction::CreateRole(_) => "CreateRole",
            RoleAction::UpdateRole { .. } => "UpdateRole",
            RoleAction::UpdateTrustPolicy(_) => "UpdateAssumeRolePolicy",
            RoleAction::PutPermissionsBoundary(_) => "PutRolePermissionsBoundary",
            RoleAction::TagRole(_) => "TagRole",
            RoleAction::UntagRole(_) => "UntagRole",
            RoleAction::AttachPolicy(_) => "AttachRolePolicy",
            RoleAction::DetachPolicy(_) => "DetachRolePolicy",
            RoleAction::PutInlinePolicy { .. } => "PutRolePolicy",
            RoleAction::DeleteInlinePolicy(_) => "DeleteRolePolicy",
            RoleAction::DeleteRole => "DeleteRole",
        }
    }

    /// A short phrase for the Event a person reads.
    pub fn describe(&self) -> String {
        match self {
            RoleAction::CreateRole(role) => format!("created role {}{}", role.path, role.name),
            RoleAction::UpdateRole { .. } => {
                "updated description and maximum session duration".into()
            }
            RoleAction::UpdateTrustPolicy(_) => "updated trust policy".into(),
            RoleAction::PutPermissionsBoundary(arn) => format!("set permissions boundary {arn}"),
            RoleAction::TagRole(tags) => format!("tagged {}", keys(tags.keys())),
            RoleAction::UntagRole(keys_removed) => {
                format!("untagged {}", keys(keys_removed.iter()))
            }
            RoleAction::AttachPolicy(arn) => format!("attached {arn}"),
            RoleAction::DetachPolicy(arn) => format!("detached {arn}"),
            RoleAction::PutInlinePolicy { name, .. } => format!("put inline policy {name}"),
            RoleAction::DeleteInlinePolicy(name) => format!("deleted inline policy {name}"),
            RoleAction::DeleteRole => "deleted role".into(),
        }
    }
}

fn keys<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    keys.map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// The role at the desired name exists but is not ours: no call may touch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleNotOwned {
    pub role_name: String,
    pub ownership: Ownership,
}

impl std::fmt::Display for RoleNotOwned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ownership {
            Ownership::OtherOwner { description } => write!(
                f,
                "IAM role {} already exists and belongs to {description}; choose another spec.role.name",
                self.role_name
            ),
            _ => write!(
                f,
                "IAM role {} already exists and was not created by iam-operator (it lacks the iam-operator.io/* ownership tags); \
                 the operator never adopts or changes such a role: choose another spec.role.name, or delete or rename that role",
                self.role_name
            ),
        }
    }
}

impl std::error::Error for RoleNotOwned {}

/// Calls that make `observed` into `desired`. `None` observed: create.
pub fn plan_role(
    desired: &RoleState,
    observed: Option<&RoleState>,
    owner: &Owner,
) -> Result<Vec<RoleAction>, RoleNotOwned> {
    let Some(observed) = observed else {
        return Ok(create_role(desired));
    };
    let ownership = owner.classify(&observed.tags);
    if ownership != Ownership::Ours {
        return Err(RoleNotOwned {
            role_name: observed.name.clone(),
            ownership,
        });
    }
    if observed.path != desired.path {
        // IAM cannot move a role to another path; the only way is a new role.
        let mut actions = plan_role_removal(observed);
        actions.extend(create_role(desired));
        return Ok(actions);
    }

    let mut actions = Vec::new();
    if observed.trust_policy != desired.trust_policy {
        actions.push(RoleAction::UpdateTrustPolicy(desired.trust_policy.clone()));
    }
    if non_empty(&observed.description) != non_empty(&desired.description)
        || observed.max_session_seconds != desired.max_session_seconds
    {
        actions.push(RoleAction::UpdateRole {
            description: desired.description.clone(),
            max_session_seconds: desired.max_session_seconds,
        });
    }
    match (
        &observed.permissions_boundary,
        &desired.permissions_boundary,
    ) {
        (current, Some(wanted)) if current.as_ref() != Some(wanted) => {
            actions.push(RoleAction::PutPermissionsBoundary(wanted.clone()))
        }
        // A boundary once set stays: the operator's own AWS policy denies
        // DeleteRolePermissionsBoundary, so that no spec (and no bug) can
        // lift the cap a platform put on a role.
        _ => {}
    }
    // Untag first: a swap of keys never takes the role over IAM's 50 tags,
    // and a key that only changes case is not removed after being written.
    let to_untag: Vec<String> = observed
        .tags
        .keys()
        .filter(|k| !desired.tags.contains_key(*k))
        .cloned()
        .collect();
    if !to_untag.is_empty() {
        actions.push(RoleAction::UntagRole(to_untag));
    }
    let to_tag: BTreeMap<String, String> = desired
        .tags
        .iter()
        .filter(|(k, v)| observed.tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !to_tag.is_empty() {
        // The operator's AWS policy lets it tag only with its cluster's
        // ownership tags in the request: they ride along with every change.
        let mut to_tag = to_tag;
        to_tag.extend(
            desired
                .tags
                .iter()
                .filter(|(k, _)| is_ownership_key(k))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        actions.push(RoleAction::TagRole(to_tag));
    }
    actions.extend(policy_swap(desired, observed));
    Ok(actions)
}

/// Attach before detach and put before delete, so the role never has fewer
/// permissions mid-way than both the old and the new spec grant; except
/// where IAM's quotas (10 managed policies a role by default, 10,240
/// characters of inline policy) would refuse the addition: those additions
/// wait until the removals have made room.
fn policy_swap(desired: &RoleState, observed: &RoleState) -> Vec<RoleAction> {
    let to_attach: Vec<&String> = desired
        .managed_policies
        .difference(&observed.managed_policies)
        .collect();
    let to_detach: Vec<&String> = observed
        .managed_policies
        .difference(&desired.managed_policies)
        .collect();
    // The account's quota is at least the default and at least what the
    // role holds or is to hold (validation allows up to 20, for raised
    // quotas): this lower bound never draws a LimitExceeded.
    let quota = DEFAULT_MANAGED_POLICIES_QUOTA
        .max(observed.managed_policies.len())
        .max(desired.managed_policies.len());
    let room = quota.saturating_sub(observed.managed_policies.len());
    let (attach_first, attach_later) = to_attach.split_at(room.min(to_attach.len()));

    let to_put: Vec<(&String, &PolicyDocument)> = desired
        .inline_policies
        .iter()
        .filter(|(name, document)| observed.inline_policies.get(*name) != Some(*document))
        .collect();
    let to_delete: Vec<&String> = observed
        .inline_policies
        .keys()
        .filter(|name| !desired.inline_policies.contains_key(*name))
        .collect();
    let mut inline = observed.inline_policies.clone();
    let mut put_first = Vec::new();
    let mut put_later = Vec::new();
    for (name, document) in to_put {
        let mut after = inline.clone();
        after.insert(name.clone(), document.clone());
        if inline_size(&after) <= INLINE_POLICIES_MAX_SIZE {
            inline = after;
            put_first.push((name, document));
        } else {
            put_later.push((name, document));
        }
    }

    let attach = |arn: &&String| RoleAction::AttachPolicy((*arn).clone());
    let put = |(name, document): &(&String, &PolicyDocument)| RoleAction::PutInlinePolicy {
        name: (*name).clone(),
        document: (*document).clone(),
    };
    let mut actions: Vec<RoleAction> = attach_first.iter().map(attach).collect();
    actions.extend(put_first.iter().map(put));
    actions.extend(
        to_detach
            .iter()
            .map(|arn| RoleAction::DetachPolicy((*arn).clone())),
    );
    actions.extend(
        to_delete
            .iter()
            .map(|name| RoleAction::DeleteInlinePolicy((*name).clone())),
    );
    actions.extend(attach_later.iter().map(attach));
    actions.extend(put_later.iter().map(put));
    actions
}

fn inline_size(policies: &BTreeMap<String, PolicyDocument>) -> usize {
    policies
        .values()
        .map(PolicyDocument::non_whitespace_len)
        .sum()
}

fn non_empty(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|t| !t.is_empty())
}

fn create_role(desired: &RoleState) -> Vec<RoleAction> {
    let mut actions = vec![RoleAction::CreateRole(Box::new(desired.clone()))];
    actions.extend(
        desired
            .managed_policies
            .iter()
            .map(|arn| RoleAction::AttachPolicy(arn.clone())),
    );
    actions.extend(desired.inline_policies.iter().map(|(name, document)| {
        RoleAction::PutInlinePolicy {
            name: name.clone(),
            document: document.clone(),
        }
    }));
    actions
}

/// Calls that delete a role in an order IAM accepts: IAM refuses
/// `DeleteRole` (DeleteConflict) while policies are attached or inline.
pub fn plan_role_removal(observed: &RoleState) -> Vec<RoleAction> {
    let mut actions: Vec<RoleAction> = observed
        .managed_policies
        .iter()
        .map(|arn| RoleAction::DetachPolicy(arn.clone()))
        .collect();
    actions.extend(
        observed
            .inline_policies
            .keys()
            .map(|name| RoleAction::DeleteInlinePolicy(name.clone())),
    );
    actions.push(RoleAction::DeleteRole);
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner() -> Owner {
        Owner {
            cluster: "prod".into(),
            region: "us-east-1".into(),
            kind: "IamServiceAccount".into(),
            namespace: "apps".into(),
            name: "web".into(),
        }
    }

    fn doc(value: serde_json::Value) -> PolicyDocument {
        PolicyDocument::from_value(&value).expect("valid document")
    }

    fn s3_read() -> PolicyDocument {
        doc(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}),
        )
    }

    fn desired() -> RoleState {
        let mut tags = owner().tags();
        tags.insert("team".into(), "web".into());
        RoleState {
            name: "prod-apps-web".into(),
            path: "/".into(),
            description: Some("web role".into()),
            max_session_seconds: 3600,
            permissions_boundary: None,
            tags,
            trust_policy: doc(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}),
            ),
            managed_policies: BTreeSet::from(
                ["arn:aws:iam::aws:policy/ReadOnlyAccess".to_string()],
            ),
            inline_policies: BTreeMap::from([("s3".to_string(), s3_read())]),
        }
    }

    fn ops(actions: &[RoleAction]) -> Vec<&'static str> {
        actions.iter().map(RoleAction::operation).collect()
    }

    #[test]
    fn missing_role_is_created_with_everything_in_order() {
        let plan = plan_role(&desired(), None, &owner()).expect("plan");
        assert_eq!(
            ops(&plan),
            ["CreateRole", "AttachRolePolicy", "PutRolePolicy"]
        );
        match &plan[0] {
            RoleAction::CreateRole(role) => assert_eq!(role.tags, desired().tags),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn role_in_sync_plans_nothing() {
        let plan = plan_role(&desired(), Some(&desired()), &owner()).expect("plan");
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn documents_differing_only_in_form_plan_nothing() {
        let mut observed = desired();
        observed.inline_policies.insert(
            "s3".into(),
            doc(json!({"Version": "2012-10-17", "Statement": {"Resource": ["*"], "Action": ["s3:GetObject"], "Effect": "Allow"}})),
        );
        assert!(
            plan_role(&desired(), Some(&observed), &owner())
                .expect("plan")
                .is_empty()
        );
    }

    #[test]
    fn foreign_role_is_refused_with_no_actions() {
        let mut observed = desired();
        observed.tags = BTreeMap::from([("team".to_string(), "web".to_string())]);
        let refused = plan_role(&desired(), Some(&observed), &owner()).expect_err("not ours");
        assert_eq!(refused.ownership, Ownership::Foreign);
        assert!(refused.to_string().contains("not created by iam-operator"));
    }

    #[test]
    fn role_of_another_object_is_refused() {
        let mut observed = desired();
        observed
            .tags
            .insert(super::super::ownership::NAME_KEY.into(), "other".into());
        let refused = plan_role(&desired(), Some(&observed), &owner()).expect_err("not ours");
        assert!(refused.to_string().contains("apps/other"), "{refused}");
    }

    #[test]
    fn description_change_sends_both_update_role_fields() {
        let mut observed = desired();
        observed.description = Some("old".into());
        observed.max_session_seconds = 7200;
        let mut want = desired();
        want.max_session_seconds = 7200;
        let plan = plan_role(&want, Some(&observed), &owner()).expect("plan");
        assert_eq!(
            plan,
            [RoleAction::UpdateRole {
                description: Some("web role".into()),
                max_session_seconds: 7200
            }]
        );
    }

    #[test]
    fn empty_and_missing_description_are_the_same() {
        let mut observed = desired();
        observed.description = None;
        let mut want = desired();
        want.description = Some(String::new());
        assert!(
            plan_role(&want, Some(&observed), &owner())
                .expect("plan")
                .is_empty()
        );
    }

    #[test]
    fn managed_policies_match_the_list_exactly() {
        let mut observed = desired();
        observed.managed_policies = BTreeSet::from([
            "arn:aws:iam::aws:policy/ReadOnlyAccess".to_string(),
            "arn:aws:iam::aws:policy/AdministratorAccess".to_string(),
        ]);
        let mut want = desired();
        want.managed_policies
            .insert("arn:aws:iam::123456789012:policy/mine".into());
        let plan = plan_role(&want, Some(&observed), &owner()).expect("plan");
        assert_eq!(
            plan,
            [
                RoleAction::AttachPolicy("arn:aws:iam::123456789012:policy/mine".into()),
                RoleAction::DetachPolicy("arn:aws:iam::aws:policy/AdministratorAccess".into()),
            ]
        );
    }

    #[test]
    fn inline_policies_put_when_changed_and_deleted_when_gone() {
        let mut observed = desired();
        observed.inline_policies.insert("stale".into(), s3_read());
        let mut want = desired();
        want.inline_policies.insert(
            "s3".into(),
            doc(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}]})),
        );
        let plan = plan_role(&want, Some(&observed), &owner()).expect("plan");
        assert_eq!(ops(&plan), ["PutRolePolicy", "DeleteRolePolicy"]);
        assert_eq!(plan[1], RoleAction::DeleteInlinePolicy("stale".into()));
    }

    #[test]
    fn trust_policy_drift_is_repaired() {
        let mut observed = desired();
        observed.trust_policy = s3_read();
        let plan = plan_role(&desired(), Some(&observed), &owner()).expect("plan");
        assert_eq!(
            plan,
            [RoleAction::UpdateTrustPolicy(desired().trust_policy)]
        );
    }

    #[test]
    fn boundary_put_and_changed_but_never_removed() {
        let arn = "arn:aws:iam::123456789012:policy/boundary".to_string();
        let mut want = desired();
        want.permissions_boundary = Some(arn.clone());
        assert_eq!(
            plan_role(&want, Some(&desired()), &owner()).expect("plan"),
            [RoleAction::PutPermissionsBoundary(arn.clone())]
        );
        let mut observed = desired();
        observed.permissions_boundary = Some(arn);
        assert_eq!(
            plan_role(&desired(), Some(&observed), &owner()).expect("plan"),
            []
        );
    }

    #[test]
    fn tags_added_changed_and_removed() {
        let mut observed = desired();
        observed.tags.insert("old".into(), "x".into());
        observed.tags.insert("team".into(), "before".into());
        let plan = plan_role(&desired(), Some(&observed), &owner()).expect("plan");
        assert_eq!(
            plan,
            [
                RoleAction::UntagRole(vec!["old".into()]),
                RoleAction::TagRole(
                    [("team".to_string(), "web".to_string())]
                        .into_iter()
                        .chain(owner().tags())
                        .collect()
                ),
            ]
        );
    }

    #[test]
    fn path_change_recreates_the_role() {
        let mut observed = desired();
        observed.path = "/old/".into();
        let plan = plan_role(&desired(), Some(&observed), &owner()).expect("plan");
        assert_eq!(
            ops(&plan),
            [
                "DetachRolePolicy",
                "DeleteRolePolicy",
                "DeleteRole",
                "CreateRole",
                "AttachRolePolicy",
                "PutRolePolicy"
            ]
        );
    }

    #[test]
    fn removal_empties_the_role_before_deleting_it() {
        let plan = plan_role_removal(&desired());
        assert_eq!(
            ops(&plan),
            ["DetachRolePolicy", "DeleteRolePolicy", "DeleteRole"]
        );
        let mut bare = desired();
        bare.managed_policies.clear();
        bare.inline_policies.clear();
        assert_eq!(plan_role_removal(&bare), [RoleAction::DeleteRole]);
    }

    #[test]
    fn every_action_has_an_operation_and_description() {
        let plan = plan_role(&desired(), None, &owner()).expect("plan");
        for action in plan.iter().chain(plan_role_removal(&desired()).iter()) {
            assert!(!action.operation().is_empty());
            assert!(!action.describe().is_empty());
        }
    }

    fn policy(n: usize) -> String {
        format!("arn:aws:iam::123456789012:policy/p{n:02}")
    }

    fn operations(actions: &[RoleAction]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                RoleAction::AttachPolicy(arn) | RoleAction::DetachPolicy(arn) => {
                    format!(
                        "{} {}",
                        a.operation(),
                        arn.rsplit('/').next().unwrap_or_default()
                    )
                }
                RoleAction::PutInlinePolicy { name, .. } | RoleAction::DeleteInlinePolicy(name) => {
                    format!("{} {name}", a.operation())
                }
                other => other.operation().to_string(),
            })
            .collect()
    }

    #[test]
    fn below_the_quota_a_swap_attaches_before_it_detaches() {
        let mut observed = desired();
        observed.managed_policies = (0..5).map(policy).collect();
        let mut wanted = desired();
        wanted.managed_policies = (1..6).map(policy).collect();
        let actions = plan_role(&wanted, Some(&observed), &owner()).expect("ours");
        assert_eq!(
            operations(&actions),
            ["AttachRolePolicy p05", "DetachRolePolicy p00"]
        );
    }

    #[test]
    fn bug4_at_the_managed_policy_quota_a_swap_detaches_first() {
        let mut observed = desired();
        observed.managed_policies = (0..10).map(policy).collect();
        let mut wanted = desired();
        wanted.managed_policies = (2..12).map(policy).collect();
        let actions = plan_role(&wanted, Some(&observed), &owner()).expect("ours");
        assert_eq!(
            operations(&actions),
            [
                "DetachRolePolicy p00",
                "DetachRolePolicy p01",
                "AttachRolePolicy p10",
                "AttachRolePolicy p11"
            ]
        );
        // One slot free: the first addition goes before the removals.
        observed.managed_policies = (0..9).map(policy).collect();
        wanted.managed_policies = (1..11).map(policy).collect();
        let actions = plan_role(&wanted, Some(&observed), &owner()).expect("ours");
        assert_eq!(
            operations(&actions),
            [
                "AttachRolePolicy p09",
                "DetachRolePolicy p00",
                "AttachRolePolicy p10"
            ]
        );
    }

    #[test]
    fn past_the_default_quota_only_the_quota_the_role_proves_is_counted_on() {
        let mut observed = desired();
        observed.managed_policies = (0..12).map(policy).collect();
        let mut wanted = desired();
        wanted.managed_policies = (1..13).map(policy).collect();
        let actions = plan_role(&wanted, Some(&observed), &owner()).expect("ours");
        assert_eq!(
            operations(&actions),
            ["DetachRolePolicy p00", "AttachRolePolicy p12"]
        );
        // Growing to 13 proves a quota of at least 13: room for one more.
        wanted.managed_policies = (0..13).map(policy).collect();
        wanted.managed_policies.remove(&policy(0));
        wanted.managed_policies.insert(policy(13));
        let actions = plan_role(&wanted, Some(&observed), &owner()).expect("ours");
        assert_eq!(
            operations(&actions),
            [
                "AttachRolePolicy p12",
                "DetachRolePolicy p00",
                "AttachRolePolicy p13"
            ]
        );
    }

    fn sized(chars: usize) -> PolicyDocument {
        // The fixed part of this document is 112 non-whitespace characters.
        let resource = format!("arn:aws:s3:::{}", "b".repeat(chars - 112));
        let document = doc(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource}]}),
        );
        assert_eq!(document.non_whitespace_len(), chars);
        document
    }

    #[test]
    fn bug4_near_the_inline_size_limit_a_rename_deletes_first() {
        let mut observed = desired();
        observed.inline_policies = BTreeMap::from([("old".to_string(), sized(6000))]);
        let mut wanted = desired();
        wanted.inline_policies = BTreeMap::from([("new".to_string(), sized(6000))]);
        let actions = plan_role(&wanted, Some(&observed), &owner()).expect("ours");
        assert_eq!(
            operations(&actions),
            ["DeleteRolePolicy old", "PutRolePolicy new"]
        );
        // Room for both: put first, so the role is never without it.
        observed.inline_policies = BTreeMap::from([("old".to_string(), sized(4000))]);
        let actions = plan_role(&wanted, Some(&observed), &owner()).expect("ours");
        assert_eq!(
            operations(&actions),
            ["PutRolePolicy new", "DeleteRolePolicy old"]
        );
    }
}
