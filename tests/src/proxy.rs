//! A TCP proxy between a device and the bureau, on loopback only.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
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
    /// Watches armed for the next connections, in order.
    watches: Mutex<Vec<WatchSenders>>,
    target: Mutex<Option<SocketAddr>>,
}

/// What a watched connection reports (see [`Proxy::watch_next`]).
#[derive(Debug)]
pub struct Watch {
    /// Once the whole request (head and `Content-Length` body) has been forwarded upstream:
    /// how many answer bytes had come back by then.
    pub forwarded: Receiver<u64>,
    /// When the answer direction ends: how many answer bytes came back in all.
    pub answered: Receiver<u64>,
}

#[derive(Debug)]
struct WatchSenders {
    forwarded: Sender<u64>,
    answered: Sender<u64>,
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
                let watch = {
                    let mut watches = accepting.watches.lock().unwrap_or_else(|e| e.into_inner());
                    (!watches.is_empty()).then(|| watches.remove(0))
                };
                let target = *accepting.target.lock().unwrap_or_else(|e| e.into_inner());
                let Some(Ok(server)) = target.map(TcpStream::connect) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                relay(client, server, cut, watch, Arc::clone(&accepting));
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

    /// Watches the next connection: it reports when the whole request has gone upstream
    /// (the server then decodes and applies it, and has not answered yet if no answer byte
    /// came back), and how many answer bytes came back in all once the answer ends.
    pub fn watch_next(&self) -> Watch {
        let (forwarded, forwarded_rx) = channel();
        let (answered, answered_rx) = channel();
        self.shared
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(WatchSenders {
                forwarded,
                answered,
            });
        Watch {
            forwarded: forwarded_rx,
            answered: answered_rx,
        }
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

fn relay(
    client: TcpStream,
    server: TcpStream,
    cut: Option<(Direction, u64)>,
    watch: Option<WatchSenders>,
    shared: Arc<Shared>,
) {
    // This connection's answer bytes, for the watch.
    let answer_bytes = Arc::new(AtomicU64::new(0));
    let (mut up_watch, mut down_watch) = match watch {
        Some(w) => (
            Some(RequestEnd::new(w.forwarded, Arc::clone(&answer_bytes))),
            Some(w.answered),
        ),
        None => (None, None),
    };
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
        let answer_bytes = Arc::clone(&answer_bytes);
        let (request_end, answered) = match direction {
            Direction::Up => (up_watch.take(), None),
            Direction::Down => (None, down_watch.take()),
        };
        thread::spawn(move || {
            let mut tap = Tap {
                request_end,
                answer_bytes,
            };
            pump(from, to, direction, limit, &shared, &mut tap);
            if let Some(answered) = answered {
                let _ = answered.send(tap.answer_bytes.load(Ordering::SeqCst));
            }
        });
    }
}

/// What one pump reports to a watch, besides the proxy's counters.
struct Tap {
    request_end: Option<RequestEnd>,
    answer_bytes: Arc<AtomicU64>,
}

/// Finds where an HTTP request ends (its head, then `Content-Length` bytes of body) and
/// reports once it has been forwarded.
struct RequestEnd {
    head: Vec<u8>,
    /// Head length plus body length, once the head is complete.
    total: Option<u64>,
    seen: u64,
    forwarded: Option<Sender<u64>>,
    answer_bytes: Arc<AtomicU64>,
}

impl RequestEnd {
    fn new(forwarded: Sender<u64>, answer_bytes: Arc<AtomicU64>) -> RequestEnd {
        RequestEnd {
            head: Vec::new(),
            total: None,
            seen: 0,
            forwarded: Some(forwarded),
            answer_bytes,
        }
    }

    /// Called after `bytes` went upstream.
    fn forwarded(&mut self, bytes: &[u8]) {
        self.seen += bytes.len() as u64;
        if self.total.is_none() {
            self.head.extend_from_slice(bytes);
            if let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.head[..end]).to_ascii_lowercase();
                let body: u64 = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                self.total = Some(end as u64 + 4 + body);
            }
        }
        if self.total.is_some_and(|total| self.seen >= total)
            && let Some(forwarded) = self.forwarded.take()
        {
            let _ = forwarded.send(self.answer_bytes.load(Ordering::SeqCst));
        }
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
    tap: &mut Tap,
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
        if direction == Direction::Down {
            tap.answer_bytes.fetch_add(allowed as u64, Ordering::SeqCst);
        }
        if to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        if let Some(request_end) = &mut tap.request_end {
            request_end.forwarded(&buf[..allowed]);
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
