//! The device store: one SQLite file per data directory.

use crate::clock::{Clock, SystemClock};
use crate::docs::{self, DocCache};
use crate::error::{DbContext, Error, Result};
use crate::ledger::{self, Conflict, DocId};
use crate::photo::Limits as PhotoLimits;
use crate::projection;
use crate::registry;
use crate::search::normalize_query;
use crate::settings::OriginalsPolicy;
use crate::staging::Ingested;
use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, ChangeHash};
use chrono::NaiveDate;
use fieldlog_domain::photo::PhotoRef;
use fieldlog_domain::sync::MAX_CHANGE_BYTES;
use fieldlog_domain::visit::Context;
use fieldlog_domain::{
    DeviceId, District, Field, FieldError, Report, School, SchoolId, SchoolInput, SchoolStatus,
    TeamId, ValidationErrors, Visit, VisitFields, VisitId, VisitInput, VisitStatus,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

pub const STORE_FILE: &str = "fieldlog.sqlite3";

/// Who this device is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub name: String,
    pub team: TeamId,
    /// The Automerge actor id every change from this device carries (hex).
    pub actor: String,
}

/// Settings the caller chooses; the store reads no environment.
#[derive(Debug, Clone)]
pub struct Options {
    pub clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Arc::new(SystemClock),
        }
    }
}

/// Which visits to list.
#[derive(Debug, Clone, Default)]
pub struct VisitFilter {
    /// `YYYY-MM` of the visit date.
    pub month: Option<String>,
    pub school: Option<SchoolId>,
    pub include_deleted: bool,
}

/// Which visits a report covers, by visit date and school district.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub district: Option<District>,
}

pub use crate::registry::ImportSummary;

/// A staged photo ([`Store::stage_photo`]) to attach when its visit is saved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhotoToAttach {
    pub token: String,
    pub caption: String,
    pub consent: bool,
}

/// A visit as an editor saves it ([`Store::save_visit`]): its fields and its photos.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitSave {
    /// `None` saves a new visit.
    pub id: Option<VisitId>,
    pub input: VisitInput,
    pub attach: Vec<PhotoToAttach>,
    /// Display sha256 of photos to detach; the visit's other photos stay as they are.
    pub remove: Vec<String>,
}

/// What [`Store::write_visit`] writes.
#[expect(
    clippy::large_enum_variant,
    reason = "one short-lived value per save, never stored or moved in bulk"
)]
enum VisitWrite<'a> {
    New(&'a Visit),
    /// Writes the fields that differ between `before` (as read) and `after`, so concurrent
    /// edits of other fields merge and counters move by the difference.
    Edit {
        id: VisitId,
        before: VisitFields,
        after: VisitFields,
    },
}

/// A photo ingested and ready to attach, with its source for the originals setting.
struct NewPhoto {
    photo: PhotoRef,
    source: PathBuf,
    extension: String,
}

#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) device: Device,
    pub(crate) actor: ActorId,
    /// Signs every change this device authors (see [`crate::signing`]).
    pub(crate) signer: ed25519_dalek::SigningKey,
    pub(crate) docs: DocCache,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Store {
    /// Creates the device identity (id, name, team, a fresh Automerge actor) in `dir`.
    pub fn init(dir: &Path, device_name: &str, team: &str, options: Options) -> Result<Store> {
        let name = fieldlog_domain::rules::text(Field::DeviceName, device_name, 64, true);
        let team = TeamId::parse(team);
        let (name, team) = match (name, team) {
            (Ok(name), Ok(team)) => (name, team),
            (name, team) => {
                return Err(ValidationErrors::collect([name.err(), team.err()]).into());
            }
        };
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(STORE_FILE);
        let conn = crate::db::open(&path)?;
        if let Some(existing) = read_device(&conn, &path)? {
            return Err(Error::AlreadyInitialized {
                path: dir.to_path_buf(),
                device_name: existing.name,
            });
        }
        let device = Device {
            id: DeviceId(Uuid::now_v7()),
            name,
            team,
            actor: ActorId::random().to_hex_string(),
        };
        conn.execute(
            "INSERT INTO device (singleton, device_id, device_name, team, actor, created_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![
                device.id.to_string(),
                device.name,
                device.team.as_str(),
                device.actor,
                options.clock.now_ms()
            ],
        )
        .db(&path)?;
        Store::with_device(conn, path, device, options)
    }

    /// Opens the store in `dir`, which `init` must have prepared.
    pub fn open(dir: &Path, options: Options) -> Result<Store> {
        let path = dir.join(STORE_FILE);
        if !path.exists() {
            return Err(Error::NotInitialized {
                path: dir.to_path_buf(),
            });
        }
        let conn = crate::db::open(&path)?;
        let device = read_device(&conn, &path)?.ok_or_else(|| Error::NotInitialized {
            path: dir.to_path_buf(),
        })?;
        let mut store = Store::with_device(conn, path, device, options)?;
        if let Err(error) = store.expire_staged_photos() {
            tracing::warn!(%error, "staged photos not cleaned");
        }
        Ok(store)
    }

    fn with_device(
        conn: Connection,
        path: PathBuf,
        device: Device,
        options: Options,
    ) -> Result<Store> {
        let actor = ActorId::try_from(device.actor.as_str())
            .map_err(|_| Error::NotInitialized { path: path.clone() })?;
        let signer = signing_key(&conn, &path)?;
        Ok(Store {
            conn,
            path,
            device,
            actor,
            signer,
            docs: DocCache::default(),
            clock: options.clock,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The SQLite file behind this store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a write: every document change and its projection rows commit together, or
    /// not at all.
    pub(crate) fn begin(&mut self) -> Result<Writer<'_>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db(&self.path)?;
        Ok(Writer {
            tx: Some(tx),
            path: &self.path,
            docs: &mut self.docs,
            actor: &self.actor,
            signer: &self.signer,
            device_name: &self.device.name,
            now: self.clock.now_ms(),
            touched: BTreeSet::new(),
            committed: false,
        })
    }

    // ---- schools ----

    /// Adds one school. From a device it is `Pending` until a coordinator approves it.
    pub fn add_school(&mut self, input: &SchoolInput, status: SchoolStatus) -> Result<School> {
        let fields = input.validate()?;
        let school = School {
            id: SchoolId(Uuid::now_v7()),
            fields,
            status,
            merged_into: None,
        };
        let mut w = self.begin()?;
        w.put_school(&school)?;
        w.commit()?;
        Ok(school)
    }

    /// Imports a registry CSV (`name,district,area,level,enrollment`) with the bureau's rules
    /// ([`registry`]): any bad row, or a school listed twice, refuses the whole file; rows
    /// match schools by name within their district, so importing the same file again
    /// changes nothing. Imported schools are registered.
    pub fn import_schools_csv(&mut self, csv_text: impl std::io::Read) -> Result<ImportSummary> {
        let rows = registry::parse_csv(csv_text)?;
        let author = self.device.name.clone();
        let mut summary = ImportSummary::default();
        let mut w = self.begin()?;
        let now = w.now;
        for (district, rows) in rows.0 {
            let doc_id = DocId::registry(&district);
            w.modify(&doc_id, |doc, _| {
                let written = registry::import_into(doc, rows, &author, now, &mut summary)
                    .map_err(|source| document_error(&doc_id, source))?;
                Ok(((), written))
            })?;
        }
        w.commit()?;
        Ok(summary)
    }

    pub fn schools(&self) -> Result<Vec<School>> {
        projection::schools(&self.conn, &self.path)
    }

    pub fn school(&self, id: SchoolId) -> Result<School> {
        self.query_records("SELECT record FROM schools WHERE id = ?1", [id.to_string()])?
            .pop()
            .ok_or(Error::SchoolNotFound(id))
    }

    /// Finds schools by a part of the name, or by pinyin: initials (`nsxx`) or full
    /// (`nanshan`). Best matches first: exact name, then name prefix, then initials.
    pub fn search_schools(&self, query: &str, limit: usize) -> Result<Vec<School>> {
        let query = query.trim();
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let pinyin = normalize_query(query);
        self.query_records(
            "SELECT record FROM schools
             WHERE instr(name, ?1) > 0
                OR (?2 != '' AND (instr(pinyin_initials, ?2) > 0 OR instr(pinyin_full, ?2) > 0))
             ORDER BY CASE
                 WHEN name = ?1 THEN 0
                 WHEN substr(name, 1, length(?1)) = ?1 THEN 1
                 WHEN substr(pinyin_initials, 1, length(?2)) = ?2 THEN 2
                 WHEN substr(pinyin_full, 1, length(?2)) = ?2 THEN 3
                 ELSE 4 END,
               length(name), name
             LIMIT ?3",
            params![query, pinyin, limit as i64],
        )
    }

    /// A school id from an id or an exact name (the first registered one if names repeat).
    pub fn find_school(&self, reference: &str) -> Result<Option<SchoolId>> {
        let reference = reference.trim();
        if let Ok(id) = reference.parse::<SchoolId>() {
            return Ok(self.school(id).ok().map(|s| s.id));
        }
        let id: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT id FROM schools WHERE name = ?1
                 ORDER BY status = 'registered' DESC, id LIMIT 1",
            )
            .db(&self.path)?
            .query_row([reference], |r| r.get(0))
            .optional()
            .db(&self.path)?;
        Ok(id.and_then(|id| ledger::school_id(&id)))
    }

    // ---- visits ----

    /// Validates and saves a new visit. When this returns, the visit is durable.
    pub fn add_visit(&mut self, input: &VisitInput, today: NaiveDate) -> Result<Visit> {
        let visit = self.new_visit(self.validate_visit(input, today)?);
        self.write_visit(VisitWrite::New(&visit), Vec::new(), &[])?;
        Ok(visit)
    }

    /// Validates and saves many visits in one transaction, as a few large document changes
    /// rather than one per visit. The first refused visit is named by its number and
    /// nothing is saved.
    pub fn add_visits(&mut self, inputs: &[VisitInput], today: NaiveDate) -> Result<Vec<Visit>> {
        let visits = inputs
            .iter()
            .enumerate()
            .map(|(index, input)| match self.validate_visit(input, today) {
                Ok(fields) => Ok(self.new_visit(fields)),
                Err(Error::Invalid(errors)) => Err(Error::ImportedVisit {
                    number: index + 1,
                    errors,
                }),
                Err(other) => Err(other),
            })
            .collect::<Result<Vec<_>>>()?;
        let batches: Vec<(DocId, &[Visit])> = import_batches(&visits)
            .into_iter()
            .map(|batch| (DocId::ledger(&batch[0].team, batch[0].created_at), batch))
            .collect();
        let mut w = self.begin()?;
        // This device's name goes into each document with its first change there.
        let mut named = HashMap::new();
        for (doc_id, _) in &batches {
            if !named.contains_key(doc_id) {
                named.insert(doc_id.clone(), w.local_seq(doc_id)? > 0);
            }
        }
        let first: Vec<bool> = batches
            .iter()
            .map(|(doc_id, _)| !named.insert(doc_id.clone(), true).unwrap_or(true))
            .collect();
        // Making the changes is most of the work, and each batch is made on its own.
        let scratch = w.scratch();
        let made = parallel_map(&batches, |i, (doc_id, batch)| {
            scratch.make(doc_id, "import visits", first[i], |tx| {
                batch.iter().try_for_each(|v| ledger::insert_visit(tx, v))
            })
        });
        for ((doc_id, batch), made) in batches.iter().zip(made) {
            let keys: Vec<String> = batch.iter().map(|v| v.id.to_string()).collect();
            w.append(doc_id, &keys, made?)?;
        }
        w.commit()?;
        Ok(visits)
    }

    /// A visit this device records now, with a new id.
    fn new_visit(&self, fields: VisitFields) -> Visit {
        Visit {
            id: VisitId(Uuid::now_v7()),
            team: self.device.team.clone(),
            fields,
            status: VisitStatus::Recorded,
            deleted: false,
            duplicate_of: None,
            created_at: self.clock.now_ms(),
            created_by: self.device.name.clone(),
            edited_at: 0,
            photos: Vec::new(),
        }
    }

    /// Sets fields of a visit from text (`students=40`, `activities=lecture,hands_on`).
    /// Only the fields that changed are written, so concurrent edits of other fields merge.
    pub fn edit_visit(
        &mut self,
        id: VisitId,
        changes: &[(String, String)],
        today: NaiveDate,
    ) -> Result<Visit> {
        let current = self.visit(id)?;
        let mut input = VisitInput::from(&current.fields);
        let mut errors = Vec::new();
        for (key, value) in changes {
            if let Err(e) = input.set(key, value) {
                errors.push(e);
            }
        }
        if !errors.is_empty() {
            return Err(ValidationErrors(errors).into());
        }
        let after = self.validate_visit(&input, today)?;
        let edit = VisitWrite::Edit {
            id,
            before: current.fields,
            after,
        };
        self.write_visit(edit, Vec::new(), &[])?;
        self.visit(id)
    }

    /// Marks a visit deleted. The record stays (so a concurrent edit still merges) but it
    /// never counts again.
    pub fn delete_visit(&mut self, id: VisitId) -> Result<()> {
        let doc_id = self.visit_doc(id)?;
        let mut w = self.begin()?;
        w.change_visit(&doc_id, id, "delete", |tx, obj, _| {
            ledger::mark_deleted(tx, obj)
        })?;
        w.commit()
    }

    /// Where this device keeps photo files (`<data dir>/photos`).
    pub fn photo_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map_or_else(|| PathBuf::from("photos"), |dir| dir.join("photos"))
    }

    /// Saves a visit as an editor holds it, new (`save.id` is `None`) or edited, with its
    /// photos: staged ones attached, removed ones detached, in one transaction and one
    /// document change. Everything is checked first and every refused field is named at once
    /// (the visit's fields and each caption); then a staged photo that is gone refuses the
    /// save too. A refused save stores nothing. Only fields that changed are written, so
    /// concurrent edits of other fields merge.
    pub fn save_visit(&mut self, save: &VisitSave, today: NaiveDate) -> Result<Visit> {
        let current = save.id.map(|id| self.visit(id)).transpose()?;
        let fields = self.validate_visit(&save.input, today);
        let captions: Vec<_> = save
            .attach
            .iter()
            .map(|p| fieldlog_domain::photo::caption(&p.caption))
            .collect();
        let mut errors = match &fields {
            Err(Error::Invalid(invalid)) => invalid.0.clone(),
            _ => Vec::new(),
        };
        errors.extend(captions.iter().filter_map(|c| c.as_ref().err().cloned()));
        if !errors.is_empty() {
            return Err(ValidationErrors(errors).into());
        }
        let fields = fields?;
        let tokens: Vec<&str> = save.attach.iter().map(|p| p.token.as_str()).collect();
        let staged = self.staged(&tokens)?;
        let photos = staged
            .iter()
            .zip(captions)
            .zip(&save.attach)
            .map(|((staged, caption), chosen)| {
                Ok(NewPhoto {
                    photo: staged.photo.photo_ref(caption?, chosen.consent),
                    source: staged.source.clone(),
                    extension: staged.photo.source_extension.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let visit = match current {
            Some(current) => {
                if current.fields == fields && photos.is_empty() && save.remove.is_empty() {
                    return Ok(current);
                }
                let edit = VisitWrite::Edit {
                    id: current.id,
                    before: current.fields,
                    after: fields,
                };
                self.write_visit(edit, photos, &save.remove)?;
                self.visit(current.id)?
            }
            None => {
                let visit = self.new_visit(fields);
                self.write_visit(VisitWrite::New(&visit), photos, &save.remove)?;
                self.visit(visit.id)?
            }
        };
        for staged in staged {
            self.remove_staged(&staged.token);
        }
        Ok(visit)
    }

    /// Ingests a photo (display copy and thumbnail, no metadata) and attaches it to a visit.
    /// A refused file or caption leaves the visit untouched.
    pub fn add_photo(
        &mut self,
        visit: VisitId,
        source: &Path,
        caption: &str,
        consent: bool,
    ) -> Result<PhotoRef> {
        let caption = fieldlog_domain::photo::caption(caption)?;
        let fields = self.visit(visit)?.fields;
        let unchanged = VisitWrite::Edit {
            id: visit,
            before: fields.clone(),
            after: fields,
        };
        let ingested: Ingested =
            crate::photo::ingest(source, &self.photo_dir(), &PhotoLimits::default())?.into();
        let photo = ingested.photo_ref(caption, consent);
        let new = NewPhoto {
            photo: photo.clone(),
            source: source.to_path_buf(),
            extension: ingested.source_extension,
        };
        self.write_visit(unchanged, vec![new], &[])?;
        Ok(photo)
    }

    /// Detaches a photo from a visit. The files stay until nothing refers to them.
    pub fn remove_photo(&mut self, visit: VisitId, display_sha256: &str) -> Result<()> {
        let fields = self.visit(visit)?.fields;
        let unchanged = VisitWrite::Edit {
            id: visit,
            before: fields.clone(),
            after: fields,
        };
        self.write_visit(unchanged, Vec::new(), &[display_sha256.to_string()])
    }

    /// The one write of a visit with its photos: one document change, the projection and
    /// the photo files' rows in one transaction. Originals are kept (per the setting) first
    /// and removed again if the write fails. `remove` must name photos the visit shows.
    fn write_visit(
        &mut self,
        write: VisitWrite<'_>,
        photos: Vec<NewPhoto>,
        remove: &[String],
    ) -> Result<()> {
        let (id, doc_id) = match &write {
            VisitWrite::New(visit) => (visit.id, DocId::ledger(&visit.team, visit.created_at)),
            VisitWrite::Edit { id, .. } => (*id, self.visit_doc(*id)?),
        };
        if !remove.is_empty() {
            let shown = match &write {
                VisitWrite::New(_) => Vec::new(),
                VisitWrite::Edit { .. } => self.visit(id)?.photos,
            };
            if let Some(missing) = remove
                .iter()
                .find(|sha| !shown.iter().any(|p| &p.display_sha256 == *sha))
            {
                return Err(Error::PhotoNotFound {
                    visit: id,
                    photo: missing.clone(),
                });
            }
        }
        let keep = !photos.is_empty() && self.settings()?.originals != OriginalsPolicy::Drop;
        let mut originals = Vec::new();
        let kept = photos.iter().try_for_each(|new| {
            if keep {
                originals.push(Some(self.keep_original(
                    &new.source,
                    &new.photo.display_sha256,
                    &new.extension,
                )?));
            } else {
                originals.push(None);
            }
            Ok::<_, Error>(())
        });
        let saved = kept.and_then(|()| {
            let mut w = self.begin()?;
            let put_photos = |tx: &mut Transaction<'_>, obj: &automerge::ObjId| {
                remove
                    .iter()
                    .try_for_each(|sha| ledger::remove_photo(tx, obj, sha).map(|_| ()))?;
                photos
                    .iter()
                    .try_for_each(|new| ledger::put_photo(tx, obj, &new.photo))
            };
            match &write {
                VisitWrite::New(visit) => {
                    let key = visit.id.to_string();
                    w.create(&doc_id, "add visit", std::slice::from_ref(&key), |tx| {
                        ledger::insert_visit(tx, visit)?;
                        let obj = ledger::record_obj(tx, &key)
                            .ok_or_else(|| automerge::AutomergeError::InvalidObjId(key.clone()))?;
                        put_photos(tx, &obj)
                    })?;
                }
                VisitWrite::Edit { id, before, after } => {
                    let now = w.now;
                    w.change_visit(&doc_id, *id, "edit", |tx, obj, _| {
                        ledger::write_visit_fields(tx, obj, Some(before), after)?;
                        ledger::touch(tx, obj, now)?;
                        put_photos(tx, obj)
                    })?;
                }
            }
            for (new, original) in photos.iter().zip(&originals) {
                let photo = &new.photo;
                let mut files = vec![
                    ("thumbnail", &photo.thumbnail_sha256, photo.thumbnail_bytes),
                    ("display", &photo.display_sha256, photo.display_bytes),
                ];
                if let Some(kept) = original {
                    files.push(("original", &kept.sha256, kept.bytes));
                }
                for (role, sha256, bytes) in files {
                    w.tx()
                        .execute(
                            "INSERT OR IGNORE INTO photo_files (photo, role, sha256, bytes, added_at)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![photo.display_sha256, role, sha256, bytes, w.now],
                        )
                        .db(w.path)?;
                }
            }
            w.commit()
        });
        if saved.is_err() {
            for kept in originals.into_iter().flatten().filter(|k| k.written) {
                let _ = std::fs::remove_file(kept.path);
            }
        }
        saved
    }

    /// Bytes of photo files on this device.
    pub fn photo_bytes(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .flatten()
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum()
            })
        }
        walk(&self.photo_dir())
    }

    pub(crate) fn validate_visit(
        &self,
        input: &VisitInput,
        today: NaiveDate,
    ) -> Result<VisitFields> {
        let find = |reference: &str| self.find_school(reference).ok().flatten();
        let find_course = |reference: &str| self.course_ref(reference);
        let ctx = Context {
            today,
            find_school: &find,
            find_course: &find_course,
        };
        Ok(input.validate(&ctx)?)
    }

    pub(crate) fn visit_doc(&self, id: VisitId) -> Result<DocId> {
        let doc: Option<String> = self
            .conn
            .query_row(
                "SELECT doc_id FROM visits WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()
            .db(&self.path)?;
        doc.and_then(|d| DocId::parse(&d))
            .ok_or(Error::VisitNotFound(id))
    }

    pub fn visit(&self, id: VisitId) -> Result<Visit> {
        self.query_records("SELECT record FROM visits WHERE id = ?1", [id.to_string()])?
            .pop()
            .ok_or(Error::VisitNotFound(id))
    }

    /// Visits, newest date first.
    pub fn visits(&self, filter: &VisitFilter) -> Result<Vec<Visit>> {
        projection::visits(&self.conn, &self.path, filter)
    }

    /// Every field holding concurrent values, with each value and who entered it.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        projection::conflicts(&self.conn, &self.path)
    }

    /// The bureau's figures (see [`projection::report`]).
    pub fn report(&self, filter: &ReportFilter) -> Result<Report> {
        projection::report(&self.conn, &self.path, filter)
    }

    fn query_records<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<T>> {
        projection::query_records(&self.conn, &self.path, sql, params)
    }

    /// A copy of every stored document, for tools and measurements.
    pub fn documents(&mut self) -> Result<Vec<(DocId, automerge::Automerge)>> {
        let mut out = Vec::new();
        for id in docs::doc_ids(&self.conn, &self.path)? {
            if let Some(doc_id) = DocId::parse(&id) {
                let cached = self.docs.fresh(&self.conn, &self.path, &id, &self.actor)?;
                out.push((doc_id, cached.doc.fork()));
            }
        }
        Ok(out)
    }

    /// Derives every query row again from the stored documents.
    pub fn rebuild_projection(&mut self) -> Result<()> {
        let ids = docs::doc_ids(&self.conn, &self.path)?;
        let w = self.begin()?;
        let tx =
            w.tx.as_ref()
                .expect("a writer holds its transaction until commit");
        projection::clear(tx, w.path)?;
        for id in ids {
            let Some(doc_id) = DocId::parse(&id) else {
                continue;
            };
            let cached = w.docs.fresh(tx, w.path, &id, w.actor)?;
            projection::project_doc(tx, w.path, &cached.doc, &doc_id)?;
        }
        w.commit()
    }
}

/// Visits of one import grouped into document changes: consecutive visits of the same
/// ledger, up to [`IMPORT_CHANGE_TEXT`] bytes of text in a change, far below
/// [`MAX_CHANGE_BYTES`] whatever the fields hold.
fn import_batches(visits: &[Visit]) -> Vec<&[Visit]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut text = 0;
    for (i, visit) in visits.iter().enumerate() {
        let len = serde_json::to_vec(&visit.fields).map_or(0, |json| json.len());
        let same_doc = DocId::ledger(&visit.team, visit.created_at)
            == DocId::ledger(&visits[start].team, visits[start].created_at);
        if i > start && (!same_doc || text + len > IMPORT_CHANGE_TEXT) {
            batches.push(&visits[start..i]);
            start = i;
            text = 0;
        }
        text += len;
    }
    if start < visits.len() {
        batches.push(&visits[start..]);
    }
    batches
}

/// `f` over `items` on every core, results in order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                scope.spawn(move || {
                    (worker..items.len())
                        .step_by(workers)
                        .map(|i| (i, f(i, &items[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            // A panic in `f` is a bug; carry it to this thread.
            for (i, result) in handle
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
            {
                out[i] = Some(result);
            }
        }
    });
    out.into_iter().flatten().collect()
}

/// How much visit text one change of an import holds (see [`import_batches`]).
const IMPORT_CHANGE_TEXT: usize = MAX_CHANGE_BYTES / 4;

/// The device's signing key; a store made before signatures existed gets one now.
fn signing_key(conn: &Connection, path: &Path) -> Result<ed25519_dalek::SigningKey> {
    let stored: Option<Vec<u8>> = conn
        .query_row(
            "SELECT signing_key FROM device WHERE singleton = 1",
            [],
            |r| r.get(0),
        )
        .db(path)?;
    if let Some(key) = stored.as_deref().and_then(crate::signing::key_from_bytes) {
        return Ok(key);
    }
    let key = crate::signing::new_key();
    conn.execute(
        "UPDATE device SET signing_key = ?1 WHERE singleton = 1",
        [&key.to_bytes()[..]],
    )
    .db(path)?;
    Ok(key)
}

fn read_device(conn: &Connection, path: &Path) -> Result<Option<Device>> {
    let row: Option<(String, String, String, String)> = conn
        .query_row(
            "SELECT device_id, device_name, team, actor FROM device WHERE singleton = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .db(path)?;
    Ok(row.and_then(|(id, name, team, actor)| {
        Some(Device {
            id: id.parse().ok()?,
            name,
            team: TeamId::parse(&team).ok()?,
            actor,
        })
    }))
}

/// Makes changes in an empty document as this device would, for [`Writer::append`].
pub(crate) struct Scratch {
    actor: ActorId,
    device_name: String,
    now: i64,
}

impl Scratch {
    /// One change holding what `f` writes (and this device's name in the document when
    /// `first`), with the scratch document to read it back from.
    pub(crate) fn make(
        &self,
        doc_id: &DocId,
        message: &str,
        first: bool,
        f: impl FnOnce(&mut Transaction<'_>) -> ledger::AmResult<()>,
    ) -> Result<(automerge::Automerge, automerge::Change)> {
        let mut scratch = automerge::Automerge::new();
        scratch.set_actor(self.actor.clone());
        let actor_hex = self.actor.to_hex_string();
        let now = self.now;
        scratch
            .transact_with(commit_options(message, now), |tx| {
                if first {
                    ledger::sign(tx, &actor_hex, &self.device_name)?;
                }
                f(tx)
            })
            .map_err(|failure| document_error(doc_id, failure.error))?;
        let made = scratch
            .get_last_local_change()
            .ok_or_else(|| document_error(doc_id, automerge::AutomergeError::Fail))?;
        Ok((scratch, made))
    }
}

/// One SQLite transaction holding document changes and their projection rows. Dropped
/// without `commit`, it rolls back and forgets the in-memory changes too.
pub(crate) struct Writer<'a> {
    /// `Some` until `commit` takes it.
    tx: Option<rusqlite::Transaction<'a>>,
    pub(crate) path: &'a Path,
    pub(crate) docs: &'a mut DocCache,
    pub(crate) actor: &'a ActorId,
    signer: &'a ed25519_dalek::SigningKey,
    device_name: &'a str,
    pub(crate) now: i64,
    touched: BTreeSet<String>,
    committed: bool,
}

impl Writer<'_> {
    /// Runs `f` on the current document, stores what it added and reprojects the records
    /// `f` names. Both local edits and changes from elsewhere go through here.
    fn modify<T>(
        &mut self,
        doc_id: &DocId,
        f: impl FnOnce(&mut automerge::Automerge, &[ChangeHash]) -> Result<(T, Vec<String>)>,
    ) -> Result<T> {
        let id = doc_id.to_string();
        self.touched.insert(id.clone());
        let tx = self
            .tx
            .as_ref()
            .expect("a writer holds its transaction until commit");
        let cached = self.docs.fresh(tx, self.path, &id, self.actor)?;
        let before = cached.doc.get_heads();
        let (out, records) = f(&mut cached.doc, &before)?;
        self.docs.persist(tx, self.path, &id, &before)?;
        let doc = &self.docs.fresh(tx, self.path, &id, self.actor)?.doc;
        for record in records {
            projection::project_record(tx, self.path, doc, doc_id, &record)?;
        }
        Ok(out)
    }

    /// Makes one Automerge change to `doc_id` and reprojects `records`.
    pub(crate) fn change<T>(
        &mut self,
        doc_id: &DocId,
        message: &str,
        records: &[String],
        f: impl FnOnce(&mut Transaction<'_>) -> ledger::AmResult<T>,
    ) -> Result<T> {
        let device_name = self.device_name;
        let actor_hex = self.actor.to_hex_string();
        let now = self.now;
        let (out, hash) = self.modify(doc_id, |doc, _| {
            let done = doc
                .transact_with(commit_options(message, now), |tx| {
                    ledger::sign(tx, &actor_hex, device_name)?;
                    f(tx)
                })
                .map_err(|failure| document_error(doc_id, failure.error))?;
            if let Some(change) = done
                .hash
                .and_then(|h| automerge::ReadDoc::get_change_by_hash(doc, &h))
            {
                let len = change.raw_bytes().len();
                if len > MAX_CHANGE_BYTES {
                    return Err(Error::ChangeTooLarge {
                        doc_id: doc_id.to_string(),
                        len,
                        max: MAX_CHANGE_BYTES,
                    });
                }
            }
            Ok(((done.result, done.hash), records.to_vec()))
        })?;
        if let Some(hash) = hash {
            let signed = crate::signing::sign(self.signer, &hash);
            crate::signing::store(self.tx(), self.path, std::slice::from_ref(&signed))?;
        }
        Ok(out)
    }

    /// Makes one change that only creates records (under new ids) and projects them. When
    /// the document's base is known it is not loaded: the change is made in an empty
    /// scratch document and appended on top of the stored one ([`DocCache::rebase`]), so
    /// the cost of a save does not grow with the month. Otherwise as [`Writer::change`].
    pub(crate) fn create(
        &mut self,
        doc_id: &DocId,
        message: &str,
        records: &[String],
        f: impl FnOnce(&mut Transaction<'_>) -> ledger::AmResult<()>,
    ) -> Result<()> {
        let Some(base) = DocCache::base(self.tx(), self.path, &doc_id.to_string())? else {
            return self.change(doc_id, message, records, f);
        };
        let made = self
            .scratch()
            .make(doc_id, message, base.local_seq == 0, f)?;
        self.append(doc_id, records, made)
    }

    /// This device's last sequence number in a document (0: it never wrote there).
    pub(crate) fn local_seq(&mut self, doc_id: &DocId) -> Result<u64> {
        let id = doc_id.to_string();
        if let Some(base) = DocCache::base(self.tx(), self.path, &id)? {
            return Ok(base.local_seq);
        }
        let tx = self
            .tx
            .as_ref()
            .expect("a writer holds its transaction until commit");
        Ok(docs::Base::of(&self.docs.fresh(tx, self.path, &id, self.actor)?.doc).local_seq)
    }

    /// What making a change in a scratch document needs; it can go to another thread.
    pub(crate) fn scratch(&self) -> Scratch {
        Scratch {
            actor: self.actor.clone(),
            device_name: self.device_name.to_string(),
            now: self.now,
        }
    }

    /// Appends a change made in a scratch document on top of the stored document (loading
    /// it instead when its base is not known) and projects `records` from the scratch copy.
    pub(crate) fn append(
        &mut self,
        doc_id: &DocId,
        records: &[String],
        (scratch, made): (automerge::Automerge, automerge::Change),
    ) -> Result<()> {
        let id = doc_id.to_string();
        let known = DocCache::base(self.tx(), self.path, &id)?;
        let base = match &known {
            Some(base) => base.clone(),
            None => {
                let tx = self
                    .tx
                    .as_ref()
                    .expect("a writer holds its transaction until commit");
                docs::Base::of(&self.docs.fresh(tx, self.path, &id, self.actor)?.doc)
            }
        };
        let change = DocCache::rebase(&base, &made);
        let len = change.raw_bytes().len();
        if len > MAX_CHANGE_BYTES {
            return Err(Error::ChangeTooLarge {
                doc_id: id,
                len,
                max: MAX_CHANGE_BYTES,
            });
        }
        let hash = change.hash();
        if known.is_some() {
            self.touched.insert(id.clone());
            DocCache::append(self.tx(), self.path, &id, &base, &change)?;
            for record in records {
                projection::project_record(self.tx(), self.path, &scratch, doc_id, record)?;
            }
        } else {
            self.modify(doc_id, |doc, _| {
                doc.apply_changes([change])
                    .map_err(|source| document_error(doc_id, source))?;
                Ok(((), records.to_vec()))
            })?;
        }
        let signed = crate::signing::sign(self.signer, &hash);
        crate::signing::store(self.tx(), self.path, std::slice::from_ref(&signed))
    }

    /// Changes an existing visit, reading its current state inside the transaction.
    pub(crate) fn change_visit(
        &mut self,
        doc_id: &DocId,
        id: VisitId,
        verb: &str,
        f: impl FnOnce(&mut Transaction<'_>, &automerge::ObjId, &Visit) -> ledger::AmResult<()>,
    ) -> Result<()> {
        let key = id.to_string();
        self.change(
            doc_id,
            &format!("{verb} visit"),
            std::slice::from_ref(&key),
            |tx| {
                let obj = ledger::record_obj(tx, &key);
                let current = obj.as_ref().and_then(|o| ledger::read_visit(tx, &key, o));
                match (obj, current) {
                    (Some(obj), Some(current)) => f(tx, &obj, &current),
                    _ => Err(automerge::AutomergeError::InvalidObjId(key.clone())),
                }
            },
        )
        .map_err(|e| match e {
            Error::Document { .. } => Error::VisitNotFound(id),
            other => other,
        })
    }

    fn put_school(&mut self, school: &School) -> Result<()> {
        let doc_id = DocId::registry(&school.fields.district);
        self.change(&doc_id, "put school", &[school.id.to_string()], |tx| {
            ledger::put_school(tx, school)
        })
    }

    /// Applies changes that came from elsewhere and reprojects what they touched. Returns
    /// the new heads and how many changes were new.
    pub(crate) fn apply(
        &mut self,
        doc_id: &DocId,
        changes: Vec<automerge::Change>,
    ) -> Result<(Vec<ChangeHash>, usize)> {
        self.modify(doc_id, |doc, before| {
            doc.apply_changes(changes)
                .map_err(|source| document_error(doc_id, source))?;
            let after = doc.get_heads();
            if after == before {
                return Ok(((after, 0), Vec::new()));
            }
            let applied = doc.get_changes(before).len();
            let records = projection::touched_records(doc, before);
            Ok(((after, applied), records))
        })
    }

    pub(crate) fn tx(&self) -> &rusqlite::Transaction<'_> {
        self.tx
            .as_ref()
            .expect("a writer holds its transaction until commit")
    }

    pub(crate) fn commit(mut self) -> Result<()> {
        if let Some(tx) = self.tx.take() {
            tx.commit().db(self.path)?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if !self.committed {
            for id in &self.touched {
                self.docs.evict(id);
            }
        }
    }
}

/// A change's message and time, as every change this device makes carries them.
fn commit_options<O>(message: &str, now: i64) -> impl FnOnce(&O) -> CommitOptions + '_ {
    move |_| {
        CommitOptions::default()
            .with_message(message.to_string())
            .with_time(now)
    }
}

fn document_error(doc_id: &DocId, source: automerge::AutomergeError) -> Error {
    Error::Document {
        doc_id: doc_id.to_string(),
        source: Box::new(source),
    }
}

impl From<FieldError> for Error {
    fn from(error: FieldError) -> Self {
        Error::Invalid(error.into())
    }
}
