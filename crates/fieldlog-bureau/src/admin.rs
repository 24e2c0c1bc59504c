//! What a coordinator does at the bureau: teams, enrollment codes, devices and registry
//! imports. Enrollment itself ([`Bureau::enroll`]) is what `POST /v1/enroll` runs.

use crate::Bureau;
use crate::error::{Error, Result};
use crate::secret::{self, SecretHash};
use crate::storage::{DeviceRecord, ImportSummary, NewCode, Redemption, Team, TeamType};
use automerge::ActorId;
use chrono::NaiveDate;
use fieldlog_domain::VisitId;
use fieldlog_domain::photo::PhotoRef;
use fieldlog_domain::sync::{EnrollRequest, EnrollResponse, Refusal};
use fieldlog_domain::{DeviceId, District, Field, Role, TeamId, ValidationErrors};
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Duration;

/// The team `init` creates for the bureau's own coordinators.
pub const BUREAU_TEAM: &str = "bureau";
/// The most actors one device may register.
pub const MAX_ACTORS_PER_DEVICE: usize = 16;

/// A one-time enrollment code, shown once: the bureau keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedCode {
    pub code: String,
    pub team: TeamId,
    pub member: String,
    pub role: Role,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
}

impl IssuedCode {
    /// What the QR code holds.
    pub fn uri(&self) -> String {
        format!("fieldlog:enroll?code={}", self.code)
    }
}

impl Bureau {
    /// Sets up the bureau's own team of coordinators, whose region is `districts`, and
    /// issues the first coordinator's enrollment code. Refused once a bureau team exists.
    pub fn initialize(
        &self,
        coordinator: &str,
        districts: &[String],
        expires_in: Duration,
    ) -> Result<IssuedCode> {
        if let Some(team) = self
            .teams()?
            .into_iter()
            .find(|t| t.kind == TeamType::Bureau)
        {
            return Err(Error::AlreadyInitialized { team: team.id });
        }
        member_name(coordinator)?;
        self.add_team(BUREAU_TEAM, TeamType::Bureau, districts)?;
        self.issue_code(BUREAU_TEAM, coordinator, Role::Coordinator, expires_in)
    }

    /// Adds a team and the districts it works in (its volunteers receive those
    /// registries; coordinators whose region includes one of them receive its ledgers).
    #[tracing::instrument(skip(self), err)]
    pub fn add_team(&self, team: &str, kind: TeamType, districts: &[String]) -> Result<Team> {
        let mut errors = Vec::new();
        let id = TeamId::parse(team).map_err(|e| errors.push(e)).ok();
        let parsed: BTreeSet<District> = districts
            .iter()
            .filter_map(|d| District::parse(d).map_err(|e| errors.push(e)).ok())
            .collect();
        let (Some(id), true) = (id, errors.is_empty()) else {
            return Err(ValidationErrors(errors).into());
        };
        let team = Team {
            id,
            kind,
            districts: parsed.into_iter().collect(),
        };
        self.storage().add_team(&team, self.now_ms())?;
        Ok(team)
    }

    /// Every photo of the visits held (deleted visits left out), and whether its files have
    /// arrived: what a coordinator checks before publishing.
    pub fn photos(&self) -> Result<Vec<PhotoArrival>> {
        let visits = self.visits(&fieldlog_core::VisitFilter::default())?;
        let mut out = Vec::new();
        for visit in visits {
            for photo in &visit.photos {
                let complete =
                    |sha256: &str| Ok::<_, Error>(self.blobs().complete(sha256)?.is_some());
                out.push(PhotoArrival {
                    visit: visit.id,
                    team: visit.team.clone(),
                    date: visit.fields.date,
                    thumbnail_held: complete(&photo.thumbnail_sha256)?,
                    display_held: complete(&photo.display_sha256)?,
                    photo: photo.clone(),
                });
            }
        }
        Ok(out)
    }

    /// What `device` may see. A volunteer's scope needs only its own team's row; a
    /// coordinator's, every team's.
    pub fn scope_of(&self, device: &DeviceRecord) -> Result<crate::Scope> {
        let teams = match device.role {
            Role::Volunteer => self.storage().team(&device.team)?.into_iter().collect(),
            Role::Coordinator => self.teams()?,
        };
        Ok(crate::Scope::of(device, &teams))
    }

    pub fn teams(&self) -> Result<Vec<Team>> {
        Ok(self.storage().teams()?)
    }

    /// The enrolled members (a device not revoked) of the teams in `device`'s scope, with
    /// their teams' districts: a volunteer's team, a coordinator's region.
    pub fn members_for(
        &self,
        device: &DeviceRecord,
    ) -> Result<Vec<fieldlog_domain::EnrolledMember>> {
        let scope = self.scope_of(device)?;
        self.enrolled_members(|team| scope.teams.contains(team))
    }

    /// The enrolled members (a device not revoked) of the teams `in_scope` accepts, with
    /// their teams' districts, sorted, each once.
    pub(crate) fn enrolled_members(
        &self,
        in_scope: impl Fn(&TeamId) -> bool,
    ) -> Result<Vec<fieldlog_domain::EnrolledMember>> {
        let teams = self.storage().teams()?;
        let mut members: Vec<fieldlog_domain::EnrolledMember> = self
            .storage()
            .devices()?
            .into_iter()
            .filter(|d| d.revoked_at.is_none() && in_scope(&d.team))
            .map(|d| fieldlog_domain::EnrolledMember {
                districts: teams
                    .iter()
                    .find(|t| t.id == d.team)
                    .map(|t| t.districts.clone())
                    .unwrap_or_default(),
                team: d.team,
                name: d.member,
                role: d.role,
            })
            .collect();
        members.sort();
        members.dedup();
        Ok(members)
    }

    /// A single-use code for `member` of `team`, valid for `expires_in`.
    #[tracing::instrument(skip(self), err)]
    pub fn issue_code(
        &self,
        team: &str,
        member: &str,
        role: Role,
        expires_in: Duration,
    ) -> Result<IssuedCode> {
        let team = TeamId::parse(team).map_err(ValidationErrors::from)?;
        let member = member_name(member)?;
        let code = secret::new_code();
        let issued_at = self.now_ms();
        let ttl = i64::try_from(expires_in.as_millis()).unwrap_or(i64::MAX);
        let expires_at = issued_at.saturating_add(ttl);
        self.storage().add_code(&NewCode {
            code: SecretHash::of_code(&code),
            team: team.clone(),
            member: member.clone(),
            role,
            issued_at,
            expires_at,
        })?;
        Ok(IssuedCode {
            code,
            team,
            member,
            role,
            expires_at,
        })
    }

    /// Exchanges a code for a device token. The token is returned once; the bureau keeps
    /// its hash and the device's actors.
    #[tracing::instrument(skip_all, fields(device_name = %request.device_name))]
    pub fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse> {
        let malformed = |why: String| Error::refused(Refusal::Malformed, why);
        let device_name =
            fieldlog_domain::rules::text(Field::DeviceName, &request.device_name, 64, true)
                .map_err(|e| malformed(e.to_string()))?;
        if request.actors.is_empty() || request.actors.len() > MAX_ACTORS_PER_DEVICE {
            return Err(malformed(format!(
                "a device registers 1 to {MAX_ACTORS_PER_DEVICE} actors"
            )));
        }
        let mut actors = Vec::new();
        for hex in &request.actors {
            let actor = ActorId::try_from(hex.as_str())
                .ok()
                .filter(|a| !a.to_bytes().is_empty() && a.to_bytes().len() <= 32)
                .ok_or_else(|| malformed(format!("`{hex}` is not an Automerge actor id")))?;
            if !actors.contains(&actor) {
                actors.push(actor);
            }
        }
        let signing_key = match &request.signing_key {
            None => None,
            Some(hex) => Some(
                hex::decode(hex)
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .ok_or_else(|| malformed(format!("`{hex}` is not an ed25519 public key")))?,
            ),
        };
        let token = secret::new_token();
        let device_id = DeviceId(uuid::Uuid::now_v7());
        let enrolled = self.storage().redeem_code(&Redemption {
            code: SecretHash::of_code(&request.code),
            device_id,
            device_name,
            actors,
            signing_key,
            token: SecretHash::of(&token),
            now_ms: self.now_ms(),
        })?;
        tracing::info!(device = %device_id, team = %enrolled.team.id, "device enrolled");
        Ok(EnrollResponse {
            token,
            device_id: device_id.to_string(),
            team: enrolled.team.id.to_string(),
            member: enrolled.member,
            role: enrolled.role,
            districts: enrolled
                .team
                .districts
                .iter()
                .map(|d| d.to_string())
                .collect(),
        })
    }

    pub fn devices(&self) -> Result<Vec<DeviceRecord>> {
        Ok(self.storage().devices()?)
    }

    /// Revokes a device: its token stops working at once. Its changes stay.
    #[tracing::instrument(skip(self), err)]
    pub fn revoke(&self, device_id: &str) -> Result<DeviceRecord> {
        let id: DeviceId = device_id
            .parse()
            .map_err(|_| Error::UnknownDevice(device_id.to_string()))?;
        Ok(self.storage().revoke_device(id, self.now_ms())?)
    }

    /// Imports a registry CSV (`name,district,area,level,enrollment`) into the district
    /// documents; devices receive the changes at their next sync. Any bad row refuses the
    /// whole file. Importing the same file again changes nothing.
    #[tracing::instrument(skip_all, err)]
    pub fn import_schools_csv(&self, csv: impl std::io::Read) -> Result<ImportSummary> {
        let rows = fieldlog_core::registry::parse_csv(csv)?;
        self.import_registry(rows)
    }
}

/// A member's name: trimmed, 1 to 64 characters, no control characters.
fn member_name(given: &str) -> Result<String> {
    let name = given.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(Error::InvalidMember);
    }
    Ok(name.to_string())
}

/// A photo a visit shows, and whether the bureau holds its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhotoArrival {
    pub visit: VisitId,
    pub team: TeamId,
    pub date: NaiveDate,
    pub photo: PhotoRef,
    pub thumbnail_held: bool,
    pub display_held: bool,
}
