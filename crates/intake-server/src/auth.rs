//! Who is calling. Decided in one place: every protected handler takes a [`Principal`], and the extractor
//! answers 401 UNAUTHORIZED (no or malformed `Authorization`) or 401 INVALID_TOKEN (unknown token).
//!
//! For now the only credential is the master key, valid for every organization and endpoint; API keys,
//! access tokens and privileges extend this type.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use intake_model::{ApiError, ErrorCode};
use sha2::{Digest, Sha256};

use crate::http::HandlerError;
use crate::state::AppState;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The server's master key: everything, everywhere.
    Master,
}

/// The SHA-256 of a secret, hex-encoded; secrets are only ever stored this way.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two hashes without leaking where they differ through timing.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Reads `Authorization: Bearer <token>`.
pub fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::new(ErrorCode::Unauthorized, "The request has no Authorization header: send 'Authorization: Bearer <API key or access token>'.")
    })?;
    let value = value.to_str().unwrap_or("");
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            format!(
                "The Authorization header is not a Bearer token (it starts with '{}'): send 'Authorization: Bearer <token>'.",
                intake_model::error::shorten(scheme, 20)
            ),
        ));
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = HandlerError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        if constant_time_eq(&secret_hash(token), &state.master_key_hash) {
            return Ok(Principal::Master);
        }
        Err(ApiError::new(
            ErrorCode::InvalidToken,
            "The token is not recognized: it is not the master key or an active API key or access token of this server.",
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_compare_exactly() {
        let hash = secret_hash("secret");
        assert_eq!(hash.len(), 64);
        assert!(constant_time_eq(&hash, &secret_hash("secret")));
        assert!(!constant_time_eq(&hash, &secret_hash("secreT")));
    }
}
