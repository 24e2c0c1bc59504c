//! `cargo xtask bench photos`: photo ingest against `vipsthumbnail`, both on one core.
//!
//! Twenty photo-like 12-megapixel JPEGs (4000×3000, quality 92; cached under the target dir) each
//! become a 1600 px display copy and a 320 px thumbnail. Reported, not asserted:
//!
//! - our [`fieldlog_core::photo::ingest`], in process: median ms per photo;
//! - `vipsthumbnail` (`VIPS_CONCURRENCY=1`), twice per photo (1600 and 320), as one process per
//!   photo and size (what an app shelling out would pay) and as one process per size for all
//!   photos (start-up shared): ms per photo;
//! - peak memory (max RSS, from `/usr/bin/time`) of one photo in a fresh process, ours and vips.
//!
//! The whole run is pinned to CPU 0 with `taskset` (the bench re-executes itself under it).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "a benchmark report"
)]

use fieldlog_core::photo::{self, Limits};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use std::{env, fs};

const PHOTOS: usize = 20;
const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
const ROUNDS: usize = 3;
const PINNED: &str = "FIELDLOG_PHOTO_BENCH_PINNED";

fn main() {
    let args: Vec<String> = env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--ingest-one") {
        // Child mode, for peak memory: one ingest in a fresh process.
        let (source, store) = (Path::new(&args[i + 1]), Path::new(&args[i + 2]));
        photo::ingest(source, store, &Limits::default()).unwrap();
        return;
    }
    if env::var_os(PINNED).is_none() && which("taskset") {
        let status = Command::new("taskset")
            .args(["-c", "0"])
            .arg(env::current_exe().unwrap())
            .args(&args[1..])
            .env(PINNED, "1")
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }

    machine();
    let fixtures = fixtures();
    if args.iter().any(|a| a == "decoders") {
        decoders(&fixtures);
        return;
    }
    let scratch = tempfile::tempdir().unwrap();

    // Ours, in process.
    let mut ours = Vec::new();
    for round in 0..ROUNDS {
        let store = scratch.path().join(format!("ours-{round}"));
        for source in &fixtures {
            let start = Instant::now();
            photo::ingest(source, &store, &Limits::default()).unwrap();
            ours.push(start.elapsed());
        }
    }
    let ours_ms = median(&mut ours);
    println!(
        "fieldlog ingest:        {ours_ms:7.1} ms/photo (median of {})",
        ours.len()
    );

    if !which("vipsthumbnail") {
        println!("vipsthumbnail: not installed; `cargo xtask bench photos` installs it");
        return;
    }
    let vips = |sources: &[PathBuf], size: &str, suffix: &str, quality: u8| {
        let out = scratch.path().join("vips");
        fs::create_dir_all(&out).unwrap();
        let output = out.join(format!("%s-{suffix}.jpg[Q={quality},strip]"));
        let status = Command::new("vipsthumbnail")
            .env("VIPS_CONCURRENCY", "1")
            .args(sources)
            .args(["--size", size, "-o"])
            .arg(output)
            .status()
            .unwrap();
        assert!(status.success(), "vipsthumbnail failed");
    };
    let mut per_process = Vec::new();
    let mut batched = Vec::new();
    let mut batched_display = Vec::new();
    for _ in 0..ROUNDS {
        for source in &fixtures {
            let start = Instant::now();
            vips(std::slice::from_ref(source), "1600", "d", 82);
            vips(std::slice::from_ref(source), "320", "t", 75);
            per_process.push(start.elapsed());
        }
        let start = Instant::now();
        vips(&fixtures, "1600", "d", 82);
        let display = start.elapsed();
        vips(&fixtures, "320", "t", 75);
        batched.push(start.elapsed() / PHOTOS as u32);
        batched_display.push(display / PHOTOS as u32);
    }
    let process_ms = median(&mut per_process);
    let batched_ms = median(&mut batched);
    println!(
        "vipsthumbnail, 2 runs/photo: {process_ms:7.1} ms/photo (median of {})",
        per_process.len()
    );
    println!("vipsthumbnail, batched:      {batched_ms:7.1} ms/photo (median of {ROUNDS} batches)");
    println!(
        "  of which 1600 px only:      {:7.1} ms/photo",
        median(&mut batched_display)
    );
    println!(
        "ratio ours/vips:        {:.2}× (per-process), {:.2}× (batched)",
        ours_ms / process_ms,
        ours_ms / batched_ms
    );

    if !which("/usr/bin/time") {
        println!("peak memory: /usr/bin/time not installed");
        return;
    }
    let source = &fixtures[0];
    let store = scratch.path().join("memory");
    let exe = env::current_exe().unwrap();
    let ours_kb = peak_kb(
        Command::new(&exe)
            .arg("--ingest-one")
            .arg(source)
            .arg(&store),
        scratch.path(),
    );
    let vips_out = scratch.path().join("vips-memory");
    fs::create_dir_all(&vips_out).unwrap();
    let vips_kb = ["1600", "320"]
        .iter()
        .map(|size| {
            peak_kb(
                Command::new("vipsthumbnail")
                    .env("VIPS_CONCURRENCY", "1")
                    .arg(source)
                    .args(["--size", size, "-o"])
                    .arg(vips_out.join("%s.jpg[Q=82,strip]")),
                scratch.path(),
            )
        })
        .max()
        .unwrap();
    println!(
        "peak memory (max RSS):  ours {:.1} MB, vipsthumbnail {:.1} MB",
        ours_kb as f64 / 1024.0,
        vips_kb as f64 / 1024.0
    );
}

/// `cargo xtask bench photos -- decoders`: the JPEG decoders we chose between, decode only.
fn decoders(fixtures: &[PathBuf]) {
    let files: Vec<Vec<u8>> = fixtures
        .iter()
        .take(5)
        .map(|p| fs::read(p).unwrap())
        .collect();
    let time = |name: &str, decode: &dyn Fn(&[u8]) -> usize| {
        let mut samples = Vec::new();
        for data in files.iter().cycle().take(15) {
            let start = Instant::now();
            std::hint::black_box(decode(data));
            samples.push(start.elapsed());
        }
        println!("{name:<40} {:7.1} ms/photo", median(&mut samples));
    };
    time("jpeg-decoder, full size", &|data| {
        jpeg_decoder::Decoder::new(data).decode().unwrap().len()
    });
    time("jpeg-decoder, DCT-scaled to 1/2", &|data| {
        let mut decoder = jpeg_decoder::Decoder::new(data);
        decoder.scale(1600, 1200).unwrap();
        decoder.decode().unwrap().len()
    });
    time("zune-jpeg (image 0.25), full size", &|data| {
        image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
            .unwrap()
            .as_bytes()
            .len()
    });
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

fn machine() {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let online = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    println!("machine: {model}, {online} CPUs online; this run may use {cores} (pinned to CPU 0)");
}

fn median(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

/// Max RSS in KiB of one run of `command`, from `/usr/bin/time -f %M`.
fn peak_kb(command: &mut Command, scratch: &Path) -> u64 {
    let report = scratch.join("time.out");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            timed.env(key, value);
        }
    }
    assert!(timed.status().unwrap().success());
    fs::read_to_string(&report)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The fixtures, generated once into the target dir.
fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("photo-bench-v2");
    fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    let mut sizes = 0;
    for n in 0..PHOTOS {
        let path = dir.join(format!("photo-{n:02}.jpg"));
        if !path.is_file() {
            let pixels = photo_like(n as u64);
            let mut out = Vec::new();
            jpeg_encoder::Encoder::new(&mut out, 92)
                .encode(
                    &pixels,
                    WIDTH as u16,
                    HEIGHT as u16,
                    jpeg_encoder::ColorType::Rgb,
                )
                .unwrap();
            let temp = dir.join(format!(".photo-{n:02}.tmp"));
            fs::write(&temp, &out).unwrap();
            fs::rename(&temp, &path).unwrap();
        }
        sizes += fs::metadata(&path).unwrap().len();
        paths.push(path);
    }
    println!(
        "fixtures: {PHOTOS} × {WIDTH}×{HEIGHT} JPEG q92, mean {:.1} MB, in {}",
        sizes as f64 / PHOTOS as f64 / 1e6,
        dir.display()
    );
    paths
}

/// Smooth sky-and-ground gradients, a few soft blobs, fine texture and sensor noise: compresses
/// like a camera photo, not like a flat test card.
fn photo_like(seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let blobs: Vec<(f32, f32, f32, [f32; 3])> = (0..6)
        .map(|_| {
            let r = |n: u64| (n % 1000) as f32 / 1000.0;
            (
                r(noise()) * WIDTH as f32,
                r(noise()) * HEIGHT as f32,
                200.0 + r(noise()) * 800.0,
                [
                    r(noise()) * 120.0 - 60.0,
                    r(noise()) * 120.0 - 60.0,
                    r(noise()) * 120.0 - 60.0,
                ],
            )
        })
        .collect();
    let mut out = Vec::with_capacity((WIDTH * HEIGHT * 3) as usize);
    for y in 0..HEIGHT {
        let fy = y as f32 / HEIGHT as f32;
        for x in 0..WIDTH {
            let fx = x as f32 / WIDTH as f32;
            let mut rgb = if fy < 0.45 {
                [110.0 + 80.0 * fy, 150.0 + 60.0 * fy, 220.0 - 40.0 * fx]
            } else {
                [90.0 + 60.0 * fx, 120.0 - 40.0 * fy, 60.0 + 20.0 * fx]
            };
            for &(bx, by, radius, tint) in &blobs {
                let d2 = ((x as f32 - bx).powi(2) + (y as f32 - by).powi(2)) / (radius * radius);
                if d2 < 4.0 {
                    let weight = (-d2).exp();
                    for c in 0..3 {
                        rgb[c] += tint[c] * weight;
                    }
                }
            }
            let texture = ((x as f32 * 0.21).sin() * (y as f32 * 0.17).cos()) * 10.0;
            // Sensor grain: mostly luma, a little chroma.
            let grain = noise();
            let luma = (grain & 0xF) as f32 - 7.5;
            for (c, value) in rgb.iter().enumerate() {
                let chroma = ((grain >> (8 + c * 4)) & 0x3) as f32 - 1.5;
                out.push((value + texture + luma + chroma).clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}
