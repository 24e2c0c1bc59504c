//! The PostgreSQL backend's cursor rule: a device that read the log up to cursor N never
//! misses a change that commits later with a number at or below N. A plain `bigserial`
//! breaks it (shown first, so the check is known to catch it); the bureau's counter row,
//! locked by every write until it commits, keeps it, step by step and under writers in
//! parallel, each on its own connections as separate bureau processes would be.

use automerge::ChangeHash;
use fieldlog_bureau::PostgresStorage;
use fieldlog_bureau::storage::{Append, ChangesQuery, NewChange, Storage};
use fieldlog_domain::DeviceId;
use fieldlog_tests::postgres::PgCluster;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long a writer may take to be seen waiting on the lock.
const WAIT_DEADLINE: Duration = Duration::from_secs(30);
const SCOPE: &str = "team:caravan-1";

/// A made-up change: the storage keeps bytes and hashes, it does not decode them.
fn change(n: u64) -> (ChangeHash, Vec<u8>) {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&n.to_be_bytes());
    hash[8..16].copy_from_slice(&rand::random::<u64>().to_be_bytes());
    (ChangeHash(hash), n.to_be_bytes().to_vec())
}

/// Appends changes `ns` to `doc_id` in one committed write.
fn append(storage: &PostgresStorage, doc_id: &str, ns: &[u64]) {
    let changes: Vec<(ChangeHash, Vec<u8>)> = ns.iter().map(|n| change(*n)).collect();
    let mut tx = storage.begin().unwrap();
    tx.append(&Append {
        doc_id,
        scope_key: SCOPE,
        device: None,
        changes: changes
            .iter()
            .map(|(hash, bytes)| NewChange {
                hash: *hash,
                bytes,
                signature: None,
            })
            .collect(),
        heads: &[changes.last().unwrap().0],
    })
    .unwrap();
    tx.commit().unwrap();
}

/// What a device reading after `after` gets: the numbers in this page and its new cursor.
fn read(storage: &PostgresStorage, after: u64) -> (Vec<u64>, u64) {
    let page = storage
        .changes_after(&ChangesQuery {
            scope_keys: vec![SCOPE.into()],
            after,
            exclude_device: DeviceId(uuid::Uuid::now_v7()),
            max_changes: 10_000,
            max_bytes: usize::MAX,
            max_change_bytes: usize::MAX,
        })
        .unwrap();
    (page.changes.iter().map(|c| c.seq).collect(), page.cursor)
}

/// Sessions of `url`'s database waiting on a lock.
fn waiting_on_a_lock(url: &str) -> i64 {
    on_thread(|| {
        PgCluster::connect(url)
            .unwrap()
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get(0)
    })
}

/// The blocking client runs a runtime of its own: keep it off any other.
fn on_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

#[test]
fn a_bigserial_lets_a_reader_skip_a_change_that_commits_late() {
    let Some(cluster) = PgCluster::shared_or_skip("a_bigserial_lets_a_reader_skip…") else {
        return;
    };
    let url = cluster.create_database();
    on_thread(|| {
        let mut setup = PgCluster::connect(&url).unwrap();
        setup
            .batch_execute("CREATE TABLE log (seq BIGSERIAL PRIMARY KEY, body TEXT)")
            .unwrap();
        let (mut a, mut b, mut reader) = (
            PgCluster::connect(&url).unwrap(),
            PgCluster::connect(&url).unwrap(),
            PgCluster::connect(&url).unwrap(),
        );
        let mut ta = a.transaction().unwrap();
        ta.execute("INSERT INTO log (body) VALUES ('a')", &[])
            .unwrap(); // takes 1
        b.execute("INSERT INTO log (body) VALUES ('b')", &[])
            .unwrap(); // takes 2, commits
        let seen = |reader: &mut postgres::Client, after: i64| -> Vec<i64> {
            reader
                .query("SELECT seq FROM log WHERE seq > $1 ORDER BY seq", &[&after])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        };
        assert_eq!(seen(&mut reader, 0), [2]);
        let cursor = 2;
        ta.commit().unwrap();
        assert_eq!(
            seen(&mut reader, cursor),
            Vec::<i64>::new(),
            "1 is never seen"
        );
        assert_eq!(seen(&mut reader, 0), [1, 2], "yet it is there");
    });
}

#[test]
fn a_write_waits_for_the_open_one_so_no_reader_skips_a_change() {
    let Some(cluster) = PgCluster::shared_or_skip("a_write_waits_for_the_open_one…") else {
        return;
    };
    let url = cluster.create_database();
    on_thread(|| {
        let a = PostgresStorage::connect(&url, 0).unwrap();
        let b = PostgresStorage::connect(&url, 0).unwrap();
        let reader = PostgresStorage::connect(&url, 0).unwrap();
        // A takes number 1 and stays open.
        let mut open = a.begin().unwrap();
        let (hash, bytes) = change(1);
        open.append(&Append {
            doc_id: "ledger/caravan-1/2026-05",
            scope_key: SCOPE,
            device: None,
            changes: vec![NewChange {
                hash,
                bytes: &bytes,
                signature: None,
            }],
            heads: &[hash],
        })
        .unwrap();
        std::thread::scope(|s| {
            // B's write waits on A's lock before it can take a number.
            let second = s.spawn(|| append(&b, "ledger/caravan-1/2026-06", &[2]));
            let started = Instant::now();
            while waiting_on_a_lock(&url) == 0 {
                assert!(started.elapsed() < WAIT_DEADLINE, "B never waited on A");
                std::thread::yield_now();
            }
            assert!(!second.is_finished());
            // A reader meanwhile sees nothing and keeps its cursor.
            assert_eq!(read(&reader, 0), (vec![], 0));
            open.commit().unwrap();
            second.join().unwrap();
        });
        assert_eq!(read(&reader, 0), (vec![1, 2], 2));
    });
}

#[test]
fn writers_in_parallel_never_let_a_reader_skip_a_change() {
    let Some(cluster) = PgCluster::shared_or_skip("writers_in_parallel_never_let…") else {
        return;
    };
    const WRITERS: u64 = 4;
    const WRITES: u64 = 40;
    let url = cluster.create_database();
    on_thread(|| {
        let reader = PostgresStorage::connect(&url, 0).unwrap();
        let mut seen = Vec::new();
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let url = &url;
                    s.spawn(move || {
                        // Its own connections, as another bureau process would have.
                        let storage = PostgresStorage::connect(url, 0).unwrap();
                        for i in 0..WRITES {
                            let first = (w * WRITES + i) * 3;
                            let count = 1 + (i % 3);
                            let ns: Vec<u64> = (first..first + count).collect();
                            append(&storage, &format!("ledger/caravan-1/doc-{w}"), &ns);
                        }
                    })
                })
                .collect();
            // A device reading as fast as it can while they write.
            let mut cursor = 0;
            while writers.iter().any(|w| !w.is_finished()) {
                let (page, next) = read(&reader, cursor);
                assert!(page.iter().all(|seq| *seq > cursor));
                seen.extend(page);
                cursor = next;
            }
            let (page, _) = read(&reader, cursor);
            seen.extend(page);
        });
        let all = read(&reader, 0).0;
        let seen_once: BTreeSet<u64> = seen.iter().copied().collect();
        assert_eq!(seen_once.len(), seen.len(), "nothing read twice");
        assert_eq!(
            seen_once,
            all.iter().copied().collect::<BTreeSet<u64>>(),
            "the reader missed none of the log"
        );
        assert_eq!(
            all.len() as u64,
            (0..WRITES).map(|i| 1 + i % 3).sum::<u64>() * WRITERS
        );
    });
}
