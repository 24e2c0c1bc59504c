//! The background sync task: one thread with its own [`Store`] on the same data dir, so a
//! slow link never holds the lock the UI's commands take.
//!
//! When the device is enrolled it syncs shortly after each save (saves in quick succession
//! make one sync), every few minutes; after a network failure or a "not now" refusal again
//! with doubling backoff (after a network failure also at once when a cheap TCP probe finds
//! the bureau reachable again); after any other error on the regular period. Every change
//! of state is published (the app emits it to the UI as [`SYNC_EVENT`]).
//!
//! [`SYNC_EVENT`]: fieldlog_app_api::SYNC_EVENT

use crate::error::command_error;
use fieldlog_app_api::SyncState;
use fieldlog_core::{Options, Store};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Saves within this time of each other make one sync.
const DEBOUNCE: Duration = Duration::from_secs(2);
/// A synced, idle device checks in this often.
const PERIOD: Duration = Duration::from_secs(5 * 60);
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// While offline, how often to probe whether the bureau answers again.
const PROBE_EVERY: Duration = Duration::from_secs(10);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the task should look at sync now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nudge {
    Saved,
    Now,
}

/// The commands' side of the task: nudges it and reads the latest state.
#[derive(Debug, Clone)]
pub struct SyncHandle {
    nudges: Sender<Nudge>,
    state: Arc<Mutex<SyncState>>,
}

impl SyncHandle {
    /// A record was saved: sync soon.
    pub fn saved(&self) {
        // A stopped task (the app is closing) has nothing left to do.
        let _ = self.nudges.send(Nudge::Saved);
    }

    /// Sync now (the person asked, or the device just enrolled).
    pub fn now(&self) {
        let _ = self.nudges.send(Nudge::Now);
    }

    pub fn enrolled(&self) {
        self.now();
    }

    pub fn state(&self) -> SyncState {
        lock(&self.state).clone()
    }

    /// A handle whose nudges go nowhere, for tests of the commands alone.
    pub fn detached() -> SyncHandle {
        let (nudges, _) = mpsc::channel();
        SyncHandle {
            nudges,
            state: Arc::new(Mutex::new(SyncState::NotEnrolled)),
        }
    }
}

/// Starts the task on its own thread. `publish` hears every new state.
pub fn spawn(
    data_dir: PathBuf,
    publish: impl Fn(&SyncState) + Send + 'static,
) -> std::io::Result<SyncHandle> {
    let (nudges, inbox) = mpsc::channel();
    let state = Arc::new(Mutex::new(SyncState::NotEnrolled));
    let handle = SyncHandle {
        nudges,
        state: state.clone(),
    };
    let mut worker = Worker {
        data_dir,
        store: None,
        state,
        publish: Box::new(publish),
        next: Some(Instant::now()),
        backoff: FIRST_BACKOFF,
        offline_url: None,
        next_probe: Instant::now(),
    };
    std::thread::Builder::new()
        .name("fieldlog-sync".into())
        .spawn(move || worker.run(&inbox))?;
    Ok(handle)
}

struct Worker {
    data_dir: PathBuf,
    store: Option<Store>,
    state: Arc<Mutex<SyncState>>,
    publish: Box<dyn Fn(&SyncState) + Send>,
    /// When to try next; `None` waits for a nudge.
    next: Option<Instant>,
    backoff: Duration,
    /// The bureau's URL while it is unreachable.
    offline_url: Option<String>,
    next_probe: Instant,
}

impl Worker {
    fn run(&mut self, inbox: &Receiver<Nudge>) {
        loop {
            let now = Instant::now();
            let mut wake = self.next.map(|t| t.saturating_duration_since(now));
            if self.offline_url.is_some() {
                let probe = self.next_probe.saturating_duration_since(now);
                wake = Some(wake.map_or(probe, |w| w.min(probe)));
            }
            let nudge = match wake {
                Some(timeout) => inbox.recv_timeout(timeout),
                None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let now = Instant::now();
            match nudge {
                Ok(Nudge::Saved) => self.next = Some(now + DEBOUNCE),
                Ok(Nudge::Now) => self.next = Some(now),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if let Some(url) = &self.offline_url
                && now >= self.next_probe
            {
                self.next_probe = now + PROBE_EVERY;
                if reachable(url) {
                    self.next = Some(now);
                }
            }
            if self.next.is_some_and(|t| t <= now) {
                self.attempt();
            }
        }
    }

    fn set(&self, state: SyncState) {
        *lock(&self.state) = state.clone();
        (self.publish)(&state);
    }

    fn attempt(&mut self) {
        self.next = None;
        let mut store = match self.store.take() {
            Some(store) => store,
            None => match Store::open(&self.data_dir, Options::default()) {
                Ok(store) => store,
                Err(fieldlog_core::Error::NotInitialized { .. }) => {
                    return self.set(SyncState::NotEnrolled);
                }
                Err(error) => return self.needs_attention(&error),
            },
        };
        self.sync_with(&mut store);
        self.store = Some(store);
    }

    fn sync_with(&mut self, store: &mut Store) {
        let enrollment = match store.enrollment() {
            Ok(Some(enrollment)) => enrollment,
            Ok(None) => return self.set(SyncState::NotEnrolled),
            Err(error) => return self.needs_attention(&error),
        };
        self.set(syncing(&fieldlog_core::SyncSummary::default()));
        let result = fieldlog_core::sync::sync(store, |so_far| self.set(syncing(so_far)));
        let status = store.sync_status();
        match (result, status) {
            (Ok(_), Ok(status)) => {
                self.offline_url = None;
                self.backoff = FIRST_BACKOFF;
                self.next = Some(Instant::now() + PERIOD);
                let at = status
                    .enrollment
                    .and_then(|e| e.last_sync_at)
                    .unwrap_or_default();
                self.set(SyncState::Synced {
                    at,
                    waiting_changes: status.waiting_changes,
                    waiting_photos: status.waiting_photos.photos,
                });
            }
            (Err(fieldlog_core::Error::Network { .. }), _) => {
                let now = Instant::now();
                self.next = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                self.next_probe = now + PROBE_EVERY;
                self.offline_url = Some(enrollment.url);
                self.set(SyncState::Offline {
                    last_sync_at: enrollment.last_sync_at,
                });
            }
            // "Not now" from a bureau that is busy or rate-limits this device: back off as
            // after a network failure, and say why.
            (Err(error @ fieldlog_core::Error::Refused { reason, .. }), _)
                if reason.is_temporary() =>
            {
                tracing::info!(%error, "bureau asked to come back later");
                self.next = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                self.set(SyncState::NeedsAttention {
                    error: command_error(&error),
                });
            }
            (Err(error), _) | (Ok(_), Err(error)) => self.needs_attention(&error),
        }
    }

    /// A failure a person must look at; tried again on the regular period all the same.
    fn needs_attention(&mut self, error: &fieldlog_core::Error) {
        tracing::warn!(%error, "sync needs attention");
        self.next = Some(Instant::now() + PERIOD);
        self.set(SyncState::NeedsAttention {
            error: command_error(error),
        });
    }
}

fn syncing(so_far: &fieldlog_core::SyncSummary) -> SyncState {
    SyncState::Syncing {
        rounds: so_far.rounds,
        sent: so_far.sent,
        received: so_far.received,
        photos_done: so_far.photos_done,
        photos_total: so_far.photos_total,
        photo_bytes_done: so_far.photo_bytes_done,
        photo_bytes_total: so_far.photo_bytes_total,
    }
}

/// Whether a TCP connection to the URL's host and port opens.
fn reachable(url: &str) -> bool {
    let (default_port, rest) = match url.split_once("://") {
        Some(("https", rest)) => (443, rest),
        Some((_, rest)) => (80, rest),
        None => (80, url),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    with_port.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|addr| TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok())
    })
}

fn lock(state: &Mutex<SyncState>) -> std::sync::MutexGuard<'_, SyncState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_finds_a_listening_port_and_not_a_closed_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(reachable(&format!("http://127.0.0.1:{port}/")));
        drop(listener);
        assert!(!reachable(&format!("http://127.0.0.1:{port}")));
    }
}
