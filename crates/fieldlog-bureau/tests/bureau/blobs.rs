//! Photo files: a real device store uploads them after its records; the protocol resumes
//! at the byte, checks the sha256, and serves a file only to devices that may see its visit.
//! The protocol's tests run twice: complete files in the data directory (`local::…`) and in
//! an S3 bucket on a real S3-compatible server (`s3::…`).

use crate::support::{PhotoStore, Server, noise, on_both_photo_stores};
use fieldlog_core::{Options, OriginalsPolicy, Store};
use fieldlog_domain::Role;
use fieldlog_domain::photo::PhotoRef;
use fieldlog_domain::sync::{BLOB_CONTENT_TYPE, ErrorBody, Refusal, UPLOAD_LENGTH, UPLOAD_OFFSET};
use fieldlog_tests::s3::S3Server;

on_both_photo_stores!(
    photos_go_up_after_their_visit_and_the_original_is_then_dropped,
    an_upload_resumes_at_the_byte_and_a_wrong_checksum_is_discarded,
    only_devices_that_may_see_the_visit_get_its_photos,
    a_fetched_photo_is_checked_and_kept_on_the_device,
);

/// A caravan-1 device that recorded a visit with one photo.
struct Photographer {
    store: Store,
    dir: tempfile::TempDir,
    photo: PhotoRef,
}

impl Photographer {
    fn file(&self, sha256: &str) -> Vec<u8> {
        std::fs::read(fieldlog_core::photo::stored_path(
            &self.store.photo_dir(),
            sha256,
        ))
        .unwrap()
    }

    fn originals(&self) -> usize {
        std::fs::read_dir(self.store.photo_dir().join("originals")).map_or(0, |d| d.count())
    }
}

fn world(photos: PhotoStore) -> (Server, Photographer) {
    let server = Server::with_teams_on(fieldlog_bureau::Config::default(), photos);
    let (store, dir, photo) = server.photographer();
    (server, Photographer { store, dir, photo })
}

fn photos_go_up_after_their_visit_and_the_original_is_then_dropped(photos: PhotoStore) {
    let (server, mut device) = world(photos);
    assert_eq!(device.originals(), 1, "kept until uploaded");
    let queue = device.store.upload_queue().unwrap();
    assert_eq!((queue.photos, queue.files), (1, 2));
    assert_eq!(
        queue.bytes,
        device.photo.display_bytes + device.photo.thumbnail_bytes
    );

    let mut seen = Vec::new();
    let summary = fieldlog_core::sync::sync(&mut device.store, |s| seen.push(*s)).unwrap();
    assert_eq!((summary.photos_done, summary.photos_total), (1, 1));
    assert_eq!(summary.photo_bytes_done, queue.bytes);
    assert!(summary.bytes_sent >= queue.bytes, "{summary:?}");
    // Progress arrived while the files went, the thumbnail's before the display copy's.
    let done: Vec<u64> = seen.iter().map(|s| s.photo_bytes_done).collect();
    assert!(done.contains(&device.photo.thumbnail_bytes), "{done:?}");
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");

    for sha256 in [&device.photo.thumbnail_sha256, &device.photo.display_sha256] {
        let held = server.complete_blob(sha256).unwrap();
        assert_eq!(held, device.file(sha256));
    }
    assert_eq!(device.store.upload_queue().unwrap().files, 0);
    assert_eq!(device.originals(), 0, "dropped once uploaded");
    let partial = server
        .dir
        .path()
        .join(fieldlog_bureau::BLOB_DIR)
        .join("partial");
    let partials = std::fs::read_dir(&partial).map_or(0, |dirs| {
        dirs.map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
            .sum()
    });
    assert_eq!(partials, 0, "no partial file stays once complete");

    // Nothing waits, so the next sync sends no file.
    let again = fieldlog_core::sync::sync(&mut device.store, |_| {}).unwrap();
    assert_eq!((again.photos_total, again.photo_bytes_done), (0, 0));
    assert!(again.bytes_sent < 1_000, "{again:?}");
}

#[test]
fn the_originals_setting_keeps_or_drops_them() {
    let (_server, mut device) = world(PhotoStore::Local);
    device
        .store
        .set_originals_policy(OriginalsPolicy::Keep)
        .unwrap();
    fieldlog_core::sync::sync(&mut device.store, |_| {}).unwrap();
    assert_eq!(device.originals(), 1, "kept after upload");
    let kept = std::fs::read_dir(device.store.photo_dir().join("originals"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        std::fs::read(device.dir.path().join("photo.png")).unwrap()
    );
    device
        .store
        .set_originals_policy(OriginalsPolicy::Drop)
        .unwrap();
    assert_eq!(device.originals(), 0, "dropping deletes the ones kept");

    let source = device.dir.path().join("second.png");
    noise(400, 300, 8).save(&source).unwrap();
    let visit = device.store.visits(&Default::default()).unwrap()[0].id;
    device.store.add_photo(visit, &source, "", false).unwrap();
    assert_eq!(device.originals(), 0, "never kept under drop");
    assert_eq!(
        device.store.settings().unwrap().originals,
        OriginalsPolicy::Drop
    );
}

/// Raw requests for one blob, as a device holding `token`.
struct Blob<'a> {
    server: &'a Server,
    token: String,
    sha256: String,
}

impl Blob<'_> {
    fn url(&self) -> String {
        format!("{}/v1/blobs/{}", self.server.url, self.sha256)
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        )
    }

    /// `(status, Upload-Offset)`.
    fn head(&self) -> (u16, Option<u64>) {
        let response = Self::agent()
            .head(self.url())
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .unwrap();
        (response.status().as_u16(), offset(&response))
    }

    /// `(status, Upload-Offset, refusal)`.
    fn patch(
        &self,
        offset_at: u64,
        length: u64,
        body: &[u8],
    ) -> (u16, Option<u64>, Option<Refusal>) {
        let mut response = Self::agent()
            .patch(self.url())
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", BLOB_CONTENT_TYPE)
            .header(UPLOAD_OFFSET, offset_at.to_string())
            .header(UPLOAD_LENGTH, length.to_string())
            .send(body)
            .unwrap();
        let status = response.status().as_u16();
        let held = offset(&response);
        let body = response.body_mut().read_to_vec().unwrap();
        let refusal = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .map(|b| b.error.reason);
        (status, held, refusal)
    }

    fn get(&self) -> (u16, Vec<u8>) {
        let mut response = Self::agent()
            .get(self.url())
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_vec().unwrap())
    }
}

fn offset(response: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    response
        .headers()
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

fn token(device: &Photographer) -> String {
    let conn = rusqlite::Connection::open(device.store.path()).unwrap();
    conn.query_row("SELECT token FROM bureau", [], |r| r.get(0))
        .unwrap()
}

fn an_upload_resumes_at_the_byte_and_a_wrong_checksum_is_discarded(photos: PhotoStore) {
    let (server, mut device) = world(photos);
    fieldlog_core::sync::sync(&mut device.store, |_| {}).unwrap();
    let sha256 = device.photo.display_sha256.clone();
    let bytes = device.file(&sha256);
    let length = bytes.len() as u64;
    // Start this blob over at the bureau (its visit stays).
    server.forget_blob(&sha256);
    let blob = Blob {
        server: &server,
        token: token(&device),
        sha256,
    };
    assert_eq!(blob.head(), (204, Some(0)));

    let half = length / 2;
    assert_eq!(
        blob.patch(0, length, &bytes[..half as usize]),
        (204, Some(half), None)
    );
    assert_eq!(blob.head(), (204, Some(half)));
    // A device that lost track starts from 0: told where the bureau is.
    assert_eq!(
        blob.patch(0, length, &bytes),
        (409, Some(half), Some(Refusal::OffsetMismatch))
    );
    // A length other than the visit records is not this blob.
    assert_eq!(
        blob.patch(half, length + 1, &bytes[half as usize..]).2,
        Some(Refusal::UnknownBlob)
    );
    assert_eq!(blob.get().0, 404, "not served before it is whole");

    // The rest with one byte flipped: discarded whole, and the next upload starts at 0.
    let mut damaged = bytes[half as usize..].to_vec();
    damaged[10] ^= 0xFF;
    assert_eq!(
        blob.patch(half, length, &damaged),
        (422, None, Some(Refusal::ChecksumMismatch))
    );
    assert_eq!(blob.head(), (204, Some(0)));

    assert_eq!(blob.patch(0, length, &bytes), (204, Some(length), None));
    assert_eq!(blob.head(), (204, Some(length)));
    assert_eq!(blob.get(), (200, bytes.clone()));
    assert_eq!(server.complete_blob(&blob.sha256), Some(bytes.clone()));
    // Sending it again changes nothing.
    assert_eq!(blob.patch(0, length, &bytes), (204, Some(length), None));
    assert_eq!(server.complete_blob(&blob.sha256), Some(bytes));
}

fn only_devices_that_may_see_the_visit_get_its_photos(photos: PhotoStore) {
    let (server, mut device) = world(photos);
    fieldlog_core::sync::sync(&mut device.store, |_| {}).unwrap();
    let sha256 = device.photo.display_sha256.clone();
    let bytes = device.file(&sha256);
    let as_device = |token: String| Blob {
        server: &server,
        token,
        sha256: sha256.clone(),
    };

    let other_team = server.device("caravan-2", "赵老师", Role::Volunteer);
    let outsider = as_device(other_team.token.clone());
    assert_eq!(outsider.get().0, 404);
    assert_eq!(outsider.head().0, 404);
    // A stranger's body is never read, so send a little of it: the answer must not race a
    // connection the bureau closes mid-upload.
    let (status, _, refusal) = outsider.patch(0, bytes.len() as u64, &bytes[..64]);
    assert_eq!((status, refusal), (404, Some(Refusal::UnknownBlob)));
    // The same answer as for a file that does not exist, so it tells nothing.
    let nothing = Blob {
        server: &server,
        token: other_team.token.clone(),
        sha256: "ab".repeat(32),
    };
    assert_eq!(nothing.get().0, 404);
    assert_eq!(as_device("not-a-token".into()).get().0, 401);

    let teammate = server.device("caravan-1", "钱老师", Role::Volunteer);
    assert_eq!(as_device(teammate.token).get(), (200, bytes.clone()));
    let coordinator = server.device("bureau", "孙主任", Role::Coordinator);
    assert_eq!(as_device(coordinator.token).get(), (200, bytes));
}

fn a_fetched_photo_is_checked_and_kept_on_the_device(photos: PhotoStore) {
    let (server, mut device) = world(photos);
    fieldlog_core::sync::sync(&mut device.store, |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut teammate = Store::init(dir.path(), "二号机", "caravan-1", Options::default()).unwrap();
    let code = server.code("caravan-1", "钱老师", Role::Volunteer);
    fieldlog_core::sync::enroll(&mut teammate, &server.url, &code).unwrap();
    fieldlog_core::sync::sync(&mut teammate, |_| {}).unwrap();
    let sha256 = &device.photo.thumbnail_sha256;
    let path = fieldlog_core::upload::fetch_photo(&teammate, sha256).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), device.file(sha256));
    assert_eq!(
        teammate.upload_queue().unwrap().files,
        0,
        "a fetched file is not this device's to upload"
    );

    let other_dir = tempfile::tempdir().unwrap();
    let mut outsider =
        Store::init(other_dir.path(), "三号机", "caravan-2", Options::default()).unwrap();
    let code = server.code("caravan-2", "赵老师", Role::Volunteer);
    fieldlog_core::sync::enroll(&mut outsider, &server.url, &code).unwrap();
    match fieldlog_core::upload::fetch_photo(&outsider, sha256) {
        Err(fieldlog_core::Error::Refused {
            reason: Refusal::UnknownBlob,
            ..
        }) => {}
        other => panic!("expected unknown_blob, got {other:?}"),
    }
}

/// A free loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `serve` with `args` and `env` on an initialized bureau, expected to stop at start: its
/// stderr.
fn refused_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    crate::operations::init(dir.path());
    let started = std::time::Instant::now();
    let mut command = crate::operations::serve_command(dir.path(), args, &[]);
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ] {
        command.env_remove(name);
    }
    let out = command
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    // Log lines (the store's client retrying) may come first; the error is the last line.
    let stderr = stderr.lines().last().unwrap_or_default().to_string();
    assert!(out.stdout.is_empty(), "never listened: {:?}", out.stdout);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    stderr
}

const CREDENTIALS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "fieldlog-test"),
    ("AWS_SECRET_ACCESS_KEY", "fieldlog-test-secret"),
];

#[test]
fn a_bureau_whose_photo_store_does_not_answer_does_not_start() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let stderr = refused_start(
        &[
            "--blobs",
            "s3://fieldlog-photos/bureau",
            "--s3-endpoint",
            &endpoint,
        ],
        &CREDENTIALS,
    );
    assert!(
        stderr.starts_with(&format!(
            "error: blobs: the photo store does not answer: s3://fieldlog-photos/bureau at {endpoint}: LIST `bureau` failed: "
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("Connection refused (os error 111)"),
        "{stderr}"
    );
}

#[test]
fn photo_store_settings_that_cannot_work_are_named_with_the_reason() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let blobs = ["--blobs", "s3://fieldlog-photos"];
    // No credentials anywhere.
    let stderr = refused_start(&[&blobs[..], &["--s3-endpoint", &endpoint]].concat(), &[]);
    assert!(
        stderr.contains("blobs: s3://fieldlog-photos needs credentials")
            && stderr.contains("AWS_ACCESS_KEY_ID"),
        "{stderr}"
    );
    // Not an S3 location (a local directory is the default, without --blobs).
    let stderr = refused_start(&["--blobs", "/srv/photos"], &CREDENTIALS);
    assert!(
        stderr.contains("blobs: `/srv/photos` is not an S3 location: it does not start with s3://"),
        "{stderr}"
    );
    let stderr = refused_start(&["--blobs", "s3://Photos"], &CREDENTIALS);
    assert!(stderr.contains("a bucket name is"), "{stderr}");
    // An endpoint that is not a URL; the variable works as the flag does.
    let stderr = refused_start(
        &blobs,
        &[
            CREDENTIALS[0],
            CREDENTIALS[1],
            ("FIELDLOG_BUREAU_S3_ENDPOINT", "127.0.0.1:9000"),
        ],
    );
    assert!(
        stderr.contains("s3_endpoint: `127.0.0.1:9000` is not an http:// or https:// URL"),
        "{stderr}"
    );
}

#[test]
fn a_bucket_that_is_not_there_stops_the_bureau_at_start() {
    let Some(s3) = S3Server::start_or_skip("a_bucket_that_is_not_there_stops_the_bureau_at_start")
    else {
        return;
    };
    let stderr = refused_start(
        &[
            "--blobs",
            "s3://no-such-bucket/photos",
            "--s3-endpoint",
            &s3.endpoint,
        ],
        &CREDENTIALS,
    );
    assert!(
        stderr.contains("the bucket `no-such-bucket` does not exist at this endpoint"),
        "{stderr}"
    );
}

#[test]
fn readyz_says_not_ready_while_the_photo_store_does_not_answer() {
    let Some(s3) =
        S3Server::start_or_skip("readyz_says_not_ready_while_the_photo_store_does_not_answer")
    else {
        return;
    };
    let endpoint = s3.endpoint.clone();
    let mut server = Server::with_teams_on(fieldlog_bureau::Config::default(), PhotoStore::S3(s3));
    assert_eq!(server.get_text("/readyz"), (200, "ready".to_string()));
    server.s3.as_mut().unwrap().stop();
    let (status, body) = server.get_text("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with(&format!(
            "not ready: s3://fieldlog-photos/{}",
            crate::support::S3_PREFIX
        )) && body.contains(&endpoint),
        "{body}"
    );
    assert_eq!(server.healthz(), (200, "ok".to_string()));
}

#[test]
fn a_bureau_serving_photos_from_a_bucket_keeps_them_there_and_backs_up_its_database() {
    let Some(s3) = S3Server::start_or_skip(
        "a_bureau_serving_photos_from_a_bucket_keeps_them_there_and_backs_up_its_database",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    crate::operations::init(dir.path());
    // The bucket from the config file, the endpoint from AWS's variable, the keys from
    // AWS's variables.
    let config = dir.path().join("bureau.toml");
    std::fs::write(&config, "blobs = \"s3://fieldlog-photos/bureau\"\n").unwrap();
    let config = config.to_str().unwrap();
    let env = [
        CREDENTIALS[0],
        CREDENTIALS[1],
        ("AWS_ENDPOINT_URL", s3.endpoint.as_str()),
    ];
    let bureau = crate::operations::Process::serve(dir.path(), &["--config", config], &env);

    let device_dir = tempfile::tempdir().unwrap();
    let mut store =
        Store::init(device_dir.path(), "一号机", "caravan-1", Options::default()).unwrap();
    let code = crate::operations::code(dir.path(), "李老师");
    fieldlog_core::sync::enroll(&mut store, &bureau.url, &code).unwrap();
    fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    let input = serde_json::from_value(serde_json::json!({
        "school": "南山小学", "activities": ["lecture"], "audience": {"students": 30},
    }))
    .unwrap();
    let visit = store
        .add_visit(&input, "2026-05-20".parse().unwrap())
        .unwrap();
    let source = device_dir.path().join("photo.png");
    noise(400, 300, 3).save(&source).unwrap();
    let photo = store.add_photo(visit.id, &source, "", true).unwrap();
    let summary = fieldlog_core::sync::sync(&mut store, |_| {}).unwrap();
    assert_eq!((summary.photos_done, summary.photos_total), (1, 1));

    for sha256 in [&photo.thumbnail_sha256, &photo.display_sha256] {
        let on_device = std::fs::read(fieldlog_core::photo::stored_path(
            &store.photo_dir(),
            sha256,
        ))
        .unwrap();
        let key = format!("bureau/{}/{sha256}.jpg", &sha256[..2]);
        assert_eq!(s3.object(&key), Some(on_device));
        let local =
            fieldlog_core::photo::stored_path(&dir.path().join(fieldlog_bureau::BLOB_DIR), sha256);
        assert!(!local.exists(), "{}", local.display());
    }
    let admin = |args: &[&str]| {
        let out = crate::operations::command(dir.path())
            .args(["--config", config])
            .args(args)
            .envs(env)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // The admin command asks the bucket whether the files arrived.
    let photos: serde_json::Value = serde_json::from_str(&admin(&["--json", "photos"])).unwrap();
    assert_eq!(photos[0]["display_held"], true, "{photos}");
    assert_eq!(photos[0]["thumbnail_held"], true, "{photos}");

    // A backup copies the database and says where the photo files stay.
    let backup = dir.path().join("backup");
    let said = admin(&["backup", "--to", backup.to_str().unwrap()]);
    assert!(
        said.contains("photo files not copied: they stay in s3://fieldlog-photos/bureau"),
        "{said}"
    );
    let manifest = fieldlog_bureau::backup::read_manifest(&backup).unwrap();
    assert_eq!(
        manifest.photo_store.as_deref(),
        Some("s3://fieldlog-photos/bureau")
    );
    assert_eq!(manifest.files.len(), 1, "the database alone: {manifest:?}");
    drop(bureau);
}

#[test]
fn a_whole_upload_the_bucket_refused_stays_on_disk_and_goes_up_at_the_next_request() {
    let Some(s3) = S3Server::start_or_skip(
        "a_whole_upload_the_bucket_refused_stays_on_disk_and_goes_up_at_the_next_request",
    ) else {
        return;
    };
    let (server, mut device) = world(PhotoStore::S3(s3));
    fieldlog_core::sync::sync(&mut device.store, |_| {}).unwrap();
    let sha256 = device.photo.display_sha256.clone();
    let bytes = device.file(&sha256);
    let length = bytes.len() as u64;
    let s3 = server.s3.as_ref().unwrap();
    server.forget_blob(&device.photo.thumbnail_sha256);
    server.forget_blob(&sha256);
    // Gone: a HEAD of the object reads as "not there", a PUT is refused.
    s3.delete_bucket();
    let device_id: String = rusqlite::Connection::open(device.store.path())
        .unwrap()
        .query_row("SELECT device_id FROM bureau", [], |r| r.get(0))
        .unwrap();
    let partial = server
        .dir
        .path()
        .join(fieldlog_bureau::BLOB_DIR)
        .join("partial")
        .join(device_id)
        .join(&sha256);
    let blob = Blob {
        server: &server,
        token: token(&device),
        sha256: sha256.clone(),
    };
    assert_eq!(blob.head(), (204, Some(0)));
    assert_eq!(blob.patch(0, length, &bytes).0, 500, "try again later");
    assert_eq!(
        std::fs::read(&partial).unwrap(),
        bytes,
        "kept whole on the bureau's disk"
    );

    // Back: the next request checks it and puts it, and the device has nothing to resend.
    s3.create_bucket();
    assert_eq!(blob.head(), (204, Some(length)));
    assert!(!partial.exists());
    assert_eq!(server.complete_blob(&sha256), Some(bytes.clone()));
    assert_eq!(blob.get(), (200, bytes));
}

#[test]
fn refused_credentials_stop_the_bureau_at_start() {
    let Some(s3) = S3Server::start_or_skip_with(
        "refused_credentials_stop_the_bureau_at_start",
        fieldlog_tests::s3::Credentials::Checked,
    ) else {
        return;
    };
    let stderr = refused_start(
        &[
            "--blobs",
            "s3://fieldlog-photos",
            "--s3-endpoint",
            &s3.endpoint,
        ],
        &CREDENTIALS,
    );
    assert!(
        stderr.contains(
            "the credentials were refused (check s3_access_key_id and s3_secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        ) && stderr.contains("InvalidAccessKeyId"),
        "{stderr}"
    );
}
