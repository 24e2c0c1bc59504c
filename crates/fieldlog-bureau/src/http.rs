//! The HTTP API (see [`fieldlog_domain::sync`] for the contract):
//!
//! - `POST /v1/enroll`: JSON `EnrollRequest` → JSON `EnrollResponse`.
//! - `POST /v1/sync`: bearer token, zstd(postcard) both ways.
//! - `GET /healthz` → `ok`.
//!
//! A refusal is its HTTP status with a JSON [`ErrorBody`]; any other failure is a 500 with
//! a plain-text body (and a log line), which a device treats as "try again later". Storage
//! calls run on the blocking pool, so a slow disk never stalls the async workers, and a
//! round whose client hangs up still finishes (atomically) once started.

use crate::Bureau;
use crate::error::Error;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fieldlog_domain::sync::{
    EnrollRequest, ErrorBody, ErrorDetail, MAX_BODY_BYTES, Refusal, SYNC_CONTENT_TYPE,
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::future::Future;
use tracing::Instrument;

/// An enrollment request is a code, a name and a few actor ids.
const MAX_ENROLL_BODY_BYTES: usize = 64 * 1024;

/// Serves `bureau` on `listener` until `shutdown` resolves; then stops accepting and lets
/// the requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    bureau: Bureau,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(bureau))
        .with_graceful_shutdown(shutdown)
        .await
}

pub fn router(bureau: Bureau) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/enroll", post(enroll))
        .route("/v1/sync", post(sync))
        .with_state(bureau)
}

async fn enroll(State(bureau): State<Bureau>, body: Body) -> Result<Response, ApiError> {
    let span = tracing::info_span!("enroll");
    async move {
        let body = read_body(body, MAX_ENROLL_BODY_BYTES).await?;
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
    .instrument(span)
    .await
}

async fn sync(
    State(bureau): State<Bureau>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let span = tracing::info_span!("sync", device = tracing::field::Empty);
    async move {
        let token = bearer(&headers).ok_or_else(|| {
            Error::refused(
                Refusal::Unauthenticated,
                "send the device token as `Authorization: Bearer <token>`",
            )
        })?;
        let device = {
            let bureau = bureau.clone();
            blocking(move || bureau.authenticate(&token)).await?
        };
        tracing::Span::current().record("device", tracing::field::display(&device.id));
        expect_header(&headers, header::CONTENT_TYPE, SYNC_CONTENT_TYPE)?;
        expect_header(&headers, header::CONTENT_ENCODING, "zstd")?;
        let body = read_body(body, MAX_BODY_BYTES).await?;
        let answer = blocking(move || bureau.sync(&device, &body)).await?;
        Ok((
            [
                (header::CONTENT_TYPE, SYNC_CONTENT_TYPE),
                (header::CONTENT_ENCODING, "zstd"),
            ],
            answer,
        )
            .into_response())
    }
    .instrument(span)
    .await
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
            format!("a sync request carries `{name}: {want}`"),
        )),
    }
}

/// Reads a body of at most `limit` bytes; a larger one is refused as `too_large`.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Error> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Error::refused(
            Refusal::TooLarge,
            format!("the body is larger than {limit} bytes"),
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

/// What a handler fails with: a refusal the device is told about, or an internal error
/// that is logged and answered with a bare 500.
#[derive(Debug)]
enum ApiError {
    Refused { reason: Refusal, message: String },
    Internal,
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Refused { reason, detail } => ApiError::Refused {
                reason,
                message: detail,
            },
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
        Refusal::BadCode | Refusal::ForgedActor | Refusal::OutOfScope | Refusal::RegistryEdit => {
            StatusCode::FORBIDDEN
        }
        Refusal::TooLarge | Refusal::TooManyChanges => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::Malformed | Refusal::UnsupportedProtocol => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Refused { reason, message } => {
                tracing::info!(?reason, message, "refused");
                let body = ErrorBody {
                    error: ErrorDetail { reason, message },
                };
                let json = serde_json::to_vec(&body).unwrap_or_default();
                (
                    status_of(reason),
                    [(header::CONTENT_TYPE, "application/json")],
                    json,
                )
                    .into_response()
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
