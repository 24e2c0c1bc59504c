//! What the bureau counts for Prometheus (`prometheus-client`, the Prometheus project's own
//! client), served as OpenMetrics text on `GET /metrics` of the metrics listener only
//! ([`crate::ServeOptions::metrics`]): the API port faces devices on the internet, and these
//! numbers (devices, traffic) are for the operator's scraper on a private address.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `fieldlog_bureau_http_requests_total` | counter | `route`, `method`, `status` | requests answered, by route template (`/v1/blobs/{sha256}`, never the raw path; `unmatched` for no route) |
//! | `fieldlog_bureau_http_refusals_total` | counter | `route`, `reason` | requests refused, by the protocol's refusal key |
//! | `fieldlog_bureau_http_received_bytes_total` | counter | `route` | request body bytes read |
//! | `fieldlog_bureau_http_sent_bytes_total` | counter | `route` | response body bytes written |
//! | `fieldlog_bureau_sync_rounds_total` | counter | `outcome` | sync rounds: `answered`, a refusal key, or `failed` (a 500) |
//! | `fieldlog_bureau_sync_round_duration_seconds` | histogram | | answered rounds, from the request head to the answer ready (body upload included) |
//! | `fieldlog_bureau_sync_changes_accepted_total` | counter | | changes new to the bureau, stored |
//! | `fieldlog_bureau_sync_changes_not_taken_total` | counter | | changes of answered rounds not stored: already held, carried ones left out, or waiting for their dependencies |
//! | `fieldlog_bureau_sync_changes_refused_total` | counter | `reason` | changes of rounds refused after decoding (a refusal refuses the whole round) |
//! | `fieldlog_bureau_blob_stored_bytes` | gauge | | bytes of complete photo files held (partial uploads not counted) |
//! | `fieldlog_bureau_blob_files` | gauge | | complete photo files held |
//! | `fieldlog_bureau_devices_active` | gauge | | distinct devices with a sync round answered in the last 24 h, counted since the process started (a restart starts from 0) |
//! | `fieldlog_bureau_devices_enrolled` | gauge | | enrolled devices not revoked |
//! | `fieldlog_bureau_connections_open` | gauge | | connections being served |
//! | `fieldlog_bureau_connections_turned_away_total` | counter | `answer` | connections over the cap: `busy` (answered 503) or `closed` |
//!
//! The gauges about stored things are measured when scraped (a walk of the blob directory,
//! one query for the devices), so they are right after a restart or a restore.

use crate::Bureau;
use axum::body::{Body, Bytes};
use fieldlog_domain::DeviceId;
use fieldlog_domain::sync::Refusal;
use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::path::Path;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A device counts as active this long after its last answered round.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Upper bounds of the sync round latency buckets, in seconds (a round may take up to a
/// device's 120 s timeout on a poor link).
const ROUND_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    route: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabels {
    answer: String,
}

/// The bureau's metrics; one per [`crate::serve`], shared by its connections.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    received: Family<RouteLabels, Counter>,
    sent: Family<RouteLabels, Counter>,
    rounds: Family<OutcomeLabels, Counter>,
    round_seconds: Histogram,
    accepted: Counter,
    not_taken: Counter,
    refused: Family<ReasonLabels, Counter>,
    blob_bytes: Gauge,
    blob_files: Gauge,
    active: Gauge,
    enrolled: Gauge,
    open: Gauge,
    turned_away: Family<AnswerLabels, Counter>,
    /// When each device's last round was answered.
    last_round: Mutex<HashMap<DeviceId, Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("fieldlog_bureau");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by route template, method and status",
            requests.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "http_refusals",
            "Requests refused, by route template and refusal reason",
            refusals.clone(),
        );
        let received = Family::<RouteLabels, Counter>::default();
        registry.register_with_unit(
            "http_received",
            "Request body bytes read, by route template",
            Unit::Bytes,
            received.clone(),
        );
        let sent = Family::<RouteLabels, Counter>::default();
        registry.register_with_unit(
            "http_sent",
            "Response body bytes written, by route template",
            Unit::Bytes,
            sent.clone(),
        );
        let rounds = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sync_rounds",
            "Sync rounds: answered, refused (by reason) or failed",
            rounds.clone(),
        );
        let round_seconds = Histogram::new(ROUND_BUCKETS);
        registry.register_with_unit(
            "sync_round_duration",
            "Answered sync rounds, from the request head to the answer ready",
            Unit::Seconds,
            round_seconds.clone(),
        );
        let accepted = Counter::default();
        registry.register(
            "sync_changes_accepted",
            "Changes new to the bureau, stored",
            accepted.clone(),
        );
        let not_taken = Counter::default();
        registry.register(
            "sync_changes_not_taken",
            "Changes of answered rounds not stored (already held, left out, or waiting for dependencies)",
            not_taken.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "sync_changes_refused",
            "Changes of refused rounds, by refusal reason",
            refused.clone(),
        );
        let blob_bytes = Gauge::default();
        registry.register_with_unit(
            "blob_stored",
            "Bytes of complete photo files held",
            Unit::Bytes,
            blob_bytes.clone(),
        );
        let blob_files = Gauge::default();
        registry.register(
            "blob_files",
            "Complete photo files held",
            blob_files.clone(),
        );
        let active = Gauge::default();
        registry.register(
            "devices_active",
            "Distinct devices with a sync round answered in the last 24 h (since the process started)",
            active.clone(),
        );
        let enrolled = Gauge::default();
        registry.register(
            "devices_enrolled",
            "Enrolled devices not revoked",
            enrolled.clone(),
        );
        let open = Gauge::default();
        registry.register("connections_open", "Connections being served", open.clone());
        let turned_away = Family::<AnswerLabels, Counter>::default();
        registry.register(
            "connections_turned_away",
            "Connections over the cap: answered busy, or closed",
            turned_away.clone(),
        );
        Metrics {
            registry,
            requests,
            refusals,
            received,
            sent,
            rounds,
            round_seconds,
            accepted,
            not_taken,
            refused,
            blob_bytes,
            blob_files,
            active,
            enrolled,
            open,
            turned_away,
            last_round: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one answered request.
    pub(crate) fn request(&self, route: &str, method: &str, status: u16, refusal: Option<Refusal>) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        if let Some(reason) = refusal {
            self.refusals
                .get_or_create(&RefusalLabels {
                    route: route.to_string(),
                    reason: reason_key(reason),
                })
                .inc();
        }
    }

    /// The counter of body bytes read on `route`.
    pub(crate) fn received(&self, route: &str) -> Counter {
        self.received
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .clone()
    }

    /// The counter of body bytes written on `route`.
    pub(crate) fn sent(&self, route: &str) -> Counter {
        self.sent
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .clone()
    }

    /// An answered round: its device, how long it took, and what became of its changes.
    pub(crate) fn round_answered(
        &self,
        device: DeviceId,
        took: Duration,
        sent: usize,
        accepted: u32,
    ) {
        self.rounds
            .get_or_create(&OutcomeLabels {
                outcome: "answered".into(),
            })
            .inc();
        self.round_seconds.observe(took.as_secs_f64());
        self.accepted.inc_by(u64::from(accepted));
        self.not_taken
            .inc_by((sent as u64).saturating_sub(u64::from(accepted)));
        self.last_rounds().insert(device, Instant::now());
    }

    /// A refused round, with the changes it carried when it was decoded that far.
    pub(crate) fn round_refused(&self, reason: Refusal, changes: Option<usize>) {
        let reason = reason_key(reason);
        self.rounds
            .get_or_create(&OutcomeLabels {
                outcome: reason.clone(),
            })
            .inc();
        if let Some(n) = changes {
            self.refused
                .get_or_create(&ReasonLabels { reason })
                .inc_by(n as u64);
        }
    }

    /// A round that failed inside the bureau (answered 500).
    pub(crate) fn round_failed(&self) {
        self.rounds
            .get_or_create(&OutcomeLabels {
                outcome: "failed".into(),
            })
            .inc();
    }

    /// A connection is served until the guard drops.
    pub(crate) fn connection(self: &std::sync::Arc<Self>) -> OpenConnection {
        self.open.inc();
        OpenConnection(self.clone())
    }

    /// A connection over the cap, answered `busy` or closed.
    pub(crate) fn turned_away(&self, answer: &str) {
        self.turned_away
            .get_or_create(&AnswerLabels {
                answer: answer.to_string(),
            })
            .inc();
    }

    fn last_rounds(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, Instant>> {
        // A map of instants is never left half-updated.
        self.last_round
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Measures the gauges of what is stored (walks the blob directory, reads the devices)
    /// and the active devices; run it on the blocking pool.
    pub fn measure(&self, bureau: &Bureau) {
        match blob_usage(&crate::http::blob_root(bureau)) {
            Ok((files, bytes)) => {
                self.blob_files.set(gauge_value(files));
                self.blob_bytes.set(gauge_value(bytes));
            }
            Err(e) => tracing::warn!(error = %e, "measuring the blob directory"),
        }
        match bureau.devices() {
            Ok(devices) => {
                let enrolled = devices.iter().filter(|d| d.revoked_at.is_none()).count();
                self.enrolled.set(gauge_value(enrolled as u64));
            }
            Err(e) => {
                tracing::warn!(error = %crate::http::error_chain(&e), "counting enrolled devices")
            }
        }
        let mut last = self.last_rounds();
        last.retain(|_, at| at.elapsed() < ACTIVE_WINDOW);
        self.active.set(gauge_value(last.len() as u64));
    }

    /// Everything, as OpenMetrics text.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// One served connection, counted in `connections_open` until dropped.
#[derive(Debug)]
pub(crate) struct OpenConnection(std::sync::Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.dec();
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The protocol's key of a refusal (`too_large`…).
pub(crate) fn reason_key(reason: Refusal) -> String {
    match serde_json::to_value(reason) {
        Ok(serde_json::Value::String(key)) => key,
        _ => format!("{reason:?}"),
    }
}

/// Complete blobs under `root` (`<2 hex>/<sha256>.jpg`; `partial/` is skipped): how many,
/// and their bytes. A missing directory holds none.
fn blob_usage(root: &Path) -> std::io::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0u64, 0u64);
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let is_prefix = name.len() == 2
            && name
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit()));
        if !is_prefix || !entry.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(entry.path())? {
            let file = file?;
            let meta = file.metadata()?;
            if meta.is_file() && file.path().extension().is_some_and(|e| e == "jpg") {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((files, bytes))
}

/// A body that adds the bytes passing through it to a counter.
#[derive(Debug)]
pub(crate) struct Counted {
    inner: Body,
    counter: Counter,
}

impl Counted {
    pub(crate) fn new(inner: Body, counter: Counter) -> Counted {
        Counted { inner, counter }
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.counter.inc_by(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            // Unwrapped, so the cause (a body timeout) is one level down as before.
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into_inner()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_blobs_count() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let write = |rel: &str, len: usize| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap_or(dir.path()))
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(path, vec![0u8; len]).unwrap_or_else(|e| panic!("{e}"));
        };
        write("ab/ab01.jpg", 10);
        write("ab/ab02.jpg", 5);
        write("0f/0f03.jpg", 7);
        write("partial/dev/ab04", 100);
        write("ab/ab05.tmp", 100);
        assert_eq!(blob_usage(dir.path()).ok(), Some((3, 22)));
        assert_eq!(blob_usage(&dir.path().join("none")).ok(), Some((0, 0)));
    }
}
