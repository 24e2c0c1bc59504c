//! Connections: how long the bureau waits for a client, how many it serves at once, how it
//! stops. axum's own `serve` has no timeouts, so connections are served here with hyper:
//!
//! - headers must arrive within [`ServeConfig::header_timeout`], which also closes a
//!   kept-alive connection left idle that long (hyper restarts the timer when it goes idle);
//! - a body is cut when it pauses longer than [`ServeConfig::body_stall_timeout`] or takes
//!   longer than [`ServeConfig::body_timeout`] ([`TimedBody`]); handlers see a body error;
//! - at most [`ServeConfig::max_connections`] are served; a quarter more again are answered
//!   `busy` (503) and closed, any beyond that are closed at once, so open files stay bounded;
//! - on shutdown the listener closes, idle connections close (those that never sent a
//!   whole request head too), and requests in flight get [`ServeConfig::shutdown_grace`];
//!   whatever is left is then cut.

use crate::Bureau;
use crate::http::{ApiError, Peer};
use axum::body::{Body, Bytes};
use axum::response::IntoResponse;
use fieldlog_domain::sync::Refusal;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;
use tracing::Instrument;

/// How the bureau treats connections and clients. The defaults let a phone on a poor 2G
/// link (a few KB/s) finish a 256 KiB photo chunk within its own 120 s round timeout.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Headers must arrive within this; a kept-alive connection idle this long is closed.
    pub header_timeout: Duration,
    /// The longest pause between two pieces of a body.
    pub body_stall_timeout: Duration,
    /// The longest a body may take, from when the bureau starts reading it.
    pub body_timeout: Duration,
    /// The most connections served at once. Keep it well below the process's open-file
    /// limit: each connection may hold a socket and a file (see [`connection_cap`]).
    pub max_connections: usize,
    /// After shutdown starts, how long requests in flight may take before they are cut.
    pub shutdown_grace: Duration,
    /// Requests per enrolled device (every authenticated request counts).
    pub device_rate: RateLimit,
    /// Enrollment requests per network address (per /64 for IPv6).
    pub enroll_rate: RateLimit,
    /// Partial uploads untouched this long are removed when serving starts.
    pub partial_max_age: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            header_timeout: Duration::from_secs(15),
            body_stall_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(120),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(10),
            device_rate: RateLimit::per_minute(1_800),
            enroll_rate: RateLimit::per_minute(60),
            partial_max_age: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// A token bucket: holds `per_minute` requests and refills at that rate, so a client may
/// send a minute's worth at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: NonZeroU32,
}

impl RateLimit {
    /// `n` requests a minute (at least 1).
    pub fn per_minute(n: u32) -> RateLimit {
        RateLimit {
            per_minute: NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// Files kept open besides connections: stdio, the listener, SQLite (two connections with
/// their WAL and shared memory), the runtime's own, and room for blob reads.
const RESERVED_FILES: u64 = 64;
/// Above this many connections, memory for bodies (8 MiB a sync round) runs out first.
const MAX_CONNECTION_CAP: u64 = 4_096;

/// The most connections to serve under an open-file limit of `open_files`: each served
/// connection may hold a socket and a blob file, the `busy` answers (a quarter more) a
/// socket each, and [`RESERVED_FILES`] stay free.
pub fn connection_cap(open_files: u64) -> usize {
    let budget = open_files.saturating_sub(RESERVED_FILES);
    // 2 per connection and 1/4 per connection answered busy: budget / 2.25.
    let cap = (budget * 4 / 9).clamp(1, MAX_CONNECTION_CAP);
    usize::try_from(cap).unwrap_or(1)
}

/// How long a client refused as `busy` is asked to wait.
const BUSY_RETRY_AFTER_SECS: u64 = 5;
/// How long to wait after a failed `accept` (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often rate-limit state for quiet clients is dropped.
const TIDY_EVERY: Duration = Duration::from_secs(60);

/// What [`serve_with`] serves besides the API on its listener.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// Where `GET /metrics` is served (with `/healthz` and `/readyz`), under the same
    /// limits; `None`: nowhere. Keep it on a private address: the API's port faces
    /// devices, and the metrics are the operator's.
    pub metrics: Option<tokio::net::TcpListener>,
    /// TLS for the API's listener (the metrics listener stays plain HTTP); a connection
    /// has [`ServeConfig::header_timeout`] for its handshake.
    pub tls: Option<Arc<crate::tls::Tls>>,
}

/// Serves `bureau` on `listener` until `shutdown` resolves, with the limits of its
/// [`ServeConfig`]; then stops accepting, lets requests in flight finish within
/// `shutdown_grace`, and cuts the rest.
pub async fn serve(
    listener: tokio::net::TcpListener,
    bureau: Bureau,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, bureau, ServeOptions::default(), shutdown).await
}

/// [`serve`], with the metrics listener of `options`.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    bureau: Bureau,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = bureau.config().serve.clone();
    let tidy_bureau = bureau.clone();
    let max_age = config.partial_max_age;
    match tokio::task::spawn_blocking(move || tidy_bureau.blobs().remove_stale(max_age)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(removed)) => tracing::info!(removed, "removed stale partial uploads"),
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::http::error_chain(&e), "removing stale partial uploads")
        }
        Err(e) => tracing::warn!(error = %e, "removing stale partial uploads"),
    }
    let api = crate::http::Api::new(bureau);
    let router = crate::http::router_for(api.clone());
    let metrics_router = crate::http::metrics_router(api.clone());
    let metrics = api.metrics().clone();
    let metrics_listener = options.metrics;
    let tls = options.tls;
    let served = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let refused = Arc::new(Semaphore::new((config.max_connections / 4).max(1)));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut tidy = tokio::time::interval(TIDY_EVERY);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer, router, tls) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = tidy.tick() => {
                api.limits().tidy();
                continue;
            }
            accepted = listener.accept() => {
                let Some((stream, peer)) = accepted_or_wait(accepted).await else {
                    continue;
                };
                (stream, peer, &router, tls.as_ref().map(|tls| tls.acceptor()))
            }
            accepted = accept(metrics_listener.as_ref()) => {
                let Some((stream, peer)) = accepted_or_wait(accepted).await else {
                    continue;
                };
                (stream, peer, &metrics_router, None)
            }
        };
        let span = tracing::debug_span!("connection", %peer);
        if let Ok(permit) = served.clone().try_acquire_owned() {
            let router = router.clone();
            let config = config.clone();
            let stopping = stopping.clone();
            let open = metrics.connection();
            connections.spawn(
                async move {
                    match handshake(stream, tls, config.header_timeout).await {
                        Some(Io::Plain(stream)) => {
                            connection(stream, peer, router, &config, stopping).await;
                        }
                        Some(Io::Tls(stream)) => {
                            connection(*stream, peer, router, &config, stopping).await;
                        }
                        None => {}
                    }
                    drop(open);
                    drop(permit);
                }
                .instrument(span),
            );
        } else if let Ok(permit) = refused.clone().try_acquire_owned() {
            metrics.turned_away("busy");
            tracing::warn!(%peer, "at the connection limit: answering busy");
            let header_timeout = config.header_timeout;
            let stopping = stopping.clone();
            connections.spawn(
                async move {
                    match handshake(stream, tls, header_timeout).await {
                        Some(Io::Plain(stream)) => busy(stream, header_timeout, stopping).await,
                        Some(Io::Tls(stream)) => busy(*stream, header_timeout, stopping).await,
                        None => {}
                    }
                    drop(permit);
                }
                .instrument(span),
            );
        } else {
            metrics.turned_away("closed");
            tracing::warn!(%peer, "far over the connection limit: closing");
            drop(stream);
        }
    }
    drop(listener);
    drop(metrics_listener);
    // Receivers may all be gone already; nothing to tell then.
    let _ = stop.send(true);
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "shutdown grace over: cutting the connections still open"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// A connection as served: plain, or after its TLS handshake.
enum Io {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

/// The connection, after its TLS handshake when `tls` is given; `None` when the handshake
/// failed or took longer than `within`.
async fn handshake(
    stream: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    within: Duration,
) -> Option<Io> {
    let Some(acceptor) = tls else {
        return Some(Io::Plain(stream));
    };
    match tokio::time::timeout(within, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(Io::Tls(Box::new(stream))),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(?within, "TLS handshake too slow");
            None
        }
    }
}

/// Accepts on `listener`, or never when there is none.
async fn accept(
    listener: Option<&tokio::net::TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// The accepted connection; after a failed `accept` (out of file descriptors, or a
/// connection reset while queued), `None` after a pause.
async fn accepted_or_wait(
    accepted: std::io::Result<(tokio::net::TcpStream, SocketAddr)>,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    match accepted {
        Ok(accepted) => Some(accepted),
        Err(e) => {
            tracing::warn!(error = %e, "accepting a connection");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            None
        }
    }
}

/// Serves one connection until the client leaves, a timeout closes it, or shutdown.
async fn connection<I>(
    stream: I,
    peer: SocketAddr,
    router: axum::Router,
    config: &ServeConfig,
    stopping: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (stall, deadline) = (config.body_stall_timeout, config.body_timeout);
    let started = Arc::new(AtomicBool::new(false));
    let service = hyper::service::service_fn({
        let started = started.clone();
        move |request: hyper::Request<Incoming>| {
            started.store(true, Ordering::Relaxed);
            let mut request = request.map(|body| Body::new(TimedBody::new(body, stall, deadline)));
            request.extensions_mut().insert(Peer(peer));
            router.clone().oneshot(request)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = until_stopped(connection, &started, stopping).await {
        tracing::debug!(error = %e, "connection closed");
    }
}

/// Drives `connection` until it ends; on shutdown, closes it at once if no request has
/// started on it yet, and otherwise lets the request in flight finish (hyper closes a
/// kept-alive connection left idle itself).
///
/// hyper's graceful shutdown treats a connection that has not yet sent a whole request
/// head as busy, so without this a client that connected and sent nothing (or half its
/// headers) would hold shutdown for the whole grace.
async fn until_stopped<I, S>(
    connection: hyper::server::conn::http1::Connection<TokioIo<I>, S>,
    started: &AtomicBool,
    mut stopping: watch::Receiver<bool>,
) -> hyper::Result<()>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as HttpBody>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        outcome = connection.as_mut() => outcome,
        _ = stopping.changed() => {
            // The service runs within this task, so no request starts while we look.
            if !started.load(Ordering::Relaxed) {
                return Ok(());
            }
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}

/// Answers every request on the connection `busy` and closes it.
async fn busy<I>(stream: I, header_timeout: Duration, stopping: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let started = Arc::new(AtomicBool::new(false));
    let service = hyper::service::service_fn({
        let started = started.clone();
        move |_: hyper::Request<Incoming>| {
            started.store(true, Ordering::Relaxed);
            async {
                Ok::<_, Infallible>(
                    ApiError::refused(
                        Refusal::Busy,
                        "the bureau is serving as many connections as it can; try again shortly",
                    )
                    .retry_after(Duration::from_secs(BUSY_RETRY_AFTER_SECS))
                    .into_response(),
                )
            }
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(false);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = until_stopped(connection, &started, stopping).await {
        tracing::debug!(error = %e, "busy connection closed");
    }
}

/// Why a body was cut.
#[derive(Debug, thiserror::Error)]
pub enum BodyTimeout {
    #[error("the body paused for more than {0:?}")]
    Stalled(Duration),
    #[error("the body took more than {0:?}")]
    TooLong(Duration),
}

/// A request body that fails with [`BodyTimeout`] when it pauses longer than `stall` or runs
/// past `deadline`, both counted from when it is first read (a request waiting for a lock
/// has not stalled).
#[derive(Debug)]
pub struct TimedBody<B> {
    inner: B,
    stall: Duration,
    deadline: Duration,
    timers: Option<Timers>,
    failed: bool,
}

#[derive(Debug)]
struct Timers {
    stall: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
}

impl<B> TimedBody<B> {
    pub fn new(inner: B, stall: Duration, deadline: Duration) -> TimedBody<B> {
        TimedBody {
            inner,
            stall,
            deadline,
            timers: None,
            failed: false,
        }
    }
}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        let (stall, deadline) = (this.stall, this.deadline);
        let timers = this.timers.get_or_insert_with(|| Timers {
            stall: Box::pin(tokio::time::sleep(stall)),
            deadline: Box::pin(tokio::time::sleep(deadline)),
        });
        let cut = |this: &mut TimedBody<B>, why: BodyTimeout| {
            this.failed = true;
            Poll::Ready(Some(Err(why.into())))
        };
        if timers.deadline.is_elapsed() {
            return cut(this, BodyTimeout::TooLong(deadline));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                timers.stall.as_mut().reset(Instant::now() + stall);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if timers.deadline.as_mut().poll(cx).is_ready() {
                    cut(this, BodyTimeout::TooLong(deadline))
                } else if timers.stall.as_mut().poll(cx).is_ready() {
                    cut(this, BodyTimeout::Stalled(stall))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error` (or one of its causes) is a [`BodyTimeout`].
pub(crate) fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<BodyTimeout>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_room_in_the_open_file_limit() {
        for limit in [256, 1_024, 4_096, 65_536, 1 << 20] {
            let cap = connection_cap(limit) as u64;
            // Served connections with a file each, plus the busy answers, plus the reserve.
            assert!(
                2 * cap + cap / 4 + RESERVED_FILES <= limit,
                "{limit}: {cap}"
            );
        }
        assert_eq!(connection_cap(1_024), 426);
        assert_eq!(connection_cap(1 << 20), 4_096);
        assert_eq!(connection_cap(10), 1, "never zero");
    }
}
