//! A TCP proxy between a device and the bureau, on loopback only.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Which way bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Device to bureau.
    Up,
    /// Bureau to device.
    Down,
}

#[derive(Debug, Default)]
struct Shared {
    up: AtomicU64,
    down: AtomicU64,
    connections: AtomicU64,
    /// Armed cuts that struck (the connection had that many bytes to pass).
    fired: AtomicU64,
    offline: AtomicBool,
    stopping: AtomicBool,
    /// Cuts armed for the next connections, in order.
    cuts: Mutex<Vec<(Direction, u64)>>,
    target: Mutex<Option<SocketAddr>>,
}

/// Forwards `127.0.0.1:<port>` to a target. Dropping it stops accepting.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    pub fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        *shared.target.lock().unwrap_or_else(|e| e.into_inner()) = Some(target);
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if accepting.offline.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                accepting.connections.fetch_add(1, Ordering::SeqCst);
                let cut = {
                    let mut cuts = accepting.cuts.lock().unwrap_or_else(|e| e.into_inner());
                    (!cuts.is_empty()).then(|| cuts.remove(0))
                };
                let target = *accepting.target.lock().unwrap_or_else(|e| e.into_inner());
                let Some(Ok(server)) = target.map(TcpStream::connect) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                relay(client, server, cut, Arc::clone(&accepting));
            }
        });
        Ok(Proxy { addr, shared })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts the next connection once `after` bytes have passed in `direction`.
    pub fn cut_next(&self, direction: Direction, after: u64) {
        self.shared
            .cuts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((direction, after));
    }

    /// Sends new connections to another address (a restarted server).
    pub fn retarget(&self, target: SocketAddr) {
        *self.shared.target.lock().unwrap_or_else(|e| e.into_inner()) = Some(target);
    }

    /// Refuses every new connection while `true`, like a phone out of signal.
    pub fn set_offline(&self, offline: bool) {
        self.shared.offline.store(offline, Ordering::SeqCst);
    }

    /// Bytes forwarded so far: (device to bureau, bureau to device).
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.shared.up.load(Ordering::SeqCst),
            self.shared.down.load(Ordering::SeqCst),
        )
    }

    /// How many armed cuts have cut a connection so far.
    pub fn cuts_fired(&self) -> u64 {
        self.shared.fired.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn reset_counts(&self) {
        self.shared.up.store(0, Ordering::SeqCst);
        self.shared.down.store(0, Ordering::SeqCst);
        self.shared.connections.store(0, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stopping`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn relay(client: TcpStream, server: TcpStream, cut: Option<(Direction, u64)>, shared: Arc<Shared>) {
    let pairs = [
        (Direction::Up, client.try_clone(), server.try_clone()),
        (Direction::Down, server.try_clone(), client.try_clone()),
    ];
    for (direction, from, to) in pairs {
        let (Ok(from), Ok(to)) = (from, to) else {
            continue;
        };
        let limit = cut.filter(|(d, _)| *d == direction).map(|(_, n)| n);
        let shared = Arc::clone(&shared);
        thread::spawn(move || pump(from, to, direction, limit, &shared));
    }
}

/// Copies bytes one way until either side closes, or until `limit` bytes have passed, when
/// it cuts both directions mid-stream.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    direction: Direction,
    limit: Option<u64>,
    shared: &Shared,
) {
    let counter = match direction {
        Direction::Up => &shared.up,
        Direction::Down => &shared.down,
    };
    let mut passed = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let allowed = limit.map_or(n as u64, |l| (l.saturating_sub(passed)).min(n as u64)) as usize;
        // Counted before forwarding, so whoever receives the bytes sees them counted.
        counter.fetch_add(allowed as u64, Ordering::SeqCst);
        if to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        passed += allowed as u64;
        if allowed < n || limit == Some(passed) {
            shared.fired.fetch_add(1, Ordering::SeqCst);
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
