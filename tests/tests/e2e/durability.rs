//! "Saved" means saved: a process killed with SIGKILL at a random moment loses none of the
//! visits it reported saved, and the file passes `PRAGMA integrity_check`.

use fieldlog_core::{Options, Store, VisitFilter};
use fieldlog_domain::{SchoolInput, SchoolStatus, VisitId};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Runs the child until it has reported `saves` visits plus a random few microseconds more,
/// kills it, and returns every id it printed.
fn run_and_kill(dir: &std::path::Path, saves: usize, rng: &mut StdRng) -> Vec<VisitId> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_durability-child"))
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ids = Vec::new();
    while ids.len() < saves {
        let line = lines.next().expect("child ended early").unwrap();
        ids.push(line.parse().unwrap());
    }
    // Land the kill at a random point inside a later save.
    std::thread::sleep(std::time::Duration::from_micros(rng.random_range(0..4000)));
    child.kill().unwrap();
    child.wait().unwrap();
    ids.extend(
        lines
            .map_while(Result::ok)
            .filter_map(|l| l.parse::<VisitId>().ok()),
    );
    ids
}

/// How many SIGKILLs: `FIELDLOG_SOAK_KILLS` (`cargo xtask soak` sets it), or 12.
fn kills() -> u64 {
    std::env::var("FIELDLOG_SOAK_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12)
}

/// Kills per data dir; a fresh store after that, so a long soak does not slow down.
const KILLS_PER_DIR: u64 = 2;

#[test]
fn visits_reported_saved_survive_sigkill() {
    let kills = kills();
    let mut killed = 0;
    for seed in 1..=kills.div_ceil(KILLS_PER_DIR) {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::init(dir.path(), "耐久测试", "caravan-1", Options::default()).unwrap();
        store
            .add_school(
                &SchoolInput {
                    name: "南山小学".into(),
                    district: "南山区".into(),
                    area: "城区".into(),
                    ..Default::default()
                },
                SchoolStatus::Registered,
            )
            .unwrap();
        drop(store);

        let mut reported = Vec::new();
        for _round in 0..KILLS_PER_DIR.min(kills - killed) {
            killed += 1;
            let saves = rng.random_range(1..60);
            reported.extend(run_and_kill(dir.path(), saves, &mut rng));

            let conn = rusqlite::Connection::open(dir.path().join("fieldlog.sqlite3")).unwrap();
            let check: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok", "seed {seed}");
            drop(conn);

            let mut store = Store::open(dir.path(), Options::default()).unwrap();
            for id in &reported {
                assert!(store.visit(*id).is_ok(), "seed {seed}: visit {id} was lost");
            }
            // The documents agree with the query rows: nothing half-written.
            let listed = store.visits(&VisitFilter::default()).unwrap();
            store.rebuild_projection().unwrap();
            assert_eq!(store.visits(&VisitFilter::default()).unwrap(), listed);
            assert!(listed.len() >= reported.len());
        }
    }
    assert_eq!(killed, kills);
    eprintln!("durability: {killed} SIGKILLs, every reported visit present, integrity ok");
}
