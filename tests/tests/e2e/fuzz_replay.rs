//! Every fuzz seed and every kept crasher, replayed through the fuzz targets' bodies
//! (`fieldlog_tests::fuzz`) as a plain test: what once broke a decoder stays fixed, without
//! building the instrumented fuzz crate. `cargo xtask fuzz` does the fuzzing.

use fieldlog_tests::fuzz;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files directly in `dir` (none if it does not exist), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn replay(kind: &str, dirs: impl Fn(&str) -> Vec<PathBuf>) -> usize {
    let mut replayed = 0;
    for target in fuzz::TARGETS {
        for dir in dirs(target) {
            for file in files(&dir) {
                let data = std::fs::read(&file).unwrap();
                match std::panic::catch_unwind(|| fuzz::run(target, &data)) {
                    Ok(true) => replayed += 1,
                    Ok(false) => panic!("no target named {target}"),
                    Err(_) => panic!("{kind} {target}: {} panicked", file.display()),
                }
            }
        }
    }
    replayed
}

#[test]
fn every_fuzz_seed_and_fixed_crasher_runs_through_its_target() {
    let root = fuzz_dir();
    let replayed = replay("replaying", |target| {
        vec![
            root.join("corpus").join(target),
            root.join("artifacts-kept").join(target),
        ]
    });
    // The seeds are checked in; an empty corpus would make this test pass on nothing.
    assert!(replayed >= fuzz::TARGETS.len(), "only {replayed} inputs");
}

/// Writes the seed corpus (`fuzz/corpus/<target>/seed-*`) from real traffic. Run it after a
/// protocol or format change:
/// `cargo test -p fieldlog-tests --test e2e write_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes files into the source tree; run by hand to refresh the seeds"]
fn write_fuzz_seeds() {
    let root = fuzz_dir();
    fuzz::seeds::write(
        &root.join("corpus"),
        &root.join("../assets/demo-registry.csv"),
    )
    .unwrap();
}
