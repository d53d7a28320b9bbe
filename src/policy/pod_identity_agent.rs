//! Whether pods on the cluster can be served Pod Identity credentials at all.
//! An association only takes effect where the EKS Pod Identity Agent runs
//! on the nodes; without it a pod's SDK finds no container credentials and
//! falls through to the node's role or fails, while the association looks
//! fine in every API. So a binding is Ready only once the agent is known to
//! run.

/// The EKS add-on that installs the agent.
pub const AGENT_ADDON: &str = "eks-pod-identity-agent";

/// What was seen of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    /// The add-on is `ACTIVE` (or `UPDATING`: the agent's DaemonSet keeps
    /// serving while a new version rolls out, and a routine upgrade must not
    /// turn every binding red), or the configuration says the agent is
    /// self-managed.
    Running,
    NotRunning(AgentProblem),
}

/// Why the agent is not known to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentProblem {
    /// The cluster has no such add-on.
    Absent,
    /// The add-on exists in a status that does not serve credentials for
    /// sure (`CREATING`, `DEGRADED`, `UPDATE_FAILED`, `DELETING`, ...).
    NotActive { status: String },
    /// `DescribeAddon` was refused (AccessDenied, say, after an upgrade of
    /// the operator whose AWS policy was not updated): the binding's own work
    /// goes on, but Ready cannot be vouched for.
    Unreadable { error: String },
}

impl AgentState {
    /// From `DescribeAddon`'s status, `None` when the add-on is absent.
    pub fn from_addon_status(status: Option<&str>) -> Self {
        match status {
            None => AgentState::NotRunning(AgentProblem::Absent),
            Some("ACTIVE" | "UPDATING") => AgentState::Running,
            Some(other) => AgentState::NotRunning(AgentProblem::NotActive {
                status: if other.is_empty() {
                    "unknown".to_string()
                } else {
                    other.to_string()
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_or_updating_addon_runs_the_agent() {
        for status in ["ACTIVE", "UPDATING"] {
            assert_eq!(
                AgentState::from_addon_status(Some(status)),
                AgentState::Running,
                "{status}"
            );
        }
        assert_eq!(
            AgentState::from_addon_status(None),
            AgentState::NotRunning(AgentProblem::Absent)
        );
        for status in [
            "CREATING",
            "CREATE_FAILED",
            "DELETING",
            "DELETE_FAILED",
            "DEGRADED",
            "UPDATE_FAILED",
        ] {
            assert_eq!(
                AgentState::from_addon_status(Some(status)),
                AgentState::NotRunning(AgentProblem::NotActive {
                    status: status.into()
                })
            );
        }
        assert_eq!(
            AgentState::from_addon_status(Some("")),
            AgentState::NotRunning(AgentProblem::NotActive {
                status: "unknown".into()
            }),
            "an add-on without a status is not taken for a running one"
        );
    }
}
