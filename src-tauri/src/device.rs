//! What the commands do, over one [`Store`] behind a mutex, without Tauri types, so the
//! command layer can be tested directly.

use crate::error::{AppError, AppResult};
use crate::sync_task::SyncHandle;
use base64::Engine;
use fieldlog_app_api::{
    AddCourse, AddPairing, AddSchool, AddStudent, Badge, CommandError, ConflictValue, CourseDetail,
    DeviceInfo, DiscardPhotos, EndPairing, Enroll, EnrollmentInfo, ErrorKind, FieldConflict,
    ListVisits, Members, Overview, PairingRow, RemoveStudent, RosterEntry, SaveVisit, SchoolHit,
    SearchSchools, SessionNumber, SetUpDevice, StagedPhoto, Storage, Thumbnail, VisitCourse,
    VisitDetail, VisitSummary,
};
use fieldlog_core::{Options, PhotoToAttach, Store, VisitFilter, VisitSave};
use fieldlog_domain::CourseSummary;
use fieldlog_domain::{
    CourseId, Field, Pairing, ReviewState, School, SchoolId, SchoolStatus, Student, Visit, VisitId,
    VisitStatus,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Team name of a device set up by enrolling: enrollment replaces it with the real team.
const UNASSIGNED_TEAM: &str = "unassigned";
const SCHOOL_HITS: usize = 20;
const RECENT_SCHOOLS: usize = 6;

/// The device as the commands see it.
#[derive(Debug)]
pub struct Device {
    data_dir: PathBuf,
    /// `None` until the data dir holds a store (set up or enrolled).
    store: Mutex<Option<Store>>,
    pub sync: SyncHandle,
}

impl Device {
    /// Opens the store in `data_dir` if there is one (which also drops photos staged more
    /// than a day ago and never saved).
    pub fn open(data_dir: &Path, sync: SyncHandle) -> AppResult<Device> {
        std::fs::create_dir_all(data_dir).map_err(|e| io_error(data_dir, &e))?;
        let store = match Store::open(data_dir, Options::default()) {
            Ok(store) => Some(store),
            Err(fieldlog_core::Error::NotInitialized { .. }) => None,
            Err(other) => return Err(other.into()),
        };
        Ok(Device {
            data_dir: data_dir.to_path_buf(),
            store: Mutex::new(store),
            sync,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn lock(&self) -> MutexGuard<'_, Option<Store>> {
        // A panic while holding the lock leaves the store as SQLite left it: still consistent.
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> AppResult<T>) -> AppResult<T> {
        let mut guard = self.lock();
        let store = guard.as_mut().ok_or_else(|| {
            AppError(CommandError::new(
                ErrorKind::NotSetUp,
                "this device is not set up yet",
            ))
        })?;
        f(store)
    }

    pub fn overview(&self) -> AppResult<Overview> {
        let mut guard = self.lock();
        let (device, enrollment) = match guard.as_mut() {
            None => (None, None),
            Some(store) => {
                let device = store.device();
                let info = DeviceInfo {
                    name: device.name.clone(),
                    team: device.team.to_string(),
                };
                let enrollment = store.enrollment()?.map(|e| EnrollmentInfo {
                    url: e.url,
                    member: e.member,
                    role: e.role,
                    districts: e.districts,
                    last_sync_at: e.last_sync_at,
                });
                (Some(info), enrollment)
            }
        };
        let photo_bytes = guard.as_ref().map_or(0, Store::photo_bytes);
        drop(guard);
        Ok(Overview {
            device,
            enrollment,
            sync: self.sync.state(),
            storage: Storage {
                database_bytes: database_bytes(&self.data_dir),
                photo_bytes,
            },
            data_dir: self.data_dir.display().to_string(),
        })
    }

    pub fn set_up(&self, args: &SetUpDevice) -> AppResult<Overview> {
        {
            let mut guard = self.lock();
            if guard.is_none() {
                *guard = Some(Store::init(
                    &self.data_dir,
                    &args.device_name,
                    &args.team,
                    Options::default(),
                )?);
            }
        }
        self.overview()
    }

    /// Exchanges the code for a token. The network call runs while the store is locked:
    /// enrollment is rare and must not interleave with a save that changes the team.
    pub fn enroll(&self, args: &Enroll) -> AppResult<Overview> {
        {
            let mut guard = self.lock();
            if guard.is_none() {
                *guard = Some(Store::init(
                    &self.data_dir,
                    &args.device_name,
                    UNASSIGNED_TEAM,
                    Options::default(),
                )?);
            }
            if let Some(store) = guard.as_mut() {
                fieldlog_core::sync::enroll(store, &args.url, &args.code)?;
            }
        }
        self.sync.enrolled();
        self.overview()
    }

    /// Schools by name or pinyin, recently visited ones first; an empty query lists only
    /// the recent ones.
    pub fn search_schools(&self, args: &SearchSchools) -> AppResult<Vec<SchoolHit>> {
        self.with_store(|store| {
            let recent = recent_schools(store)?;
            let found = if args.query.trim().is_empty() {
                recent
                    .iter()
                    .filter_map(|id| store.school(*id).ok())
                    .collect()
            } else {
                store.search_schools(&args.query, SCHOOL_HITS)?
            };
            let mut hits: Vec<SchoolHit> = found
                .iter()
                .map(|s| school_hit(s, recent.contains(&s.id)))
                .collect();
            // Stable: within each group the search's own ranking stays.
            hits.sort_by_key(|h| !h.recent);
            Ok(hits)
        })
    }

    pub fn add_school(&self, args: &AddSchool) -> AppResult<SchoolHit> {
        self.with_store(|store| {
            let school = store.add_school(&args.school, SchoolStatus::Pending)?;
            Ok(school_hit(&school, false))
        })
    }

    /// Ingests a picked photo once, now, so a file that is not a usable photo is refused at
    /// once, beside the photo field; the visit's save attaches it by token.
    pub fn stage_photo(&self, bytes: &[u8]) -> AppResult<StagedPhoto> {
        self.with_store(|store| {
            let staged = store.stage_photo(bytes)?;
            Ok(StagedPhoto {
                token: staged.token,
            })
        })
    }

    /// Forgets photos picked in an editor that was cancelled.
    pub fn discard_photos(&self, args: &DiscardPhotos) -> AppResult<()> {
        self.with_store(|store| Ok(store.discard_staged_photos(&args.tokens)?))
    }

    /// Saves a visit with its photos, all or nothing ([`Store::save_visit`]). Returns the
    /// visit's id.
    pub fn save_visit(&self, args: &SaveVisit) -> AppResult<VisitId> {
        let today = chrono::Local::now().date_naive();
        let save = VisitSave {
            id: args.id,
            input: args.input.clone(),
            attach: args
                .photos
                .iter()
                .map(|photo| PhotoToAttach {
                    token: photo.token.clone(),
                    caption: photo.caption.clone(),
                    consent: photo.consent,
                })
                .collect(),
            remove: args.remove_photos.clone(),
        };
        let id = self.with_store(|store| Ok(store.save_visit(&save, today)?.id))?;
        self.sync.saved();
        Ok(id)
    }

    pub fn list_visits(&self, args: &ListVisits) -> AppResult<Vec<VisitSummary>> {
        self.with_store(|store| {
            let visits = store.visits(&VisitFilter {
                month: args.month.clone(),
                school: args.school,
                include_deleted: false,
            })?;
            let badges = Badges::read(store)?;
            let names = school_names(store)?;
            Ok(visits
                .into_iter()
                .map(|v| summary(v, &badges, &names))
                .collect())
        })
    }

    pub fn visit_detail(&self, id: VisitId) -> AppResult<VisitDetail> {
        self.with_store(|store| {
            let visit = store.visit(id)?;
            let badges = Badges::read(store)?;
            let names = school_names(store)?;
            let school = store
                .school(visit.fields.school)
                .ok()
                .map(|s| school_hit(&s, false));
            let key = id.to_string();
            let conflicts = store
                .conflicts()?
                .into_iter()
                .filter(|c| c.record_id == key)
                .map(|c| FieldConflict {
                    field: c.field,
                    values: c
                        .values
                        .into_iter()
                        .map(|v| ConflictValue {
                            value: v.value,
                            author: v.author,
                            at: v.at,
                        })
                        .collect(),
                })
                .collect();
            let course = visit_course(store, &visit)?;
            Ok(VisitDetail {
                review: store.visit_review(id)?,
                history: store.history(id)?,
                summary: summary(visit, &badges, &names),
                school,
                conflicts,
                course,
            })
        })
    }

    /// Every course this device holds, with its sessions.
    pub fn list_courses(&self) -> AppResult<Vec<CourseSummary>> {
        self.with_store(|store| Ok(store.courses()?))
    }

    /// A course with its sessions, its school, and the roster when this device may see it.
    pub fn course_detail(&self, id: CourseId) -> AppResult<CourseDetail> {
        self.with_store(|store| {
            let reference = id.to_string();
            let summary = store.course(&reference)?;
            let roster = match store.roster_attendance(&reference) {
                Ok(roster) => Some(
                    roster
                        .into_iter()
                        .map(|(student, attended)| RosterEntry { student, attended })
                        .collect(),
                ),
                Err(fieldlog_core::Error::NotYourRoster { .. }) => None,
                Err(other) => return Err(other.into()),
            };
            let school = store
                .school(summary.course.fields.school)
                .ok()
                .map(|s| school_hit(&s, false));
            let (number, planned) = store.next_session(&reference)?;
            Ok(CourseDetail {
                summary,
                school,
                roster,
                next: SessionNumber { number, planned },
            })
        })
    }

    pub fn add_course(&self, args: &AddCourse) -> AppResult<CourseSummary> {
        let today = chrono::Local::now().date_naive();
        let summary = self.with_store(|store| {
            let course = store.add_course(&args.course, today)?;
            Ok(store.course(&course.id.to_string())?)
        })?;
        self.sync.saved();
        Ok(summary)
    }

    pub fn add_student(&self, args: &AddStudent) -> AppResult<Student> {
        let student = self
            .with_store(|store| Ok(store.add_student(&args.course.to_string(), &args.student)?))?;
        self.sync.saved();
        Ok(student)
    }

    pub fn remove_student(&self, args: &RemoveStudent) -> AppResult<Student> {
        let student = self.with_store(|store| {
            Ok(store.remove_student(&args.course.to_string(), &args.student.to_string())?)
        })?;
        self.sync.saved();
        Ok(student)
    }

    pub fn next_session(&self, id: CourseId) -> AppResult<SessionNumber> {
        self.with_store(|store| {
            let (number, planned) = store.next_session(&id.to_string())?;
            Ok(SessionNumber { number, planned })
        })
    }

    pub fn list_pairings(&self) -> AppResult<Vec<PairingRow>> {
        self.with_store(|store| {
            let names = school_names(store)?;
            Ok(store
                .pairings()?
                .into_iter()
                .map(|pairing| pairing_row(pairing, &names))
                .collect())
        })
    }

    pub fn add_pairing(&self, args: &AddPairing) -> AppResult<PairingRow> {
        let today = chrono::Local::now().date_naive();
        let row = self.with_store(|store| {
            let pairing = store.add_pairing(&args.pairing, today)?;
            Ok(pairing_row(pairing, &school_names(store)?))
        })?;
        self.sync.saved();
        Ok(row)
    }

    /// Ends a pairing on the day given (today when none).
    pub fn end_pairing(&self, args: &EndPairing) -> AppResult<PairingRow> {
        let today = chrono::Local::now().date_naive();
        let on = match args.on.as_deref().map(str::trim) {
            None | Some("") => today,
            Some(given) => fieldlog_domain::rules::date_until(Field::Until, given, today)
                .map_err(|e| AppError(CommandError::invalid(vec![e])))?,
        };
        let row = self.with_store(|store| {
            let pairing = store.end_pairing(args.id, on)?;
            Ok(pairing_row(pairing, &school_names(store)?))
        })?;
        self.sync.saved();
        Ok(row)
    }

    /// The members the bureau enrolled. With `refresh`, asks the bureau first on a store of
    /// its own (so saves are not held up by the network) and answers the list held when it
    /// cannot (offline, not enrolled, refused).
    pub fn members(&self, refresh: bool) -> AppResult<Members> {
        let refreshed = refresh
            && match Store::open(&self.data_dir, Options::default())
                .and_then(|mut store| fieldlog_core::sync::refresh_members(&mut store))
            {
                Ok(_) => true,
                Err(error) => {
                    tracing::info!(%error, "members not refreshed; answering the list held");
                    false
                }
            };
        let members = self.with_store(|store| Ok(store.members()?))?;
        Ok(Members { members, refreshed })
    }

    pub fn photo_thumbnail(&self, sha256: &str) -> AppResult<Thumbnail> {
        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(AppError(CommandError::new(
                ErrorKind::NotFound,
                format!("no photo {sha256}"),
            )));
        }
        let dir = self.with_store(|store| Ok(store.photo_dir()))?;
        let path = fieldlog_core::photo::stored_path(&dir, sha256);
        let bytes = std::fs::read(&path).map_err(|e| {
            AppError(CommandError::new(
                ErrorKind::NotFound,
                format!("{}: {e}", path.display()),
            ))
        })?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        Ok(Thumbnail {
            data_url: format!("data:image/jpeg;base64,{encoded}"),
        })
    }
}

/// What decides each visit's badge.
struct Badges {
    enrolled: bool,
    /// Visits whose content differs from what the bureau has.
    waiting: BTreeSet<String>,
    /// Photo files the bureau does not hold yet.
    waiting_files: BTreeSet<String>,
    conflicted: BTreeSet<String>,
    reviews: BTreeMap<VisitId, ReviewState>,
}

impl Badges {
    fn read(store: &mut Store) -> AppResult<Badges> {
        Ok(Badges {
            enrolled: store.enrollment()?.is_some(),
            waiting: store.waiting_records()?,
            waiting_files: store.waiting_photo_files()?,
            conflicted: store
                .conflicts()?
                .into_iter()
                .map(|c| c.record_id)
                .collect(),
            reviews: store.review_states()?,
        })
    }

    /// Conflict or a coordinator's flag first (a person must act), then verified, then
    /// whether the bureau has the visit and its photo files.
    fn of(&self, visit: &Visit) -> Badge {
        let review = self.reviews.get(&visit.id).copied();
        if self.conflicted.contains(&visit.id.to_string()) {
            Badge::Conflict
        } else if review == Some(ReviewState::Flagged) {
            Badge::Flagged
        } else if review == Some(ReviewState::Verified) || visit.status == VisitStatus::Verified {
            Badge::Verified
        } else if self.enrolled
            && !self.waiting.contains(&visit.id.to_string())
            && !visit.photos.iter().any(|p| {
                self.waiting_files.contains(&p.thumbnail_sha256)
                    || self.waiting_files.contains(&p.display_sha256)
            })
        {
            Badge::Synced
        } else {
            Badge::Draft
        }
    }
}

fn summary(visit: Visit, badges: &Badges, names: &BTreeMap<SchoolId, String>) -> VisitSummary {
    VisitSummary {
        badge: badges.of(&visit),
        school_name: names
            .get(&visit.fields.school)
            .cloned()
            .unwrap_or_else(|| visit.fields.school.to_string()),
        visit,
    }
}

/// The course a visit is a session of: title, number, and who was present by name.
fn visit_course(store: &Store, visit: &Visit) -> AppResult<Option<VisitCourse>> {
    let Some(id) = visit.fields.course else {
        return Ok(None);
    };
    let reference = id.to_string();
    let title = store
        .course(&reference)
        .map_or_else(|_| reference.clone(), |c| c.course.fields.title);
    let session = store.session_of(visit)?;
    let present = store
        .roster(&reference)
        .map(|roster| {
            roster
                .into_iter()
                .filter(|s| visit.fields.attendance.contains(&s.id))
                .map(|s| s.name)
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(VisitCourse {
        id,
        title,
        clash: session.as_ref().is_some_and(|(s, _)| s.clash),
        session: session.map(|(s, planned)| SessionNumber {
            number: s.number,
            planned,
        }),
        present,
    }))
}

fn pairing_row(pairing: Pairing, names: &BTreeMap<SchoolId, String>) -> PairingRow {
    PairingRow {
        school_name: names
            .get(&pairing.fields.school)
            .cloned()
            .unwrap_or_else(|| pairing.fields.school.to_string()),
        pairing,
    }
}

pub(crate) fn school_names(store: &Store) -> AppResult<BTreeMap<SchoolId, String>> {
    Ok(store
        .schools()?
        .into_iter()
        .map(|s| (s.id, s.fields.name))
        .collect())
}

/// Schools of this device's most recent visits, most recent first.
fn recent_schools(store: &Store) -> AppResult<Vec<SchoolId>> {
    let mut visits = store.visits(&VisitFilter::default())?;
    visits.sort_by_key(|v| std::cmp::Reverse(v.created_at));
    let mut recent = Vec::new();
    for visit in visits {
        if !recent.contains(&visit.fields.school) {
            recent.push(visit.fields.school);
            if recent.len() == RECENT_SCHOOLS {
                break;
            }
        }
    }
    Ok(recent)
}

fn school_hit(school: &School, recent: bool) -> SchoolHit {
    SchoolHit {
        id: school.id,
        name: school.fields.name.clone(),
        district: school.fields.district.to_string(),
        area: school.fields.area,
        status: school.status,
        recent,
    }
}

fn database_bytes(data_dir: &Path) -> u64 {
    let file = data_dir.join(fieldlog_core::store::STORE_FILE);
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut name = file.clone().into_os_string();
            name.push(suffix);
            std::fs::metadata(PathBuf::from(name)).ok()
        })
        .map(|m| m.len())
        .sum()
}

fn io_error(path: &Path, error: &std::io::Error) -> AppError {
    AppError(CommandError::new(
        ErrorKind::Storage,
        format!("{}: {error}", path.display()),
    ))
}
