//! What the commands do, over one [`Store`] behind a mutex, without Tauri types, so the
//! command layer can be tested directly.

use crate::error::{AppError, AppResult};
use crate::sync_task::SyncHandle;
use base64::Engine;
use fieldlog_app_api::{
    AddSchool, Badge, CommandError, ConflictValue, DeviceInfo, Enroll, EnrollmentInfo, ErrorKind,
    FieldConflict, ListVisits, Overview, SaveVisit, SchoolHit, SearchSchools, SetUpDevice,
    StagedPhoto, Storage, Thumbnail, VisitDetail, VisitSummary,
};
use fieldlog_core::{Options, Store, VisitFilter};
use fieldlog_domain::{School, SchoolId, SchoolStatus, Visit, VisitId, VisitInput, VisitStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Team name of a device set up by enrolling: enrollment replaces it with the real team.
const UNASSIGNED_TEAM: &str = "unassigned";
const SCHOOL_HITS: usize = 20;
const RECENT_SCHOOLS: usize = 6;
/// Where photos wait between picking and saving the visit.
const STAGING_DIR: &str = "staging";

/// The device as the commands see it.
#[derive(Debug)]
pub struct Device {
    data_dir: PathBuf,
    /// `None` until the data dir holds a store (set up or enrolled).
    store: Mutex<Option<Store>>,
    pub sync: SyncHandle,
}

impl Device {
    /// Opens the store in `data_dir` if there is one. Clears photos staged by an earlier run.
    pub fn open(data_dir: &Path, sync: SyncHandle) -> AppResult<Device> {
        std::fs::create_dir_all(data_dir).map_err(|e| io_error(data_dir, &e))?;
        let staging = data_dir.join(STAGING_DIR);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| io_error(&staging, &e))?;
        }
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

    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> AppResult<T>) -> AppResult<T> {
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

    /// Keeps a picked photo until the visit is saved. It is ingested once now, so a file
    /// that is not a usable photo is refused at once, beside the photo field.
    pub fn stage_photo(&self, file_name: &str, bytes: &[u8]) -> AppResult<StagedPhoto> {
        let photo_dir = self.with_store(|store| Ok(store.photo_dir()))?;
        let staging = self.data_dir.join(STAGING_DIR);
        std::fs::create_dir_all(&staging).map_err(|e| io_error(&staging, &e))?;
        let extension = Path::new(file_name)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or("jpg");
        let token = format!("{}.{extension}", uuid::Uuid::new_v4().simple());
        let path = staging.join(&token);
        std::fs::write(&path, bytes).map_err(|e| io_error(&path, &e))?;
        let checked = fieldlog_core::photo::ingest(
            &path,
            &photo_dir,
            &fieldlog_core::photo::Limits::default(),
        );
        if let Err(error) = checked {
            // Best effort: the staging dir is emptied at the next start anyway.
            let _ = std::fs::remove_file(&path);
            return Err(fieldlog_core::Error::Photo(error).into());
        }
        Ok(StagedPhoto { token })
    }

    /// Saves a visit, then attaches its staged photos. Returns the visit's id. A token that
    /// names no staged photo refuses the whole save.
    pub fn save_visit(&self, args: &SaveVisit) -> AppResult<VisitId> {
        let today = chrono::Local::now().date_naive();
        let staged: Vec<PathBuf> = args
            .photos
            .iter()
            .map(|photo| self.staged_path(&photo.token))
            .collect::<AppResult<_>>()?;
        let id = self.with_store(|store| {
            let id = match args.id {
                None => store.add_visit(&args.input, today)?.id,
                Some(id) => {
                    let current = store.visit(id)?;
                    let changes = changed_fields(&VisitInput::from(&current.fields), &args.input);
                    if !changes.is_empty() {
                        store.edit_visit(id, &changes, today)?;
                    }
                    id
                }
            };
            for (photo, path) in args.photos.iter().zip(&staged) {
                store.add_photo(id, path, &photo.caption, photo.consent)?;
                let _ = std::fs::remove_file(path);
            }
            Ok(id)
        })?;
        self.sync.saved();
        Ok(id)
    }

    /// The staged file a token names. Tokens are names this shell minted; anything else is
    /// not a staged photo.
    fn staged_path(&self, token: &str) -> AppResult<PathBuf> {
        let path = self.data_dir.join(STAGING_DIR).join(token);
        let minted = !token.is_empty()
            && !token.starts_with('.')
            && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
        if minted && path.is_file() {
            Ok(path)
        } else {
            Err(AppError(CommandError::new(
                ErrorKind::NotFound,
                format!("no staged photo {token}"),
            )))
        }
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
            Ok(VisitDetail {
                summary: summary(visit, &badges, &names),
                school,
                conflicts,
            })
        })
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
        })
    }

    /// Conflict first (a person must act), then verified, then whether the bureau has the
    /// visit and its photo files.
    fn of(&self, visit: &Visit) -> Badge {
        if self.conflicted.contains(&visit.id.to_string()) {
            Badge::Conflict
        } else if visit.status == VisitStatus::Verified {
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

fn school_names(store: &Store) -> AppResult<BTreeMap<SchoolId, String>> {
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

/// The `key=value` edits that turn `old` into `new`, in core's `edit_visit` terms.
pub fn changed_fields(old: &VisitInput, new: &VisitInput) -> Vec<(String, String)> {
    let mut changes = Vec::new();
    let mut text = |key: &str, old: &str, new: &str| {
        if old != new {
            changes.push((key.to_string(), new.to_string()));
        }
    };
    text("school", &old.school, &new.school);
    text(
        "date",
        old.date.as_deref().unwrap_or_default(),
        new.date.as_deref().unwrap_or_default(),
    );
    text("topic", &old.topic, &new.topic);
    text("presenters", &old.presenters, &new.presenters);
    text("notes", &old.notes, &new.notes);
    let set = |list: &[String]| list.iter().cloned().collect::<BTreeSet<_>>();
    if set(&old.activities) != set(&new.activities) {
        changes.push(("activities".into(), new.activities.join(",")));
    }
    let counts = [
        (
            "audience.students",
            old.audience.students,
            new.audience.students,
        ),
        (
            "audience.teachers",
            old.audience.teachers,
            new.audience.teachers,
        ),
        ("audience.others", old.audience.others, new.audience.others),
        ("donations.books", old.donations.books, new.donations.books),
        ("donations.kits", old.donations.kits, new.donations.kits),
    ];
    for (key, old, new) in counts {
        if old != new {
            changes.push((key.to_string(), new.to_string()));
        }
    }
    let cohorts: BTreeSet<&String> = old
        .audience
        .breakdown
        .keys()
        .chain(new.audience.breakdown.keys())
        .collect();
    for cohort in cohorts {
        let before = old.audience.breakdown.get(cohort).copied().unwrap_or(0);
        let after = new.audience.breakdown.get(cohort).copied().unwrap_or(0);
        if before != after {
            changes.push((format!("audience.breakdown.{cohort}"), after.to_string()));
        }
    }
    changes
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
