//! Tables of (desired, observed) → steps and verdict for PodIdentityBinding.

use super::*;
use crate::api::pod_identity_binding::PodIdentityBindingSpec;
use crate::api::{PolicySpec, RoleSpec};
use crate::policy::desire::desired_binding;
use crate::policy::role_plan::ObservedRole;
use crate::policy::trust::pod_identity_trust_policy;

use crate::policy::fixtures::ACCOUNT;
use crate::policy::ownership::Owner;
use crate::policy::pod_identity_agent::AgentProblem;

fn defaults() -> Defaults {
    Defaults {
        issuer: None,
        ..crate::policy::fixtures::defaults()
    }
}

fn owner() -> Owner {
    crate::policy::fixtures::owner(KIND)
}

fn subject(roles: &[&str], service_accounts: &[&str]) -> Subject {
    Subject {
        owner: owner(),
        uid: "uid-1".into(),
        generation: 1,
        recorded: Recorded {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            service_accounts: service_accounts.iter().map(|s| s.to_string()).collect(),
        },
        status_role: None,
        namespace_labels: None,
    }
}

fn created(name: &str, sa: &str) -> PodIdentityBindingSpec {
    PodIdentityBindingSpec {
        service_account_name: sa.into(),
        role: Some(RoleSpec {
            name: Some(name.into()),
            ..Default::default()
        }),
        policies: Some(PolicySpec::default()),
        ..Default::default()
    }
}

fn existing_arn(arn: &str) -> PodIdentityBindingSpec {
    PodIdentityBindingSpec {
        service_account_name: "web".into(),
        role_arn: Some(arn.into()),
        ..Default::default()
    }
}

fn desire(spec: &PodIdentityBindingSpec) -> Result<DesiredBinding, Refusal> {
    Ok(desired_binding(spec, &owner(), &defaults(), &[])?)
}

fn role_arn(name: &str) -> String {
    defaults().role_arn("/", name)
}

fn our_role(name: &str) -> ObservedRole {
    let Ok(DesiredBinding {
        role: WantedRole::Created(state),
        ..
    }) = desire(&created(name, "web"))
    else {
        panic!("a created role");
    };
    ObservedRole {
        arn: role_arn(name),
        created: None,
        state,
    }
}

fn association(id: &str, sa: &str, role: &str, tags: bool) -> ObservedAssociation {
    ObservedAssociation {
        association_id: id.into(),
        association_arn: format!(
            "arn:aws:eks:us-east-1:{ACCOUNT}:podidentityassociation/prod/{id}"
        ),
        namespace: "apps".into(),
        service_account: sa.into(),
        role_arn: role_arn(role),
        target_role_arn: None,
        disable_session_tags: false,
        tags: if tags {
            owner().tags()
        } else {
            Default::default()
        },
    }
}

fn observed(roles: Vec<(&str, Option<ObservedRole>)>) -> BindingObserved {
    BindingObserved {
        subject: subject(&[], &[]),
        service_account_name: "web".into(),
        retain: false,
        retained_role: None,
        status: PodIdentityBindingStatus::default(),
        cluster_found: true,
        roles: ObservedRoles(
            roles
                .into_iter()
                .map(|(name, role)| (name.to_string(), role))
                .collect(),
        ),
        existing_role: None,
        target_role: None,
        associations: Vec::new(),
        irsa_role: None,
        agent: AgentState::Running,
        older_claim: None,
        pods: Vec::new(),
    }
}

fn operations(plan: &Plan<PodIdentityBindingStatus>) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| match step {
            Step::Record(r) => format!("Record{:?}{:?}", r.roles, r.service_accounts),
            Step::Role { role, action } => format!("{}:{role}", action.operation()),
            Step::Association { action, .. } => match action {
                AssociationAction::Delete { association_id } => format!("Delete:{association_id}"),
                other => other.operation().to_string(),
            },
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_new_binding_records_then_makes_the_role_then_the_association() {
    let plan = plan_binding(
        &desire(&created("r", "web")),
        &observed(vec![("r", None)]),
        &defaults(),
    );
    assert_eq!(
        operations(&plan),
        [
            "Record{\"r\"}{\"web\"}",
            "CreateRole:r",
            "CreatePodIdentityAssociation"
        ]
    );
    assert_eq!(plan.status.role_arn, Some(role_arn("r")));
    assert_eq!(plan.status.association_id, None);
    assert!(plan.verdict.is_ok());
}

#[test]
fn a_record_written_with_the_finalizer_leaves_the_create_nothing_to_record() {
    for spec in [created("r", "web"), existing_arn(&role_arn("theirs"))] {
        let want = desire(&spec);
        let mut fresh = observed(vec![("r", None)]);
        fresh.existing_role = Some(seen_role("theirs"));
        fresh.subject.recorded = record_before_create(want.as_ref().expect("valid"), "web");
        let plan = plan_binding(&want, &fresh, &defaults());
        assert!(
            !operations(&plan).iter().any(|op| op.starts_with("Record")),
            "{:?}",
            operations(&plan)
        );
        assert!(plan.verdict.is_ok(), "{:?}", plan.verdict);
    }
}

#[test]
fn a_resync_in_sync_plans_no_write_and_keeps_the_association_in_status() {
    let mut seen = observed(vec![("r", Some(our_role("r")))]);
    seen.subject = subject(&["r"], &["web"]);
    seen.associations = vec![association("a-1", "web", "r", true)];
    let plan = plan_binding(&desire(&created("r", "web")), &seen, &defaults());
    assert_eq!(operations(&plan), Vec::<String>::new());
    assert_eq!(plan.status.association_id.as_deref(), Some("a-1"));
    assert!(plan.verdict.is_ok());
}

#[test]
fn a_renamed_service_account_gets_its_association_before_the_old_one_goes() {
    let mut seen = observed(vec![("r", Some(our_role("r")))]);
    seen.subject = subject(&["r"], &["old"]);
    seen.associations = vec![association("a-old", "old", "r", true)];
    let plan = plan_binding(&desire(&created("r", "web")), &seen, &defaults());
    assert_eq!(
        operations(&plan),
        [
            "Record{\"r\"}{\"old\", \"web\"}",
            "CreatePodIdentityAssociation",
            "Delete:a-old",
            "Record{\"r\"}{\"web\"}"
        ]
    );
}

#[test]
fn bug7_status_lost_the_recorded_names_still_find_every_role_and_association() {
    // Renamed r1→r2→r3 with deletes failing, then status removed by hand.
    let mut seen = observed(vec![
        ("r1", Some(our_role("r1"))),
        ("r2", Some(our_role("r2"))),
    ]);
    seen.subject = subject(&["r1", "r2"], &["a", "b"]);
    seen.associations = vec![
        association("x-a", "a", "r1", true),
        association("x-b", "b", "r2", true),
    ];
    let cleanup = operations(&plan_binding_cleanup(&seen));
    assert_eq!(
        cleanup,
        ["Delete:x-a", "Delete:x-b", "DeleteRole:r1", "DeleteRole:r2"]
    );
    seen.retain = true;
    assert!(plan_binding_cleanup(&seen).steps.is_empty());
}

#[test]
fn retain_keeps_the_role_in_use_but_not_what_an_unfinished_rename_left() {
    // Killed after the association moved to the new role and before the
    // old one was deleted; then the spec asked for Retain and the object
    // went.
    let mut seen = observed(vec![
        ("old", Some(our_role("old"))),
        ("new", Some(our_role("new"))),
    ]);
    seen.subject = subject(&["old", "new"], &["web"]);
    seen.retain = true;
    seen.retained_role = Some("new".into());
    seen.associations = vec![association("x", "web", "new", true)];
    assert_eq!(operations(&plan_binding_cleanup(&seen)), ["DeleteRole:old"]);
    // Killed before the association moved: the pair that works is kept.
    seen.associations = vec![association("x", "web", "old", true)];
    assert_eq!(operations(&plan_binding_cleanup(&seen)), ["DeleteRole:new"]);
    // Killed after the association of the spec's new ServiceAccount was
    // made and before the old one's went: the new pair is kept.
    seen.service_account_name = "api".into();
    seen.associations = vec![
        association("x", "web", "old", true),
        association("y", "api", "new", true),
    ];
    assert_eq!(
        operations(&plan_binding_cleanup(&seen)),
        ["Delete:x", "DeleteRole:old"]
    );
    // Someone else's association on the spec's ServiceAccount is not the
    // pair that works: ours stays, untouched.
    seen.associations = vec![
        association("x", "web", "old", true),
        association("theirs", "api", "elsewhere", false),
    ];
    assert_eq!(operations(&plan_binding_cleanup(&seen)), ["DeleteRole:new"]);
    // Killed before it was made: the old pair is all that works.
    seen.associations = vec![association("x", "web", "old", true)];
    assert_eq!(operations(&plan_binding_cleanup(&seen)), ["DeleteRole:new"]);
    // No association, and the new role not made yet: the old one is all
    // there is.
    seen.associations = vec![];
    seen.roles = ObservedRoles(vec![
        ("old".into(), Some(our_role("old"))),
        ("new".into(), None),
    ]);
    assert!(plan_binding_cleanup(&seen).steps.is_empty());
    // A spec naming no role to make (roleArn) keeps every role of ours.
    seen.roles = ObservedRoles(vec![("old".into(), Some(our_role("old")))]);
    seen.retained_role = None;
    assert!(plan_binding_cleanup(&seen).steps.is_empty());
}

#[test]
fn a_loser_deletes_the_association_it_made_and_nothing_else() {
    let mut seen = observed(vec![]);
    seen.older_claim = Some("older".into());
    seen.associations = vec![association("mine", "web", "r", true)];
    let plan = plan_binding(&desire(&created("r", "web")), &seen, &defaults());
    assert_eq!(operations(&plan), ["Delete:mine"]);
    assert_eq!(plan.status.association_id, None);
    assert_eq!(
        plan.verdict.map_err(|r| r.reason()),
        Err(crate::api::conditions::reason::SERVICE_ACCOUNT_CONFLICT)
    );
    // The winner's association is not ours: untouched.
    seen.associations = vec![association("theirs", "web", "r", false)];
    assert!(
        plan_binding(&desire(&created("r", "web")), &seen, &defaults())
            .steps
            .is_empty()
    );
}

#[test]
fn refusals_come_before_any_write() {
    let want = desire(&created("r", "web"));
    let mut foreign_association = observed(vec![("r", None)]);
    foreign_association.associations = vec![association("x", "web", "someone", false)];
    let mut no_cluster = observed(vec![("r", None)]);
    no_cluster.cluster_found = false;
    let existing = desire(&existing_arn(&role_arn("theirs")));
    let missing_role = observed(vec![]);
    let mut untrusting = observed(vec![]);
    untrusting.existing_role = Some(RoleSummary {
        arn: role_arn("theirs"),
        created: None,
        trust_policy: Some(
            crate::policy::PolicyDocument::parse(r#"{"Version":"2012-10-17","Statement":[]}"#)
                .expect("parses"),
        ),
        tags: Default::default(),
    });
    for (desired, seen, reason) in [
        (&want, &foreign_association, "AssociationConflict"),
        (&want, &no_cluster, "ClusterNotFound"),
        (&existing, &missing_role, "RoleNotFound"),
        (&existing, &untrusting, "RoleDoesNotTrustPodIdentity"),
    ] {
        let plan = plan_binding(desired, seen, &defaults());
        assert!(plan.steps.is_empty(), "{reason}: {:?}", plan.steps);
        assert_eq!(plan.verdict.clone().expect_err(reason).reason(), reason);
        // What stops the binding outright is told before a missing agent,
        // which only matters once the association can be made.
        let mut without_agent = seen.clone();
        without_agent.agent = AgentState::NotRunning(AgentProblem::Absent);
        let plan = plan_binding(desired, &without_agent, &defaults());
        assert!(plan.steps.is_empty(), "{reason}: {:?}", plan.steps);
        assert_eq!(plan.verdict.expect_err(reason).reason(), reason);
    }
}

#[test]
fn an_existing_role_is_only_read_and_a_role_we_made_before_goes_after_the_switch() {
    let mut seen = observed(vec![("r", Some(our_role("r")))]);
    seen.status.role_name = Some("r".into());
    seen.status.role_arn = Some(role_arn("r"));
    seen.subject = subject(&["r"], &["web"]);
    seen.existing_role = Some(RoleSummary {
        arn: role_arn("theirs"),
        created: None,
        trust_policy: Some(pod_identity_trust_policy()),
        tags: Default::default(),
    });
    seen.associations = vec![association("a-1", "web", "r", true)];
    let plan = plan_binding(
        &desire(&existing_arn(&role_arn("theirs"))),
        &seen,
        &defaults(),
    );
    assert_eq!(
        operations(&plan),
        [
            "UpdatePodIdentityAssociation",
            "DeleteRole:r",
            "Record{}{\"web\"}"
        ]
    );
    assert_eq!(plan.status.role_name, None);
    // roleArn naming the very role the operator made keeps it.
    seen.existing_role = Some(RoleSummary {
        arn: role_arn("r"),
        created: None,
        trust_policy: Some(pod_identity_trust_policy()),
        tags: Default::default(),
    });
    let plan = plan_binding(&desire(&existing_arn(&role_arn("r"))), &seen, &defaults());
    assert!(!operations(&plan).contains(&"DeleteRole:r".to_string()));
}

#[test]
fn the_irsa_annotation_is_reported_after_the_association_is_in_place() {
    let mut seen = observed(vec![("r", None)]);
    seen.irsa_role = Some(role_arn("irsa"));
    let plan = plan_binding(&desire(&created("r", "web")), &seen, &defaults());
    assert!(operations(&plan).contains(&"CreatePodIdentityAssociation".to_string()));
    assert_eq!(
        plan.verdict.expect_err("warned").reason(),
        "IRSARoleTakesPrecedence"
    );
}

#[test]
fn without_a_running_agent_the_association_is_made_but_not_ready() {
    for problem in [
        AgentProblem::Absent,
        AgentProblem::NotActive {
            status: "DEGRADED".into(),
        },
        AgentProblem::Unreadable {
            error: "DescribeAddon: AccessDeniedException".into(),
        },
    ] {
        let mut seen = observed(vec![("r", None)]);
        seen.agent = AgentState::NotRunning(problem.clone());
        let plan = plan_binding(&desire(&created("r", "web")), &seen, &defaults());
        let made = operations(&plan);
        assert!(made.contains(&"CreateRole:r".to_string()), "{made:?}");
        assert!(
            made.contains(&"CreatePodIdentityAssociation".to_string()),
            "{made:?}"
        );
        let refusal = plan.verdict.expect_err("not ready");
        assert_eq!(refusal.reason(), "PodIdentityAgentNotReady");
        assert_eq!(
            refusal,
            Refusal::PodIdentityAgentNotReady {
                cluster: defaults().cluster_name,
                service_account: "web".into(),
                problem,
            }
        );
    }
}

#[test]
fn a_running_agent_lets_the_binding_be_ready_and_irsa_is_told_first() {
    let seen = observed(vec![("r", None)]);
    assert_eq!(seen.agent, AgentState::Running);
    assert!(
        plan_binding(&desire(&created("r", "web")), &seen, &defaults())
            .verdict
            .is_ok()
    );
    let mut both = observed(vec![("r", None)]);
    both.agent = AgentState::NotRunning(AgentProblem::Absent);
    both.irsa_role = Some(role_arn("irsa"));
    assert_eq!(
        plan_binding(&desire(&created("r", "web")), &both, &defaults())
            .verdict
            .expect_err("warned")
            .reason(),
        "IRSARoleTakesPrecedence",
        "pods would not use the association even with the agent"
    );
}

#[test]
fn a_role_made_for_another_object_is_never_borrowed() {
    let other = Owner {
        namespace: "other-team".into(),
        ..owner()
    };
    let made_for_other = RoleSummary {
        arn: role_arn("theirs"),
        created: None,
        trust_policy: Some(pod_identity_trust_policy()),
        tags: other.tags(),
    };
    let mut seen = observed(vec![]);
    seen.existing_role = Some(made_for_other.clone());
    let plan = plan_binding(
        &desire(&existing_arn(&role_arn("theirs"))),
        &seen,
        &defaults(),
    );
    assert!(plan.steps.is_empty());
    let refusal = plan.verdict.expect_err("borrowed");
    assert_eq!(refusal.reason(), "BorrowedRole");
    assert!(refusal.to_string().contains("other-team/web"), "{refusal}");

    // As a same-account target role, too.
    let mut spec = created("r", "web");
    spec.target_role_arn = Some(role_arn("theirs"));
    let mut seen = observed(vec![("r", None)]);
    seen.target_role = Some(made_for_other);
    let plan = plan_binding(&desire(&spec), &seen, &defaults());
    assert!(plan.steps.is_empty());
    assert_eq!(plan.verdict.expect_err("borrowed").reason(), "BorrowedRole");

    // A role nobody's operator made is the user's to name.
    let mut seen = observed(vec![]);
    seen.existing_role = Some(RoleSummary {
        tags: Default::default(),
        ..seen_role("theirs")
    });
    assert!(
        plan_binding(
            &desire(&existing_arn(&role_arn("theirs"))),
            &seen,
            &defaults()
        )
        .verdict
        .is_ok()
    );
}

fn seen_role(name: &str) -> RoleSummary {
    RoleSummary {
        arn: role_arn(name),
        created: None,
        trust_policy: Some(pod_identity_trust_policy()),
        tags: Default::default(),
    }
}

#[test]
fn a_created_role_without_session_tags_says_its_trust_is_not_scoped() {
    let scoped = plan_binding(
        &desire(&created("r", "web")),
        &observed(vec![("r", None)]),
        &defaults(),
    );
    assert!(!scoped.verdict.expect("ready").contains("not scoped"));
    let mut spec = created("r", "web");
    spec.disable_session_tags = Some(true);
    let unscoped = plan_binding(&desire(&spec), &observed(vec![("r", None)]), &defaults());
    let message = unscoped.verdict.expect("ready");
    assert!(
        message.contains("not scoped") && message.contains("disableSessionTags"),
        "{message}"
    );
    let mut existing = existing_arn(&role_arn("theirs"));
    existing.disable_session_tags = Some(true);
    let desired = desire(&existing);
    let mut seen = observed(vec![]);
    seen.existing_role = Some(seen_role("theirs"));
    let theirs = plan_binding(&desired, &seen, &defaults());
    assert!(
        !format!("{:?}", theirs.verdict).contains("not scoped"),
        "{:?}",
        theirs.verdict
    );
}

#[test]
fn desire_refuses_a_malformed_policy_before_guardrails_and_guardrails_before_observing() {
    let mut spec = created("r", "web");
    spec.policies = Some(PolicySpec {
        inline: [(
            "p".to_string(),
            serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]})
                .into(),
        )]
        .into(),
        ..Default::default()
    });
    let refused = desire_binding(&spec, &subject(&[], &[]), &defaults()).expect_err("refused");
    assert_eq!(refused.reason(), "InvalidPolicy", "{refused}");
    let document = spec.policies.as_mut().unwrap().inline.get_mut("p").unwrap();
    let mut versioned = document.to_value();
    versioned["Version"] = serde_json::json!("2012-10-17");
    *document = versioned.into();
    let refused = desire_binding(&spec, &subject(&[], &[]), &defaults()).expect_err("refused");
    assert_eq!(refused.reason(), "GuardrailViolation", "{refused}");
    assert!(refused.to_string().contains("deny-iam-writes"), "{refused}");
    let borrowed_by_default = desire_binding(
        &existing_arn(&role_arn("theirs")),
        &subject(&[], &[]),
        &defaults(),
    )
    .expect_err("no existing roles by default");
    assert!(
        borrowed_by_default
            .to_string()
            .contains("deny-ungranted-role-arns")
    );
}

#[test]
fn pods_started_before_the_association_keep_the_binding_from_ready_but_not_its_work() {
    use crate::policy::stale_pods::{ObservedPod, POD_IDENTITY_ENV};
    let want = desire(&created("r", "web"));
    let mut seen = observed(vec![("r", None)]);
    let fresh = ObservedPod {
        name: "web-new".into(),
        containers: vec![
            [(
                POD_IDENTITY_ENV.to_string(),
                "http://169.254.170.23/v1/credentials".to_string(),
            )]
            .into(),
        ],
        ..Default::default()
    };
    seen.pods = vec![fresh.clone()];
    assert!(plan_binding(&want, &seen, &defaults()).verdict.is_ok());
    seen.pods.push(ObservedPod {
        name: "web-old".into(),
        containers: vec![Default::default()],
        ..Default::default()
    });
    let plan = plan_binding(&want, &seen, &defaults());
    assert!(
        operations(&plan)
            .iter()
            .any(|op| op == "CreatePodIdentityAssociation"),
        "the work goes on"
    );
    let refusal = plan.verdict.expect_err("a pod without credentials");
    assert_eq!(refusal.reason(), "PodsNeedRestart");
    assert!(
        refusal.to_string().contains("web-old") && !refusal.to_string().contains("web-new"),
        "{refusal}"
    );
    // A missing agent says more: no pod gets credentials at all.
    seen.agent = AgentState::NotRunning(AgentProblem::Absent);
    assert_eq!(
        plan_binding(&want, &seen, &defaults())
            .verdict
            .expect_err("agent")
            .reason(),
        "PodIdentityAgentNotReady"
    );
}
