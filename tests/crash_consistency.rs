//! Crash consistency of both kinds: a randomized workload (create, update of
//! policies, role name and a binding's ServiceAccount, delete with `Retain` and
//! `Delete`) while the operator is SIGKILLed at random moments and started
//! again, then a sweep of the emulator: no orphans, no duplicates, no write
//! to a role that is not ours, every object Ready or gone within two
//! minutes of the last kill, none needing a hand edit.
//!
//! `IAM_OPERATOR_CRASH_KILLS` sets the number of kills (200 by default; the
//! long mode in the README runs 1000) and `IAM_OPERATOR_CRASH_SEED` replays a
//! run (the seed is printed).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::operator::{Launched, install, start_as};
use support::{Harness, harness};

const KILLS_ENV: &str = "IAM_OPERATOR_CRASH_KILLS";
const SEED_ENV: &str = "IAM_OPERATOR_CRASH_SEED";
const DEFAULT_KILLS: usize = 200;
const SLOTS_PER_KIND: usize = 5;
const SETTLE: Duration = Duration::from_secs(120);

const MANAGED: [&str; 3] = [
    "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
    "arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess",
    "arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess",
];

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Isa,
    Pib,
}

impl Kind {
    fn resource(self) -> &'static str {
        match self {
            Kind::Isa => "iamserviceaccount",
            Kind::Pib => "podidentitybinding",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Kind::Isa => "IamServiceAccount",
            Kind::Pib => "PodIdentityBinding",
        }
    }
}

/// One object's spec as the workload last applied it.
#[derive(Clone, Debug)]
struct Spec {
    managed: BTreeSet<&'static str>,
    inline: BTreeSet<String>,
    role_name: Option<String>,
    service_account: String,
    retain: bool,
}

impl Spec {
    fn managed_arns(&self) -> BTreeSet<String> {
        self.managed.iter().map(|arn| arn.to_string()).collect()
    }
}

/// A place for one object at a time; each create takes a new name, so a
/// retained role never meets a later object of the same name.
struct Slot {
    kind: Kind,
    index: usize,
    created: usize,
    live: Option<(String, Spec)>,
}

#[derive(Default)]
struct Tally {
    creates: usize,
    updates: usize,
    deletes: usize,
    /// Objects deleted with `Retain`: their role (and association) stay.
    retained: BTreeSet<(Kind, String)>,
    /// Objects deleted with `Delete`, which must disappear.
    deleted: BTreeSet<(Kind, String)>,
    /// Retained objects of the call-by-call pass, and the two specs their
    /// syncs could have finished: the one role left holds one of them whole.
    retained_whole: BTreeMap<(Kind, String), [Spec; 2]>,
}

fn random_spec(rng: &mut Rng, name: &str) -> Spec {
    let managed = MANAGED.iter().copied().filter(|_| rng.chance(50)).collect();
    let inline = (0..rng.below(3))
        .map(|i| format!("inline-{i}"))
        .collect::<BTreeSet<_>>();
    let role_name = rng
        .chance(30)
        .then(|| format!("crash-{name}-{}", rng.below(2)));
    // Per object, not per slot: a retained association or annotation stays
    // with its ServiceAccount, which a later object must not meet.
    let service_account = format!("{name}-sa-{}", ["a", "b"][rng.below(2) as usize]);
    Spec {
        managed,
        inline,
        role_name,
        service_account,
        retain: rng.chance(25),
    }
}

fn manifest(kind: Kind, name: &str, spec: &Spec) -> String {
    let inline: serde_json::Map<String, Value> = spec
        .inline
        .iter()
        .map(|policy| {
            (
                policy.clone(),
                json!({"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow",
                    "Action": "sqs:ReceiveMessage",
                    "Resource": format!("arn:aws:sqs:us-east-1:123456789012:{name}-{policy}"),
                }]}),
            )
        })
        .collect();
    let mut role = json!({"tags": {"workload": name}});
    if let Some(role_name) = &spec.role_name {
        role["name"] = json!(role_name);
    }
    let policies = json!({"managed": spec.managed, "inline": inline});
    let deletion = if spec.retain { "Retain" } else { "Delete" };
    let spec_json = match kind {
        Kind::Isa => json!({
            "serviceAccount": {"name": spec.service_account, "create": true},
            "role": role,
            "policies": policies,
            "deletionPolicy": deletion,
        }),
        Kind::Pib => json!({
            "serviceAccountName": spec.service_account,
            "role": role,
            "policies": policies,
            "deletionPolicy": deletion,
        }),
    };
    json!({
        "apiVersion": "iam-operator.io/v1alpha1",
        "kind": kind.tag(),
        "metadata": {"name": name},
        "spec": spec_json,
    })
    .to_string()
}

fn mutate(h: &Harness, ns: &str, rng: &mut Rng, slot: &mut Slot, tally: &mut Tally) {
    match &slot.live {
        None => {
            let name = slot.next_name();
            let spec = random_spec(rng, &name);
            create(h, ns, slot, name, spec, tally);
        }
        Some(_) if rng.chance(30) => delete(h, ns, slot, tally),
        Some((name, _)) => {
            let spec = random_spec(rng, name);
            update(h, ns, slot, spec, tally);
        }
    }
}

impl Slot {
    fn next_name(&mut self) -> String {
        self.created += 1;
        let kind = match self.kind {
            Kind::Isa => "isa",
            Kind::Pib => "pib",
        };
        format!("{kind}-{}-{}", self.index, self.created)
    }
}

fn create(h: &Harness, ns: &str, slot: &mut Slot, name: String, spec: Spec, tally: &mut Tally) {
    if slot.kind == Kind::Pib {
        for variant in ["a", "b"] {
            let sa = format!("{name}-sa-{variant}");
            h.kubectl(&["-n", ns, "create", "serviceaccount", &sa]);
        }
    }
    h.apply(ns, &manifest(slot.kind, &name, &spec));
    tally.creates += 1;
    slot.live = Some((name, spec));
}

fn update(h: &Harness, ns: &str, slot: &mut Slot, mut spec: Spec, tally: &mut Tally) {
    let (name, old) = slot.live.take().expect("a live object");
    // An IamServiceAccount's ServiceAccount name is immutable; a
    // PodIdentityBinding moves its association.
    if slot.kind == Kind::Isa {
        spec.service_account = old.service_account;
    }
    h.apply(ns, &manifest(slot.kind, &name, &spec));
    tally.updates += 1;
    slot.live = Some((name, spec));
}

fn delete(h: &Harness, ns: &str, slot: &mut Slot, tally: &mut Tally) {
    let (name, spec) = slot.live.take().expect("a live object");
    // Not waiting: the finalizer is the operator's, and it may be killed
    // any moment now.
    h.kubectl(&[
        "-n",
        ns,
        "delete",
        slot.kind.resource(),
        &name,
        "--wait=false",
    ]);
    tally.deletes += 1;
    let key = (slot.kind, name);
    if spec.retain {
        tally.retained.insert(key);
    } else {
        tally.deleted.insert(key);
    }
}

/// An operator for `ns` alone, SIGKILLed when dropped.
struct Operator(Launched);

impl Operator {
    fn start(h: &Harness, ns: &str, launch: usize) -> Self {
        Operator(start_as(
            h,
            &format!("crash-{launch}"),
            &["--watch-namespaces", ns],
        ))
    }

    fn kill(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

/// Live objects Ready at their current generation, or the name of one that
/// is not yet.
fn first_unsettled(h: &Harness, ns: &str, slots: &[Slot], tally: &Tally) -> Option<String> {
    for kind in [Kind::Isa, Kind::Pib] {
        let list = h.kubectl_json(&["-n", ns, "get", kind.resource()]);
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let present: BTreeMap<String, &Value> = items
            .iter()
            .map(|o| (o["metadata"]["name"].as_str().unwrap_or("").to_string(), o))
            .collect();
        for (k, name) in tally.deleted.iter().chain(&tally.retained) {
            if *k == kind && present.contains_key(name) {
                return Some(format!("{} {name} not gone yet", kind.tag()));
            }
        }
        for slot in slots.iter().filter(|s| s.kind == kind) {
            let Some((name, _)) = &slot.live else {
                continue;
            };
            let Some(object) = present.get(name) else {
                return Some(format!("{} {name} missing", kind.tag()));
            };
            let status = &object["status"];
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if !ready || status["observedGeneration"] != object["metadata"]["generation"] {
                return Some(format!(
                    "{} {name} not Ready at its generation: {}",
                    kind.tag(),
                    status
                ));
            }
        }
    }
    None
}

struct Sweep {
    orphans: Vec<String>,
    duplicates: Vec<String>,
    drifted: Vec<String>,
    roles_checked: usize,
    associations_checked: usize,
}

/// Everything the emulator holds with our ownership tags in `ns`, judged
/// against the objects that are live now and the ones deleted with Retain.
/// A role's attached managed policies and inline policy names.
async fn policies_of(
    iam: &aws_sdk_iam::Client,
    name: &str,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let attached = support::aws::attached(iam, name).await;
    let inline = iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .expect("ListRolePolicies")
        .policy_names()
        .iter()
        .cloned()
        .collect();
    (attached, inline)
}

async fn sweep(h: &Harness, ns: &str, slots: &[Slot], tally: &Tally) -> Sweep {
    let config = h.aws_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    let eks = aws_sdk_eks::Client::new(&config);
    let mut result = Sweep {
        orphans: vec![],
        duplicates: vec![],
        drifted: vec![],
        roles_checked: 0,
        associations_checked: 0,
    };
    let live: BTreeMap<(Kind, String), &Spec> = slots
        .iter()
        .filter_map(|s| s.live.as_ref().map(|(n, spec)| ((s.kind, n.clone()), spec)))
        .collect();
    let kind_of = |tag: &str| match tag {
        "IamServiceAccount" => Some(Kind::Isa),
        "PodIdentityBinding" => Some(Kind::Pib),
        _ => None,
    };

    let mut roles_by_owner: BTreeMap<(Kind, String), Vec<String>> = BTreeMap::new();
    let roles = iam
        .list_roles()
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    for role in roles {
        let role = role.expect("ListRoles");
        let name = role.role_name().to_string();
        let tags: BTreeMap<String, String> = iam
            .list_role_tags()
            .role_name(&name)
            .send()
            .await
            .expect("ListRoleTags")
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        let tag = |k: &str| tags.get(k).map(String::as_str).unwrap_or_default();
        if tag("iam-operator.io/managed-by") != "iam-operator"
            || tag("iam-operator.io/cluster") != h.cluster_name
            || tag("iam-operator.io/namespace") != ns
        {
            continue;
        }
        result.roles_checked += 1;
        let Some(kind) = kind_of(tag("iam-operator.io/kind")) else {
            result
                .orphans
                .push(format!("role {name}: unknown kind tag"));
            continue;
        };
        let owner = (kind, tag("iam-operator.io/name").to_string());
        roles_by_owner.entry(owner).or_default().push(name);
    }
    for (owner, names) in &roles_by_owner {
        if names.len() > 1 {
            result
                .duplicates
                .push(format!("{owner:?} owns roles {names:?}"));
        }
        if tally.retained.contains(owner) {
            if let Some(specs) = tally.retained_whole.get(owner) {
                let held = policies_of(&iam, &names[0]).await;
                if !specs
                    .iter()
                    .any(|spec| held == (spec.managed_arns(), spec.inline.clone()))
                {
                    result.drifted.push(format!(
                        "{owner:?} retained role {} holding {held:?}, neither spec's whole",
                        names[0]
                    ));
                }
            }
            continue;
        }
        let Some(spec) = live.get(owner) else {
            result
                .orphans
                .push(format!("roles {names:?} of {owner:?}, which is gone"));
            continue;
        };
        let name = &names[0];
        if let Some(wanted) = &spec.role_name
            && wanted != name
        {
            result
                .drifted
                .push(format!("{owner:?}: role {name}, spec names {wanted}"));
        }
        let (attached, inline) = policies_of(&iam, name).await;
        let wanted = spec.managed_arns();
        if attached != wanted {
            result.drifted.push(format!(
                "{owner:?}: role {name} has {attached:?}, spec {wanted:?}"
            ));
        }
        if inline != spec.inline {
            result.drifted.push(format!(
                "{owner:?}: role {name} has inline {inline:?}, spec {:?}",
                spec.inline
            ));
        }
    }
    for owner in tally.retained_whole.keys() {
        if !roles_by_owner.contains_key(owner) {
            result
                .drifted
                .push(format!("{owner:?}: retained, but no role left"));
        }
    }
    for (owner, spec) in &live {
        if !roles_by_owner.contains_key(owner) {
            result.drifted.push(format!("{owner:?}: no role"));
        }
        if owner.0 == Kind::Isa {
            let sa = h.kubectl_json(&["-n", ns, "get", "serviceaccount", &spec.service_account]);
            let annotated = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let role = roles_by_owner
                .get(owner)
                .map(|names| names[0].clone())
                .unwrap_or_default();
            if !annotated.ends_with(&format!("/{role}")) {
                result.drifted.push(format!(
                    "{owner:?}: ServiceAccount {} annotated {annotated:?}, role {role}",
                    spec.service_account
                ));
            }
        }
    }

    let associations = eks
        .list_pod_identity_associations()
        .cluster_name(&h.cluster_name)
        .namespace(ns)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut by_service_account: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for summary in associations {
        let summary = summary.expect("ListPodIdentityAssociations");
        let id = summary.association_id().unwrap_or_default().to_string();
        let described = eks
            .describe_pod_identity_association()
            .cluster_name(&h.cluster_name)
            .association_id(&id)
            .send()
            .await
            .expect("DescribePodIdentityAssociation")
            .association
            .expect("association");
        result.associations_checked += 1;
        let service_account = described.service_account().unwrap_or_default().to_string();
        by_service_account
            .entry(service_account.clone())
            .or_default()
            .push(id.clone());
        let tags = described.tags().cloned().unwrap_or_default();
        let owner = (
            Kind::Pib,
            tags.get("iam-operator.io/name")
                .cloned()
                .unwrap_or_default(),
        );
        if tally.retained.contains(&owner) {
            continue;
        }
        match live.get(&owner) {
            None => result.orphans.push(format!(
                "association {id} for {service_account} of {owner:?}, which is gone"
            )),
            Some(spec) if spec.service_account != service_account => result.drifted.push(format!(
                "association {id} for {service_account}, spec names {}",
                spec.service_account
            )),
            Some(_) => {
                let role = described.role_arn().unwrap_or_default();
                let ours = roles_by_owner.get(&owner).map(|n| n[0].as_str());
                if ours.is_none_or(|name| !role.ends_with(&format!("/{name}"))) {
                    result
                        .drifted
                        .push(format!("association {id} of {owner:?} uses {role}"));
                }
            }
        }
    }
    for (service_account, ids) in &by_service_account {
        if ids.len() > 1 {
            result
                .duplicates
                .push(format!("{service_account} has associations {ids:?}"));
        }
    }
    for (owner, spec) in &live {
        if owner.0 == Kind::Pib && !by_service_account.contains_key(&spec.service_account) {
            result.drifted.push(format!(
                "{owner:?}: no association for {}",
                spec.service_account
            ));
        }
    }
    result
}

/// Roles the operator must never write, whatever it reads while it crashes
/// and recovers: one without tags, and one tagged as the first binding's by
/// another cluster (a cleanup that went by tags instead of by the names the
/// object recorded would take it).
async fn plant_foreign_roles(h: &Harness, ns: &str) -> Vec<String> {
    let iam = aws_sdk_iam::Client::new(&h.aws_config().await);
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
    }]})
    .to_string();
    let mut names = Vec::new();
    for (name, tags) in [
        ("foreign-untagged".to_string(), vec![]),
        (
            // Tagged as the first PodIdentityBinding's, by another cluster:
            // its cleanup must not take this one for its own.
            "foreign-other-cluster".to_string(),
            vec![
                ("iam-operator.io/managed-by", "iam-operator".to_string()),
                ("iam-operator.io/cluster", "another-cluster".to_string()),
                ("iam-operator.io/namespace", ns.to_string()),
                ("iam-operator.io/kind", "PodIdentityBinding".to_string()),
                ("iam-operator.io/name", "pib-0-1".to_string()),
            ],
        ),
    ] {
        let mut request = iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(&trust);
        for (key, value) in tags {
            request = request.tags(
                aws_sdk_iam::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .expect("tag"),
            );
        }
        request.send().await.expect("CreateRole (foreign)");
        names.push(name);
    }
    names
}

#[tokio::test]
async fn killed_at_random_nothing_is_orphaned_duplicated_or_stuck() {
    let Some(h) = harness() else { return };
    let _serial = SERIAL.lock().await;
    install(h);
    let kills = env_number(KILLS_ENV).unwrap_or(DEFAULT_KILLS as u64) as usize;
    let seed = env_number(SEED_ENV).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64
    }) | 1;
    eprintln!("crash consistency: {kills} kills, {SEED_ENV}={seed}");
    let mut rng = Rng(seed);
    let ns = h.fresh_namespace("crash");
    let emulator = h.emulator();
    let foreign = plant_foreign_roles(h, &ns).await;
    let mut slots: Vec<Slot> = [Kind::Isa, Kind::Pib]
        .into_iter()
        .flat_map(|kind| {
            (0..SLOTS_PER_KIND).map(move |index| Slot {
                kind,
                index,
                created: 0,
                live: None,
            })
        })
        .collect();
    let mut tally = Tally::default();
    let mark = emulator.mark();
    let started = Instant::now();

    let mut killed_keys = BTreeSet::new();
    for launch in 0..kills {
        let mut operator = Operator::start(h, &ns, launch);
        killed_keys.insert(operator.0.access_key.clone());
        for _ in 0..rng.below(3) {
            let slot = rng.below(slots.len() as u64) as usize;
            mutate(h, &ns, &mut rng, &mut slots[slot], &mut tally);
        }
        // From before the operator has connected to well into its plans.
        std::thread::sleep(Duration::from_millis(rng.below(1500)));
        operator.kill();
    }
    let killing = started.elapsed();

    let last_kill = Instant::now();
    let _operator = Operator::start(h, &ns, kills);
    let settled = loop {
        let Some(waiting) = first_unsettled(h, &ns, &slots, &tally) else {
            break last_kill.elapsed();
        };
        assert!(
            last_kill.elapsed() < SETTLE,
            "{SETTLE:?} after the last kill (seed {seed}): {waiting}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let sweep = sweep(h, &ns, &slots, &tally).await;
    let calls = emulator.calls_since(mark);
    // Killed while working: launches that had written to AWS, their last
    // call a write (their plan cut short, or its status not yet written).
    let by_killed: Vec<&support::Call> = calls
        .iter()
        .filter(|c| {
            c.access_key
                .as_ref()
                .is_some_and(|k| killed_keys.contains(k))
        })
        .collect();
    let writers: BTreeSet<&String> = by_killed
        .iter()
        .filter(|c| support::is_write(c))
        .filter_map(|c| c.access_key.as_ref())
        .collect();
    let writes = by_killed.iter().filter(|c| support::is_write(c)).count();
    let foreign_writes: Vec<String> = calls
        .iter()
        .filter(|c| support::is_write(c))
        .filter(|c| c.target.as_ref().is_some_and(|t| foreign.contains(t)))
        .map(|c| format!("{} {:?}", c.operation, c.target))
        .collect();
    let live = slots.iter().filter(|s| s.live.is_some()).count();
    support::figure(&format!(
        "crash consistency: {kills} kills in {:.0} s (seed {seed}), {} of the killed operators \
         had written to AWS ({writes} writes); {} creates, {} updates, \
         {} deletes ({} retained); {live} live objects Ready and every deleted one gone \
         {:.1} s after the last kill; sweep of {} roles and {} associations: {} orphans, \
         {} duplicates, {} drifted, {} writes to roles not ours",
        killing.as_secs_f64(),
        writers.len(),
        tally.creates,
        tally.updates,
        tally.deletes,
        tally.retained.len(),
        settled.as_secs_f64(),
        sweep.roles_checked,
        sweep.associations_checked,
        sweep.orphans.len(),
        sweep.duplicates.len(),
        sweep.drifted.len(),
        foreign_writes.len(),
    ));
    assert!(sweep.orphans.is_empty(), "orphans: {:?}", sweep.orphans);
    assert!(
        sweep.duplicates.is_empty(),
        "duplicates: {:?}",
        sweep.duplicates
    );
    assert!(sweep.drifted.is_empty(), "drifted: {:?}", sweep.drifted);
    assert!(
        foreign_writes.is_empty(),
        "writes to roles not ours: {foreign_writes:?}"
    );
    assert!(tally.creates > 0 && tally.updates > 0 && tally.deletes > 0);
}

/// The emulator's fault rules are global: the two passes never overlap.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone, Copy, Debug)]
enum Change {
    Create,
    Update,
    Delete,
    /// The update, then, before any operator finishes it, `Retain` and a
    /// delete: what an unfinished rename left must not stay as a second
    /// role of the object.
    UpdateThenRetainedDelete,
}

/// What the deterministic pass applies: a first spec, and a second one
/// that changes every policy, renames the role and (for a binding) moves
/// the association to another ServiceAccount.
fn first_spec(name: &str) -> Spec {
    Spec {
        managed: BTreeSet::from([MANAGED[0]]),
        inline: BTreeSet::from(["inline-0".to_string()]),
        role_name: None,
        service_account: format!("{name}-sa-a"),
        retain: false,
    }
}

fn second_spec(name: &str) -> Spec {
    Spec {
        managed: BTreeSet::from([MANAGED[1], MANAGED[2]]),
        inline: BTreeSet::from(["inline-1".to_string()]),
        role_name: Some(format!("crash-{name}-renamed")),
        service_account: format!("{name}-sa-b"),
        retain: false,
    }
}

fn wait_settled(h: &Harness, ns: &str, slots: &[Slot], tally: &Tally, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let Some(waiting) = first_unsettled(h, ns, slots, tally) else {
            return started.elapsed();
        };
        assert!(started.elapsed() < SETTLE, "{what}: {waiting}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One change of one new object, made by an operator launched for it;
/// with `kill_at`, that operator is SIGKILLed once its `kill_at`-th AWS
/// call has taken effect (the emulator holds the answer), and another
/// finishes the work. Returns the AWS calls the acting operator made
/// (all of them when not killed) and whether the kill came at call k.
fn change_once(
    h: &Harness,
    ns: &str,
    slots: &mut Vec<Slot>,
    tally: &mut Tally,
    (kind, change): (Kind, Change),
    kill_at: Option<usize>,
) -> (usize, bool) {
    let emulator = h.emulator();
    let index = slots.len();
    slots.push(Slot {
        kind,
        index,
        created: 0,
        live: None,
    });
    let launch = 10_000 + index * 10;
    let name = slots[index].next_name();
    if !matches!(change, Change::Create) {
        let _setup = Operator::start(h, ns, launch);
        create(
            h,
            ns,
            &mut slots[index],
            name.clone(),
            first_spec(&name),
            tally,
        );
        wait_settled(h, ns, slots, tally, "set-up");
    }
    // From here only: after the long mode's kills the whole log is more
    // than a client will read.
    let before_start = emulator.mark();
    let mut acting = Operator::start(h, ns, launch + 1);
    let key = acting.0.access_key.clone();
    // Its start-up reads (account, cluster) are not the plan's: wait them
    // out, so that call k is the plan's k-th.
    let started = Instant::now();
    while !emulator
        .calls_since(before_start)
        .iter()
        .any(|c| c.access_key.as_deref() == Some(key.as_str()) && c.operation == "DescribeCluster")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the operator never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(k) = kill_at {
        emulator.set_faults(json!({"rules": [{
            "fault": "hold", "delayMs": 2000, "after": k - 1, "count": 1, "accessKeyId": key,
        }]}));
    }
    let mark = emulator.mark();
    let slot = &mut slots[index];
    match change {
        Change::Create => create(h, ns, slot, name.clone(), first_spec(&name), tally),
        Change::Update | Change::UpdateThenRetainedDelete => {
            update(h, ns, slot, second_spec(&name), tally)
        }
        Change::Delete => delete(h, ns, slot, tally),
    }
    let what = format!("{kind:?} {change:?} killed at call {kill_at:?}");
    let mut held = true;
    if kill_at.is_some() {
        // A plan may take a call less than when it was counted (a reconcile
        // a watch event adds, or not): then there is no call k to kill at.
        let deadline = Instant::now() + Duration::from_secs(15);
        while emulator.faults_fired() != [1] {
            if Instant::now() >= deadline && first_unsettled(h, ns, slots, tally).is_none() {
                held = false;
                break;
            }
            assert!(
                Instant::now() < deadline + Duration::from_secs(45),
                "{what}: the call never came"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        acting.kill();
        emulator.clear_faults();
        if let Change::UpdateThenRetainedDelete = change {
            delete_retained(h, ns, &mut slots[index], tally);
        }
        let _finishing = Operator::start(h, ns, launch + 2);
        wait_settled(h, ns, slots, tally, &what);
    } else {
        wait_settled(h, ns, slots, tally, &what);
    }
    let calls = emulator
        .calls_since(mark)
        .iter()
        .filter(|c| c.access_key.as_deref() == Some(key.as_str()))
        .count();
    if let (Change::UpdateThenRetainedDelete, None) = (change, kill_at) {
        acting.kill();
        delete_retained(h, ns, &mut slots[index], tally);
        let _finishing = Operator::start(h, ns, launch + 2);
        wait_settled(h, ns, slots, tally, &what);
    }
    (calls, held)
}

fn delete_retained(h: &Harness, ns: &str, slot: &mut Slot, tally: &mut Tally) {
    let (name, spec) = slot.live.as_ref().expect("a live object");
    tally.retained_whole.insert(
        (slot.kind, name.clone()),
        [first_spec(name), second_spec(name)],
    );
    let retained = Spec {
        retain: true,
        ..spec.clone()
    };
    update(h, ns, slot, retained, tally);
    delete(h, ns, slot, tally);
}

#[tokio::test]
async fn killed_after_each_aws_call_of_every_plan_nothing_is_orphaned_duplicated_or_stuck() {
    let Some(h) = harness() else { return };
    let _serial = SERIAL.lock().await;
    install(h);
    let ns = h.fresh_namespace("crash-each-call");
    let mut slots = Vec::new();
    let mut tally = Tally::default();
    let mut kills = 0;
    let mut shorter = 0;
    let mut per_plan = Vec::new();
    for kind in [Kind::Isa, Kind::Pib] {
        for change in [
            Change::Create,
            Change::Update,
            Change::Delete,
            Change::UpdateThenRetainedDelete,
        ] {
            let (calls, _) = change_once(h, &ns, &mut slots, &mut tally, (kind, change), None);
            assert!(calls > 0, "{kind:?} {change:?} made no AWS call");
            for k in 1..=calls {
                let (_, held) =
                    change_once(h, &ns, &mut slots, &mut tally, (kind, change), Some(k));
                if held {
                    kills += 1;
                } else {
                    shorter += 1;
                }
            }
            per_plan.push(format!("{kind:?} {change:?} {calls}"));
        }
    }
    let sweep = sweep(h, &ns, &slots, &tally).await;
    support::figure(&format!(
        "crash consistency, each call: {kills} kills, one after every AWS call of each plan \
         ({}; {shorter} times a plan took fewer calls than counted); sweep of {} roles and {} associations: {} orphans, {} duplicates, {} drifted",
        per_plan.join(", "),
        sweep.roles_checked,
        sweep.associations_checked,
        sweep.orphans.len(),
        sweep.duplicates.len(),
        sweep.drifted.len(),
    ));
    assert!(sweep.orphans.is_empty(), "orphans: {:?}", sweep.orphans);
    assert!(sweep.duplicates.is_empty(), "{:?}", sweep.duplicates);
    assert!(sweep.drifted.is_empty(), "drifted: {:?}", sweep.drifted);
    assert!(
        shorter * 4 <= kills,
        "{shorter} plans took fewer calls than counted, {kills} kills"
    );
}
