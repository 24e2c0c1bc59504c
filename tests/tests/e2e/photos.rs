//! Photo files between a device and a real bureau process, through the cutting proxy.

use crate::{TestDevice, bureau_bin, demo_registry};
use fieldlog_tests::bureau::{Bureau, Device};
use fieldlog_tests::proxy::Direction;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::path::Path;

const CUTS: u64 = 20;

/// A photo of random pixels: its display copy (1600×1200) hardly compresses, so the upload
/// is large enough to cut many times.
fn noisy_photo(path: &Path, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    image::RgbImage::from_fn(1600, 1200, |_, _| image::Rgb(rng.random()))
        .save(path)
        .unwrap();
}

/// A complete blob where the bureau keeps it (`blobs/` in its data dir, or its bucket).
fn held_at_bureau(bureau: &Bureau, sha256: &str) -> Vec<u8> {
    bureau
        .complete_blob(sha256)
        .unwrap_or_else(|| panic!("{sha256} is not at the bureau ({:?})", bureau.backend()))
}

#[test]
fn a_photo_upload_survives_twenty_cuts_at_random_bytes() {
    let bureau = Bureau::start(bureau_bin(), &demo_registry());
    let mut device = Device::enrolled(&bureau, "一号机", "caravan-1");
    device.sync().unwrap();
    let visit = device.add("南山小学", 40);
    let source = tempfile::tempdir().unwrap();
    let file = source.path().join("课堂.png");
    noisy_photo(&file, 1);
    let photo = device.store.add_photo(visit, &file, "", false).unwrap();
    let blobs = photo.display_bytes + photo.thumbnail_bytes;
    assert!(photo.display_bytes > 500_000, "{photo:?}");

    let mut rng = StdRng::seed_from_u64(20);
    bureau.proxy.reset_counts();
    let mut failed_syncs = 0;
    while bureau.proxy.cuts_fired() < CUTS {
        // Anywhere in the next 60 KB: the record round, the offset query or the file.
        bureau
            .proxy
            .cut_next(Direction::Up, rng.random_range(1..=60_000));
        if device.sync().is_err() {
            failed_syncs += 1;
        }
        assert!(failed_syncs <= 3 * CUTS, "the upload never finished");
    }
    let last = device.sync().unwrap();
    assert_eq!(device.store.upload_queue().unwrap().files, 0, "{last:?}");

    for sha256 in [&photo.thumbnail_sha256, &photo.display_sha256] {
        let held = held_at_bureau(&bureau, sha256);
        assert_eq!(&fieldlog_core::photo::sha256_hex(&held), sha256);
    }
    let (sent, _) = bureau.proxy.bytes();
    eprintln!(
        "{sent} bytes sent for {blobs} bytes of files ({:.3}×) over {CUTS} cuts, {failed_syncs} failed syncs",
        sent as f64 / blobs as f64
    );
    assert!(
        sent * 10 < blobs * 11,
        "{sent} bytes sent for {blobs} bytes of files over {CUTS} cuts"
    );
    assert!(failed_syncs >= 1);
}

#[test]
fn status_and_sync_show_the_photos_waiting_and_sent() {
    let bureau = Bureau::start(bureau_bin(), &demo_registry());
    let device = TestDevice::init("en", "一号机", "caravan-1");
    device
        .run(&["enroll", &bureau.url(), &bureau.code("caravan-1", "李老师")])
        .ok();
    device.run(&["sync"]).ok();
    let visit = device
        .run(&[
            "visit",
            "add",
            "--school",
            "南山小学",
            "--activity",
            "lecture",
            "--students",
            "30",
        ])
        .ok();
    let file = device.data_dir().join("课堂.png");
    noisy_photo(&file, 2);
    device
        .run(&["photo", "add", visit.trim(), file.to_str().unwrap()])
        .ok();

    let status = device.json(&["status"]);
    assert_eq!(status["waiting_photos"]["photos"], 1, "{status}");
    assert_eq!(status["waiting_photos"]["files"], 2, "{status}");
    let waiting = status["waiting_photos"]["bytes"].as_u64().unwrap();
    assert!(
        device
            .run(&["status"])
            .ok()
            .contains("photos waiting to upload: 1")
    );

    let text = device.run(&["sync"]).ok();
    assert!(text.contains("photos uploaded: 1/1"), "{text}");
    let arrived = bureau.read(&["photos"]);
    assert_eq!(arrived[0]["visit"], visit.trim(), "{arrived}");
    assert_eq!(
        (&arrived[0]["thumbnail_held"], &arrived[0]["display_held"]),
        (&serde_json::json!(true), &serde_json::json!(true))
    );

    // A teammate's device gets the file from the bureau, byte for byte.
    let teammate = TestDevice::init("en", "二号机", "caravan-1");
    teammate
        .run(&["enroll", &bureau.url(), &bureau.code("caravan-1", "钱老师")])
        .ok();
    teammate.run(&["sync"]).ok();
    let photo = arrived[0]["photo"]["display_sha256"].as_str().unwrap();
    let fetched = teammate.run(&["photo", "fetch", photo]).ok();
    let mine = device.run(&["photo", "fetch", photo]).ok();
    assert_eq!(
        std::fs::read(fetched.trim()).unwrap(),
        std::fs::read(mine.trim()).unwrap()
    );
    let status = device.json(&["status"]);
    assert_eq!(status["waiting_photos"]["photos"], 0, "{status}");
    let summary = device.json(&["sync"]);
    assert_eq!(summary["photos_total"], 0, "{summary}");
    assert!(waiting > 0);

    // Keeping originals is a setting; they never leave the device.
    let settings = device.json(&["settings", "--originals", "keep"]);
    assert_eq!(settings["originals"], "keep");
    let usage = device
        .command(&["settings", "--originals", "sometimes"])
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&usage.stderr);
    assert_eq!(usage.status.code(), Some(2), "{error}");
    assert!(error.contains("keep, until-uploaded or drop"), "{error}");
}
