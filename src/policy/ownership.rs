//! Ownership tags: how the operator recognises the roles (and associations) it
//! created, and refuses to touch anything else. Pure.

use std::collections::BTreeMap;

pub const MANAGED_BY_KEY: &str = "iam-operator.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "iam-operator";
pub const CLUSTER_KEY: &str = "iam-operator.io/cluster";
pub const NAMESPACE_KEY: &str = "iam-operator.io/namespace";
pub const KIND_KEY: &str = "iam-operator.io/kind";
pub const NAME_KEY: &str = "iam-operator.io/name";
/// Two EKS clusters of one name in two regions of one account are two
/// owners.
pub const REGION_KEY: &str = "iam-operator.io/region";

/// Ownership tags take this many of IAM's 50 tags per role.
pub const OWNERSHIP_TAG_COUNT: usize = 6;

/// The Kubernetes object a role or association belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub cluster: String,
    pub region: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// Whether an AWS resource is ours to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    Ours,
    /// No ownership tags: made by a person or another tool.
    Foreign,
    /// Made by iam-operator for another object (or another cluster).
    OtherOwner {
        description: String,
    },
}

impl Owner {
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_KEY.to_string(), MANAGED_BY_VALUE.to_string()),
            (CLUSTER_KEY.to_string(), self.cluster.clone()),
            (REGION_KEY.to_string(), self.region.clone()),
            (NAMESPACE_KEY.to_string(), self.namespace.clone()),
            (KIND_KEY.to_string(), self.kind.clone()),
            (NAME_KEY.to_string(), self.name.clone()),
        ])
    }

    pub fn classify(&self, tags: &BTreeMap<String, String>) -> Ownership {
        if tags.get(MANAGED_BY_KEY).map(String::as_str) != Some(MANAGED_BY_VALUE) {
            return Ownership::Foreign;
        }
        let mine = self.tags();
        // Tagged before regions were told apart: the cluster name decides.
        // A role gets the region tag at its next sync; an association keeps
        // its tags, which is safe, as associations live in one cluster.
        let other_region = tags.get(REGION_KEY).is_some_and(|r| *r != self.region);
        let differs = other_region
            || [CLUSTER_KEY, NAMESPACE_KEY, KIND_KEY, NAME_KEY]
                .iter()
                .any(|key| tags.get(*key) != mine.get(*key));
        if !differs {
            return Ownership::Ours;
        }
        let tag = |key: &str| tags.get(key).map(String::as_str).unwrap_or("?");
        Ownership::OtherOwner {
            description: format!(
                "{} {}/{} in cluster {} ({})",
                tag(KIND_KEY),
                tag(NAMESPACE_KEY),
                tag(NAME_KEY),
                tag(CLUSTER_KEY),
                tags.get(REGION_KEY)
                    .map(String::as_str)
                    .unwrap_or("region not tagged")
            ),
        }
    }
}

/// Whether a tag key is one of the operator's own.
pub fn is_ownership_key(key: &str) -> bool {
    // IAM compares tag keys without case: `IAM-OPERATOR.IO/name` would
    // collide with ours.
    key.to_ascii_lowercase().starts_with("iam-operator.io/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            cluster: "prod".into(),
            region: "us-east-1".into(),
            kind: "IamServiceAccount".into(),
            namespace: "dns".into(),
            name: "external-dns".into(),
        }
    }

    #[test]
    fn own_tags_classify_as_ours() {
        assert_eq!(owner().classify(&owner().tags()), Ownership::Ours);
    }

    #[test]
    fn untagged_role_is_foreign() {
        assert_eq!(owner().classify(&BTreeMap::new()), Ownership::Foreign);
        let tags = BTreeMap::from([("team".to_string(), "dns".to_string())]);
        assert_eq!(owner().classify(&tags), Ownership::Foreign);
    }

    #[test]
    fn another_cluster_or_object_is_another_owner() {
        for (key, value) in [
            (CLUSTER_KEY, "staging"),
            (REGION_KEY, "eu-west-1"),
            (NAMESPACE_KEY, "other"),
            (NAME_KEY, "x"),
            (KIND_KEY, "PodIdentityBinding"),
        ] {
            let mut tags = owner().tags();
            tags.insert(key.into(), value.into());
            match owner().classify(&tags) {
                Ownership::OtherOwner { description } => {
                    assert!(description.contains(value), "{description}")
                }
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn bug6_a_role_tagged_before_regions_counted_is_ours_by_cluster_name() {
        let mut tags = owner().tags();
        tags.remove(REGION_KEY);
        assert_eq!(owner().classify(&tags), Ownership::Ours);
        let elsewhere = Owner {
            region: "eu-west-1".into(),
            ..owner()
        };
        assert!(matches!(
            elsewhere.classify(&owner().tags()),
            Ownership::OtherOwner { description } if description.contains("us-east-1")
        ));
    }

    #[test]
    fn a_missing_owner_tag_is_not_ours() {
        let mut tags = owner().tags();
        tags.remove(NAME_KEY);
        assert!(matches!(
            owner().classify(&tags),
            Ownership::OtherOwner { .. }
        ));
    }

    #[test]
    fn ownership_tags_are_recognised_and_counted() {
        let tags = owner().tags();
        assert_eq!(tags.len(), OWNERSHIP_TAG_COUNT);
        assert!(tags.keys().all(|k| is_ownership_key(k)));
        assert!(!is_ownership_key("team"));
    }
}
