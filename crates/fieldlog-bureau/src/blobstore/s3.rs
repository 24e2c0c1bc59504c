//! Complete photo files in an S3-compatible bucket: `<prefix>/<2 hex>/<sha256>.jpg`.
//!
//! Every request runs on the store's own small runtime, whoever asks (the server's handlers,
//! a handler's blocking task, an admin command with no runtime at all): the HTTP client's
//! connections live on one runtime for their whole life, and a `GET` body is pumped from it
//! through a channel, which any runtime can read.

use super::{BlobStore, BlobStoreError, BoxFuture, Opened, relative_name};
use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long one request to the store may take (a 16 MiB photo over a slow uplink).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long connecting to the endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries of a failed request (connection refused, 5xx, throttling), within
/// [`RETRY_TIMEOUT`]: a store that is down fails a request in about a second, not minutes.
const MAX_RETRIES: usize = 3;
const RETRY_TIMEOUT: Duration = Duration::from_secs(20);
/// Chunks of a `GET` body waiting for the device to take them.
const GET_BUFFER: usize = 4;

/// Where and how to reach the bucket. The binary fills it from flags, its config file and
/// the standard AWS variables; this crate reads no environment.
#[derive(Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// Names go under this prefix (`""`: at the bucket's root), without `/` at either end.
    pub prefix: String,
    /// `http(s)://host:port` of an S3-compatible server; `None` for AWS itself. An `http://`
    /// endpoint is allowed (a server on the same machine or network).
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret or the session token.
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A setting the S3 store cannot work with; each names the setting and why.
#[derive(Debug, thiserror::Error)]
pub enum S3ConfigError {
    #[error(
        "blobs: `{url}` is not an S3 location: {reason} (write s3://bucket or s3://bucket/prefix)"
    )]
    Url { url: String, reason: &'static str },
    #[error("s3_endpoint: `{endpoint}` {reason}")]
    Endpoint {
        endpoint: String,
        reason: &'static str,
    },
    #[error("blobs: the S3 client for {location} could not be set up")]
    Client {
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error("blobs: starting the S3 client's runtime")]
    Runtime(#[source] std::io::Error),
}

impl S3Settings {
    /// The bucket and prefix of `s3://bucket/prefix` (the prefix may be empty or have several
    /// parts; `/` at its ends are dropped).
    pub fn parse_url(url: &str) -> Result<(String, String), S3ConfigError> {
        let bad = |reason| S3ConfigError::Url {
            url: url.to_string(),
            reason,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket rules: 3 to 63 lowercase letters, digits, dots and hyphens.
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err(bad(
                "a bucket name is 3 to 63 lowercase letters, digits, dots and hyphens",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..")
            || prefix.contains("//")
            || prefix.chars().any(char::is_control)
        {
            return Err(bad(
                "a prefix is names separated by single `/`, without `.` or `..`",
            ));
        }
        Ok((bucket.to_string(), prefix.to_string()))
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The URL and where it is served, for messages.
    fn location(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{} at {endpoint}", self.url()),
            None => format!("{} in {}", self.url(), self.region),
        }
    }
}

/// The store's own runtime, shut down without waiting when the store goes (dropping a
/// runtime where blocking is not allowed would panic).
#[derive(Debug)]
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Complete files in a bucket (see the module's doc).
pub struct S3Store {
    client: Arc<AmazonS3>,
    prefix: String,
    bucket: String,
    location: String,
    handle: tokio::runtime::Handle,
    _runtime: OwnRuntime,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the client: its configuration holds the secret.
        f.debug_struct("S3Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// A client for the bucket; nothing is sent until it is used ([`BlobStore::check`] says
    /// whether the bucket answers).
    pub fn new(settings: &S3Settings) -> Result<S3Store, S3ConfigError> {
        let location = settings.location();
        let mut options = ClientOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT);
        if let Some(endpoint) = &settings.endpoint {
            let bad = |reason| S3ConfigError::Endpoint {
                endpoint: endpoint.clone(),
                reason,
            };
            let host = if let Some(host) = endpoint.strip_prefix("http://") {
                options = options.with_allow_http(true);
                host
            } else {
                endpoint
                    .strip_prefix("https://")
                    .ok_or_else(|| bad("is not an http:// or https:// URL"))?
            };
            if host.trim_end_matches('/').is_empty() || host.trim_end_matches('/').contains('/') {
                return Err(bad(
                    "names no host, or has a path (give scheme://host:port)",
                ));
            }
        }
        // reqwest's rustls takes the process's crypto provider and panics without one; ring
        // is the one this crate's TLS uses. If one is set already, it stays.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key)
            // The server checks each file against the sha256 it is sent with.
            .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
            .with_client_options(options)
            .with_retry(RetryConfig {
                max_retries: MAX_RETRIES,
                retry_timeout: RETRY_TIMEOUT,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
        }
        if let Some(token) = &settings.session_token {
            builder = builder.with_token(token);
        }
        let client = builder.build().map_err(|source| S3ConfigError::Client {
            location: location.clone(),
            source,
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("blob-store")
            .enable_all()
            .build()
            .map_err(S3ConfigError::Runtime)?;
        Ok(S3Store {
            client: Arc::new(client),
            prefix: settings.prefix.clone(),
            bucket: settings.bucket.clone(),
            location,
            handle: runtime.handle().clone(),
            _runtime: OwnRuntime(Some(runtime)),
        })
    }

    /// The object name of a complete file.
    pub fn key(&self, sha256: &str) -> String {
        if self.prefix.is_empty() {
            relative_name(sha256)
        } else {
            format!("{}/{}", self.prefix, relative_name(sha256))
        }
    }

    /// Runs `work` on the store's runtime.
    async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, BlobStoreError> {
        self.handle
            .spawn(work)
            .await
            .map_err(BlobStoreError::Stopped)
    }

    fn failed(
        &self,
        operation: &'static str,
        key: &str,
        source: object_store::Error,
    ) -> BlobStoreError {
        let refused = classify(&source);
        let source = Box::new(source);
        match refused {
            Some(Refused::Credentials) => BlobStoreError::Credentials {
                store: self.location.clone(),
                source,
            },
            Some(Refused::NoBucket) => BlobStoreError::NoBucket {
                store: self.location.clone(),
                bucket: self.bucket.clone(),
                source,
            },
            None => BlobStoreError::Request {
                store: self.location.clone(),
                operation,
                key: key.to_string(),
                source,
            },
        }
    }
}

/// What S3's error codes say about a failed request, when they say it was the settings.
enum Refused {
    Credentials,
    NoBucket,
}

/// S3 answers a refusal with an XML body naming its code (`NoSuchBucket`, `AccessDenied`…);
/// `object_store` keeps the body in the error's text but not the code, so the chain is
/// searched for the codes that mean the settings are wrong.
fn classify(error: &object_store::Error) -> Option<Refused> {
    if matches!(
        error,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        return Some(Refused::Credentials);
    }
    let mut text = String::new();
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = cause {
        text.push_str(&e.to_string());
        text.push('\n');
        cause = e.source();
    }
    const CREDENTIALS: [&str; 5] = [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidToken",
        "ExpiredToken",
    ];
    if text.contains("NoSuchBucket") {
        Some(Refused::NoBucket)
    } else if CREDENTIALS.iter().any(|code| text.contains(code)) {
        Some(Refused::Credentials)
    } else {
        None
    }
}

impl BlobStore for S3Store {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn local_dir(&self) -> Option<&Path> {
        None
    }

    fn len<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobStoreError>> {
        let (client, key) = (self.client.clone(), self.key(sha256));
        Box::pin(async move {
            let name = Key::from(key.as_str());
            match self.run(async move { client.head(&name).await }).await? {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.failed("HEAD", &key, e)),
            }
        })
    }

    fn put_complete<'a>(
        &'a self,
        sha256: &'a str,
        file: &'a Path,
        length: u64,
    ) -> BoxFuture<'a, Result<(), BlobStoreError>> {
        let (client, key, file) = (self.client.clone(), self.key(sha256), file.to_path_buf());
        Box::pin(async move {
            let bytes = tokio::fs::read(&file)
                .await
                .map_err(|source| BlobStoreError::Io {
                    path: file.clone(),
                    source,
                })?;
            if bytes.len() as u64 != length {
                return Err(BlobStoreError::Io {
                    path: file,
                    source: std::io::Error::other(format!(
                        "holds {} bytes, not the {length} checked",
                        bytes.len()
                    )),
                });
            }
            let name = Key::from(key.as_str());
            let put = async move {
                let options = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                client
                    .put_opts(&name, PutPayload::from(Bytes::from(bytes)), options)
                    .await
            };
            match self.run(put).await? {
                // Already there: another device completed the same file (same name, same
                // bytes), which stays.
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(self.failed("PUT", &key, e)),
            }
        })
    }

    fn open<'a>(
        &'a self,
        sha256: &'a str,
    ) -> BoxFuture<'a, Result<Option<Opened>, BlobStoreError>> {
        let (client, key) = (self.client.clone(), self.key(sha256));
        Box::pin(async move {
            let name = Key::from(key.as_str());
            let opened = self
                .run(async move {
                    let got = match client.get(&name).await {
                        Ok(got) => got,
                        Err(object_store::Error::NotFound { .. }) => return Ok(None),
                        Err(e) => return Err(e),
                    };
                    let length = got.meta.size;
                    let (send, receive) = tokio::sync::mpsc::channel(GET_BUFFER);
                    let mut body = got.into_stream();
                    // Pumped here until the end, an error, or the device hanging up.
                    tokio::spawn(async move {
                        while let Some(chunk) = body.next().await {
                            let chunk = chunk.map_err(std::io::Error::other);
                            let failed = chunk.is_err();
                            if send.send(chunk).await.is_err() || failed {
                                break;
                            }
                        }
                    });
                    Ok(Some((length, receive)))
                })
                .await?;
            let Some((length, receive)) = opened.map_err(|e| self.failed("GET", &key, e))? else {
                return Ok(None);
            };
            let bytes = futures::stream::unfold(receive, |mut receive| async move {
                receive.recv().await.map(|chunk| (chunk, receive))
            });
            Ok(Some(Opened {
                length,
                bytes: Box::pin(bytes),
            }))
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BlobStoreError>> {
        let (client, prefix) = (self.client.clone(), self.prefix.clone());
        Box::pin(async move {
            // One page of a listing: it fails for a bucket that is not there and for
            // credentials that are refused, and costs one request.
            let listed = self
                .run(async move {
                    let prefix = (!prefix.is_empty()).then(|| Key::from(prefix.as_str()));
                    client.list(prefix.as_ref()).next().await.transpose()
                })
                .await?;
            listed
                .map(drop)
                .map_err(|e| self.failed("LIST", &self.prefix, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_url_names_a_valid_bucket_and_a_plain_prefix() {
        let ok = |url: &str| S3Settings::parse_url(url).ok();
        assert_eq!(ok("s3://photos"), Some(("photos".into(), String::new())));
        assert_eq!(
            ok("s3://photos/bureau/2026/"),
            Some(("photos".into(), "bureau/2026".into()))
        );
        for bad in [
            "photos",
            "https://photos",
            "s3://",
            "s3://Photos",
            "s3://ab",
            "s3://-photos",
            "s3://photos/a//b",
            "s3://photos/../x",
        ] {
            assert!(
                matches!(S3Settings::parse_url(bad), Err(S3ConfigError::Url { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_endpoint_is_an_http_url_of_a_host() {
        let settings = |endpoint: &str| S3Settings {
            bucket: "photos".into(),
            prefix: String::new(),
            endpoint: Some(endpoint.into()),
            region: "us-east-1".into(),
            access_key_id: "key".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        };
        for bad in [
            "127.0.0.1:9000",
            "ftp://host",
            "http://",
            "http://host/path",
        ] {
            assert!(
                matches!(
                    S3Store::new(&settings(bad)),
                    Err(S3ConfigError::Endpoint { .. })
                ),
                "{bad}"
            );
        }
        let store = S3Store::new(&settings("http://127.0.0.1:9000/")).unwrap();
        assert_eq!(
            store.key(&"ab".repeat(32)),
            format!("ab/{}.jpg", "ab".repeat(32))
        );
        assert!(!format!("{:?}", settings("http://h")).contains("secret"));
    }
}
