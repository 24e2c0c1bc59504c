//! The fuzz targets' bodies, shared by the cargo-fuzz binaries in `fuzz/` and by the replay test
//! (`tests/tests/e2e/fuzz_replay.rs`), which runs every seed and every kept crasher through
//! the same functions under plain `cargo test`.
//!
//! Each target takes bytes from elsewhere and hands them to a public entry point; an error is
//! fine, a panic, an abort or an allocation beyond libFuzzer's cap is the finding. What the
//! targets need (a bureau with a team, an enrolled device that synced a visit with a photo,
//! device stores) is set up once per process in [`World`]. Stores the targets write to are
//! replaced every [`RESET_EVERY`] inputs so a long run does not slow down as they fill.
//!
//! [`seeds::write`] writes the seed corpus from real traffic: sync requests and answers,
//! bundles, photos and the demo registry.

use fieldlog_bureau::{Bureau, Config, DeviceRecord, TeamType};
use fieldlog_core::{ExportScope, Options, Store};
use fieldlog_domain::sync::{ChangeSignature, DocChanges, PROTOCOL_VERSION, SyncRequest};
use fieldlog_domain::{Role, VisitInput};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tempfile::TempDir;

/// Every target, by the name of its binary in `fuzz/fuzz_targets/`.
pub const TARGETS: &[&str] = &[
    "bureau_sync",
    "bureau_admit",
    "sync_answer",
    "bundle_import",
    "blob_headers",
    "photo_decode",
    "school_csv",
];

/// How many inputs a written-to store takes before it is replaced by a fresh one.
pub const RESET_EVERY: u32 = 256;

/// The team every device here belongs to, and its district.
const TEAM: &str = "caravan-1";
const DISTRICT: &str = "南山区";

/// libfuzzer-sys's panic hook aborts on every panic, even one the code under test catches
/// (core's `chunks` catches Automerge's own panics and refuses the bytes). With the default
/// hook back, a panic that escapes a target is still a crash (libfuzzer-sys aborts when it
/// reaches it), and a caught one is the refusal it is.
fn findings_are_uncaught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| drop(std::panic::take_hook()));
}

/// Runs `data` through the target named `target`; `false` if there is no such target.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "bureau_sync" => bureau_sync(data),
        "bureau_admit" => bureau_admit(data),
        "sync_answer" => sync_answer(data),
        "bundle_import" => bundle_import(data),
        "blob_headers" => blob_headers(data),
        "photo_decode" => photo_decode(data),
        "school_csv" => school_csv(data),
        _ => return false,
    }
    true
}

/// The bureau's decoding and admission of a sync request body: `Bureau::sync` with the wire
/// body (zstd(postcard(SyncRequest))) of an enrolled device.
pub fn bureau_sync(data: &[u8]) {
    findings_are_uncaught_panics();
    let world = World::get();
    let _ = world.bureau.sync(&world.device, data);
}

/// Admission of structured requests, so the fuzzer spends its time in Automerge's change
/// decoding rather than in zstd: the input is read as a cursor and a run of
/// `[document selector][u16 length][change bytes]` records (see [`admit_request`]).
pub fn bureau_admit(data: &[u8]) {
    findings_are_uncaught_panics();
    let world = World::get();
    let request = admit_request(data, &world.doc_ids);
    let _ = world.bureau.sync_request(&world.device, request);
}

/// The device's decoding of a sync answer.
pub fn sync_answer(data: &[u8]) {
    findings_are_uncaught_panics();
    let _ = fieldlog_core::sync::decode_response(data);
}

/// A bundle file imported into a device store. A bundle carries the sha256 of its payload,
/// which no mutation keeps right; so the input's checksum is set to its payload's first,
/// and the fuzzer reaches zstd, postcard and Automerge rather than the checksum check.
pub fn bundle_import(data: &[u8]) {
    findings_are_uncaught_panics();
    let world = World::get();
    let bundle = with_bundle_checksum(data);
    world.bundle_store.with(|store| {
        let _ = store.import_bundle(&bundle);
    });
}

/// `data` with the sha256 of its payload in the bundle header (magic, version byte, sha256,
/// payload; see `fieldlog_core::bundle`), when it is long enough to have one.
pub fn with_bundle_checksum(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    const MAGIC_AND_VERSION: usize = b"FIELDLOG-BUNDLE\n".len() + 1;
    const PAYLOAD: usize = MAGIC_AND_VERSION + 32;
    let mut bundle = data.to_vec();
    if bundle.len() >= PAYLOAD {
        let digest = sha2::Sha256::digest(&bundle[PAYLOAD..]);
        bundle[MAGIC_AND_VERSION..PAYLOAD].copy_from_slice(&digest);
    }
    bundle
}

/// The bureau's blob endpoints through its router: the input picks the method, the blob, the
/// header values and the body (see [`blob_request`]).
pub fn blob_headers(data: &[u8]) {
    findings_are_uncaught_panics();
    use tower::ServiceExt;
    let world = World::get();
    let Some(request) = blob_request(data, world) else {
        return;
    };
    let router = fieldlog_bureau::router(world.bureau.clone());
    world.runtime.block_on(async move {
        let Ok(response) = router.oneshot(request).await;
        // Read the answer too: a GET streams the file.
        let _ = http_body_util::BodyExt::collect(response.into_body()).await;
    });
}

/// Photo ingest: the bytes as a file, decoded, resized and encoded as a store would.
pub fn photo_decode(data: &[u8]) {
    findings_are_uncaught_panics();
    let world = World::get();
    let Ok(scratch) = tempfile::tempdir_in(&world.scratch) else {
        return;
    };
    let source = scratch.path().join("photo");
    if std::fs::write(&source, data).is_err() {
        return;
    }
    let _ = fieldlog_core::photo::ingest(
        &source,
        &scratch.path().join("photos"),
        &fieldlog_core::photo::Limits::default(),
    );
}

/// A school registry CSV imported into a device store.
pub fn school_csv(data: &[u8]) {
    findings_are_uncaught_panics();
    let world = World::get();
    world.csv_store.with(|store| {
        let _ = store.import_schools_csv(data);
    });
}

/// Reads bytes in order; past the end everything is empty or zero.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn chunk(&mut self) -> &'a [u8] {
        let len = u16::from_le_bytes([self.byte(), self.byte()]);
        self.take(len.into())
    }

    fn rest(&mut self) -> &'a [u8] {
        self.take(self.0.len())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The request `bureau_admit` sends: byte 0 picks the cursor (`0`, a small one, or a huge
/// one), byte 1 the most changes taken back; then each record is a document selector (one of
/// `doc_ids`, another team's ledger, or a length-prefixed id from the input), a `u16` length
/// and that many bytes of a change, and a flags byte (a signature; a whole document rather
/// than a change). Consecutive change records of one document share a `DocChanges`.
pub fn admit_request(data: &[u8], doc_ids: &[String]) -> SyncRequest {
    let mut input = Reader(data);
    let cursor = match input.byte() {
        0..=127 => 0,
        n @ 128..=253 => u64::from(n - 127),
        _ => u64::MAX,
    };
    let max_changes = u32::from(input.byte());
    let mut docs: Vec<DocChanges> = Vec::new();
    while !input.is_empty() {
        let selector = usize::from(input.byte());
        let doc_id = match selector.checked_sub(doc_ids.len()) {
            None => doc_ids[selector].clone(),
            Some(0) => "ledger/caravan-2/2026-05".to_string(),
            Some(1) => String::from_utf8_lossy(input.chunk()).into_owned(),
            Some(_) => doc_ids.first().cloned().unwrap_or_default(),
        };
        let change = serde_bytes::ByteBuf::from(input.chunk().to_vec());
        // A flags byte: bit 0 adds a signature (a hash of the change if it decodes, else of
        // the input, then 64 bytes or what is left as the signature); bit 1 sends the chunk
        // as a whole document rather than a change.
        let flags = input.byte();
        let signature = (flags & 1 == 1).then(|| {
            // Through core's check, as the bureau decodes: Automerge itself panics on some
            // chunks that are not changes (a kept crasher of this target).
            let hash = fieldlog_core::chunks::decode_change(change.to_vec(), usize::MAX)
                .map(|c| c.hash().0)
                .unwrap_or_else(|_| {
                    let mut hash = [0u8; 32];
                    let taken = input.take(32);
                    hash[..taken.len()].copy_from_slice(taken);
                    hash
                });
            ChangeSignature {
                hash,
                signature: serde_bytes::ByteBuf::from(input.take(64).to_vec()),
            }
        });
        if flags & 2 == 2 {
            docs.push(DocChanges {
                doc_id,
                changes: Vec::new(),
                document: Some(change),
                signatures: signature.into_iter().collect(),
            });
            continue;
        }
        match docs.last_mut() {
            Some(last) if last.doc_id == doc_id => {
                last.changes.push(change);
                last.signatures.extend(signature);
            }
            _ => docs.push(DocChanges {
                doc_id,
                changes: vec![change],
                document: None,
                signatures: signature.into_iter().collect(),
            }),
        }
    }
    SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursor,
        docs,
        max_changes,
        signing_key: None,
        resume: None,
    }
}

/// Frames `records` (document index into the world's ids, flags, change or document
/// bytes) the way [`admit_request`] reads them.
pub fn admit_input(cursor: u8, max_changes: u8, records: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let mut out = vec![cursor, max_changes];
    for (doc, flags, bytes) in records {
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        out.push(*doc);
        out.extend(len.to_le_bytes());
        out.extend(&bytes[..usize::from(len)]);
        out.push(*flags);
    }
    out
}

/// The request `blob_headers` sends. Byte 0: the method (bits 0–1: HEAD, PATCH, GET, GET) and
/// which headers are present (bits 2–5: Authorization, Upload-Offset, Upload-Length,
/// Content-Type); byte 1: the blob (the synced photo's display copy or thumbnail, an unknown
/// sha256, or a length-prefixed path segment from the input); byte 2: the token (the
/// device's, or a length-prefixed value from the input). Then each present header's value
/// (for Upload-Offset and Upload-Length, byte 0 picks the real offset/length, a near one, or
/// a length-prefixed value), and the rest is the body.
fn blob_request(data: &[u8], world: &World) -> Option<axum::http::Request<axum::body::Body>> {
    let mut input = Reader(data);
    let flags = input.byte();
    let method = match flags & 3 {
        0 => "HEAD",
        1 => "PATCH",
        _ => "GET",
    };
    let (sha256, length) = match input.byte() % 4 {
        0 => world.blobs[0].clone(),
        1 => world.blobs[1].clone(),
        2 => ("0".repeat(64), 0),
        _ => (String::from_utf8_lossy(input.chunk()).into_owned(), 0),
    };
    let own_token = input.byte() % 2 == 0;
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(format!("/v1/blobs/{sha256}"));
    if flags & 4 != 0 {
        let value = if own_token {
            format!("Bearer {}", world.token).into_bytes()
        } else {
            input.chunk().to_vec()
        };
        request = request.header("Authorization", value);
    }
    let number = |input: &mut Reader<'_>, real: u64| -> Vec<u8> {
        match input.byte() % 4 {
            0 => real.to_string().into_bytes(),
            1 => real.saturating_add(1).to_string().into_bytes(),
            2 => real.saturating_sub(1).to_string().into_bytes(),
            _ => input.chunk().to_vec(),
        }
    };
    if flags & 8 != 0 {
        let value = number(&mut input, 0);
        request = request.header("Upload-Offset", value);
    }
    if flags & 16 != 0 {
        let value = number(&mut input, length);
        request = request.header("Upload-Length", value);
    }
    if flags & 32 != 0 {
        let value = if input.byte() % 2 == 0 {
            fieldlog_domain::sync::BLOB_CONTENT_TYPE.as_bytes().to_vec()
        } else {
            input.chunk().to_vec()
        };
        request = request.header("Content-Type", value);
    }
    request
        .body(axum::body::Body::from(input.rest().to_vec()))
        .ok()
}

/// A store the targets write to, replaced by a fresh one every [`RESET_EVERY`] inputs.
struct Scratch {
    dir: PathBuf,
    state: Mutex<(u32, Option<(TempDir, Store)>)>,
}

impl Scratch {
    fn new(dir: &Path) -> Scratch {
        Scratch {
            dir: dir.to_path_buf(),
            state: Mutex::new((0, None)),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Store)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (uses, slot) = &mut *state;
        *uses += 1;
        if *uses > RESET_EVERY {
            *uses = 1;
            *slot = None;
        }
        if slot.is_none() {
            *slot = Some(fresh_store(&self.dir, "模糊测试"));
        }
        if let Some((_, store)) = slot.as_mut() {
            f(store);
        }
    }
}

fn fresh_store(parent: &Path, name: &str) -> (TempDir, Store) {
    let dir = tempfile::tempdir_in(parent).unwrap();
    let store = Store::init(dir.path(), name, TEAM, Options::default()).unwrap();
    (dir, store)
}

/// Everything the targets share, set up once per process.
pub struct World {
    /// Holds the bureau's and the stores' data dirs (on `/dev/shm` when there is one).
    _root: TempDir,
    scratch: PathBuf,
    pub bureau: Bureau,
    /// The enrolled device the fuzz inputs come from, and its token.
    pub device: DeviceRecord,
    pub token: String,
    /// The documents the device writes to (its ledger, its district's registry).
    pub doc_ids: Vec<String>,
    /// The synced photo's files at the bureau: (sha256, length), display copy first.
    pub blobs: Vec<(String, u64)>,
    pub runtime: tokio::runtime::Runtime,
    bundle_store: Scratch,
    csv_store: Scratch,
    /// Real traffic, for the seed corpus.
    seeds: Seeds,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("device", &self.device.id)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Seeds {
    sync_bodies: Vec<(String, Vec<u8>)>,
    admit: Vec<(String, Vec<u8>)>,
    answers: Vec<(String, Vec<u8>)>,
    bundles: Vec<(String, Vec<u8>)>,
    photos: Vec<(String, Vec<u8>)>,
}

impl World {
    pub fn get() -> &'static World {
        static WORLD: OnceLock<World> = OnceLock::new();
        WORLD.get_or_init(World::build)
    }

    fn build() -> World {
        let shm = Path::new("/dev/shm");
        let root = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .unwrap();
        let scratch = root.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();

        let bureau = Bureau::open(&root.path().join("bureau"), Config::default()).unwrap();
        bureau
            .add_team(TEAM, TeamType::Caravan, &[DISTRICT.into()])
            .unwrap();
        bureau
            .import_schools_csv(
                "name,district,area,level,enrollment\n南山小学,南山区,城区,小学,1280\n".as_bytes(),
            )
            .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // Bound before serving: connections wait in the backlog, so no readiness wait.
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(fieldlog_bureau::serve(
            listener,
            bureau.clone(),
            std::future::pending(),
        ));
        let code = |member: &str| {
            bureau
                .issue_code(TEAM, member, Role::Volunteer, Duration::from_secs(3600))
                .unwrap()
                .code
        };

        // Device A enrolls and syncs over HTTP like the app: the registry comes down, a
        // visit with a photo goes up, and the photo's files.
        let (dir_a, mut store_a) = fresh_store(root.path(), "一号机");
        fieldlog_core::sync::enroll(&mut store_a, &url, &code("李老师")).unwrap();
        fieldlog_core::sync::sync(&mut store_a, |_| {}).unwrap();
        let today = chrono::Local::now().date_naive();
        let visit = store_a.add_visit(&visit_input("水的三态"), today).unwrap();
        let png = dir_a.path().join("photo.png");
        image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]))
            .save(&png)
            .unwrap();
        let photo = store_a.add_photo(visit.id, &png, "操场", true).unwrap();
        fieldlog_core::sync::sync(&mut store_a, |_| {}).unwrap();
        let blob = |sha256: &str| {
            let path = fieldlog_core::photo::stored_path(&store_a.photo_dir(), sha256);
            let len = std::fs::metadata(&path).unwrap().len();
            (sha256.to_string(), len, std::fs::read(path).unwrap())
        };
        let display = blob(&photo.display_sha256);
        let thumbnail = blob(&photo.thumbnail_sha256);

        // Device B is the fuzzed one: enrolled directly with its store's actor, it holds
        // what A has (through a bundle) and writes its own visits, which it has not sent.
        let (_dir_b, mut store_b) = fresh_store(root.path(), "二号机");
        let enrolled = bureau
            .enroll(&fieldlog_domain::sync::EnrollRequest {
                code: code("王老师"),
                device_name: "二号机".into(),
                actors: vec![store_b.device().actor.clone()],
                signing_key: None,
            })
            .unwrap();
        let device = bureau.authenticate(&enrolled.token).unwrap();
        let (bundle_all_a, _) = store_a.export_bundle(&ExportScope::All).unwrap();
        store_b.import_bundle(&bundle_all_a).unwrap();
        let own = store_b.add_visit(&visit_input("光合作用"), today).unwrap();
        store_b
            .edit_visit(own.id, &[("topic".into(), "光合作用与呼吸".into())], today)
            .unwrap();
        store_b.add_visit(&visit_input("声音"), today).unwrap();
        let (bundle_b, _) = store_b.export_bundle(&ExportScope::All).unwrap();
        let (bundle_missing_b, _) = store_b.export_bundle(&ExportScope::MissingAtPeers).unwrap();

        let actor_b = store_b.device().actor.clone();
        let mut doc_ids = Vec::new();
        let mut own_changes: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut foreign_changes: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut docs = Vec::new();
        let mut whole = Vec::new();
        for (id, doc) in store_b.documents().unwrap() {
            let index = u8::try_from(doc_ids.len()).unwrap();
            doc_ids.push(id.to_string());
            let mut mine = Vec::new();
            for change in doc.get_changes(&[]) {
                let bytes = change.raw_bytes().to_vec();
                if change.actor_id().to_hex_string() == actor_b {
                    own_changes.push((index, bytes.clone()));
                    mine.push(serde_bytes::ByteBuf::from(bytes));
                } else {
                    foreign_changes.push((index, bytes));
                }
            }
            whole.push((index, doc.save()));
            if !mine.is_empty() {
                docs.push(DocChanges {
                    doc_id: id.to_string(),
                    changes: mine,
                    document: None,
                    signatures: Vec::new(),
                });
            }
        }

        let mut seeds = Seeds::default();
        let request = |cursor, docs: Vec<DocChanges>| SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursor,
            docs,
            max_changes: 100,
            signing_key: None,
            resume: None,
        };
        for (name, req) in [
            ("empty", request(0, Vec::new())),
            ("cursor-1", request(1, Vec::new())),
            ("own-changes", request(0, docs.clone())),
            ("own-changes-cursor-2", request(2, docs)),
        ] {
            seeds.sync_bodies.push((name.into(), wire(&req)));
            // The answer the bureau gives a fresh device, without applying (a copy of the
            // request with no changes), for the device's decoder.
            let answer = bureau
                .sync_request(&device, request(req.cursor, Vec::new()))
                .unwrap();
            seeds.answers.push((
                format!("answer-{name}"),
                fieldlog_bureau::sync::encode_response(&answer).unwrap(),
            ));
        }
        let as_refs = |changes: &[(u8, Vec<u8>)]| -> Vec<(u8, Vec<u8>)> { changes.to_vec() };
        let framed = |cursor: u8, changes: Vec<(u8, Vec<u8>)>| {
            let refs: Vec<(u8, u8, &[u8])> = changes.iter().map(|(d, c)| (*d, 0, &c[..])).collect();
            admit_input(cursor, 100, &refs)
        };
        seeds
            .admit
            .push(("own".into(), framed(0, as_refs(&own_changes))));
        seeds
            .admit
            .push(("foreign".into(), framed(0, as_refs(&foreign_changes))));
        let documents: Vec<(u8, u8, &[u8])> = whole.iter().map(|(d, b)| (*d, 2, &b[..])).collect();
        seeds
            .admit
            .push(("documents".into(), admit_input(0, 100, &documents)));
        for (i, change) in own_changes.iter().enumerate() {
            seeds
                .admit
                .push((format!("own-{i}"), framed(130, vec![change.clone()])));
        }
        seeds.bundles = vec![
            ("all-a".into(), bundle_all_a),
            ("all-b".into(), bundle_b),
            ("missing-at-peers-b".into(), bundle_missing_b),
        ];
        seeds.photos = vec![
            ("display.jpg".into(), display.2),
            ("thumbnail.jpg".into(), thumbnail.2),
            ("source.png".into(), std::fs::read(&png).unwrap()),
        ];
        let mut webp = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_fn(16, 12, |x, y| image::Rgb([x as u8 * 16, y as u8 * 20, 0]))
            .write_to(&mut webp, image::ImageFormat::WebP)
            .unwrap();
        seeds.photos.push(("small.webp".into(), webp.into_inner()));
        drop((store_a, dir_a));

        World {
            bundle_store: Scratch::new(&scratch),
            csv_store: Scratch::new(&scratch),
            scratch,
            _root: root,
            bureau,
            device,
            token: enrolled.token,
            doc_ids,
            blobs: vec![(display.0, display.1), (thumbnail.0, thumbnail.1)],
            runtime,
            seeds,
        }
    }
}

fn visit_input(topic: &str) -> VisitInput {
    VisitInput {
        school: "南山小学".into(),
        activities: vec!["lecture".into()],
        topic: topic.into(),
        ..VisitInput::default()
    }
}

/// A request as a device sends it: zstd(postcard).
fn wire(request: &SyncRequest) -> Vec<u8> {
    let plain = postcard::to_allocvec(request).unwrap();
    zstd::encode_all(&plain[..], 3).unwrap()
}

/// The seed corpus.
pub mod seeds {
    use super::World;
    use std::path::Path;

    /// Writes every target's seeds into `corpus/<target>/seed-<name>`, replacing old seeds.
    pub fn write(corpus: &Path, demo_registry: &Path) -> std::io::Result<()> {
        let world = World::get();
        let seeds = &world.seeds;
        let mut blob_inputs = Vec::new();
        // HEAD, GET and a whole PATCH of the display copy with the device's token; a PATCH
        // without a token; a GET of an unknown blob.
        for (name, flags, blob, body) in [
            ("head", 0b0000_0100u8, 0u8, Vec::new()),
            ("get", 0b0000_0110, 1, Vec::new()),
            ("patch", 0b0011_1101, 0, seeds.photos[0].1.clone()),
            ("patch-no-token", 0b0011_1001, 0, b"x".to_vec()),
            ("get-unknown", 0b0000_0110, 2, Vec::new()),
        ] {
            let mut input = vec![flags, blob, 0];
            if flags & 8 != 0 {
                input.push(0);
            }
            if flags & 16 != 0 {
                input.push(0);
            }
            if flags & 32 != 0 {
                input.push(0);
            }
            input.extend(body);
            blob_inputs.push((name.to_string(), input));
        }
        let registry = std::fs::read(demo_registry)?;
        let csv = vec![
            ("demo-registry.csv".to_string(), registry),
            (
                "two-schools.csv".to_string(),
                "name,district,area,level,enrollment\n南山小学,南山区,城区,小学,1280\n\
                 青溪县马场乡教学点,青溪县,rural,教学点,35\n"
                    .as_bytes()
                    .to_vec(),
            ),
        ];
        for (target, files) in [
            ("bureau_sync", &seeds.sync_bodies),
            ("bureau_admit", &seeds.admit),
            ("sync_answer", &seeds.answers),
            ("bundle_import", &seeds.bundles),
            ("blob_headers", &blob_inputs),
            ("photo_decode", &seeds.photos),
            ("school_csv", &csv),
        ] {
            let dir = corpus.join(target);
            std::fs::create_dir_all(&dir)?;
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
                {
                    std::fs::remove_file(path)?;
                }
            }
            for (name, bytes) in files {
                std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
            }
        }
        Ok(())
    }
}
