//! What can go wrong with a call, said so that a person can act on it.

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an error (after retries, for the retryable ones).
    #[error("{call} answered {status} {code}: {message}")]
    Api {
        /// `PUT https://…/documents` (without the query string).
        call: String,
        status: u16,
        /// The catalog code, e.g. `DOCUMENT_LIMIT_EXCEEDED` (empty when the body had none).
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// The service could not be reached, or the connection broke.
    #[error("{call} failed: {source}")]
    Transport {
        call: String,
        #[source]
        source: reqwest::Error,
    },
    /// Every attempt failed with a retryable error; `last` is the last one.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: Box<ClientError> },
    /// A success answer that is not what the Push API answers.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be set up: {0}")]
    Setup(String),
}

impl ClientError {
    /// The HTTP status of the final answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::GaveUp { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The error code of the final answer (`""` when none).
    pub fn code(&self) -> &str {
        match self {
            ClientError::Api { code, .. } => code,
            ClientError::GaveUp { last, .. } => last.code(),
            _ => "",
        }
    }

    /// A batch call refused because its container was already handed to a batch.
    pub(crate) fn is_container_already_used(&self) -> bool {
        matches!(self, ClientError::Api { status: 404, message, .. } if message.contains("already handed to another batch"))
    }
}
