//! Tables of (desired, observed) → steps and verdict for IamServiceAccount.

use std::collections::BTreeMap;

use super::*;
use crate::api::iam_service_account::{IamServiceAccountSpec, ServiceAccountRef};
use crate::api::{PolicySpec, RoleSpec};
use crate::policy::fixtures::owner;
use crate::policy::role_plan::{ObservedRole, RoleAction};
use crate::policy::service_account_plan::{AUDIENCE, ROLE_ARN};
use kube::api::ObjectMeta;

use crate::policy::fixtures::defaults;
use crate::policy::provider_plan::{ProviderChange, provider_tags};

fn subject(recorded: &[&str]) -> Subject {
    Subject {
        owner: owner(KIND),
        uid: "uid-1".into(),
        generation: 1,
        recorded: Recorded {
            roles: recorded.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        },
        status_role: None,
        namespace_labels: None,
    }
}

fn isa(role_name: Option<&str>) -> IamServiceAccount {
    IamServiceAccount {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("apps".into()),
            ..Default::default()
        },
        spec: IamServiceAccountSpec {
            service_account: ServiceAccountRef::default(),
            role: RoleSpec {
                name: role_name.map(str::to_string),
                ..Default::default()
            },
            policies: PolicySpec {
                managed: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
                inline: BTreeMap::new(),
                assume_roles: Vec::new(),
            },
            ..Default::default()
        },
        status: None,
    }
}

fn desired(role_name: Option<&str>) -> Result<DesiredIrsa, Refusal> {
    desired_irsa(&isa(role_name), &subject(&[]), &defaults())
}

/// The role exactly as desired, as IAM would report it, under `stored_name`.
fn existing(desired: &DesiredIrsa, stored_name: &str) -> ObservedRole {
    let mut state = desired.role.created().expect("a role to make").clone();
    state.name = stored_name.to_string();
    ObservedRole {
        arn: defaults().role_arn("/", stored_name),
        created: None,
        state,
    }
}

fn ours(name: &str) -> ObservedRole {
    let desired = desired(Some(name)).expect("valid");
    existing(&desired, name)
}

fn annotated(arn: &str) -> ObservedServiceAccount {
    ObservedServiceAccount {
        annotations: BTreeMap::from([
            (ROLE_ARN.to_string(), arn.to_string()),
            (AUDIENCE.to_string(), "sts.amazonaws.com".to_string()),
        ]),
        owned_keys: [ROLE_ARN.to_string(), AUDIENCE.to_string()].into(),
        created_by_us: false,
    }
}

fn observed(roles: Vec<(&str, Option<ObservedRole>)>) -> IrsaObserved {
    IrsaObserved {
        subject: subject(&[]),
        service_account_name: "web".into(),
        create_service_account: None,
        retain: false,
        retained_role: None,
        status: IamServiceAccountStatus::default(),
        roles: ObservedRoles(
            roles
                .into_iter()
                .map(|(name, role)| (name.to_string(), role))
                .collect(),
        ),
        provider: Some(ObservedProvider {
            client_ids: vec!["sts.amazonaws.com".into()],
            tags: Default::default(),
        }),
        existing_role: None,
        service_account: Some(ObservedServiceAccount::default()),
        foreign_role: None,
        older_claim: None,
        pods: Vec::new(),
    }
}

fn operations(plan: &Plan<IamServiceAccountStatus>) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| match step {
            Step::Record(r) => format!("Record{:?}", r.roles),
            Step::Role { role, action } => format!("{}:{role}", action.operation()),
            Step::AnnotateServiceAccount { .. } => "Annotate".into(),
            Step::ReleaseServiceAccount { .. } => "Release".into(),
            Step::DeleteServiceAccount { .. } => "DeleteSA".into(),
            Step::Association { action, .. } => action.operation().into(),
            Step::OidcProvider { change, .. } => change.operation().into(),
            Step::RestartWorkload { workload, .. } => format!("Restart:{workload}"),
        })
        .collect()
}

#[test]
fn a_new_object_records_the_role_then_creates_attaches_and_annotates() {
    let want = desired(Some("web-role"));
    let plan = plan_irsa(&want, &observed(vec![("web-role", None)]), &defaults());
    assert_eq!(
        operations(&plan),
        [
            "Record{\"web-role\"}",
            "CreateRole:web-role",
            "AttachRolePolicy:web-role",
            "Annotate"
        ]
    );
    assert_eq!(
        plan.status.role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/web-role")
    );
    assert!(plan.verdict.is_ok());
}

#[test]
fn a_record_written_with_the_finalizer_leaves_the_create_nothing_to_record() {
    let want = desired(None);
    let mut fresh = observed(vec![]);
    let role_name = want
        .as_ref()
        .expect("valid")
        .role
        .created()
        .expect("made")
        .name
        .clone();
    fresh.roles = ObservedRoles([(role_name.clone(), None)].into_iter().collect());
    fresh.subject.recorded = record_before_create(want.as_ref().expect("valid"));
    let plan = plan_irsa(&want, &fresh, &defaults());
    assert_eq!(
        operations(&plan),
        [
            format!("CreateRole:{role_name}"),
            format!("AttachRolePolicy:{role_name}"),
            "Annotate".to_string()
        ]
    );
}

#[test]
fn a_resync_in_sync_plans_no_write() {
    let want = desired(Some("web-role"));
    let role = existing(want.as_ref().expect("valid"), "web-role");
    let mut seen = observed(vec![("web-role", Some(role.clone()))]);
    seen.subject = subject(&["web-role"]);
    seen.service_account = Some(annotated(&role.arn));
    let plan = plan_irsa(&want, &seen, &defaults());
    assert_eq!(operations(&plan), Vec::<String>::new());
    assert!(plan.verdict.is_ok());
}

#[test]
fn bug1_a_foreign_audience_is_refused_by_name_before_any_write() {
    let want = desired(Some("web-role"));
    let mut seen = observed(vec![("web-role", None)]);
    seen.service_account = Some(ObservedServiceAccount {
        annotations: BTreeMap::from([(AUDIENCE.to_string(), "sts.amazon.com".to_string())]),
        ..Default::default()
    });
    let plan = plan_irsa(&want, &seen, &defaults());
    assert!(plan.steps.is_empty());
    assert_eq!(
        plan.verdict,
        Err(Refusal::ServiceAccountAudienceMismatch {
            service_account: "web".into(),
            found: "sts.amazon.com".into(),
            expected: "sts.amazonaws.com".into(),
        })
    );
}

#[test]
fn bug2_and_7_every_role_that_may_be_ours_goes_after_the_rename() {
    // A→B whose delete of A failed, then B→C; status still names A, and
    // the record names A and B.
    let want = desired(Some("c"));
    let mut seen = observed(vec![
        ("a", Some(ours("a"))),
        ("b", Some(ours("b"))),
        ("c", None),
    ]);
    seen.subject = subject(&["a", "b"]);
    seen.status.role_name = Some("a".into());
    let plan = plan_irsa(&want, &seen, &defaults());
    let ops = operations(&plan);
    assert_eq!(
        ops.first().map(String::as_str),
        Some("Record{\"a\", \"b\", \"c\"}")
    );
    let annotate = ops.iter().position(|o| o == "Annotate").expect("annotates");
    let delete_a = ops
        .iter()
        .position(|o| o == "DeleteRole:a")
        .expect("deletes a");
    let delete_b = ops
        .iter()
        .position(|o| o == "DeleteRole:b")
        .expect("deletes b");
    assert!(annotate < delete_a && annotate < delete_b);
    assert_eq!(ops.last().map(String::as_str), Some("Record{\"c\"}"));

    // Deleting the object instead finds all three, status lost or not.
    seen.status = IamServiceAccountStatus::default();
    seen.roles = ObservedRoles(vec![
        ("a".into(), Some(ours("a"))),
        ("b".into(), Some(ours("b"))),
        ("c".into(), Some(ours("c"))),
    ]);
    let cleanup = operations(&plan_irsa_cleanup(&seen));
    for role in ["a", "b", "c"] {
        assert!(
            cleanup.contains(&format!("DeleteRole:{role}")),
            "{cleanup:?}"
        );
    }
}

#[test]
fn bug3_a_rename_that_only_changes_case_keeps_the_live_role() {
    let want = desired(Some("myrole"));
    let role = existing(want.as_ref().expect("valid"), "MyRole");
    // observe asks by each candidate; both names answer with the one role.
    let mut seen = observed(vec![("MyRole", Some(role.clone()))]);
    seen.subject = subject(&["MyRole"]);
    seen.status.role_name = Some("MyRole".into());
    seen.service_account = Some(annotated(&role.arn));
    let plan = plan_irsa(&want, &seen, &defaults());
    assert_eq!(operations(&plan), Vec::<String>::new());
    assert_eq!(plan.status.role_name.as_deref(), Some("MyRole"));
}

#[test]
fn bug5_a_loser_gives_back_its_annotations_and_reads_nothing_more() {
    let want = desired(Some("web-role"));
    let mut seen = observed(vec![]);
    seen.older_claim = Some("older".into());
    seen.service_account = Some(annotated("arn:aws:iam::123456789012:role/web-role"));
    let plan = plan_irsa(&want, &seen, &defaults());
    assert_eq!(operations(&plan), ["Release"]);
    assert_eq!(
        plan.verdict.map_err(|r| r.reason()),
        Err(crate::api::conditions::reason::SERVICE_ACCOUNT_CONFLICT)
    );
    // Nothing of ours on it: nothing to give back.
    seen.service_account = Some(ObservedServiceAccount::default());
    assert!(plan_irsa(&want, &seen, &defaults()).steps.is_empty());
}

#[test]
fn refusals_come_before_any_write() {
    let want = desired(Some("web-role"));
    let mut no_provider = observed(vec![("web-role", None)]);
    no_provider.provider = None;
    let mut wrong_audience = observed(vec![("web-role", None)]);
    wrong_audience.provider = Some(ObservedProvider {
        client_ids: vec!["sts.amazon.com".into()],
        tags: Default::default(),
    });
    let mut foreign_annotation = observed(vec![("web-role", None)]);
    foreign_annotation.service_account = Some(ObservedServiceAccount {
        annotations: BTreeMap::from([(
            ROLE_ARN.to_string(),
            "arn:aws:iam::123456789012:role/theirs".to_string(),
        )]),
        ..Default::default()
    });
    foreign_annotation.foreign_role = Some(ForeignRole::Missing);
    let mut foreign_role = existing(want.as_ref().expect("valid"), "web-role");
    foreign_role.state.tags.clear();
    let not_ours = observed(vec![("web-role", Some(foreign_role))]);
    let invalid = Err(Refusal::InvalidSpec(InvalidSpec(vec!["bad".into()])));
    for (desired, seen, reason) in [
        (&want, &no_provider, "OIDCProviderNotFound"),
        (&want, &wrong_audience, "AudienceNotAllowed"),
        (
            &want,
            &foreign_annotation,
            "ServiceAccountAnnotationMismatch",
        ),
        (&want, &not_ours, "RoleNotOwned"),
        (&invalid, &no_provider, "InvalidSpec"),
    ] {
        let plan = plan_irsa(desired, seen, &defaults());
        assert!(plan.steps.is_empty(), "{reason}: {:?}", plan.steps);
        let refusal = plan.verdict.expect_err(reason);
        assert_eq!(refusal.reason(), reason);
    }
    let plan = plan_irsa(&want, &foreign_annotation, &defaults());
    assert!(
        plan.verdict
            .expect_err("refused")
            .to_string()
            .contains("that role does not exist")
    );
}

#[test]
fn a_missing_service_account_is_awaited_with_the_role_made() {
    let want = desired(Some("web-role"));
    let mut seen = observed(vec![("web-role", None)]);
    seen.service_account = None;
    let plan = plan_irsa(&want, &seen, &defaults());
    assert!(operations(&plan).contains(&"CreateRole:web-role".to_string()));
    assert!(!operations(&plan).contains(&"Annotate".to_string()));
    let refusal = plan.verdict.expect_err("waiting");
    assert!(refusal.is_waiting());
    // Asked to create it: annotated, which creates it.
    seen.create_service_account = Some(Default::default());
    let plan = plan_irsa(&want, &seen, &defaults());
    assert!(matches!(
        plan.steps.last(),
        Some(Step::AnnotateServiceAccount { owner: Some(_), .. })
    ));
    assert!(plan.verdict.is_ok());
}

#[test]
fn cleanup_keeps_what_retain_keeps_and_deletes_the_service_account_it_made() {
    let mut seen = observed(vec![("web-role", Some(ours("web-role")))]);
    seen.service_account = Some(ObservedServiceAccount {
        created_by_us: true,
        ..Default::default()
    });
    assert_eq!(
        operations(&plan_irsa_cleanup(&seen)),
        [
            "DetachRolePolicy:web-role",
            "DeleteRole:web-role",
            "DeleteSA"
        ]
    );
    seen.retain = true;
    seen.service_account = Some(annotated("arn"));
    assert_eq!(operations(&plan_irsa_cleanup(&seen)), ["Release"]);
    // A role at a candidate name that is not ours is never touched.
    let mut foreign = ours("web-role");
    foreign.state.tags.clear();
    let mut seen = observed(vec![("web-role", Some(foreign))]);
    seen.service_account = None;
    assert!(plan_irsa_cleanup(&seen).steps.is_empty());
}

#[test]
fn retain_keeps_the_role_pods_were_given_and_not_the_other_half_of_a_rename() {
    let arn = |name: &str| format!("arn:aws:iam::123456789012:role/{name}");
    // Killed after the ServiceAccount was given the new role and before
    // the old one went; then the spec asked for Retain and the object went.
    let mut seen = observed(vec![
        ("old-role", Some(ours("old-role"))),
        ("new-role", Some(ours("new-role"))),
    ]);
    seen.retain = true;
    seen.retained_role = Some("new-role".into());
    seen.status.role_name = Some("old-role".into());
    seen.service_account = Some(annotated(&arn("new-role")));
    assert_eq!(
        operations(&plan_irsa_cleanup(&seen)),
        [
            "DetachRolePolicy:old-role",
            "DeleteRole:old-role",
            "Release"
        ]
    );
    // Killed before that (the new role may lack its policies): pods have
    // the old one, and the new one goes.
    seen.service_account = Some(annotated(&arn("old-role")));
    assert_eq!(
        operations(&plan_irsa_cleanup(&seen)),
        [
            "DetachRolePolicy:new-role",
            "DeleteRole:new-role",
            "Release"
        ]
    );
    // No annotation of ours: the role the last finished sync reported.
    seen.service_account = None;
    assert_eq!(
        operations(&plan_irsa_cleanup(&seen)),
        ["DetachRolePolicy:new-role", "DeleteRole:new-role"]
    );
    // The role pods were given is gone already: nothing else goes.
    seen.roles.0[0].1 = None;
    assert!(plan_irsa_cleanup(&seen).steps.is_empty());
}

#[test]
fn role_actions_run_on_the_name_iam_stores() {
    let want = desired(Some("myrole"));
    let mut role = existing(want.as_ref().expect("valid"), "MyRole");
    role.state.managed_policies.clear();
    let seen = observed(vec![("myrole", Some(role))]);
    let plan = plan_irsa(&want, &seen, &defaults());
    assert!(plan.steps.iter().any(|s| matches!(
        s,
        Step::Role { role, action: RoleAction::AttachPolicy(_) } if role == "MyRole"
    )));
}

#[test]
fn bug6_an_earlier_name_another_regions_cluster_holds_now_moves_to_the_regional_name() {
    let legacy = "prod-apps-web";
    let regional = "prod-us-east-1-apps-web";
    let subject = subject(&[legacy]);
    let want = desired_irsa(&isa(None), &subject, &defaults());
    let kept = want.as_ref().expect("valid");
    assert_eq!(kept.role.created().expect("made").name, legacy);
    // In sync and ours: the earlier name stays.
    let mut seen = observed(vec![(legacy, Some(existing(kept, legacy)))]);
    seen.subject = subject.clone();
    seen.service_account = Some(annotated(&defaults().role_arn("/", legacy)));
    assert_eq!(
        operations(&plan_irsa(&want, &seen, &defaults())),
        Vec::<String>::new()
    );
    // Tagged for the same-named cluster in us-west-2 first: ours no more.
    let mut theirs = existing(kept, legacy);
    theirs
        .state
        .tags
        .insert("iam-operator.io/region".into(), "us-west-2".into());
    seen.roles = ObservedRoles(vec![
        (legacy.to_string(), Some(theirs)),
        (regional.to_string(), None),
    ]);
    let plan = plan_irsa(&want, &seen, &defaults());
    let ops = operations(&plan);
    assert!(ops.contains(&format!("CreateRole:{regional}")), "{ops:?}");
    assert!(ops.contains(&"Annotate".to_string()), "{ops:?}");
    assert!(
        !ops.iter().any(|op| op.contains(&format!("Role:{legacy}"))),
        "{ops:?}"
    );
    assert_eq!(plan.status.role_name.as_deref(), Some(regional));
    assert_eq!(
        ops.last().map(String::as_str),
        Some(format!("Record{{\"{regional}\"}}").as_str())
    );
}

#[test]
fn a_role_is_never_planned_for_an_issuer_the_api_server_does_not_sign_with() {
    let with_api_server = |api_server: Option<&str>| Defaults {
        api_server_issuer: api_server.map(str::to_string),
        ..defaults()
    };
    let other = with_api_server(Some("https://oidc.eks.us-east-1.amazonaws.com/id/NEW"));
    let refusal = desired_irsa(&isa(Some("web-role")), &subject(&[]), &other)
        .expect_err("a trust for another issuer would refuse every token");
    assert_eq!(refusal.reason(), "ServiceAccountIssuerMismatch");
    assert!(
        matches!(&refusal, Refusal::IssuerMismatch { api_server, in_use, .. }
            if api_server.ends_with("/id/NEW") && in_use == crate::policy::fixtures::ISSUER),
        "{refusal:?}"
    );
    // What a running role has is kept: the refusal plans no write at all.
    let want = desired(Some("web-role")).expect("valid");
    let live = observed(vec![("web-role", Some(existing(&want, "web-role")))]);
    let plan = plan_irsa(&Err(refusal), &live, &other);
    assert!(plan.steps.is_empty(), "{:?}", plan.steps);

    for agreeing in [
        None,
        Some(crate::policy::fixtures::ISSUER),
        Some("https://oidc.eks.us-east-1.amazonaws.com/id/ABC/"),
    ] {
        assert!(
            desired_irsa(
                &isa(Some("web-role")),
                &subject(&[]),
                &with_api_server(agreeing)
            )
            .is_ok(),
            "{agreeing:?}"
        );
    }
}

/// The operator's configuration with namespace `apps` granted the existing
/// roles under `role/shared/`.
fn granting_shared_roles() -> Defaults {
    let guardrails = crate::policy::guardrails::Guardrails::parse(
        "namespaces:\n- names: [apps]\n  roleArns: ['arn:aws:iam::123456789012:role/shared/*']\n",
    )
    .expect("guardrails parse");
    Defaults {
        guardrails: std::sync::Arc::new(guardrails),
        ..defaults()
    }
}

const SHARED_ROLE: &str = "arn:aws:iam::123456789012:role/shared/web-irsa";

fn with_role_arn(arn: &str) -> IamServiceAccount {
    let mut isa = isa(None);
    isa.spec.role_arn = Some(arn.into());
    isa.spec.policies = PolicySpec::default();
    isa
}

/// The existing role as IAM would report it, trusting `trust`.
fn shared_role(trust: Option<crate::policy::PolicyDocument>) -> RoleSummary {
    RoleSummary {
        arn: SHARED_ROLE.into(),
        created: None,
        trust_policy: trust,
        tags: Default::default(),
    }
}

fn trust_for(
    namespace: &str,
    service_account: &str,
    audience: &str,
) -> crate::policy::PolicyDocument {
    let d = defaults();
    let issuer = d.issuer.clone().expect("issuer");
    irsa_trust_policy(
        &oidc_provider_arn(&d.partition, &d.account_id, &issuer),
        &issuer,
        namespace,
        service_account,
        audience,
    )
}

#[test]
fn an_existing_role_that_trusts_the_service_account_is_annotated_and_never_written() {
    let want = desired_irsa(
        &with_role_arn(SHARED_ROLE),
        &subject(&[]),
        &granting_shared_roles(),
    );
    let desired = want.as_ref().expect("valid");
    assert!(matches!(desired.role, WantedRole::Existing(_)));
    assert_eq!(desired.role_arn, SHARED_ROLE);
    assert!(
        record_before_create(desired).roles.is_empty(),
        "nothing is made"
    );

    let mut seen = observed(vec![]);
    seen.existing_role = Some(shared_role(Some(trust_for(
        "apps",
        "web",
        "sts.amazonaws.com",
    ))));
    let plan = plan_irsa(&want, &seen, &granting_shared_roles());
    assert_eq!(operations(&plan), ["Annotate"], "no IAM write at all");
    assert_eq!(plan.status.role_arn.as_deref(), Some(SHARED_ROLE));
    assert_eq!(
        plan.status.role_name, None,
        "the status names no role of ours"
    );
    assert!(plan.verdict.is_ok());

    // A role this object made before it named the existing one goes, once
    // the ServiceAccount points at the existing role.
    let earlier = ours("web-role");
    let mut switched = seen.clone();
    switched.roles = ObservedRoles(vec![("web-role".into(), Some(earlier))]);
    let plan = plan_irsa(&want, &switched, &granting_shared_roles());
    let ops = operations(&plan);
    assert_eq!(ops.first().map(String::as_str), Some("Annotate"), "{ops:?}");
    assert!(
        ops.iter()
            .any(|op| op.contains("Delete") && op.contains("web-role")),
        "{ops:?}"
    );
}

#[test]
fn an_existing_role_whose_trust_refuses_the_token_names_the_statement_to_add() {
    let want = desired_irsa(
        &with_role_arn(SHARED_ROLE),
        &subject(&[]),
        &granting_shared_roles(),
    );
    for (trust, why) in [
        (
            Some(trust_for("apps", "other", "sts.amazonaws.com")),
            "admits system:serviceaccount:apps:other only",
        ),
        (
            Some(trust_for("apps", "web", "sts.amazon.com")),
            "admits audience sts.amazon.com only",
        ),
        (
            Some(crate::policy::pod_identity_trust_policy()),
            "no statement allows sts:AssumeRoleWithWebIdentity",
        ),
        (None, "no statement allows"),
    ] {
        let mut seen = observed(vec![]);
        seen.existing_role = Some(shared_role(trust));
        let plan = plan_irsa(&want, &seen, &granting_shared_roles());
        assert!(plan.steps.is_empty(), "{why}: {:?}", plan.steps);
        let refusal = plan.verdict.expect_err(why);
        assert_eq!(refusal.reason(), "RoleDoesNotTrustServiceAccount");
        let message = refusal.to_string();
        assert!(message.contains(why), "{why:?} not in {message}");
        let Refusal::RoleDoesNotTrustServiceAccount { statement, .. } = &refusal else {
            panic!("{refusal:?}")
        };
        // The statement to add is exactly the trust the operator would
        // write for a role of its own: with it, the role admits the token.
        let mut fixed: serde_json::Value =
            serde_json::from_str(r#"{"Version":"2012-10-17","Statement":[]}"#).expect("json");
        fixed["Statement"]
            .as_array_mut()
            .expect("array")
            .push(serde_json::from_str(statement).expect("the statement is JSON"));
        let mut repaired = observed(vec![]);
        repaired.existing_role = Some(shared_role(Some(
            crate::policy::PolicyDocument::parse(&fixed.to_string()).expect("parses"),
        )));
        assert!(
            plan_irsa(&want, &repaired, &granting_shared_roles())
                .verdict
                .is_ok(),
            "{statement}"
        );
    }
}

#[test]
fn an_existing_role_is_refused_before_any_read_when_the_spec_or_guardrails_say_no() {
    let subject = subject(&[]);
    let mut with_policies = with_role_arn(SHARED_ROLE);
    with_policies.spec.policies.managed = vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()];
    let other_account = with_role_arn("arn:aws:iam::210987654321:role/shared/web-irsa");
    for (isa, defaults, reason, words) in [
        (
            &with_policies,
            granting_shared_roles(),
            "InvalidSpec",
            "leave out spec.role and spec.policies",
        ),
        (
            &other_account,
            granting_shared_roles(),
            "InvalidSpec",
            "is in account 210987654321",
        ),
        (
            &with_role_arn(SHARED_ROLE),
            defaults(),
            "GuardrailViolation",
            "spec.roleArn",
        ),
    ] {
        let refusal = desired_irsa(isa, &subject, &defaults).expect_err(reason);
        assert_eq!(refusal.reason(), reason);
        assert!(
            refusal.to_string().contains(words),
            "{words:?} not in {refusal}"
        );
    }
    // Missing, or made by the operator for another object: refused by name.
    let want = desired_irsa(
        &with_role_arn(SHARED_ROLE),
        &subject,
        &granting_shared_roles(),
    );
    let missing = observed(vec![]);
    let mut borrowed = observed(vec![]);
    borrowed.existing_role = Some(RoleSummary {
        tags: crate::policy::ownership::Owner {
            namespace: "other-team".into(),
            ..owner(KIND)
        }
        .tags(),
        ..shared_role(Some(trust_for("apps", "web", "sts.amazonaws.com")))
    });
    for (seen, reason) in [(&missing, "RoleNotFound"), (&borrowed, "BorrowedRole")] {
        let plan = plan_irsa(&want, seen, &granting_shared_roles());
        assert!(plan.steps.is_empty(), "{reason}");
        assert_eq!(plan.verdict.expect_err(reason).reason(), reason);
    }
}

#[test]
fn a_managed_provider_is_made_or_given_the_audience_before_the_role() {
    let managing = Defaults {
        manage_oidc_provider: true,
        ..defaults()
    };
    let want = desired(Some("web-role"));
    let mut missing = observed(vec![("web-role", None)]);
    missing.provider = None;
    let plan = plan_irsa(&want, &missing, &managing);
    let ops = operations(&plan);
    assert_eq!(
        ops.iter().take(3).map(String::as_str).collect::<Vec<_>>(),
        [
            "Record{\"web-role\"}",
            "CreateOpenIDConnectProvider",
            "CreateRole:web-role"
        ],
        "{ops:?}"
    );
    assert!(plan.verdict.is_ok());
    let Some(Step::OidcProvider {
        arn,
        change:
            ProviderChange::Create {
                url,
                client_id,
                tags,
            },
    }) = plan.steps.get(1)
    else {
        panic!("{:?}", plan.steps)
    };
    assert_eq!(arn, &want.as_ref().expect("valid").provider_arn);
    assert_eq!(url, crate::policy::fixtures::ISSUER);
    assert_eq!(client_id, "sts.amazonaws.com");
    assert_eq!(tags, &provider_tags("prod", "us-east-1"));

    // One made for this cluster, lacking the audience: the audience added.
    let mut lacking = observed(vec![("web-role", None)]);
    lacking.provider = Some(ObservedProvider {
        client_ids: vec!["other".into()],
        tags: provider_tags("prod", "us-east-1"),
    });
    let ops = operations(&plan_irsa(&want, &lacking, &managing));
    assert_eq!(
        ops.get(1).map(String::as_str),
        Some("AddClientIDToOpenIDConnectProvider"),
        "{ops:?}"
    );
    // Not managing: the same observations are refused, nothing written.
    for seen in [&missing, &lacking] {
        let plan = plan_irsa(&want, seen, &defaults());
        assert!(plan.steps.is_empty(), "{:?}", plan.steps);
    }
}

fn granting_adoption() -> Defaults {
    let guardrails = crate::policy::guardrails::Guardrails::parse(
        "namespaces:\n- names: [apps]\n  adoptRoles: true\n",
    )
    .expect("guardrails parse");
    Defaults {
        guardrails: std::sync::Arc::new(guardrails),
        ..defaults()
    }
}

fn adopting(role_name: &str) -> IamServiceAccount {
    let mut isa = isa(Some(role_name));
    isa.spec.adopt_role = Some(true);
    isa
}

/// A role made by hand at `name`: the trust `trust`, a tag and a policy of
/// its maker's.
fn hand_made(name: &str, trust: crate::policy::PolicyDocument) -> ObservedRole {
    let mut state = desired_irsa(&adopting(name), &subject(&[]), &granting_adoption())
        .expect("valid")
        .role
        .created()
        .expect("made")
        .clone();
    state.tags = BTreeMap::from([("made-by".to_string(), "terraform".to_string())]);
    state.trust_policy = trust;
    state.managed_policies = ["arn:aws:iam::aws:policy/AdministratorAccess".to_string()].into();
    ObservedRole {
        arn: defaults().role_arn("/", name),
        created: None,
        state,
    }
}

#[test]
fn a_role_someone_else_made_is_adopted_only_when_asked_and_its_trust_is_exactly_ours() {
    let name = "made-by-terraform";
    let want = desired_irsa(&adopting(name), &subject(&[name]), &granting_adoption());
    assert!(want.as_ref().expect("valid").adopt);
    let exact = trust_for("apps", "web", "sts.amazonaws.com");
    let seen = observed(vec![(name, Some(hand_made(name, exact.clone())))]);
    let plan = plan_irsa(&want, &seen, &granting_adoption());
    let ops = operations(&plan);
    let role_ops: Vec<&str> = ops
        .iter()
        .map(String::as_str)
        .filter(|op| op.ends_with(name))
        .collect();
    assert_eq!(
        role_ops.first(),
        Some(&"TagRole:made-by-terraform"),
        "{ops:?}"
    );
    for wanted in [
        "UntagRole:made-by-terraform",
        "AttachRolePolicy:made-by-terraform",
        "DetachRolePolicy:made-by-terraform",
    ] {
        assert!(role_ops.contains(&wanted), "{wanted} not in {ops:?}");
    }
    assert!(
        !ops.iter()
            .any(|op| op.starts_with("DeleteRole") || op.starts_with("CreateRole")),
        "{ops:?}"
    );
    let Step::Role {
        action: RoleAction::TagRole(tags),
        ..
    } = plan
        .steps
        .iter()
        .find(|s| matches!(s, Step::Role { .. }))
        .expect("a role step")
    else {
        panic!("{:?}", plan.steps)
    };
    assert_eq!(tags, &owner(KIND).tags(), "the ownership tags, first");
    let message = plan.verdict.expect("adopted");
    assert!(
        message.contains("adoptRole: whoever made it") && message.contains("exactly this object's"),
        "{message}"
    );

    // Not asked: never touched.
    let plain = desired_irsa(&isa(Some(name)), &subject(&[]), &defaults());
    let plan = plan_irsa(&plain, &seen, &defaults());
    assert!(plan.steps.is_empty());
    assert_eq!(plan.verdict.expect_err("not ours").reason(), "RoleNotOwned");

    // Asked, but the trust lets others in, or the path differs, or another
    // object's operator made it: refused by name, nothing written.
    let wildcard = crate::policy::PolicyDocument::parse(
        &serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": want.as_ref().expect("valid").provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringLike": {
                    "oidc.eks.us-east-1.amazonaws.com/id/ABC:sub": "system:serviceaccount:apps:*"
                }},
            }],
        })
        .to_string(),
    )
    .expect("parses");
    let mut elsewhere = hand_made(name, exact.clone());
    elsewhere.state.path = "/terraform/".into();
    let mut other_objects = hand_made(name, exact);
    other_objects.state.tags = crate::policy::ownership::Owner {
        namespace: "other-team".into(),
        ..owner(KIND)
    }
    .tags();
    for (role, reason, words) in [
        (
            hand_made(name, wildcard),
            "AdoptionRefused",
            "admits other ServiceAccounts too",
        ),
        (
            elsewhere,
            "AdoptionRefused",
            "set spec.role.path to /terraform/",
        ),
        (other_objects, "RoleNotOwned", "other-team"),
    ] {
        let seen = observed(vec![(name, Some(role))]);
        let plan = plan_irsa(&want, &seen, &granting_adoption());
        assert!(plan.steps.is_empty(), "{reason}: {:?}", plan.steps);
        let refusal = plan.verdict.expect_err(reason);
        assert_eq!(refusal.reason(), reason);
        assert!(
            refusal.to_string().contains(words),
            "{words:?} not in {refusal}"
        );
    }
    // Without the namespace's grant the spec itself is refused.
    let refusal = desired_irsa(&adopting(name), &subject(&[]), &defaults()).expect_err("no grant");
    assert_eq!(refusal.reason(), "GuardrailViolation");
    assert!(refusal.to_string().contains("adoptRoles"), "{refusal}");
}

#[test]
fn pods_without_the_roles_variables_keep_the_object_from_ready_but_not_its_work() {
    use crate::policy::stale_pods::{ObservedPod, ROLE_ARN_ENV};
    let want = desired(Some("web-role"));
    let arn = want.as_ref().expect("valid").role_arn.clone();
    let mut seen = observed(vec![("web-role", None)]);
    let pod = |name: &str, role: Option<&str>| ObservedPod {
        name: name.into(),
        containers: vec![
            role.map(|r| [(ROLE_ARN_ENV.to_string(), r.to_string())].into())
                .unwrap_or_default(),
        ],
        ..Default::default()
    };
    seen.pods = vec![pod("web-after", Some(&arn))];
    assert!(plan_irsa(&want, &seen, &defaults()).verdict.is_ok());
    seen.pods.push(pod("web-before", None));
    seen.pods.push(pod(
        "web-old-role",
        Some("arn:aws:iam::123456789012:role/old"),
    ));
    let plan = plan_irsa(&want, &seen, &defaults());
    assert!(
        operations(&plan).contains(&"Annotate".to_string()),
        "the work goes on"
    );
    let refusal = plan.verdict.expect_err("pods without credentials");
    assert_eq!(refusal.reason(), "PodsNeedRestart");
    let message = refusal.to_string();
    assert!(
        message.contains("2 pods") && message.contains("web-before, web-old-role"),
        "{message}"
    );
}
