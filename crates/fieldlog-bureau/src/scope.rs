//! Which documents a device may send and receive.
//!
//! - A **volunteer** device (any team) sees its team's documents (ledgers, courses, rosters,
//!   pairings, targets) and the registries of its team's districts.
//! - A **coordinator** device's region is its team's districts: it sees their registries
//!   and the team documents of every team that works in at least one of them.
//!
//! So a roster (minors' names) reaches its team and the region's coordinators, no one else.
//!
//! The bureau computes this from its own records on every request; a device's claim of team
//! or role is never read.

use crate::storage::{DeviceRecord, Team};
use fieldlog_core::DocId;
use fieldlog_domain::{District, Role, TeamId};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Teams whose ledgers are in scope.
    pub teams: BTreeSet<TeamId>,
    /// Districts whose registries are in scope.
    pub districts: BTreeSet<District>,
}

impl Scope {
    pub fn of(device: &DeviceRecord, teams: &[Team]) -> Scope {
        let own: BTreeSet<District> = teams
            .iter()
            .filter(|t| t.id == device.team)
            .flat_map(|t| t.districts.iter().cloned())
            .collect();
        let ledger_teams = match device.role {
            Role::Volunteer => BTreeSet::from([device.team.clone()]),
            Role::Coordinator => teams
                .iter()
                .filter(|t| t.districts.iter().any(|d| own.contains(d)))
                .map(|t| t.id.clone())
                .collect(),
        };
        Scope {
            teams: ledger_teams,
            districts: own,
        }
    }

    pub fn allows(&self, doc: &DocId) -> bool {
        match doc {
            DocId::Ledger { team, .. } => self.teams.contains(team),
            DocId::Registry { district } | DocId::Review { district, .. } => {
                self.districts.contains(district)
            }
            DocId::Targets { team }
            | DocId::Courses { team }
            | DocId::Pairings { team }
            | DocId::Roster { team, .. } => self.teams.contains(team),
        }
    }

    /// The scope keys (see [`scope_key`]) of every document in scope.
    pub fn keys(&self) -> Vec<String> {
        self.teams
            .iter()
            .map(|t| format!("{TEAM_PREFIX}{t}"))
            .chain(
                self.districts
                    .iter()
                    .map(|d| format!("{DISTRICT_PREFIX}{d}")),
            )
            .collect()
    }
}

const TEAM_PREFIX: &str = "team:";
const DISTRICT_PREFIX: &str = "district:";

/// What a document belongs to, for authorization: `team:<team>` for a ledger,
/// `district:<district>` for a registry. Stored with each change, so "changes after my
/// cursor in my scope" is one indexed query.
pub fn scope_key(doc: &DocId) -> String {
    match doc {
        DocId::Ledger { team, .. }
        | DocId::Targets { team }
        | DocId::Courses { team }
        | DocId::Pairings { team }
        | DocId::Roster { team, .. } => format!("{TEAM_PREFIX}{team}"),
        DocId::Registry { district } | DocId::Review { district, .. } => {
            format!("{DISTRICT_PREFIX}{district}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::TeamType;

    fn team(id: &str, districts: &[&str]) -> Team {
        Team {
            id: TeamId::parse(id).unwrap(),
            kind: TeamType::Volunteer,
            districts: districts
                .iter()
                .map(|d| District::parse(d).unwrap())
                .collect(),
        }
    }

    fn device(team: &str, role: Role) -> DeviceRecord {
        DeviceRecord {
            id: fieldlog_domain::DeviceId(uuid::Uuid::nil()),
            name: "d".into(),
            team: TeamId::parse(team).unwrap(),
            member: "m".into(),
            role,
            actors: Vec::new(),
            signing_key: None,
            enrolled_at: 0,
            revoked_at: None,
        }
    }

    #[test]
    fn volunteers_see_their_team_and_coordinators_their_region() {
        let teams = [
            team("bureau", &["南山区", "北山区"]),
            team("caravan-1", &["南山区"]),
            team("caravan-2", &["西山区"]),
            team("tutors", &["北山区", "西山区"]),
        ];
        let doc = |s: &str| DocId::parse(s).unwrap();

        let volunteer = Scope::of(&device("caravan-1", Role::Volunteer), &teams);
        assert!(volunteer.allows(&doc("ledger/caravan-1/2026-05")));
        assert!(volunteer.allows(&doc("registry/南山区")));
        assert!(!volunteer.allows(&doc("ledger/caravan-2/2026-05")));
        assert!(!volunteer.allows(&doc("registry/西山区")));
        let roster = "0190a1b2-0000-7000-8000-000000000001";
        assert!(volunteer.allows(&doc(&format!("roster/caravan-1/{roster}"))));
        assert!(!volunteer.allows(&doc(&format!("roster/caravan-2/{roster}"))));
        assert!(!volunteer.allows(&doc("courses/tutors")));

        let coordinator = Scope::of(&device("bureau", Role::Coordinator), &teams);
        for allowed in [
            "ledger/bureau/2026-05",
            "ledger/caravan-1/2026-05",
            "ledger/tutors/2026-05",
            "registry/北山区",
        ] {
            assert!(coordinator.allows(&doc(allowed)), "{allowed}");
        }
        assert!(!coordinator.allows(&doc("ledger/caravan-2/2026-05")));
        assert!(coordinator.allows(&doc(&format!("roster/tutors/{roster}"))));
        assert!(!coordinator.allows(&doc(&format!("roster/caravan-2/{roster}"))));
        assert!(!coordinator.allows(&doc("registry/西山区")));
        assert_eq!(coordinator.keys().len(), 5);
    }
}
