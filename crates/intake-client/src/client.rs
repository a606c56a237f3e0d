//! [`PushClient`]: one method per Push API call, each retried by the [`RetryPolicy`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, RequestBuilder, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ClientError;
use crate::retry::{RetryPolicy, is_retryable};

/// Where the calls go: an API base URL (Intake's, or a Coveo region's), an organization, a source, a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http://127.0.0.1:8080` for Intake, `https://api.cloud.coveo.com` for Coveo's US region; Push calls
    /// go under `/push/v1`, log queries under `/logs/v1`.
    pub api_url: String,
    pub organization_id: String,
    pub source_id: String,
    /// An API key or access token with SOURCE EDIT on the source (and LOGS VIEW for [`PushClient::logs`]).
    pub api_key: String,
}

/// The API base URL of a Coveo region: `us`, `ca`, `eu`, `au` or `hipaa`.
pub fn coveo_api_url(region: &str) -> Option<&'static str> {
    Some(match region.to_ascii_lowercase().as_str() {
        "us" | "" => "https://api.cloud.coveo.com",
        "ca" => "https://api-ca.cloud.coveo.com",
        "eu" => "https://api-eu.cloud.coveo.com",
        "au" => "https://api-au.cloud.coveo.com",
        "hipaa" => "https://apihipaa.cloud.coveo.com",
        _ => return None,
    })
}

impl Endpoint {
    fn push(&self, rest: &str) -> String {
        format!("{}/push/v1/organizations/{}{rest}", self.api_url.trim_end_matches('/'), self.organization_id)
    }

    fn source(&self, rest: &str) -> String {
        self.push(&format!("/sources/{}{rest}", self.source_id))
    }
}

/// A file container: where to upload, and the id to hand to a batch or an item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileContainer {
    pub upload_uri: String,
    pub file_id: String,
    #[serde(default)]
    pub required_headers: std::collections::BTreeMap<String, String>,
}

/// A Push API client. Cheap to clone; clones share connections and the retry count.
#[derive(Clone)]
pub struct PushClient {
    http: reqwest::Client,
    endpoint: Arc<Endpoint>,
    retry: RetryPolicy,
    retries: Arc<AtomicU64>,
}

/// What one attempt came to.
enum Attempt {
    Done(Response),
    /// Worth another attempt, after the wait the server asked for (if it did).
    Again(ClientError, Option<Duration>),
    Failed(ClientError),
}

impl PushClient {
    pub fn new(endpoint: Endpoint) -> Result<PushClient, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("intake-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(PushClient { http, endpoint: Arc::new(endpoint), retry: RetryPolicy::default(), retries: Arc::default() })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> PushClient {
        self.retry = retry;
        self
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// How many attempts were retries, since this client (or the one it was cloned from) was made.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Adds or updates an item. `body` is the item's JSON (`data`, `compressedBinaryData` or
    /// `compressedBinaryDataFileId`, metadata, permissions); the id goes in the query string.
    pub async fn add_or_update(
        &self,
        document_id: &str,
        body: Bytes,
        ordering_id: Option<i64>,
    ) -> Result<(), ClientError> {
        let url = self.endpoint.source("/documents");
        let query = with_ordering(vec![("documentId", document_id.to_string())], ordering_id);
        self.send(Method::PUT, &url, |r| r.query(&query).header("content-type", "application/json").body(body.clone()))
            .await
            .map(drop)
    }

    /// Deletes an item, and with `delete_children` the items under it.
    pub async fn delete(
        &self,
        document_id: &str,
        delete_children: bool,
        ordering_id: Option<i64>,
    ) -> Result<(), ClientError> {
        let url = self.endpoint.source("/documents");
        let query = with_ordering(
            vec![("documentId", document_id.to_string()), ("deleteChildren", delete_children.to_string())],
            ordering_id,
        );
        self.send(Method::DELETE, &url, |r| r.query(&query)).await.map(drop)
    }

    /// Deletes the source's items last touched by an operation older than `ordering_id`, after
    /// `queue_delay_minutes` (the service's default, 15, when `None`).
    pub async fn delete_older_than(
        &self,
        ordering_id: i64,
        queue_delay_minutes: Option<u32>,
    ) -> Result<(), ClientError> {
        let url = self.endpoint.source("/documents/olderthan");
        let mut query = vec![("orderingId", ordering_id.to_string())];
        if let Some(minutes) = queue_delay_minutes {
            query.push(("queueDelay", minutes.to_string()));
        }
        self.send(Method::DELETE, &url, |r| r.query(&query)).await.map(drop)
    }

    /// Sets the source's status: `REBUILD`, `REFRESH`, `INCREMENTAL` or `IDLE`.
    pub async fn set_status(&self, status: &str) -> Result<(), ClientError> {
        let url = self.endpoint.source("/status");
        let query = [("statusType", status.to_string())];
        self.send(Method::POST, &url, |r| r.query(&query)).await.map(drop)
    }

    /// Creates a file container (valid 60 minutes).
    pub async fn create_container(&self) -> Result<FileContainer, ClientError> {
        let url = self.endpoint.push("/files");
        let response = self.send(Method::POST, &url, |r| r).await?;
        response.json().await.map_err(|e| ClientError::Protocol(format!("the file container answer: {e}")))
    }

    /// Uploads `bytes` (at most 256 MiB) to a container, with the headers it requires.
    pub async fn upload(&self, container: &FileContainer, bytes: Bytes) -> Result<(), ClientError> {
        let url = container.upload_uri.clone();
        self.send_unauthenticated(Method::PUT, &url, |mut r| {
            for (name, value) in &container.required_headers {
                r = r.header(name.as_str(), value.as_str());
            }
            r.body(bytes.clone())
        })
        .await
        .map(drop)
    }

    /// Hands an uploaded container to the source as a batch (`{"addOrUpdate": […], "delete": […]}`).
    pub async fn push_batch(&self, file_id: &str, ordering_id: Option<i64>) -> Result<(), ClientError> {
        let url = self.endpoint.source("/documents/batch");
        let query = with_ordering(vec![("fileId", file_id.to_string())], ordering_id);
        let key = self.endpoint.api_key.clone();
        let (result, answer_lost) = self.attempts(Method::PUT, &url, |r| r.bearer_auth(&key).query(&query)).await;
        match result {
            // An earlier attempt reached the server but its answer was lost: the retry finds the container taken.
            Err(error) if answer_lost && error.is_container_already_used() => {
                tracing::warn!(file_id, "the batch's container was already taken: an earlier attempt was accepted");
                Ok(())
            }
            other => other.map(drop),
        }
    }

    /// Sends a batch file: a new container, the upload, and the batch call.
    pub async fn send_batch(&self, batch: Bytes, ordering_id: Option<i64>) -> Result<String, ClientError> {
        let container = self.create_container().await?;
        self.upload(&container, batch).await?;
        self.push_batch(&container.file_id, ordering_id).await?;
        Ok(container.file_id)
    }

    /// The source's type (`PUSH`, `CATALOG`), from the Platform API; `None` when the key may not read it or
    /// the server does not say.
    pub async fn source_type(&self) -> Option<String> {
        let url = format!(
            "{}/rest/organizations/{}/sources/{}",
            self.endpoint.api_url.trim_end_matches('/'),
            self.endpoint.organization_id,
            self.endpoint.source_id
        );
        let key = self.endpoint.api_key.clone();
        let response = self.http.get(url).bearer_auth(key).send().await.ok()?.error_for_status().ok()?;
        let source: Value = response.json().await.ok()?;
        source["sourceType"].as_str().map(str::to_ascii_uppercase)
    }

    /// Opens a stream for a full load of a catalog source: its id (the container `open` makes is not used).
    pub async fn open_stream(&self) -> Result<String, ClientError> {
        let url = self.endpoint.source("/stream/open");
        let response = self.send(Method::POST, &url, json_body).await?;
        let opened: Value =
            response.json().await.map_err(|e| ClientError::Protocol(format!("the stream/open answer: {e}")))?;
        opened["streamId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol("the stream/open answer has no streamId".into()))
    }

    /// Sends a chunk of an open stream: a new container of the stream, and the upload of `batch` to it.
    pub async fn send_chunk(&self, stream_id: &str, batch: Bytes) -> Result<(), ClientError> {
        let url = self.endpoint.source(&format!("/stream/{stream_id}/chunk"));
        let response = self.send(Method::POST, &url, json_body).await?;
        let chunk: FileContainer =
            response.json().await.map_err(|e| ClientError::Protocol(format!("the stream chunk answer: {e}")))?;
        self.upload(&chunk, batch).await
    }

    /// Closes a stream: its full load is accepted. The load's `orderingId`.
    pub async fn close_stream(&self, stream_id: &str) -> Result<String, ClientError> {
        let url = self.endpoint.source(&format!("/stream/{stream_id}/close"));
        let response = self.send(Method::POST, &url, json_body).await?;
        let closed: Value =
            response.json().await.map_err(|e| ClientError::Protocol(format!("the stream close answer: {e}")))?;
        Ok(closed["orderingId"].as_str().unwrap_or_default().to_string())
    }

    /// Sends an update file to a loaded catalog source (`stream/update`): a new container, the upload, the call.
    pub async fn send_stream_update(&self, batch: Bytes) -> Result<String, ClientError> {
        let container = self.create_container().await?;
        self.upload(&container, batch).await?;
        let url = self.endpoint.source("/stream/update");
        let query = [("fileId", container.file_id.clone())];
        self.send(Method::PUT, &url, |r| json_body(r.query(&query))).await?;
        Ok(container.file_id)
    }

    /// One page of the organization's item logs (`POST /logs/v1/organizations/{org}`): `query` holds `from`,
    /// `to` (ISO 8601), `page`, `perPage`…; `filters` the body (`{"sourcesIds": […], "results": […]}`).
    pub async fn logs(&self, query: &[(&str, String)], filters: &Value) -> Result<Value, ClientError> {
        let url = format!(
            "{}/logs/v1/organizations/{}",
            self.endpoint.api_url.trim_end_matches('/'),
            self.endpoint.organization_id
        );
        let body = Bytes::from(serde_json::to_vec(filters).expect("JSON serializes"));
        let response = self
            .send(Method::POST, &url, |r| r.query(query).header("content-type", "application/json").body(body.clone()))
            .await?;
        response.json().await.map_err(|e| ClientError::Protocol(format!("the logs answer: {e}")))
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        let key = self.endpoint.api_key.clone();
        self.send_unauthenticated(method, url, |r| build(r.bearer_auth(&key))).await
    }

    async fn send_unauthenticated(
        &self,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        self.attempts(method, url, build).await.0
    }

    /// Sends until an answer is final or the attempts run out; also says whether an attempt failed after its
    /// request may have reached the server (a connection error), so its effect may have happened.
    async fn attempts(
        &self,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> (Result<Response, ClientError>, bool) {
        let mut attempt = 1;
        let mut answer_lost = false;
        loop {
            let request = build(self.http.request(method.clone(), url));
            let (error, retry_after) = match self.attempt(&method, url, request).await {
                Attempt::Done(response) => return (Ok(response), answer_lost),
                Attempt::Failed(error) => return (Err(error), answer_lost),
                Attempt::Again(error, retry_after) => (error, retry_after),
            };
            answer_lost |= matches!(error, ClientError::Transport { .. });
            if attempt >= self.retry.max_attempts {
                return (Err(ClientError::GaveUp { attempts: attempt, last: Box::new(error) }), answer_lost);
            }
            let wait = self.retry.delay(attempt, retry_after);
            tracing::warn!(
                "{error}; retrying in {:.1} s (attempt {} of {})",
                wait.as_secs_f64(),
                attempt + 1,
                self.retry.max_attempts
            );
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, method: &Method, url: &str, request: RequestBuilder) -> Attempt {
        let call = || format!("{method} {}", url.split('?').next().unwrap_or(url));
        let response = match request.send().await {
            Ok(response) => response,
            Err(source) => return Attempt::Again(ClientError::Transport { call: call(), source }, None),
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Attempt::Done(response);
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let error = ClientError::Api {
            call: call(),
            status,
            code: body["errorCode"].as_str().unwrap_or("").to_string(),
            message: body["message"].as_str().map_or_else(|| text.chars().take(500).collect(), str::to_string),
            request_id,
        };
        if is_retryable(status) { Attempt::Again(error, retry_after) } else { Attempt::Failed(error) }
    }
}

/// An empty JSON body, as the SDKs send on calls that take none.
fn json_body(request: RequestBuilder) -> RequestBuilder {
    request.header("content-type", "application/json").body("{}")
}

fn with_ordering(mut query: Vec<(&'static str, String)>, ordering_id: Option<i64>) -> Vec<(&'static str, String)> {
    if let Some(ordering_id) = ordering_id {
        query.push(("orderingId", ordering_id.to_string()));
    }
    query
}
