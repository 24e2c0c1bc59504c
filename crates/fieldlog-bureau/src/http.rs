//! The HTTP API (see [`fieldlog_domain::sync`] for the contract):
//!
//! - `POST /v1/enroll`: JSON `EnrollRequest` → JSON `EnrollResponse`.
//! - `POST /v1/sync`: bearer token, zstd(postcard) both ways.
//! - `HEAD`, `PATCH`, `GET /v1/blobs/<sha256>`: photo files, uploaded resumably.
//! - `GET /healthz` → `ok`: the process answers (liveness).
//! - `GET /readyz` → `ready`, or `503` with `not ready: <what failed>` when the storage does
//!   not answer a cheap query within [`READY_TIMEOUT`], the blob directory is missing, or
//!   the blob store (an S3 bucket) does not answer within the same time (readiness: a load
//!   balancer sends devices elsewhere until it is back).
//!
//! A refusal is its HTTP status with a JSON [`ErrorBody`]; any other failure is a 500 with
//! a plain-text body (and a log line), which a device treats as "try again later". Storage
//! calls run on the blocking pool, so a slow disk never stalls the async workers, and a
//! round whose client hangs up still finishes (atomically) once started. Every request with
//! a valid token counts against its device's rate, enrollment against the address's
//! ([`crate::limits`]); timeouts and the connection cap are [`crate::net`]'s.

use crate::error::Error;
use crate::limits::Limits;
use crate::metrics::{Counted, Metrics};
use crate::{Bureau, DeviceRecord};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fieldlog_domain::sync::{
    BLOB_CONTENT_TYPE, EnrollRequest, ErrorBody, ErrorDetail, MAX_BODY_BYTES, MEMBERS_PATH,
    MembersResponse, Refusal, SYNC_CONTENT_TYPE, UPLOAD_LENGTH, UPLOAD_OFFSET,
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// An enrollment request is a code, a name and a few actor ids.
const MAX_ENROLL_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share: the bureau, the rate limits and the metrics.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    bureau: Bureau,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
}

impl Api {
    pub(crate) fn new(bureau: Bureau) -> Api {
        let limits = Arc::new(Limits::new(&bureau.config().serve));
        Api {
            bureau,
            limits,
            metrics: Arc::new(Metrics::new()),
        }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// The client's address, which [`crate::serve`] puts on each request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub std::net::SocketAddr);

/// The routes, with rate limits from the bureau's config. Timeouts and the connection cap
/// come with [`crate::serve`]; a router served some other way has none.
pub fn router(bureau: Bureau) -> Router {
    router_for(Api::new(bureau))
}

pub(crate) fn router_for(api: Api) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/v1/enroll", post(enroll))
        .route("/v1/sync", post(sync))
        .route(MEMBERS_PATH, get(members))
        .route(
            "/v1/blobs/{sha256}",
            get(fetch_blob).head(blob_offset).patch(upload_blob),
        )
        .layer(axum::middleware::from_fn_with_state(api.clone(), observe))
        .with_state(api)
}

/// The routes of the metrics listener: `/metrics`, and `/healthz` and `/readyz` for a
/// checker on the same private address.
pub(crate) fn metrics_router(api: Api) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(api)
}

/// `GET /metrics`: measures what is stored, then every metric as OpenMetrics text.
async fn metrics(State(api): State<Api>) -> Result<Response, ApiError> {
    let metrics = api.metrics.clone();
    let bureau = api.bureau.clone();
    let text = blocking(move || {
        metrics.measure(&bureau);
        Ok(metrics.encode())
    })
    .await?
    .map_err(|e| {
        tracing::error!(error = %e, "encoding the metrics");
        ApiError::Internal
    })?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

/// Around every API request: a span with its route template, method and (once its token
/// is checked) device; the request counted by route and status, its body bytes both
/// ways, and one log line when answered (`debug` for health checks). No header is logged,
/// so no token is.
async fn observe(
    State(api): State<Api>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_string();
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        device = tracing::field::Empty,
        sha256 = tracing::field::Empty
    );
    let started = std::time::Instant::now();
    let metrics = api.metrics.clone();
    let received = metrics.received(&route);
    let request = request.map(|body| Body::new(Counted::new(body, received)));
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let refusal = response.extensions().get::<Refusal>().copied();
    metrics.request(&route, method.as_str(), status, refusal);
    // Milliseconds, to the microsecond.
    let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
    span.in_scope(|| {
        if matches!(route.as_str(), "/healthz" | "/readyz") {
            tracing::debug!(status, latency_ms, "answered");
        } else {
            tracing::info!(status, latency_ms, "answered");
        }
    });
    let sent = metrics.sent(&route);
    response.map(|body| Body::new(Counted::new(body, sent)))
}

async fn enroll(State(api): State<Api>, request: Request) -> Result<Response, ApiError> {
    {
        if let Some(Peer(peer)) = request.extensions().get::<Peer>() {
            api.limits.enroll(peer.ip())?;
        }
        let bureau = api.bureau;
        let body = read_body(request.into_body(), MAX_ENROLL_BODY_BYTES).await?;
        let request: EnrollRequest = serde_json::from_slice(&body).map_err(|e| {
            Error::refused(
                Refusal::Malformed,
                format!("the body is not an enrollment request: {e}"),
            )
        })?;
        let response = blocking(move || bureau.enroll(&request)).await?;
        let json = serde_json::to_vec(&response).map_err(|e| {
            tracing::error!(error = %e, "encoding an enrollment answer");
            ApiError::Internal
        })?;
        Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
    }
}

async fn sync(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let metrics = api.metrics.clone();
    // How many changes the round carried, once its body is decoded.
    let mut carried = None;
    let round = async {
        let device = device_of(&api, &headers).await?;
        let bureau = api.bureau.clone();
        expect_header(&headers, header::CONTENT_TYPE, SYNC_CONTENT_TYPE)?;
        expect_header(&headers, header::CONTENT_ENCODING, "zstd")?;
        let body = read_body(body, MAX_BODY_BYTES).await?;
        let id = device.id;
        // `Bureau::sync`'s steps, so the changes can be counted: those sent alone once the
        // body decodes, and with those in documents sent whole once they decode.
        let (sent, answered) = blocking(move || {
            let request = crate::sync::decode_body(&body)?;
            let alone: usize = request.docs.iter().map(|doc| doc.changes.len()).sum();
            let round = match bureau.round(&device, request) {
                Ok(round) => round,
                Err(e) => return Ok((alone, Err(e))),
            };
            let sent = round.carried();
            let answered = bureau.answer(&device, round).and_then(|response| {
                let accepted = response.accepted;
                crate::sync::encode_response(&response).map(|answer| (accepted, answer))
            });
            Ok((sent, answered))
        })
        .await?;
        carried = Some(sent);
        let (accepted, answer) = answered?;
        Ok::<_, ApiError>((id, sent, accepted, answer))
    };
    match round.await {
        Ok((device, sent, accepted, answer)) => {
            metrics.round_answered(device, started.elapsed(), sent, accepted);
            Ok((
                [
                    (header::CONTENT_TYPE, SYNC_CONTENT_TYPE),
                    (header::CONTENT_ENCODING, "zstd"),
                ],
                answer,
            )
                .into_response())
        }
        Err(e) => {
            match &e {
                ApiError::Refused { reason, .. } => metrics.round_refused(*reason, carried),
                ApiError::Internal => metrics.round_failed(),
            }
            Err(e)
        }
    }
}

/// How long `/readyz` waits for the storage to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the bureau is not ready to serve devices.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the storage did not answer within {0:?}")]
    StorageTimeout(Duration),
    #[error("the storage failed a query")]
    Storage(#[source] Error),
    /// The blob directory is missing, or the blob store refused or failed.
    #[error(transparent)]
    Blobs(#[from] crate::blobstore::BlobStoreError),
    #[error("{0} did not answer within {1:?}")]
    BlobsTimeout(String, Duration),
}

/// Whether the storage answers a cheap query (the teams, a handful of rows, through the
/// same [`crate::Storage`] every request uses), the blob directory is there and the blob
/// store answers ([`crate::Blobs::check`]).
pub async fn ready(bureau: &Bureau) -> Result<(), NotReady> {
    let checked = bureau.clone();
    let query = tokio::task::spawn_blocking(move || checked.teams().map(drop));
    match tokio::time::timeout(READY_TIMEOUT, query).await {
        Err(_) => return Err(NotReady::StorageTimeout(READY_TIMEOUT)),
        Ok(Err(e)) => return Err(NotReady::Storage(Error::Task(e))),
        Ok(Ok(Err(e))) => return Err(NotReady::Storage(e)),
        Ok(Ok(Ok(()))) => {}
    }
    let blobs = bureau.blobs();
    match tokio::time::timeout(READY_TIMEOUT, blobs.check()).await {
        Err(_) => Err(NotReady::BlobsTimeout(
            blobs.store().location(),
            READY_TIMEOUT,
        )),
        Ok(checked) => Ok(checked?),
    }
}

/// The blob directory (`<dir>/<2 hex>/<sha256>.jpg` for complete files in the default
/// store, and `<dir>/partial/` for uploads in progress).
pub(crate) fn blob_root(bureau: &Bureau) -> std::path::PathBuf {
    bureau.blobs().dir().to_path_buf()
}

/// `GET /readyz`: `ready`, or 503 naming what failed.
async fn readyz(State(api): State<Api>) -> Response {
    match ready(&api.bureau).await {
        Ok(()) => ([(header::CACHE_CONTROL, "no-store")], "ready").into_response(),
        Err(e) => {
            let reason = error_chain(&e);
            tracing::warn!(reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CACHE_CONTROL, "no-store")],
                format!("not ready: {reason}"),
            )
                .into_response()
        }
    }
}

/// The members of the teams in the device's scope.
async fn members(State(api): State<Api>, headers: HeaderMap) -> Result<Response, ApiError> {
    {
        let device = device_of(&api, &headers).await?;
        let bureau = api.bureau;
        let members = blocking(move || bureau.members_for(&device)).await?;
        let json = serde_json::to_vec(&MembersResponse { members }).map_err(|e| {
            tracing::error!(error = %e, "encoding the members");
            ApiError::Internal
        })?;
        Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
    }
}

/// The device whose bearer token the request carries (and records it in the request's
/// span), if it is within its rate.
async fn device_of(api: &Api, headers: &HeaderMap) -> Result<DeviceRecord, ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        Error::refused(
            Refusal::Unauthenticated,
            "send the device token as `Authorization: Bearer <token>`",
        )
    })?;
    let bureau = api.bureau.clone();
    let device = blocking(move || bureau.authenticate(&token)).await?;
    tracing::Span::current().record("device", tracing::field::display(&device.id));
    api.limits.device(device.id)?;
    Ok(device)
}

/// The device, and the length of the blob it may touch.
async fn blob_access(
    api: &Api,
    headers: &HeaderMap,
    sha256: &str,
) -> Result<(DeviceRecord, u64), ApiError> {
    let device = device_of(api, headers).await?;
    let (bureau, sha256, checked) = (api.bureau.clone(), sha256.to_string(), device.clone());
    let length = blocking(move || bureau.blob_length(&checked, &sha256)).await?;
    Ok((device, length))
}

/// `HEAD`: how many bytes of the blob the bureau holds for this device.
async fn blob_offset(
    State(api): State<Api>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("sha256", sha256.as_str());
    {
        let (device, length) = blob_access(&api, &headers, &sha256).await?;
        let blobs = api.bureau.blobs();
        let _lock = blobs.lock(device.id, &sha256).await;
        let held = blobs.held(device.id, &sha256, length).await?;
        Ok(offset_answer(StatusCode::NO_CONTENT, held.offset(), length))
    }
}

/// `PATCH`: appends the body at `Upload-Offset`; checks the sha256 once the blob is whole.
async fn upload_blob(
    State(api): State<Api>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("sha256", sha256.as_str());
    {
        let (device, length) = blob_access(&api, &headers, &sha256).await?;
        expect_header(&headers, header::CONTENT_TYPE, BLOB_CONTENT_TYPE)?;
        let offset = number_header(&headers, UPLOAD_OFFSET)?;
        if number_header(&headers, UPLOAD_LENGTH)? != length {
            crate::blobs::discard(body, length).await;
            return Err(Error::refused(
                Refusal::UnknownBlob,
                format!("the visit showing `{sha256}` records it as {length} bytes"),
            )
            .into());
        }
        if offset > length {
            crate::blobs::discard(body, length).await;
            return Err(Error::refused(
                Refusal::Malformed,
                format!("`{UPLOAD_OFFSET}: {offset}` is past the blob's {length} bytes"),
            )
            .into());
        }
        let blobs = api.bureau.blobs();
        let _lock = blobs.lock(device.id, &sha256).await;
        match blobs.append(device.id, &sha256, offset, length, body).await {
            Ok(held) => Ok(offset_answer(StatusCode::NO_CONTENT, held.offset(), length)),
            Err(Error::OffsetMismatch { held }) => {
                let mut answer = ApiError::refused(
                    Refusal::OffsetMismatch,
                    Error::OffsetMismatch { held }.to_string(),
                )
                .into_response();
                answer
                    .headers_mut()
                    .insert(UPLOAD_OFFSET, HeaderValue::from(held));
                Ok(answer)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// `GET`: the blob's bytes, once it is complete.
async fn fetch_blob(
    State(api): State<Api>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("sha256", sha256.as_str());
    {
        blob_access(&api, &headers, &sha256).await?;
        match api.bureau.blobs().open(&sha256).await? {
            // Streamed from the store as it is read.
            Some(opened) => Ok((
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
                    (header::CONTENT_LENGTH, HeaderValue::from(opened.length)),
                ],
                Body::from_stream(opened.bytes),
            )
                .into_response()),
            None => Err(Error::refused(
                Refusal::UnknownBlob,
                format!("the bureau does not hold all of `{sha256}` yet"),
            )
            .into()),
        }
    }
}

fn offset_answer(status: StatusCode, offset: u64, length: u64) -> Response {
    let mut answer = status.into_response();
    let headers = answer.headers_mut();
    headers.insert(UPLOAD_OFFSET, HeaderValue::from(offset));
    headers.insert(UPLOAD_LENGTH, HeaderValue::from(length));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

fn number_header(headers: &HeaderMap, name: &str) -> Result<u64, Error> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            Error::refused(
                Refusal::Malformed,
                format!("an upload carries `{name}: <bytes>`"),
            )
        })
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

fn expect_header(headers: &HeaderMap, name: header::HeaderName, want: &str) -> Result<(), Error> {
    let given = headers.get(&name).map(HeaderValue::to_str);
    match given {
        Some(Ok(value)) if value.trim().eq_ignore_ascii_case(want) => Ok(()),
        _ => Err(Error::refused(
            Refusal::Malformed,
            format!("this request carries `{name}: {want}`"),
        )),
    }
}

/// Reads a body of at most `limit` bytes; a larger one is refused as `too_large`, one that
/// timed out as `too_slow`.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Error> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Error::refused(
            Refusal::TooLarge,
            format!("the body is larger than {limit} bytes"),
        )),
        Err(e) if crate::net::is_body_timeout(e.as_ref()) => Err(Error::refused(
            Refusal::TooSlow,
            format!("the body was cut: {}", error_chain(e.as_ref())),
        )),
        Err(e) => Err(Error::refused(
            Refusal::Malformed,
            format!("the body could not be read: {e}"),
        )),
    }
}

/// Runs storage work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(f)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::from(Error::Task(e))),
    }
}

/// What a handler fails with: a refusal the device is told about (with how long to wait
/// for a temporary one), or an internal error that is logged and answered with a bare 500.
#[derive(Debug)]
pub(crate) enum ApiError {
    Refused {
        reason: Refusal,
        message: String,
        retry_after: Option<Duration>,
    },
    Internal,
}

impl ApiError {
    pub(crate) fn refused(reason: Refusal, message: impl Into<String>) -> ApiError {
        ApiError::Refused {
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Adds `Retry-After` to a refusal.
    pub(crate) fn retry_after(self, wait: Duration) -> ApiError {
        match self {
            ApiError::Refused {
                reason, message, ..
            } => ApiError::Refused {
                reason,
                message,
                retry_after: Some(wait),
            },
            ApiError::Internal => ApiError::Internal,
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Refused { reason, detail } => ApiError::refused(reason, detail),
            other => {
                tracing::error!(error = %error_chain(&other), "request failed");
                ApiError::Internal
            }
        }
    }
}

/// The HTTP status of each refusal.
pub fn status_of(reason: Refusal) -> StatusCode {
    match reason {
        Refusal::Unauthenticated | Refusal::Revoked => StatusCode::UNAUTHORIZED,
        Refusal::BadCode
        | Refusal::ForgedActor
        | Refusal::OutOfScope
        | Refusal::RegistryEdit
        | Refusal::NotCoordinator => StatusCode::FORBIDDEN,
        Refusal::TooLarge | Refusal::TooManyChanges => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::Malformed | Refusal::UnsupportedProtocol => StatusCode::BAD_REQUEST,
        Refusal::UnknownBlob => StatusCode::NOT_FOUND,
        Refusal::OffsetMismatch => StatusCode::CONFLICT,
        Refusal::ChecksumMismatch => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Refusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::TooSlow => StatusCode::REQUEST_TIMEOUT,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Refused {
                reason,
                message,
                retry_after,
            } => {
                // `detail`: an event's `message` is its own text.
                tracing::info!(
                    reason = %crate::metrics::reason_key(reason),
                    detail = %message,
                    "refused"
                );
                let body = ErrorBody {
                    error: ErrorDetail { reason, message },
                };
                let json = serde_json::to_vec(&body).unwrap_or_default();
                let mut answer = (
                    status_of(reason),
                    [(header::CONTENT_TYPE, "application/json")],
                    json,
                )
                    .into_response();
                if let Some(wait) = retry_after {
                    answer
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
                }
                // For the metrics, which count refusals by reason.
                answer.extensions_mut().insert(reason);
                if reason == Refusal::TooSlow {
                    // The rest of the body is not read, so the connection cannot carry
                    // another request; say so (RFC 9110, 15.5.9) rather than let a client
                    // send its next request into a closing connection.
                    answer
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                answer
            }
            ApiError::Internal => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

/// An error and its causes on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}
