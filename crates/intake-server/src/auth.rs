//! Who is calling, and whether they may. Decided in one place.
//!
//! Authentication ([`Principal`]'s extractor) answers 401: UNAUTHORIZED when there is no usable `Bearer`
//! header; INVALID_TOKEN when the token is unknown, its key is disabled, deleted or expired, an access token has
//! expired, or the caller's IP address is not allowed for the key. Authorization ([`Principal::authorize`])
//! answers 401 INVALID_TOKEN for a key of another organization and 403 ACCESS_DENIED, naming the privilege,
//! when the key lacks it. The master key passes everything.
//!
//! Access tokens are signed, not stored: `itk_<base64url payload>.<base64url HMAC-SHA256>`, the payload naming
//! the key and the expiry. A token is only as good as its key: disabling or deleting the key ends its tokens.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use intake_model::{ApiError, ErrorCode, Privilege};
use intake_store::ApiKey;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::http::HandlerError;
use crate::search_tokens::{self, SearchTokenClaims};
use crate::signing;
use crate::state::AppState;

const TOKEN_PREFIX: &str = "itk_";

/// How callers are authenticated: the master key, the secret that signs access tokens, their lifetime, and the
/// proxies whose `X-Forwarded-For` is believed.
#[derive(Clone)]
pub struct AuthSettings {
    pub master_key_hash: String,
    pub token_secret: Vec<u8>,
    pub token_lifetime_ms: i64,
    pub trusted_proxies: Vec<IpNet>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The server's master key: everything, everywhere.
    Master,
    /// An API key, used directly.
    Key(ApiKey),
    /// An access token issued for an API key.
    Token(ApiKey),
    /// A search token: it may only search, as its users.
    SearchToken(Box<SearchTokenClaims>),
}

impl Principal {
    /// The organization the caller belongs to (`None` for the master key, which belongs to all).
    pub fn organization_id(&self) -> Option<&str> {
        match self {
            Principal::Master => None,
            Principal::Key(key) | Principal::Token(key) => Some(&key.organization_id),
            Principal::SearchToken(claims) => Some(&claims.organization),
        }
    }

    pub fn is_master(&self) -> bool {
        matches!(self, Principal::Master)
    }

    /// Whether the caller holds `needed` (no organization check).
    pub fn holds(&self, needed: &Privilege) -> bool {
        match self {
            Principal::Master => true,
            Principal::Key(key) | Principal::Token(key) => key.privileges.iter().any(|held| held.grants(needed)),
            Principal::SearchToken(_) => SEARCH_TOKEN_PRIVILEGE.with(|held| held.grants(needed)),
        }
    }

    /// Whether the caller holds `needed` for at least one resource of its domain (whatever the target).
    pub fn holds_on_any(&self, needed: &Privilege) -> bool {
        match self {
            Principal::Master => true,
            Principal::Key(key) | Principal::Token(key) => key
                .privileges
                .iter()
                .any(|held| held.grants(&Privilege { target_id: held.target_id.clone(), ..needed.clone() })),
            Principal::SearchToken(_) => self.holds(needed),
        }
    }

    /// Checks that the caller belongs to `organization_id` (401 INVALID_TOKEN otherwise), before anything of
    /// that organization is looked at.
    pub fn enter(&self, organization_id: &str) -> Result<(), ApiError> {
        match self.organization_id() {
            Some(own) if own != organization_id => Err(ApiError::new(
                ErrorCode::InvalidToken,
                format!("The token belongs to organization '{own}', not to '{organization_id}'."),
            )),
            _ => Ok(()),
        }
    }

    /// The one authorization decision: the caller belongs to `organization_id` and holds `needed`.
    pub fn authorize(&self, organization_id: &str, needed: &Privilege) -> Result<(), ApiError> {
        self.enter(organization_id)?;
        if self.holds(needed) {
            return Ok(());
        }
        Err(self.denied(&format!("the privilege {needed}")))
    }

    /// 403 ACCESS_DENIED for something the caller may not do, naming the key.
    pub fn denied(&self, what: &str) -> ApiError {
        let who = match self {
            Principal::Master => "The master key".to_string(),
            Principal::Key(key) => format!("The API key '{}' ({})", key.display_name, key.id),
            Principal::Token(key) => format!("The access token of API key '{}' ({})", key.display_name, key.id),
            Principal::SearchToken(_) => "A search token (which may only search)".to_string(),
        };
        ApiError::new(ErrorCode::AccessDenied, format!("{who} lacks {what}."))
    }
}

pub use crate::signing::secret_hash;

thread_local! {
    /// What a search token holds: searching.
    static SEARCH_TOKEN_PRIVILEGE: Privilege = Privilege::new("SEARCH_API", "EXECUTE_QUERY", None, "*");
}

/// Authorization schemes a message may name (anything else may be a token sent without its scheme).
const KNOWN_SCHEMES: [&str; 6] = ["Bearer", "Basic", "Digest", "Token", "ApiKey", "Negotiate"];

/// Reads `Authorization: Bearer <token>`.
pub fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthorized,
            "The request has no Authorization header: send 'Authorization: Bearer <API key or access token>'.",
        )
    })?;
    let value = value.to_str().unwrap_or("");
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        // Never quote the header: a client that forgot "Bearer " sent its secret as the scheme.
        let seen = match KNOWN_SCHEMES.iter().find(|known| known.eq_ignore_ascii_case(scheme)) {
            Some(known) if !token.trim().is_empty() || known.eq_ignore_ascii_case("bearer") => {
                format!("it uses the {known} scheme")
            }
            _ => "its value is not shown, as it may be a secret".to_string(),
        };
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            format!(
                "The Authorization header is not of the form 'Bearer <token>' ({seen}): send 'Authorization: Bearer <API key or access token>'."
            ),
        ));
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = HandlerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(authenticate(bearer_token(parts)?, parts, state)?)
    }
}

/// Who a token (the master key, an API key's value, or an access token) stands for, calling from this request.
pub fn authenticate(token: &str, parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let settings = &state.auth;
    if signing::same_hash(&secret_hash(token), &settings.master_key_hash) {
        return Ok(Principal::Master);
    }
    let now = state.clock.now_ms();
    if search_tokens::is_search_token(token) {
        let claims = search_tokens::verify_search_token(token, &settings.token_secret, now)?;
        if !claims.kid.is_empty() {
            let key = state.catalog.api_key(&claims.organization, &claims.kid).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidSearchToken,
                    format!("The search token was issued by API key '{}', which no longer exists.", claims.kid),
                )
            })?;
            check_key(&key, now)?;
        }
        return Ok(Principal::SearchToken(Box::new(claims)));
    }
    let (key, principal): (ApiKey, fn(ApiKey) -> Principal) = match token.strip_prefix(TOKEN_PREFIX) {
        Some(signed) => {
            let claims = verify_token(signed, &settings.token_secret)?;
            if claims.expires_at_ms <= now {
                return Err(invalid_token(&format!(
                    "The access token expired at {}; request a new one from /oauth/token.",
                    intake_model::dates::format_ms(claims.expires_at_ms)
                )));
            }
            let key = state.catalog.api_key(&claims.organization_id, &claims.key_id).ok_or_else(|| {
                invalid_token(&format!(
                    "The access token was issued for API key '{}', which no longer exists.",
                    claims.key_id
                ))
            })?;
            (key, Principal::Token)
        }
        None => {
            let key = state.catalog.api_key_by_hash(&secret_hash(token)).ok_or_else(|| {
                invalid_token("The token is not recognized: it is not the master key or an API key or access token of this server.")
            })?;
            (key, Principal::Key)
        }
    };
    check_key_use(&key, parts, state)?;
    Ok(principal(key))
}

/// A key may be used now, from this caller's address.
pub fn check_key_use(key: &ApiKey, parts: &Parts, state: &AppState) -> Result<(), ApiError> {
    check_key(key, state.clock.now_ms())?;
    check_address(key, client_ip(parts, &state.auth.trusted_proxies))
}

fn invalid_token(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidToken, message)
}

/// An API key in use must be enabled and unexpired.
fn check_key(key: &ApiKey, now: i64) -> Result<(), ApiError> {
    if !key.enabled {
        return Err(invalid_token(&format!(
            "The API key '{}' ({}) is disabled; activate it or use another key.",
            key.display_name, key.id
        )));
    }
    if let Some(expiration) = key.expiration_ms.filter(|expiration| *expiration <= now) {
        return Err(invalid_token(&format!(
            "The API key '{}' ({}) expired at {}.",
            key.display_name,
            key.id,
            intake_model::dates::format_ms(expiration)
        )));
    }
    Ok(())
}

/// An address in the denied list is refused, even if also allowed; with an allowed list, only it is let in.
fn check_address(key: &ApiKey, ip: Option<IpAddr>) -> Result<(), ApiError> {
    if key.allowed_ips.is_empty() && key.denied_ips.is_empty() {
        return Ok(());
    }
    let Some(ip) = ip else {
        return Err(invalid_token("The caller's IP address is unknown, and this API key allows only some addresses."));
    };
    let within = |list: &[String]| list.iter().filter_map(|block| parse_block(block).ok()).any(|net| net.contains(&ip));
    if within(&key.denied_ips) {
        return Err(invalid_token(&format!(
            "The IP address {ip} is denied for API key '{}' ({}).",
            key.display_name, key.id
        )));
    }
    if !key.allowed_ips.is_empty() && !within(&key.allowed_ips) {
        return Err(invalid_token(&format!(
            "The IP address {ip} is not in the allowed list of API key '{}' ({}).",
            key.display_name, key.id
        )));
    }
    Ok(())
}

/// `10.0.0.0/8`, or a single address as its own block.
pub fn parse_block(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("'{text}' is not an IP address or CIDR block (such as 203.0.113.0/24)"))
}

/// The caller's address: the peer's, or — when the peer is a trusted proxy — the last address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
fn client_ip(parts: &Parts, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())?;
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    let forwarded =
        parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    let chain: Vec<IpAddr> = forwarded.filter_map(|hop| hop.trim().parse().ok()).collect();
    Some(chain.into_iter().rev().find(|ip| !trusted(ip)).unwrap_or(peer))
}

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    #[serde(rename = "k")]
    pub key_id: String,
    #[serde(rename = "o")]
    pub organization_id: String,
    #[serde(rename = "e")]
    pub expires_at_ms: i64,
}

/// A signed access token for `key`, valid until `expires_at_ms`.
pub fn issue_token(key: &ApiKey, expires_at_ms: i64, secret: &[u8]) -> String {
    let claims = TokenClaims { key_id: key.id.clone(), organization_id: key.organization_id.clone(), expires_at_ms };
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"));
    let signature = URL_SAFE_NO_PAD.encode(signing::sign(secret, payload.as_bytes()));
    format!("{TOKEN_PREFIX}{payload}.{signature}")
}

/// The claims of a token (without its prefix) whose signature is right.
pub fn verify_token(signed: &str, secret: &[u8]) -> Result<TokenClaims, ApiError> {
    let forged = || {
        invalid_token(
            "The access token is not valid: its signature does not match (it was altered, or issued by another server).",
        )
    };
    let (payload, given) = signed.split_once('.').ok_or_else(forged)?;
    let given = URL_SAFE_NO_PAD.decode(given).map_err(|_| forged())?;
    if !signing::verify(secret, payload.as_bytes(), &given) {
        return Err(forged());
    }
    let claims = URL_SAFE_NO_PAD.decode(payload).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    claims.ok_or_else(forged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiKey {
        ApiKey {
            id: "k1".into(),
            organization_id: "acme".into(),
            display_name: "push".into(),
            description: String::new(),
            value_hash: String::new(),
            privileges: vec![Privilege::platform("SOURCE", "EDIT", "src-1")],
            allowed_ips: vec!["127.0.0.0/8".into(), "::1".into()],
            denied_ips: vec!["127.0.0.2".into()],
            enabled: true,
            created_at_ms: 0,
            expiration_ms: Some(1_000),
        }
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let token = issue_token(&key(), 5_000, b"secret");
        let signed = token.strip_prefix(TOKEN_PREFIX).unwrap();
        let claims = verify_token(signed, b"secret").unwrap();
        assert_eq!(
            (claims.key_id.as_str(), claims.organization_id.as_str(), claims.expires_at_ms),
            ("k1", "acme", 5_000)
        );
        assert!(verify_token(signed, b"other secret").unwrap_err().message.contains("signature"));
        let (payload, sig) = signed.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"k":"k1","o":"acme","e":999999999999}"#);
        assert!(verify_token(&format!("{forged}.{sig}"), b"secret").is_err());
        assert!(verify_token(payload, b"secret").is_err());
    }

    #[test]
    fn address_rules() {
        let key = key();
        assert!(check_address(&key, Some("127.0.0.1".parse().unwrap())).is_ok());
        assert!(check_address(&key, Some("::1".parse().unwrap())).is_ok());
        assert!(check_address(&key, Some("127.0.0.2".parse().unwrap())).unwrap_err().message.contains("denied"));
        assert!(
            check_address(&key, Some("10.1.2.3".parse().unwrap()))
                .unwrap_err()
                .message
                .contains("not in the allowed list")
        );
        assert!(parse_block("300.1.1.1").is_err());
    }

    #[test]
    fn keys_expire_and_disable() {
        let mut key = key();
        assert!(check_key(&key, 999).is_ok());
        assert!(check_key(&key, 1_000).unwrap_err().message.contains("expired"));
        key.enabled = false;
        assert!(check_key(&key, 0).unwrap_err().message.contains("disabled"));
    }

    #[test]
    fn authorization_names_the_missing_privilege_and_refuses_other_organizations() {
        let principal = Principal::Key(key());
        assert!(principal.authorize("acme", &Privilege::platform("SOURCE", "EDIT", "src-1")).is_ok());
        let denied = principal.authorize("acme", &Privilege::platform("SOURCE", "EDIT", "src-2")).unwrap_err();
        assert_eq!(denied.code, ErrorCode::AccessDenied);
        assert!(denied.message.contains("PLATFORM SOURCE EDIT on 'src-2'"), "{}", denied.message);
        let other = principal.authorize("globex", &Privilege::platform("SOURCE", "EDIT", "src-1")).unwrap_err();
        assert_eq!(other.code, ErrorCode::InvalidToken);
        assert!(Principal::Master.authorize("globex", &Privilege::platform("SOURCE", "EDIT", "*")).is_ok());
    }
}
