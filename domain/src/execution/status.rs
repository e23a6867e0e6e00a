//! AutoGPT's `AgentExecutionStatus` and the transitions it allows.

use serde::{Deserialize, Serialize};

/// The status of a graph execution or of one node execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AgentExecutionStatus))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// Created, still waiting for inputs (node executions only).
    Incomplete,
    /// Ready and waiting for a worker.
    Queued,
    /// Being run.
    Running,
    /// Ran to its end.
    Completed,
    /// Stopped by a user.
    Terminated,
    /// Could not run to its end.
    Failed,
    /// Paused for a human review.
    Review,
}

impl ExecutionStatus {
    /// Whether a status may follow this one, as AutoGPT's table allows
    /// (dest ← sources): QUEUED ← INCOMPLETE, TERMINATED, REVIEW;
    /// RUNNING ← INCOMPLETE, QUEUED, TERMINATED, REVIEW; COMPLETED ← RUNNING;
    /// FAILED, TERMINATED ← INCOMPLETE, QUEUED, RUNNING, REVIEW;
    /// REVIEW ← RUNNING.
    pub fn can_become(self, next: ExecutionStatus) -> bool {
        use ExecutionStatus::*;
        match next {
            Queued => matches!(self, Incomplete | Terminated | Review),
            Running => matches!(self, Incomplete | Queued | Terminated | Review),
            Completed | Review => self == Running,
            Failed | Terminated => matches!(self, Incomplete | Queued | Running | Review),
            Incomplete => false,
        }
    }

    /// Whether nothing more happens to it on its own.
    pub fn is_final(self) -> bool {
        matches!(self, ExecutionStatus::Completed | ExecutionStatus::Terminated | ExecutionStatus::Failed)
    }

    /// The wire name, e.g. `"QUEUED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Incomplete => "INCOMPLETE",
            ExecutionStatus::Queued => "QUEUED",
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Completed => "COMPLETED",
            ExecutionStatus::Terminated => "TERMINATED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::Review => "REVIEW",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExecutionStatus::*;

    #[test]
    fn transitions_follow_autogpts_table() {
        assert!(Queued.can_become(Running));
        assert!(Running.can_become(Completed));
        assert!(!Queued.can_become(Completed), "completion only from running");
        assert!(!Completed.can_become(Running), "a finished run stays finished");
        assert!(!Failed.can_become(Terminated));
        assert!(Review.can_become(Queued));
        assert!(!Running.can_become(Incomplete));
        assert_eq!(serde_json::to_value(Incomplete).unwrap(), "INCOMPLETE");
        assert!(Terminated.is_final() && !Review.is_final());
    }
}
