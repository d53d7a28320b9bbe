//! The plan step for EKS Pod Identity associations: which association calls
//! make the cluster's association for one ServiceAccount match the desired
//! one, and which remove ours. Pure: `crate::aws::Eks` runs the actions,
//! this module only decides them, and refuses to touch associations that
//! someone else made.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::ownership::{Owner, Ownership};

/// The longest token the operator sends. The EKS reference states no limit
/// for `clientRequestToken`; 64 is the common bound on AWS idempotency
/// tokens, so staying within it is safe whatever EKS enforces.
pub const CLIENT_REQUEST_TOKEN_MAX_LEN: usize = 64;

/// Makes the token recognisable in CloudTrail as the operator's.
const CLIENT_REQUEST_TOKEN_PREFIX: &str = "iam-operator-";

/// Hex digits of the hash kept in the token: 192 bits, far beyond any
/// chance collision, and the whole token stays within 64 characters.
const CLIENT_REQUEST_TOKEN_HASH_HEX: usize = 48;

/// The association the operator wants for one ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredAssociation {
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    pub target_role_arn: Option<String>,
    pub disable_session_tags: bool,
    /// Every tag, the ownership tags included.
    pub tags: BTreeMap<String, String>,
    /// Which incarnation of the owning object asks, such as its uid and
    /// generation: hashed into the client token (never sent otherwise), so
    /// that an object deleted and made again, or a spec changed and changed
    /// back, is never answered with the replay of an earlier create whose
    /// association is gone.
    pub request_scope: String,
}

/// An association as EKS describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedAssociation {
    pub association_id: String,
    pub association_arn: String,
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    pub target_role_arn: Option<String>,
    pub disable_session_tags: bool,
    pub tags: BTreeMap<String, String>,
}

/// One EKS call on an association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssociationAction {
    /// `CreatePodIdentityAssociation` with every tag in the one call, so the
    /// association never exists without the tags that make it ours.
    Create {
        association: DesiredAssociation,
        /// Deterministic: see [`client_request_token`].
        client_request_token: String,
    },
    /// `UpdatePodIdentityAssociation`. All three members are always sent, so
    /// the result does not depend on what EKS keeps for omitted ones.
    Update {
        association_id: String,
        role_arn: String,
        /// `None` removes the target role; the executor sends `""`, the only
        /// way the API offers to clear it.
        target_role_arn: Option<String>,
        disable_session_tags: bool,
    },
    Delete {
        association_id: String,
    },
    /// `TagResource` with the ownership tags on an association adopted
    /// without them, so that it stays recognisably ours after its role
    /// changes.
    Tag {
        association_arn: String,
        tags: BTreeMap<String, String>,
    },
}

impl AssociationAction {
    /// The EKS operation's name, for Events, logs and metrics.
    pub fn operation(&self) -> &'static str {
        match self {
            AssociationAction::Create { .. } => "CreatePodIdentityAssociation",
            AssociationAction::Update { .. } => "UpdatePodIdentityAssociation",
            AssociationAction::Delete { .. } => "DeletePodIdentityAssociation",
            AssociationAction::Tag { .. } => "TagResource",
        }
    }

    /// A short phrase for the Event a person reads.
    pub fn describe(&self) -> String {
        match self {
            AssociationAction::Create { association, .. } => format!(
                "created Pod Identity association {}/{} -> {}{}",
                association.namespace,
                association.service_account,
                association.role_arn,
                target_suffix(association.target_role_arn.as_deref())
            ),
            AssociationAction::Update {
                association_id,
                role_arn,
                target_role_arn,
                disable_session_tags,
            } => format!(
                "updated Pod Identity association {association_id} -> {role_arn}{}, session tags {}",
                target_suffix(target_role_arn.as_deref()),
                if *disable_session_tags {
                    "disabled"
                } else {
                    "enabled"
                }
            ),
            AssociationAction::Delete { association_id } => {
                format!("deleted Pod Identity association {association_id}")
            }
            AssociationAction::Tag {
                association_arn, ..
            } => {
                format!("adopted Pod Identity association {association_arn}: ownership tags added")
            }
        }
    }
}

fn target_suffix(target: Option<&str>) -> String {
    target.map(|t| format!(" (target {t})")).unwrap_or_default()
}

/// An association for the ServiceAccount exists and is not ours: no call
/// may touch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationConflict {
    pub association_id: String,
    pub role_arn: String,
    pub message: String,
}

impl std::fmt::Display for AssociationConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AssociationConflict {}

/// The `clientRequestToken` for creating `desired`'s association.
///
/// The same owner, request scope, ServiceAccount and request always give
/// the same token, so a create retried after a crash or a lost response is
/// answered with the association the first attempt made instead of making
/// another.
///
/// The request's own members (roles, session-tag flag, tags) are hashed
/// too: EKS refuses a token reused with other parameters
/// (`InvalidRequestException`, which reads as a spec error), whereas a
/// fresh token for a changed spec meets the one-association-per-
/// ServiceAccount rule (`ResourceInUseException`, transient) and the next
/// resync finds and updates what the first attempt made. Fields are
/// length-prefixed so that no two inputs run together into the same bytes.
pub fn client_request_token(owner: &Owner, desired: &DesiredAssociation) -> String {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(owner.cluster.as_bytes());
    field(desired.namespace.as_bytes());
    field(owner.kind.as_bytes());
    field(owner.name.as_bytes());
    field(desired.request_scope.as_bytes());
    field(desired.service_account.as_bytes());
    field(desired.role_arn.as_bytes());
    field(
        target(&desired.target_role_arn)
            .unwrap_or_default()
            .as_bytes(),
    );
    field(&[u8::from(desired.disable_session_tags)]);
    field(&(desired.tags.len() as u64).to_be_bytes());
    for (key, value) in &desired.tags {
        field(key.as_bytes());
        field(value.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{CLIENT_REQUEST_TOKEN_PREFIX}{}",
        &hex[..CLIENT_REQUEST_TOKEN_HASH_HEX]
    )
}

/// Whether the operator may change or delete `found`: it carries this
/// owner's tags, or carries no operator tags at all and points at the role
/// the operator manages for this owner. An association tagged for another
/// object is never ours, whatever role it points at: two objects claiming
/// one ServiceAccount must not both think they own it.
pub fn is_ours(found: &ObservedAssociation, owner: &Owner, our_role_arn: Option<&str>) -> bool {
    match owner.classify(&found.tags) {
        Ownership::Ours => true,
        Ownership::Foreign => our_role_arn == Some(found.role_arn.as_str()),
        Ownership::OtherOwner { .. } => false,
    }
}

/// An empty target role is how an update clears one: it means none, the
/// same as an absent one, and never goes out in a create.
fn target(target_role_arn: &Option<String>) -> Option<&str> {
    target_role_arn.as_deref().filter(|t| !t.is_empty())
}

fn conflict(
    found: &ObservedAssociation,
    owner: &Owner,
    desired: &DesiredAssociation,
) -> AssociationConflict {
    let who = match owner.classify(&found.tags) {
        Ownership::OtherOwner { description } => {
            format!("it belongs to {description}")
        }
        _ => "it was not created by iam-operator (it lacks the iam-operator.io/* ownership tags)"
            .to_string(),
    };
    AssociationConflict {
        association_id: found.association_id.clone(),
        role_arn: found.role_arn.clone(),
        message: format!(
            "ServiceAccount {}/{} in EKS cluster {} already has Pod Identity association {} to role {}; \
             {who}, and the operator never takes over such an association. \
             Delete it (aws eks delete-pod-identity-association --cluster-name {} --association-id {}) \
             or use another ServiceAccount",
            desired.namespace,
            desired.service_account,
            owner.cluster,
            found.association_id,
            found.role_arn,
            owner.cluster,
            found.association_id,
        ),
    }
}

/// Calls that make the ServiceAccount's association match `desired`.
///
/// `found` holds what `ListPodIdentityAssociations` returned for the
/// cluster, namespace and ServiceAccount; entries for another namespace or
/// ServiceAccount are ignored. `our_role_arn` is the role the operator
/// manages for this owner, when it knows it.
pub fn plan_association(
    desired: &DesiredAssociation,
    found: &[ObservedAssociation],
    owner: &Owner,
    our_role_arn: Option<&str>,
) -> Result<Vec<AssociationAction>, AssociationConflict> {
    let for_service_account: Vec<&ObservedAssociation> = found
        .iter()
        .filter(|a| {
            a.namespace == desired.namespace && a.service_account == desired.service_account
        })
        .collect();
    if let Some(foreign) = for_service_account
        .iter()
        .find(|a| !is_ours(a, owner, our_role_arn))
    {
        return Err(conflict(foreign, owner, desired));
    }
    let Some((adopted, extra)) = for_service_account.split_first() else {
        return Ok(vec![create(desired, owner)]);
    };

    let mut actions = Vec::new();
    if owner.classify(&adopted.tags) != Ownership::Ours {
        actions.push(AssociationAction::Tag {
            association_arn: adopted.association_arn.clone(),
            tags: owner.tags(),
        });
    }
    if adopted.role_arn != desired.role_arn
        || target(&adopted.target_role_arn) != target(&desired.target_role_arn)
        || adopted.disable_session_tags != desired.disable_session_tags
    {
        actions.push(AssociationAction::Update {
            association_id: adopted.association_id.clone(),
            role_arn: desired.role_arn.clone(),
            target_role_arn: target(&desired.target_role_arn).map(str::to_string),
            disable_session_tags: desired.disable_session_tags,
        });
    }
    // EKS allows one association per ServiceAccount, so this only happens
    // if that rule ever loosens; keep the one we update, drop the rest.
    actions.extend(extra.iter().map(|a| AssociationAction::Delete {
        association_id: a.association_id.clone(),
    }));
    Ok(actions)
}

fn create(desired: &DesiredAssociation, owner: &Owner) -> AssociationAction {
    let mut association = desired.clone();
    // Ownership tags go in whatever the caller built: without them the
    // operator would not recognise its own association on the next resync.
    association.tags.extend(owner.tags());
    association.target_role_arn = target(&desired.target_role_arn).map(str::to_string);
    AssociationAction::Create {
        // From what is sent, so that the token follows the request exactly.
        client_request_token: client_request_token(owner, &association),
        association,
    }
}

/// Calls that delete the associations in `found` that are ours, and
/// nothing else: this owner's tags, or untagged and pointing at
/// `our_role_arn` (pass `None` to go by tags alone).
pub fn plan_association_removal(
    found: &[ObservedAssociation],
    owner: &Owner,
    our_role_arn: Option<&str>,
) -> Vec<AssociationAction> {
    found
        .iter()
        .filter(|a| is_ours(a, owner, our_role_arn))
        .map(|a| AssociationAction::Delete {
            association_id: a.association_id.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::ownership::{CLUSTER_KEY, KIND_KEY, NAME_KEY, NAMESPACE_KEY};
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/prod-apps-web";
    const OTHER_ROLE: &str = "arn:aws:iam::123456789012:role/someone-elses";
    const TARGET: &str = "arn:aws:iam::210987654321:role/cross-account";

    fn owner() -> Owner {
        Owner {
            cluster: "prod".into(),
            region: "us-east-1".into(),
            kind: "PodIdentityBinding".into(),
            namespace: "apps".into(),
            name: "web".into(),
        }
    }

    fn desired() -> DesiredAssociation {
        let mut tags = owner().tags();
        tags.insert("team".into(), "web".into());
        DesiredAssociation {
            namespace: "apps".into(),
            service_account: "web".into(),
            role_arn: ROLE.into(),
            target_role_arn: None,
            disable_session_tags: false,
            tags,
            request_scope: "uid-1/1".into(),
        }
    }

    fn observed(id: &str) -> ObservedAssociation {
        let d = desired();
        ObservedAssociation {
            association_id: id.into(),
            association_arn: format!(
                "arn:aws:eks:us-east-1:123456789012:podidentityassociation/prod/{id}"
            ),
            namespace: d.namespace,
            service_account: d.service_account,
            role_arn: d.role_arn,
            target_role_arn: d.target_role_arn,
            disable_session_tags: d.disable_session_tags,
            tags: d.tags,
        }
    }

    fn untagged(id: &str, role: &str) -> ObservedAssociation {
        ObservedAssociation {
            role_arn: role.into(),
            tags: BTreeMap::from([("team".to_string(), "other".to_string())]),
            ..observed(id)
        }
    }

    fn update(
        role: &str,
        target: Option<&str>,
        disable_session_tags: bool,
    ) -> Vec<AssociationAction> {
        vec![AssociationAction::Update {
            association_id: "a-1".into(),
            role_arn: role.into(),
            target_role_arn: target.map(str::to_string),
            disable_session_tags,
        }]
    }

    fn ops(actions: &[AssociationAction]) -> Vec<&'static str> {
        actions.iter().map(AssociationAction::operation).collect()
    }

    #[test]
    fn none_found_creates_with_tags_and_the_deterministic_token() {
        let plan = plan_association(&desired(), &[], &owner(), Some(ROLE)).expect("plan");
        assert_eq!(
            plan,
            [AssociationAction::Create {
                association: desired(),
                client_request_token: client_request_token(&owner(), &desired()),
            }]
        );
    }

    #[test]
    fn create_adds_ownership_tags_the_caller_left_out() {
        let mut want = desired();
        want.tags = BTreeMap::from([("team".to_string(), "web".to_string())]);
        let plan = plan_association(&want, &[], &owner(), None).expect("plan");
        let AssociationAction::Create { association, .. } = &plan[0] else {
            panic!("{plan:?}")
        };
        assert_eq!(owner().classify(&association.tags), Ownership::Ours);
        assert_eq!(
            association.tags.get("team").map(String::as_str),
            Some("web")
        );
    }

    #[test]
    fn create_sends_no_empty_target_role() {
        let mut want = desired();
        want.target_role_arn = Some(String::new());
        let plan = plan_association(&want, &[], &owner(), None).expect("plan");
        let AssociationAction::Create { association, .. } = &plan[0] else {
            panic!("{plan:?}")
        };
        assert_eq!(association.target_role_arn, None);
    }

    #[test]
    fn ours_in_sync_plans_nothing() {
        let plan =
            plan_association(&desired(), &[observed("a-1")], &owner(), Some(ROLE)).expect("plan");
        assert!(plan.is_empty(), "{plan:?}");
        let plan = plan_association(&desired(), &[observed("a-1")], &owner(), None).expect("plan");
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn empty_and_missing_target_role_are_the_same() {
        let mut found = observed("a-1");
        found.target_role_arn = Some(String::new());
        let plan = plan_association(&desired(), &[found], &owner(), None).expect("plan");
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn tag_differences_alone_plan_nothing() {
        // Tags other than the ownership ones are set at creation only: a
        // user's edit of them is not drift.
        let mut found = observed("a-1");
        found.tags.insert("extra".into(), "x".into());
        found.tags.remove("team");
        let plan = plan_association(&desired(), &[found], &owner(), None).expect("plan");
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn each_drift_updates_in_place_sending_every_member() {
        struct Case {
            name: &'static str,
            observed: fn(&mut ObservedAssociation),
            desired: fn(&mut DesiredAssociation),
            want: Vec<AssociationAction>,
        }
        let cases = [
            Case {
                name: "role changed",
                observed: |o| o.role_arn = OTHER_ROLE.into(),
                desired: |_| {},
                want: update(ROLE, None, false),
            },
            Case {
                name: "target added",
                observed: |_| {},
                desired: |d| d.target_role_arn = Some(TARGET.into()),
                want: update(ROLE, Some(TARGET), false),
            },
            Case {
                name: "target removed",
                observed: |o| o.target_role_arn = Some(TARGET.into()),
                desired: |_| {},
                want: update(ROLE, None, false),
            },
            Case {
                name: "target removed by an empty string",
                observed: |o| o.target_role_arn = Some(TARGET.into()),
                desired: |d| d.target_role_arn = Some(String::new()),
                want: update(ROLE, None, false),
            },
            Case {
                name: "target changed",
                observed: |o| o.target_role_arn = Some(OTHER_ROLE.into()),
                desired: |d| d.target_role_arn = Some(TARGET.into()),
                want: update(ROLE, Some(TARGET), false),
            },
            Case {
                name: "session tags disabled",
                observed: |_| {},
                desired: |d| d.disable_session_tags = true,
                want: update(ROLE, None, true),
            },
            Case {
                name: "session tags enabled again",
                observed: |o| o.disable_session_tags = true,
                desired: |_| {},
                want: update(ROLE, None, false),
            },
            Case {
                name: "everything at once",
                observed: |o| {
                    o.role_arn = OTHER_ROLE.into();
                    o.target_role_arn = Some(OTHER_ROLE.into());
                    o.disable_session_tags = true;
                },
                desired: |d| d.target_role_arn = Some(TARGET.into()),
                want: update(ROLE, Some(TARGET), false),
            },
        ];
        for case in cases {
            let mut found = observed("a-1");
            (case.observed)(&mut found);
            let mut want = desired();
            (case.desired)(&mut want);
            let plan = plan_association(&want, &[found], &owner(), Some(ROLE)).expect(case.name);
            assert_eq!(plan, case.want, "{}", case.name);
        }
    }

    #[test]
    fn untagged_association_to_our_role_is_adopted() {
        let found = untagged("a-1", ROLE);
        let plan = plan_association(
            &desired(),
            std::slice::from_ref(&found),
            &owner(),
            Some(ROLE),
        )
        .expect("adopted");
        let tag = AssociationAction::Tag {
            association_arn: found.association_arn.clone(),
            tags: owner().tags(),
        };
        assert_eq!(plan, std::slice::from_ref(&tag));

        let mut want = desired();
        want.disable_session_tags = true;
        let plan = plan_association(&want, &[found], &owner(), Some(ROLE)).expect("adopted");
        let mut expected = vec![tag];
        expected.extend(update(ROLE, None, true));
        assert_eq!(plan, expected);
    }

    #[test]
    fn conflicts_write_nothing_and_say_what_to_do() {
        let mut other_object = observed("a-9");
        other_object.tags.insert(NAME_KEY.into(), "api".into());
        let mut other_cluster = observed("a-9");
        other_cluster
            .tags
            .insert(CLUSTER_KEY.into(), "staging".into());
        let mut other_namespace_tag = observed("a-9");
        other_namespace_tag
            .tags
            .insert(NAMESPACE_KEY.into(), "batch".into());
        let mut other_kind = observed("a-9");
        other_kind
            .tags
            .insert(KIND_KEY.into(), "IamServiceAccount".into());
        // Another object's association is not ours even when it points at
        // our role: adopting it would let two objects delete one association.
        let mut other_object_our_role = other_object.clone();
        other_object_our_role.role_arn = ROLE.into();

        let cases: [(&str, ObservedAssociation, Option<&str>, &str); 7] = [
            (
                "untagged, another role",
                untagged("a-9", OTHER_ROLE),
                Some(ROLE),
                "not created by iam-operator",
            ),
            (
                "untagged, our role unknown",
                untagged("a-9", ROLE),
                None,
                "not created by iam-operator",
            ),
            (
                "another object",
                other_object,
                Some(ROLE),
                "PodIdentityBinding apps/api in cluster prod",
            ),
            (
                "another object, our role",
                other_object_our_role,
                Some(ROLE),
                "apps/api",
            ),
            ("another cluster", other_cluster, None, "cluster staging"),
            (
                "another namespace tag",
                other_namespace_tag,
                None,
                "batch/web",
            ),
            (
                "another kind",
                other_kind,
                None,
                "IamServiceAccount apps/web",
            ),
        ];
        for (name, found, our_role, says) in cases {
            let refused =
                plan_association(&desired(), std::slice::from_ref(&found), &owner(), our_role)
                    .expect_err(name);
            assert_eq!(refused.association_id, "a-9", "{name}");
            assert_eq!(refused.role_arn, found.role_arn, "{name}");
            let message = refused.to_string();
            for part in [
                says,
                "apps/web",
                "cluster prod",
                "a-9",
                found.role_arn.as_str(),
                "delete-pod-identity-association",
            ] {
                assert!(message.contains(part), "{name}: {part:?} not in {message}");
            }
        }
    }

    #[test]
    fn a_foreign_association_beside_ours_is_still_a_conflict() {
        let found = [observed("a-1"), untagged("a-9", OTHER_ROLE)];
        let refused = plan_association(&desired(), &found, &owner(), Some(ROLE)).expect_err("");
        assert_eq!(refused.association_id, "a-9");
    }

    #[test]
    fn a_second_association_of_ours_is_deleted() {
        let mut first = observed("a-1");
        first.disable_session_tags = true;
        let plan =
            plan_association(&desired(), &[first, observed("a-2")], &owner(), None).expect("plan");
        assert_eq!(
            plan,
            [
                update(ROLE, None, false).remove(0),
                AssociationAction::Delete {
                    association_id: "a-2".into()
                }
            ]
        );
    }

    #[test]
    fn associations_of_other_service_accounts_are_ignored() {
        let mut other_sa = untagged("a-8", OTHER_ROLE);
        other_sa.service_account = "api".into();
        let mut other_ns = untagged("a-7", OTHER_ROLE);
        other_ns.namespace = "batch".into();
        let plan =
            plan_association(&desired(), &[other_sa, other_ns], &owner(), None).expect("plan");
        assert_eq!(ops(&plan), ["CreatePodIdentityAssociation"]);
    }

    #[test]
    fn removal_deletes_only_ours() {
        let mut other_object = observed("a-4");
        other_object.tags.insert(NAME_KEY.into(), "api".into());
        other_object.role_arn = ROLE.into();
        let found = [
            observed("a-1"),
            untagged("a-2", ROLE),
            untagged("a-3", OTHER_ROLE),
            other_object,
        ];
        let deleted = |our_role| -> Vec<String> {
            plan_association_removal(&found, &owner(), our_role)
                .into_iter()
                .map(|action| match action {
                    AssociationAction::Delete { association_id } => association_id,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(deleted(Some(ROLE)), ["a-1", "a-2"]);
        assert_eq!(deleted(None), ["a-1"]);
        assert!(plan_association_removal(&[], &owner(), Some(ROLE)).is_empty());
    }

    #[test]
    fn token_is_deterministic() {
        assert_eq!(
            client_request_token(&owner(), &desired()),
            client_request_token(&owner(), &desired())
        );
        // Spelling "no target role" either way is the same request.
        let mut empty_target = desired();
        empty_target.target_role_arn = Some(String::new());
        assert_eq!(
            client_request_token(&owner(), &desired()),
            client_request_token(&owner(), &empty_target)
        );
    }

    #[test]
    fn token_differs_for_every_field_of_the_request() {
        let base = client_request_token(&owner(), &desired());
        type Change = fn(&mut Owner, &mut DesiredAssociation);
        let cases: [(&str, Change); 13] = [
            ("object recreated", |_, d| {
                d.request_scope = "uid-2/1".into()
            }),
            ("generation", |_, d| d.request_scope = "uid-1/2".into()),
            ("cluster", |o, _| o.cluster = "staging".into()),
            ("namespace", |_, d| d.namespace = "batch".into()),
            ("kind", |o, _| o.kind = "IamServiceAccount".into()),
            ("name", |o, _| o.name = "api".into()),
            ("service account", |_, d| d.service_account = "api".into()),
            ("role", |_, d| d.role_arn = OTHER_ROLE.into()),
            ("target role", |_, d| {
                d.target_role_arn = Some(TARGET.into())
            }),
            ("session tags", |_, d| d.disable_session_tags = true),
            ("tag value", |_, d| {
                d.tags.insert("team".into(), "api".into());
            }),
            ("tag added", |_, d| {
                d.tags.insert("cost-centre".into(), "1".into());
            }),
            ("tag removed", |_, d| {
                d.tags.remove("team");
            }),
        ];
        let mut seen = vec![base.clone()];
        for (name, change) in cases {
            let (mut o, mut d) = (owner(), desired());
            change(&mut o, &mut d);
            let token = client_request_token(&o, &d);
            assert!(!seen.contains(&token), "{name}: {token}");
            seen.push(token);
        }
    }

    #[test]
    fn token_fields_cannot_run_together() {
        let (mut a_owner, mut a) = (owner(), desired());
        let (mut b_owner, mut b) = (owner(), desired());
        a_owner.name = "web-a".into();
        a.service_account = "pi".into();
        b_owner.name = "web".into();
        b.service_account = "-api".into();
        assert_ne!(
            client_request_token(&a_owner, &a),
            client_request_token(&b_owner, &b)
        );
        let (mut c_owner, mut c) = (owner(), desired());
        c_owner.name = String::new();
        c.service_account = "web".into();
        let (mut d_owner, mut d) = (owner(), desired());
        d_owner.name = "web".into();
        d.service_account = String::new();
        assert_ne!(
            client_request_token(&c_owner, &c),
            client_request_token(&d_owner, &d)
        );
        let (mut e, mut f) = (desired(), desired());
        e.tags.insert("ab".into(), "c".into());
        f.tags.insert("a".into(), "bc".into());
        assert_ne!(
            client_request_token(&owner(), &e),
            client_request_token(&owner(), &f)
        );
    }

    #[test]
    fn token_fits_eks_limit_even_for_longest_names() {
        let long = "x".repeat(253);
        let o = Owner {
            cluster: "c".repeat(100),
            region: "us-east-1".into(),
            kind: "PodIdentityBinding".into(),
            namespace: "n".repeat(63),
            name: long.clone(),
        };
        let mut d = desired();
        d.namespace = "n".repeat(63);
        d.service_account = long;
        for token in [
            client_request_token(&o, &d),
            client_request_token(&owner(), &desired()),
        ] {
            assert!(token.len() <= CLIENT_REQUEST_TOKEN_MAX_LEN, "{token}");
            assert!(token.starts_with(CLIENT_REQUEST_TOKEN_PREFIX), "{token}");
            assert!(
                token
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{token}"
            );
        }
    }

    #[test]
    fn every_action_has_an_operation_and_description() {
        let create = plan_association(&desired(), &[], &owner(), None).expect("plan");
        let mut with_target = desired();
        with_target.target_role_arn = Some(TARGET.into());
        let mut found = observed("a-1");
        found.disable_session_tags = true;
        let actions = create
            .iter()
            .chain(
                plan_association(&with_target, &[found], &owner(), None)
                    .expect("plan")
                    .iter(),
            )
            .chain(plan_association_removal(&[observed("a-1")], &owner(), None).iter())
            .cloned()
            .collect::<Vec<_>>();
        assert_eq!(
            ops(&actions),
            [
                "CreatePodIdentityAssociation",
                "UpdatePodIdentityAssociation",
                "DeletePodIdentityAssociation"
            ]
        );
        let described: Vec<String> = actions.iter().map(AssociationAction::describe).collect();
        assert!(described[0].contains("apps/web") && described[0].contains(ROLE));
        assert!(described[1].contains("a-1") && described[1].contains(TARGET));
        assert!(described[1].contains("session tags enabled"));
        assert!(described[2].contains("a-1"));
    }
}
