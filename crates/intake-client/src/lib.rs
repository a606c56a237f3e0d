//! A client for the Coveo Push API v1, for Intake or Coveo's cloud: items, deletes, delete-older-than,
//! source status, file containers and batches, and item logs.
//!
//! Every call is retried on `429`, `5xx` and connection failures with exponential backoff and full jitter,
//! waiting what `Retry-After` says when the server sends it ([`RetryPolicy`]); other answers are final and come
//! back as [`ClientError::Api`] with the service's error code and message. A batch call whose first attempt
//! was accepted but whose answer was lost is recognised on retry, so a batch is never reported failed when it
//! was taken.
//!
//! ```no_run
//! use intake_client::{BatchPacker, Endpoint, PushClient};
//!
//! # async fn run() -> Result<(), intake_client::ClientError> {
//! let client = PushClient::new(Endpoint {
//!     api_url: "http://127.0.0.1:8080".into(), // or intake_client::coveo_api_url("eu")
//!     organization_id: "default".into(),
//!     source_id: "default-…".into(),
//!     api_key: "…".into(),
//! })?;
//! // One item.
//! client.add_or_update("file:///hello.html", br#"{"title": "Hello", "data": "<p>Hi</p>"}"#.to_vec().into(), None).await?;
//! // Many items: batch files of at most 64 MiB, each through its own file container.
//! let mut packer = BatchPacker::new(64 << 20);
//! for n in 0..100_000 {
//!     let entry = format!(r#"{{"documentId": "file:///{n}", "data": "item {n}"}}"#);
//!     if let Some(full) = packer.push_add(entry.as_bytes()) {
//!         client.send_batch(full, None).await?;
//!     }
//! }
//! if let Some(last) = packer.finish() {
//!     client.send_batch(last, None).await?;
//! }
//! # Ok(()) }
//! ```

mod batch;
mod client;
mod error;
mod retry;

pub use batch::BatchPacker;
pub use client::{Endpoint, FileContainer, PushClient, coveo_api_url};
pub use error::ClientError;
pub use retry::{RetryPolicy, is_retryable};
