//! Whether pods on the cluster can be served Pod Identity credentials at all.
//! An association only takes effect where the EKS Pod Identity Agent runs
//! on the nodes; without it a pod's SDK finds no container credentials and
//! falls through to the node's role or fails, while the association looks
//! fine in every API. So a binding is Ready only once the agent is known to
//! run.

/// The EKS add-on that installs the agent.
pub const AGENT_ADDON: &str = "eks-pod-identity-agent";

/// What was seen of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AgentState {
    /// The add-on is `ACTIVE`, or the configuration says the agent is
    /// self-managed; also what a plan assumes when it did not ask (deleting).
    #[default]
    Running,
    /// The cluster has no such add-on.
    Absent,
    /// The add-on exists in another status (`CREATING`, `DEGRADED`, ...).
    NotActive { status: String },
}

impl AgentState {
    /// From `DescribeAddon`'s status, `None` when the add-on is absent.
    pub fn from_addon_status(status: Option<&str>) -> Self {
        match status {
            None => AgentState::Absent,
            Some("ACTIVE") => AgentState::Running,
            Some(other) => AgentState::NotActive {
                status: if other.is_empty() {
                    "unknown".to_string()
                } else {
                    other.to_string()
                },
            },
        }
    }

    pub fn is_running(&self) -> bool {
        *self == AgentState::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_active_addon_runs_the_agent() {
        assert_eq!(
            AgentState::from_addon_status(Some("ACTIVE")),
            AgentState::Running
        );
        assert_eq!(AgentState::from_addon_status(None), AgentState::Absent);
        for status in [
            "CREATING",
            "CREATE_FAILED",
            "UPDATING",
            "DELETING",
            "DELETE_FAILED",
            "DEGRADED",
            "UPDATE_FAILED",
        ] {
            let state = AgentState::from_addon_status(Some(status));
            assert_eq!(
                state,
                AgentState::NotActive {
                    status: status.into()
                }
            );
            assert!(!state.is_running());
        }
        assert_eq!(
            AgentState::from_addon_status(Some("")),
            AgentState::NotActive {
                status: "unknown".into()
            },
            "an add-on without a status is not taken for a running one"
        );
    }
}
