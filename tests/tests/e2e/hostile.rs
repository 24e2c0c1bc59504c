//! Crafted bytes against the real binaries, each process under a memory cap (`prlimit
//! --as`): a bundle file received by chat, a sync request from an enrolled device. Each is
//! refused with a clear error, nothing is stored, and the process lives on.

use crate::{TestDevice, bureau_bin, demo_registry, fieldlog_bin};
use fieldlog_tests::bureau::{Bureau, Device};
use sha2::Digest;
use std::io::{Read, Write};
use std::process::Command;

/// 1 GiB of address space: far below what any of these bombs inflates to.
const CAP: u64 = 1 << 30;

/// postcard: an unsigned LEB128 length, then the bytes.
fn bytes(out: &mut Vec<u8>, data: &[u8]) {
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// An Automerge chunk of type "compressed" whose DEFLATE data inflates to `inflated` zero
/// bytes. Automerge checks a compressed chunk's checksum only after inflating it, so the
/// checksum need not match: this is what an attacker sends.
fn compressed_change(inflated: u64) -> Vec<u8> {
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..inflated >> 20 {
        deflate.write_all(&zeros).unwrap();
    }
    let data = deflate.finish().unwrap();
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    varint(&mut chunk, data.len() as u64);
    chunk.extend_from_slice(&data);
    chunk
}

/// A bundle file (format 2) from `from_device` with one document holding `changes`.
fn bundle(from_device: &str, changes: &[Vec<u8>], trailing: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    bytes(&mut body, from_device.as_bytes());
    bytes(&mut body, "二号机".as_bytes());
    varint(&mut body, 1); // one document
    bytes(&mut body, b"ledger/caravan-1/2026-05");
    bytes(&mut body, &[]); // heads
    varint(&mut body, 1); // Payload::Changes
    varint(&mut body, changes.len() as u64);
    for change in changes {
        bytes(&mut body, change);
    }
    varint(&mut body, 0); // no signatures
    let mut payload = zstd::bulk::compress(&body, 3).unwrap();
    payload.extend_from_slice(trailing);
    framed(&payload)
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut file = b"FIELDLOG-BUNDLE\n".to_vec();
    file.push(2);
    file.extend_from_slice(&sha2::Sha256::digest(payload));
    file.extend_from_slice(payload);
    file
}

/// A zstd frame of `size` zeros that declares its size: a few KB.
fn zstd_bomb(size: u64) -> Vec<u8> {
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 19).unwrap();
    encoder.include_contentsize(true).unwrap();
    encoder.set_pledged_src_size(Some(size)).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..size >> 20 {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.finish().unwrap()
}

fn capped_import(device: &TestDevice, file: &std::path::Path) -> (Option<i32>, String) {
    let output = Command::new("prlimit")
        .arg(format!("--as={CAP}"))
        .arg("--")
        .arg(fieldlog_bin())
        .arg("--data-dir")
        .arg(device.data_dir())
        .args(["bundle", "import"])
        .arg(file)
        .env("FIELDLOG_LANG", "en")
        .env_remove("FIELDLOG_LOG")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn crafted_bundle_files_are_refused_under_a_memory_cap_and_change_nothing() {
    let device = TestDevice::init("en", "一号机", "caravan-1");
    device
        .run(&["school", "import", demo_registry().to_str().unwrap()])
        .ok();
    let before = device.run(&["--json", "visit", "list"]).ok();
    let dir = tempfile::tempdir().unwrap();
    let sender = "01939d6e-0000-7000-8000-0000000000aa";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "compressed-change.flb",
            bundle(sender, &[compressed_change(200 << 20)], b""),
            "malformed change",
        ),
        (
            "compressed-bomb.flb",
            bundle(sender, &[compressed_change(2 << 30)], b""),
            "inflate to more than its contents can need",
        ),
        ("zstd-bomb.flb", framed(&zstd_bomb(700 << 20)), "inflate"),
        (
            "trailing.flb",
            bundle(sender, &[], b"\x00\x01junk"),
            "after its contents",
        ),
        (
            "no-sender.flb",
            bundle("", &[], b""),
            "does not name the device",
        ),
    ];
    for (name, file, reason) in cases {
        assert!(file.len() < 64 * 1024, "{name} is {} bytes", file.len());
        let path = dir.path().join(name);
        std::fs::write(&path, &file).unwrap();
        let (code, stderr) = capped_import(&device, &path);
        assert_eq!(
            code,
            Some(1),
            "{name}: the import must fail cleanly: {stderr}"
        );
        assert!(stderr.contains(reason), "{name}: {stderr}");
    }
    assert_eq!(device.run(&["--json", "visit", "list"]).ok(), before);
}

/// A sync request of an enrolled device, posted as raw HTTP to the bureau.
fn post_sync(bureau: &Bureau, token: &str, body: &[u8]) -> (u16, String) {
    let url = bureau.url();
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/sync HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-fieldlog-sync\r\nContent-Encoding: zstd\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// zstd(postcard(SyncRequest)) of protocol 3 carrying `changes` for one ledger.
fn sync_body(changes: &[Vec<u8>]) -> Vec<u8> {
    sync_body_with(changes, None)
}

/// The same, with the ledger also sent whole as `document`.
fn sync_body_with(changes: &[Vec<u8>], document: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    varint(&mut body, 3); // protocol
    varint(&mut body, 0); // cursor
    varint(&mut body, 1); // one document
    bytes(&mut body, b"ledger/caravan-1/2026-05");
    varint(&mut body, changes.len() as u64);
    for change in changes {
        bytes(&mut body, change);
    }
    match document {
        Some(document) => {
            body.push(1);
            bytes(&mut body, document);
        }
        None => body.push(0),
    }
    varint(&mut body, 0); // signatures
    varint(&mut body, 100); // max_changes
    body.push(0); // no signing key
    body.push(0); // no resume
    zstd::bulk::compress(&body, 19).unwrap()
}

#[test]
fn crafted_sync_requests_leave_a_memory_capped_bureau_alive() {
    let mut bureau = Bureau::start_capped(bureau_bin(), &demo_registry(), Some(2 * CAP));
    let mut device = Device::enrolled(&bureau, "一号机", "caravan-1");
    let token: String = rusqlite::Connection::open(device.store.path())
        .unwrap()
        .query_row("SELECT token FROM bureau", [], |r| r.get(0))
        .unwrap();
    // Within the size of one change, but it would inflate to 200 MiB: refused as not a
    // plain change before anything inflates.
    let bomb = compressed_change(200 << 20);
    assert!(bomb.len() < 256 * 1024);
    // Larger than one change may be: refused by its declared length.
    let huge = compressed_change(3 << 30);
    // A document of one text of zeros: a few kilobytes that would inflate to 200 MiB.
    let document_bomb = {
        use automerge::transaction::Transactable;
        let mut doc = automerge::AutoCommit::new();
        doc.put(automerge::ROOT, "x", "0".repeat(200 << 20))
            .unwrap();
        doc.save()
    };
    let cases = [
        (
            "a document sent whole that inflates to 200 MiB",
            sync_body_with(&[], Some(&document_bomb)),
            413,
            "inflates beyond",
        ),
        (
            "one compressed change",
            sync_body(std::slice::from_ref(&bomb)),
            400,
            "not a plain change chunk",
        ),
        (
            "one compressed change past the change limit",
            sync_body(std::slice::from_ref(&huge)),
            413,
            "a change may take at most",
        ),
        (
            "250 copies of a valid-sized compressed change (4 GiB inflated)",
            sync_body(&vec![compressed_change(16 << 20); 250]),
            400,
            "not a plain change chunk",
        ),
    ];
    for (name, body, status, reason) in cases {
        assert!(body.len() < 64 * 1024, "{name}: {} bytes", body.len());
        let (got, answer) = post_sync(&bureau, &token, &body);
        assert_eq!(got, status, "{name}: {answer}");
        assert!(answer.contains(reason), "{name}: {answer}");
        assert!(bureau.is_running(), "{name} killed the bureau");
    }
    // Four at once, 16 GiB if inflated.
    let body = sync_body(&vec![compressed_change(16 << 20); 250]);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert_eq!(post_sync(&bureau, &token, &body).0, 400));
        }
    });
    assert!(bureau.is_running());
    // The device's own sync still goes through.
    device.sync().unwrap();
    device.add("南山小学", 30);
    assert_eq!(device.sync().unwrap().accepted, 1);
}
