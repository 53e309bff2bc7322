//! A remark of a plan that is not a change (what a trust admits beyond the spec, what an
//! adopted role keeps): made by the recipes and the drivers, carried and saved by the plan.

use serde::{Deserialize, Serialize};

/// A remark of the plan, not a change: shown above the changes, saved with the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// What the spec chose, stated.
    Note,
    /// A risk the spec cannot remove.
    Warning,
}

impl Note {
    pub fn remark(message: String) -> Note {
        Note {
            severity: Severity::Note,
            message,
        }
    }

    pub fn warning(message: String) -> Note {
        Note {
            severity: Severity::Warning,
            message,
        }
    }

    /// `Note: ...` or `Warning: ...`.
    pub fn line(&self) -> String {
        let label = match self.severity {
            Severity::Note => "Note",
            Severity::Warning => "Warning",
        };
        format!("{label}: {}", self.message)
    }
}
