//! Teams and their members.

use crate::ids::TeamId;
use crate::kinds::{Role, TeamKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub kind: TeamKind,
}

/// A person on a team, as enrolled by a coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub team: TeamId,
    pub role: Role,
}
