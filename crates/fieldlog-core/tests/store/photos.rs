//! Photo ingest: upright, metadata-free, content-addressed copies; hostile files refused with
//! nothing written. Fixtures are generated here and tagged with `exiftool`.

use fieldlog_core::photo::{self, IngestedPhoto, Limits, PhotoError};
use fieldlog_domain::Lang;
use image::{Rgb, RgbImage};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// Runs exiftool, failing loudly (never skipping) when it is not installed.
fn exiftool(args: &[&str], file: &Path) -> String {
    let output = Command::new("exiftool")
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "exiftool is needed by the photo tests but could not run ({e}); \
                 run `cargo xtask test`, which installs it (Debian: libimage-exiftool-perl)"
            )
        });
    assert!(
        output.status.success(),
        "exiftool {args:?} {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// exiftool's tags for a file, grouped (`EXIF:GPSLatitude`, `XMP:MakerNote`, `File:Comment`…).
fn tags(file: &Path) -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_str(&exiftool(&["-j", "-G", "-a"], file)).unwrap();
    json[0].as_object().unwrap().keys().cloned().collect()
}

/// A photo-like picture (gradients and texture) with a red block in its stored top-left corner.
fn marked_picture(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        if x < width / 4 && y < height / 4 {
            Rgb([230, 20, 20])
        } else {
            let texture = ((x * 7 + y * 13) % 17) as u8;
            Rgb([
                20 + texture,
                (60 + x * 120 / width) as u8,
                (80 + y * 150 / height) as u8,
            ])
        }
    })
}

/// A camera-style JPEG: the picture, then EXIF with GPS, orientation, a serial number, a maker
/// note, the capture time and a comment.
fn camera_jpeg(dir: &Path, name: &str, picture: &RgbImage, orientation: u8) -> PathBuf {
    let path = dir.join(name);
    picture.save(&path).unwrap();
    let orientation = format!("-Orientation={orientation}");
    exiftool(
        &[
            "-overwrite_original",
            "-n",
            "-GPSLatitude=26.58",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=106.71",
            "-GPSLongitudeRef=E",
            &orientation,
            "-SerialNumber=CAM-0042",
            "-MakerNote=maker note with secrets",
            "-DateTimeOriginal=2026:05:20 09:30:15",
            "-Comment=taken at the school gate",
        ],
        &path,
    );
    path
}

/// Every file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn is_red(p: Rgb<u8>) -> bool {
    p[0] > 180 && p[1] < 80 && p[2] < 80
}

fn ingest(source: &Path, store: &Path) -> IngestedPhoto {
    photo::ingest(source, store, &Limits::default()).unwrap()
}

#[test]
fn stored_copies_carry_no_metadata_at_all() {
    let dir = TempDir::new().unwrap();
    let source = camera_jpeg(dir.path(), "camera.jpg", &marked_picture(2400, 1800), 1);
    let before = tags(&source);
    // The fixture really carries what must go, so this test can fail.
    for tag in [
        "EXIF:GPSLatitude",
        "EXIF:SerialNumber",
        "XMP:MakerNote",
        "File:Comment",
    ] {
        assert!(
            before.iter().any(|t| t == tag),
            "fixture lacks {tag}: {before:?}"
        );
    }

    let store = dir.path().join("photos");
    let photo = ingest(&source, &store);
    for sha in [&photo.display.sha256, &photo.thumbnail.sha256] {
        let after = tags(&photo::stored_path(&store, sha));
        let leaked: Vec<_> = after
            .iter()
            .filter(|t| {
                t.contains("GPS")
                    || t.contains("Serial")
                    || t.contains("MakerNote")
                    || t.contains("Comment")
                    || [
                        "EXIF:",
                        "XMP:",
                        "ICC_Profile:",
                        "IPTC:",
                        "Photoshop:",
                        "APP",
                    ]
                    .iter()
                    .any(|group| t.starts_with(group))
                    || *t == "File:ExifByteOrder"
            })
            .collect();
        assert!(
            leaked.is_empty(),
            "metadata survived: {leaked:?} in {after:?}"
        );
        assert!(after.iter().any(|t| t.starts_with("JFIF:")), "{after:?}");
    }
}

#[test]
fn exif_rotated_photo_comes_out_upright_at_display_and_thumbnail_sizes() {
    let dir = TempDir::new().unwrap();
    // Stored landscape, red block top-left; Orientation=6 means "rotate 90° clockwise to view",
    // so the upright photo is portrait with the red block top-right.
    let source = camera_jpeg(dir.path(), "rotated.jpg", &marked_picture(2400, 1800), 6);
    let store = dir.path().join("photos");
    let photo = ingest(&source, &store);

    assert_eq!((photo.source_width, photo.source_height), (2400, 1800));
    assert_eq!((photo.display.width, photo.display.height), (1200, 1600));
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (240, 320));
    assert_eq!(photo.taken_at.as_deref(), Some("2026-05-20T09:30:15"));

    for stored in [&photo.display, &photo.thumbnail] {
        let path = photo::stored_path(&store, &stored.sha256);
        assert_eq!(fs::metadata(&path).unwrap().len(), stored.bytes);
        let pixels = image::open(&path).unwrap().into_rgb8();
        let (w, h) = pixels.dimensions();
        assert_eq!((w, h), (stored.width, stored.height));
        let top_right = *pixels.get_pixel(w - w / 16, h / 16);
        let top_left = *pixels.get_pixel(w / 16, h / 16);
        let bottom_left = *pixels.get_pixel(w / 16, h - h / 16);
        assert!(
            is_red(top_right),
            "top-right {top_right:?} should be red ({w}×{h})"
        );
        assert!(!is_red(top_left), "top-left {top_left:?} should not be red");
        assert!(
            !is_red(bottom_left),
            "bottom-left {bottom_left:?} should not be red"
        );
    }
}

#[test]
fn the_same_photo_twice_is_stored_once() {
    let dir = TempDir::new().unwrap();
    let source = camera_jpeg(dir.path(), "camera.jpg", &marked_picture(1000, 800), 1);
    let store = dir.path().join("photos");
    let first = ingest(&source, &store);
    let second = ingest(&source, &store);
    assert_eq!(first, second);
    assert_ne!(first.display.sha256, first.thumbnail.sha256);
    let mut expected = vec![
        photo::stored_path(&store, &first.display.sha256),
        photo::stored_path(&store, &first.thumbnail.sha256),
    ];
    expected.sort();
    assert_eq!(
        files(&store),
        expected,
        "one file per copy, no temp files left"
    );
    let sha = &first.display.sha256;
    assert_eq!(
        photo::stored_path(&store, sha),
        store.join(&sha[..2]).join(format!("{sha}.jpg"))
    );
}

#[test]
fn small_png_without_exif_is_never_upscaled() {
    let dir = TempDir::new().unwrap();
    let source = dir.path().join("small.png");
    marked_picture(300, 200).save(&source).unwrap();
    let store = dir.path().join("photos");
    let photo = ingest(&source, &store);
    assert_eq!((photo.display.width, photo.display.height), (300, 200));
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (300, 200));
    assert_eq!(photo.taken_at, None);
    let pixels = image::open(photo::stored_path(&store, &photo.display.sha256))
        .unwrap()
        .into_rgb8();
    assert!(is_red(*pixels.get_pixel(10, 10)));
}

#[test]
fn transparent_png_areas_come_out_white_not_black() {
    let dir = TempDir::new().unwrap();
    let source = dir.path().join("screenshot.png");
    // Left half clear (stored as transparent black), right half opaque blue.
    image::RgbaImage::from_fn(400, 200, |x, _| {
        if x < 200 {
            image::Rgba([0, 0, 0, 0])
        } else {
            image::Rgba([0, 0, 255, 255])
        }
    })
    .save(&source)
    .unwrap();
    let store = dir.path().join("photos");
    let photo = ingest(&source, &store);
    let pixels = image::open(photo::stored_path(&store, &photo.display.sha256))
        .unwrap()
        .into_rgb8();
    let [r, g, b] = pixels.get_pixel(50, 100).0;
    assert!(r > 245 && g > 245 && b > 245, "{:?}", [r, g, b]);
    let [r, g, b] = pixels.get_pixel(350, 100).0;
    assert!(r < 20 && g < 20 && b > 230, "{:?}", [r, g, b]);
}

#[test]
fn webp_is_ingested_and_resized() {
    let dir = TempDir::new().unwrap();
    let source = dir.path().join("phone.webp");
    marked_picture(2000, 1000).save(&source).unwrap();
    let store = dir.path().join("photos");
    let photo = ingest(&source, &store);
    assert_eq!((photo.display.width, photo.display.height), (1600, 800));
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (320, 160));
    let pixels = image::open(photo::stored_path(&store, &photo.thumbnail.sha256))
        .unwrap()
        .into_rgb8();
    assert!(is_red(*pixels.get_pixel(10, 10)));
}

/// Ingests `file` into a fresh store and expects `kind`, with nothing written.
fn refused(file: &Path, limits: &Limits, kind: &str) -> PhotoError {
    let store = file.parent().unwrap().join(format!("store-{kind}"));
    let error = photo::ingest(file, &store, limits).unwrap_err();
    assert_eq!(error.kind(), kind, "{error}");
    assert!(
        files(&store).is_empty(),
        "a refused photo wrote {:?}",
        files(&store)
    );
    assert!(!store.exists(), "a refused photo created the store dir");
    assert!(!error.message(Lang::ZhCn).is_empty() && !error.message(Lang::En).is_empty());
    error
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A valid PNG header declaring `width`×`height`, with a few bytes of body: a decompression bomb.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A small real JPEG whose frame header is patched to declare `width`×`height`.
fn jpeg_declaring(dir: &Path, width: u16, height: u16) -> Vec<u8> {
    let path = dir.join("small-for-patching.jpg");
    marked_picture(64, 48).save(&path).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let sof = bytes
        .windows(2)
        .position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2))
        .unwrap();
    // FF C0, length (2), precision (1), height (2), width (2).
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

#[test]
fn truncated_jpeg_is_refused_as_corrupt() {
    let dir = TempDir::new().unwrap();
    let whole = camera_jpeg(dir.path(), "whole.jpg", &marked_picture(800, 600), 1);
    let bytes = fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.jpg");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(&cut, &Limits::default(), "photo_corrupt");
}

#[test]
fn a_jpeg_too_short_for_its_declared_size_is_refused_before_decoding() {
    let dir = TempDir::new().unwrap();
    // 10,000 × 6,000 (under the pixel cap) declared by a file of a few kilobytes: decoding
    // it would fill 60 million missing pixels.
    let short = dir.path().join("short.jpg");
    fs::write(&short, jpeg_declaring(dir.path(), 10_000, 6_000)).unwrap();
    let error = refused(&short, &Limits::default(), "photo_corrupt");
    assert!(error.to_string().contains("60000000 pixels"), "{error}");

    // What fuzzing found: 859 bytes declaring 10,496 × 6,720; it took 32 s to decode.
    let found = dir.path().join("found.jpg");
    fs::write(
        &found,
        include_bytes!(
            "../../../../fuzz/artifacts-kept/photo_decode/slow-859-byte-jpeg-declaring-10496x6720"
        ),
    )
    .unwrap();
    refused(&found, &Limits::default(), "photo_corrupt");
}

#[test]
fn random_bytes_and_text_are_not_images() {
    let dir = TempDir::new().unwrap();
    let noise = dir.path().join("noise.jpg");
    let mut bytes = vec![0u8; 4096];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    bytes[0] = 0x42; // never a JPEG/PNG/WebP signature by chance
    fs::write(&noise, &bytes).unwrap();
    refused(&noise, &Limits::default(), "photo_not_an_image");

    let text = dir.path().join("notes.jpg");
    fs::write(&text, "南山小学 2026-05-20 讲座，学生 40 人\n").unwrap();
    let error = refused(&text, &Limits::default(), "photo_not_an_image");
    assert!(
        error.message(Lang::ZhCn).contains("不是照片"),
        "{}",
        error.message(Lang::ZhCn)
    );

    // Right signature, garbage after it.
    let fake = dir.path().join("fake.jpg");
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend_from_slice(&[0x13; 2000]);
    fs::write(&fake, &bytes).unwrap();
    refused(&fake, &Limits::default(), "photo_corrupt");
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    let dir = TempDir::new().unwrap();
    let bomb = dir.path().join("bomb.png");
    fs::write(&bomb, png_bomb(100_000, 100_000)).unwrap();
    assert!(fs::metadata(&bomb).unwrap().len() < 100);
    let error = refused(&bomb, &Limits::default(), "photo_too_many_pixels");
    assert!(error.to_string().contains("100000×100000"), "{error}");

    // 12000 × 9000 = 108 MP, declared in a JPEG frame header.
    let big = dir.path().join("big.jpg");
    fs::write(&big, jpeg_declaring(dir.path(), 12_000, 9_000)).unwrap();
    refused(&big, &Limits::default(), "photo_too_many_pixels");

    // A JPEG bomb at the maximum JPEG size.
    let huge = dir.path().join("huge.jpg");
    fs::write(&huge, jpeg_declaring(dir.path(), 65_000, 65_000)).unwrap();
    refused(&huge, &Limits::default(), "photo_too_many_pixels");
}

#[test]
fn files_over_the_size_limit_are_refused_before_reading() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("huge.jpg");
    let mut file = fs::File::create(&path).unwrap();
    file.write_all(&[0xFF, 0xD8, 0xFF]).unwrap();
    file.set_len(50 * 1024 * 1024 + 1).unwrap(); // sparse: costs no disk
    drop(file);
    let error = refused(&path, &Limits::default(), "photo_file_too_large");
    assert!(
        error.message(Lang::ZhCn).contains("太大"),
        "{}",
        error.message(Lang::ZhCn)
    );

    // A real photo under a tighter limit.
    let photo = camera_jpeg(dir.path(), "camera.jpg", &marked_picture(400, 300), 1);
    let tight = Limits {
        max_file_bytes: 1000,
        ..Limits::default()
    };
    refused(&photo, &tight, "photo_file_too_large");
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = TempDir::new().unwrap();
    refused(&dir.path().join("nope.jpg"), &Limits::default(), "io");
}

/// Valid JPEG, PNG and WebP files of one small picture, for mangling.
fn seed_files() -> &'static [Vec<u8>] {
    static FILES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    FILES.get_or_init(|| {
        let dir = TempDir::new().unwrap();
        ["a.jpg", "a.png", "a.webp"]
            .iter()
            .map(|name| {
                let path = dir.path().join(name);
                marked_picture(120, 80).save(&path).unwrap();
                fs::read(path).unwrap()
            })
            .collect()
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 96, ..Default::default() })]

    /// Damaged files (flipped, overwritten, cut or spliced bytes) never panic a decoder and
    /// never leave a partial file: ingest stores two whole JPEGs or nothing.
    #[test]
    fn mangled_images_are_refused_or_ingested_whole(
        which in 0usize..3,
        edits in proptest::collection::vec((proptest::prelude::any::<u16>(), proptest::prelude::any::<u8>(), 0u8..4), 1..12),
    ) {
        let mut data = seed_files()[which].clone();
        for (at, byte, how) in edits {
            if data.is_empty() {
                break;
            }
            let at = usize::from(at) % data.len();
            match how {
                0 => data[at] ^= byte | 1,
                1 => data[at] = byte,
                2 => data.truncate(at.max(1)),
                _ => data.splice(at..at, std::iter::repeat_n(byte, usize::from(byte % 64))).for_each(drop),
            }
        }
        let dir = TempDir::new().unwrap();
        let source = dir.path().join("mangled");
        fs::write(&source, &data).unwrap();
        let store = dir.path().join("photos");
        match photo::ingest(&source, &store, &Limits::default()) {
            Ok(photo) => {
                for sha in [&photo.display.sha256, &photo.thumbnail.sha256] {
                    let bytes = fs::read(photo::stored_path(&store, sha)).unwrap();
                    proptest::prop_assert_eq!(&photo::sha256_hex(&bytes), sha);
                    image::load_from_memory(&bytes).unwrap();
                }
            }
            Err(_) => proptest::prop_assert!(files(&store).is_empty()),
        }
    }
}
