//! Which of a device's changes go into a bureau document. Every [`crate::Storage`]
//! implementation calls [`admit`] inside its transaction, so the rules are the same
//! whatever the database:
//!
//! 1. A change the document already holds, or one repeated in the request, is skipped:
//!    resending is harmless. (Skipped before the actor check: it cannot change anything.)
//! 2. Every other change must be by an actor registered to the sending device, or to one
//!    of the `authors` whose signatures the caller verified (a teammate's change carried by
//!    this device); anything else is `forged_actor`.
//! 3. A change whose dependencies are neither in the document nor in the request is left
//!    out, not stored; the device sends it again once the bureau has what it builds on.
//! 4. Every change writes only inside the record layout a device may write
//!    ([`fieldlog_core::ledger::check_layout`]; `malformed`).
//! 5. Review decisions and targets (`review/…`, `targets/…`) are written by coordinator
//!    devices only (`not_coordinator`); the region is the sender's scope, and a carried
//!    decision's author must be in scope itself.
//! 6. A volunteer device may add schools to a registry as `pending` and edit the pending
//!    ones it entered, nothing else (`registry_edit`). The changes are applied to a copy,
//!    and the copy is compared with the document before, record by record, including
//!    every concurrent value, so a losing concurrent write is caught too. The rule applies
//!    to each author's changes, whoever carried them.
//!
//! On a refusal the document may already hold some of the changes: the caller throws its
//! copy away.

use crate::error::{Error, Result};
use crate::storage::DeviceRecord;
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};
use fieldlog_core::DocId;
use fieldlog_core::ledger;
use fieldlog_domain::sync::Refusal;
use fieldlog_domain::{District, Role, SchoolStatus};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::panic::AssertUnwindSafe;

/// The key under which `ledger` names the device behind an actor (`actor:<hex>`).
const ACTOR_PREFIX: &str = "actor:";
/// The key of a school's status in a registry record (see `fieldlog_core::ledger`).
const SCHOOL_STATUS: &str = "status";

/// Applies to `doc` the changes of `changes` that it may take, and returns them in the
/// order they were applied (dependencies first). Refuses the whole lot on a forged actor,
/// a change that does not apply, or a registry edit a volunteer may not make.
pub fn admit(
    doc: &mut Automerge,
    doc_id: &DocId,
    device: &DeviceRecord,
    authors: &[DeviceRecord],
    changes: Vec<Change>,
) -> Result<Vec<Change>> {
    let mut seen = HashSet::new();
    let fresh: Vec<Change> = changes
        .into_iter()
        .filter(|c| {
            let hash = c.hash();
            seen.insert(hash) && !holds(doc, &hash)
        })
        .collect();
    let author_of = |change: &Change| {
        std::iter::once(device)
            .chain(authors)
            .find(|d| d.actors.contains(change.actor_id()))
    };
    if let Some(forged) = fresh.iter().find(|c| author_of(c).is_none()) {
        return Err(Error::refused(
            Refusal::ForgedActor,
            format!(
                "a change to {doc_id} is by actor {}, which is not this device's, and carries no \
                 valid signature of its author",
                forged.actor_id()
            ),
        ));
    }
    if let Some(c) = fresh
        .iter()
        .find(|c| author_of(c).is_some_and(|a| !may_decide(a, doc_id)))
    {
        return Err(Error::refused(
            Refusal::NotCoordinator,
            format!(
                "a change to {doc_id} is by actor {}, whose device is not a coordinator's of it",
                c.actor_id()
            ),
        ));
    }
    let ready = ready_in_order(doc, fresh);
    if ready.is_empty() {
        return Ok(ready);
    }
    let before_heads = doc.get_heads();
    // Runs of one author's changes, so the registry rule applies to each author.
    let mut start = 0;
    while start < ready.len() {
        let author = author_of(&ready[start]).unwrap_or(device);
        let end = ready[start..]
            .iter()
            .position(|c| !author.actors.contains(c.actor_id()))
            .map_or(ready.len(), |n| start + n);
        let guarded = match doc_id {
            DocId::Registry { district } if author.role == Role::Volunteer => Some(district),
            _ => None,
        };
        let before = guarded.map(|_| doc.clone());
        apply(doc, doc_id, &ready[start..end])?;
        if let (Some(district), Some(before)) = (guarded, before) {
            check_registry_edit(&before, doc, district, &author.actors)?;
        }
        start = end;
    }
    ledger::check_layout(doc, doc_id, &before_heads)
        .map_err(|why| Error::refused(Refusal::Malformed, format!("{doc_id}: {why}")))?;
    Ok(ready)
}

/// Whether `author` may write `doc_id` as far as decisions go: review documents and targets
/// are coordinators' (targets their own team's); everything else is not a decision.
fn may_decide(author: &DeviceRecord, doc_id: &DocId) -> bool {
    match doc_id {
        DocId::Review { .. } => author.role == Role::Coordinator,
        DocId::Targets { team } => author.role == Role::Coordinator && author.team == *team,
        DocId::Ledger { .. }
        | DocId::Registry { .. }
        | DocId::Courses { .. }
        | DocId::Pairings { .. }
        | DocId::Roster { .. } => true,
    }
}

/// Whether the document holds this change. (The bureau's documents never keep a queue of
/// changes waiting for dependencies, so "not missing" means "applied".)
fn holds(doc: &Automerge, hash: &ChangeHash) -> bool {
    doc.get_missing_deps(std::slice::from_ref(hash)).is_empty()
}

/// The changes whose dependencies are met by the document or by earlier ready changes,
/// in an order that applies cleanly. The rest are left out.
fn ready_in_order(doc: &Automerge, mut pending: Vec<Change>) -> Vec<Change> {
    let mut have: HashSet<ChangeHash> = HashSet::new();
    let mut in_doc: HashMap<ChangeHash, bool> = HashMap::new();
    let mut ready = Vec::new();
    while !pending.is_empty() {
        let progress = ready.len();
        let mut waiting = Vec::new();
        for change in pending {
            let met = change.deps().iter().all(|dep| {
                have.contains(dep) || *in_doc.entry(*dep).or_insert_with(|| holds(doc, dep))
            });
            if met {
                have.insert(change.hash());
                ready.push(change);
            } else {
                waiting.push(change);
            }
        }
        pending = waiting;
        if ready.len() == progress {
            break;
        }
    }
    if !pending.is_empty() {
        tracing::debug!(
            left_out = pending.len(),
            "changes wait for their dependencies"
        );
    }
    ready
}

fn apply(doc: &mut Automerge, doc_id: &DocId, ready: &[Change]) -> Result<()> {
    let malformed = |why: String| Error::refused(Refusal::Malformed, why);
    // Automerge is not hardened against every hostile change; a panic refuses the request
    // (the caller drops this copy of the document) instead of taking a worker down.
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| doc.apply_changes(ready.to_vec())));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(malformed(format!(
                "a change to {doc_id} does not apply: {e}"
            )));
        }
        Err(_) => return Err(malformed(format!("a change to {doc_id} does not apply"))),
    }
    match ready.iter().find(|c| !holds(doc, &c.hash())) {
        Some(c) => Err(malformed(format!(
            "change {} to {doc_id} does not apply",
            c.hash()
        ))),
        None => Ok(()),
    }
}

/// Compares a registry before and after a volunteer's changes, record by record.
fn check_registry_edit(
    before: &Automerge,
    after: &Automerge,
    district: &District,
    actors: &[ActorId],
) -> Result<()> {
    let refuse = |why: String| Err(Error::refused(Refusal::RegistryEdit, why));
    let own = |id: &ObjId| matches!(id, ObjId::Id(_, actor, _) if actors.contains(actor));
    let keys: BTreeSet<String> = before.keys(ROOT).chain(after.keys(ROOT)).collect();
    for key in keys {
        if fingerprint(before, &key) == fingerprint(after, &key) {
            continue;
        }
        if let Some(hex) = key.strip_prefix(ACTOR_PREFIX) {
            if actors.iter().any(|a| a.to_hex_string() == hex) {
                continue;
            }
            return refuse(format!(
                "a volunteer device may not rename another device in registry/{district}"
            ));
        }
        let old_values = before.get_all(ROOT, key.as_str()).unwrap_or_default();
        if let Some((_, old_id)) = old_values.first() {
            match school(before, &key) {
                Some(s) if s.status == SchoolStatus::Registered => {
                    return refuse(format!(
                        "{} is a registered school; only a coordinator may change it",
                        s.fields.name
                    ));
                }
                Some(s) if !own(old_id) => {
                    return refuse(format!(
                        "{} was entered by another device; only a coordinator may change it",
                        s.fields.name
                    ));
                }
                Some(_) => {}
                None => {
                    return refuse(format!(
                        "record {key} in registry/{district} is not a school a volunteer may edit"
                    ));
                }
            }
        }
        let new_values = after.get_all(ROOT, key.as_str()).unwrap_or_default();
        let [(Value::Object(ObjType::Map), new_id)] = new_values.as_slice() else {
            return refuse(format!(
                "a volunteer device may not remove or replace record {key} in registry/{district}"
            ));
        };
        let Some(new) = school(after, &key).filter(|_| own(new_id)) else {
            return refuse(format!(
                "record {key} in registry/{district} is not a school this device entered"
            ));
        };
        if new.fields.district != *district {
            return refuse(format!(
                "{} is in {}, not in registry/{district}",
                new.fields.name, new.fields.district
            ));
        }
        let statuses = ledger::record_obj(after, &key)
            .and_then(|obj| after.get_all(&obj, SCHOOL_STATUS).ok())
            .unwrap_or_default();
        let only_pending = statuses.iter().all(|(value, _)| {
            matches!(value, Value::Scalar(s) if s.as_str() == Some(SchoolStatus::Pending.key()))
        });
        if new.status != SchoolStatus::Pending || !only_pending {
            return refuse(format!(
                "a volunteer device may not register {}; a coordinator does",
                new.fields.name
            ));
        }
    }
    Ok(())
}

fn school(doc: &Automerge, key: &str) -> Option<fieldlog_domain::School> {
    ledger::record_obj(doc, key).and_then(|obj| ledger::read_school(doc, key, &obj))
}

/// Everything under one root key, every concurrent value included, with the op that wrote
/// it: equal fingerprints mean no op touched the record.
fn fingerprint(doc: &Automerge, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<(String, Value<'_>, ObjId)> = doc
        .get_all(ROOT, key)
        .unwrap_or_default()
        .into_iter()
        .map(|(value, id)| (key.to_string(), value, id))
        .collect();
    while let Some((path, value, id)) = stack.pop() {
        out.push(format!("{path} {id} {value:?}"));
        match value {
            Value::Object(ObjType::Map | ObjType::Table) => {
                for k in doc.keys(&id) {
                    for (v, vid) in doc.get_all(&id, k.as_str()).unwrap_or_default() {
                        stack.push((format!("{path}/{k}"), v, vid));
                    }
                }
            }
            Value::Object(ObjType::List) => {
                for i in 0..doc.length(&id) {
                    for (v, vid) in doc.get_all(&id, i).unwrap_or_default() {
                        stack.push((format!("{path}/{i}"), v, vid));
                    }
                }
            }
            Value::Object(ObjType::Text) => {
                out.push(format!("{path} {:?}", doc.text(&id).ok()));
            }
            Value::Scalar(_) => {}
        }
    }
    out
}
