//! Search tokens (`POST /rest/search/v2/token`): a server holding a key with the impersonation privilege asks
//! for a token that searches as one user; the browser then searches with it, trimmed to what that user may
//! see.
//!
//! A token is a JWT (HS256 under the server's secret): `{"alg":"HS256","typ":"JWT"}` and the claims
//! `organization`, `userIds`, `searchHub`, `pipeline`, `filter`, `userDisplayName`, `iat`, `exp` (seconds, as
//! JWTs have them) and `kid`, the issuing key. Like an access token it is only as good as its key: disabling
//! or deleting the key ends its tokens.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use intake_index::security::IdentityRef;
use intake_model::json::Json as StrictJson;
use intake_model::permissions::IdentityType;
use intake_model::{ApiError, ErrorCode, Privilege, QueryParams};
use intake_store::EMAIL_PROVIDER;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::context::read_body;
use crate::http::HandlerResult;
use crate::signing;
use crate::state::AppState;

/// `validFor` bounds and default, in milliseconds (Coveo's: 15 minutes to 24 hours, 24 hours by default).
const MIN_VALID_FOR_MS: i64 = 15 * 60 * 1000;
const MAX_VALID_FOR_MS: i64 = 24 * 60 * 60 * 1000;
/// The most users one token may search as.
const MAX_USER_IDS: usize = 100;
const JWT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// What a search token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchTokenClaims {
    pub organization: String,
    pub user_ids: Vec<TokenUser>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_hub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// A query expression ANDed with every query made with the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_display_name: Option<String>,
    pub iat: i64,
    pub exp: i64,
    /// The key that issued the token.
    pub kid: String,
}

/// A user a token searches as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUser {
    pub name: String,
    pub provider: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl SearchTokenClaims {
    /// The users, as identity resolution starts from them.
    pub fn users(&self) -> Vec<IdentityRef> {
        self.user_ids
            .iter()
            .map(|user| {
                IdentityRef::new(
                    &user.provider,
                    &user.name,
                    IdentityType::parse(&user.kind).unwrap_or(IdentityType::User),
                )
            })
            .collect()
    }
}

/// The privilege a key needs to issue search tokens (Coveo's spec names the domain `IMPERSONATE_SEARCH_API`,
/// its older docs `IMPERSONATE`: either is accepted).
pub fn may_impersonate(principal: &Principal) -> bool {
    ["IMPERSONATE_SEARCH_API", "IMPERSONATE"]
        .iter()
        .any(|domain| principal.holds(&Privilege::new("SEARCH_API", domain, None, "*")))
}

/// Issue a search token.
#[utoipa::path(
    post, path = "/rest/search/v2/token", tag = "Search",
    params(("organizationId" = Option<String>, Query, description = "Organization id; optional with an API key (its own)")),
    request_body(content = TokenRequest, description = "Who the token searches as", content_type = "application/json"),
    responses(
        (status = 200, description = "The token", body = SearchTokenAnswer),
        (status = 400, description = "INVALID_JSON: the body is not a token request (naming the key)"),
        (status = 401, description = "UNAUTHORIZED or INVALID_TOKEN"),
        (status = 403, description = "ACCESS_DENIED: SEARCH_API IMPERSONATE_SEARCH_API"),
        (status = 404, description = "ORGANIZATION_NOT_FOUND"),
        (status = 412, description = "MISSING_PARAMETER (organizationId with the master key) or INVALID_PARAMETER (validFor out of bounds)"),
    )
)]
pub async fn issue_search_token(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let query = QueryParams::parse(query.as_deref());
    let organization_id = match (query.get("organizationId")?, principal.organization_id()) {
        (Some(id), _) if !id.is_empty() => id.to_string(),
        (_, Some(own)) => own.to_string(),
        _ => return Err(ApiError::missing_parameter("organizationId").into()),
    };
    principal.enter(&organization_id)?;
    state.organization(&organization_id)?;
    if !may_impersonate(&principal) {
        return Err(principal
            .denied("the privilege SEARCH_API IMPERSONATE_SEARCH_API (to issue search tokens)")
            .into());
    }
    let body = read_body(&state, &headers, body).await?;
    let request = TokenParams::parse(&body)?;
    let now = state.clock.now_ms();
    let claims = SearchTokenClaims {
        organization: organization_id,
        user_ids: request.user_ids,
        search_hub: request.search_hub,
        pipeline: request.pipeline,
        filter: request.filter,
        user_display_name: request.user_display_name,
        iat: now / 1000,
        exp: (now + request.valid_for_ms) / 1000,
        kid: match &principal {
            Principal::Key(key) | Principal::Token(key) => key.id.clone(),
            _ => String::new(),
        },
    };
    let token = sign_token(&claims, &state.auth.token_secret);
    Ok(Json(SearchTokenAnswer { token }).into_response())
}

/// The token request, checked.
struct TokenParams {
    user_ids: Vec<TokenUser>,
    search_hub: Option<String>,
    pipeline: Option<String>,
    filter: Option<String>,
    user_display_name: Option<String>,
    valid_for_ms: i64,
}

impl TokenParams {
    fn parse(body: &StrictJson) -> Result<TokenParams, ApiError> {
        let text = |key: &str| -> Result<Option<String>, ApiError> {
            match body.get(key) {
                None | Some(StrictJson::Null) => Ok(None),
                Some(StrictJson::String(text)) => Ok(Some(text.clone())),
                Some(other) => Err(ApiError::invalid_json(format!("'{key}' must be a string, not {}.", other.kind()))),
            }
        };
        let users = match body.get("userIds") {
            Some(StrictJson::Array(users)) if !users.is_empty() => users,
            Some(StrictJson::Array(_)) | None | Some(StrictJson::Null) => {
                return Err(ApiError::invalid_json(
                    "'userIds' is missing or empty: name the user the token searches as, such as \
                     [{\"name\": \"alice@example.com\", \"provider\": \"Email Security Provider\"}].",
                ));
            }
            Some(other) => {
                return Err(ApiError::invalid_json(format!("'userIds' must be an array, not {}.", other.kind())));
            }
        };
        if users.len() > MAX_USER_IDS {
            return Err(ApiError::invalid_json(format!(
                "'userIds' has {} users; a token holds at most {MAX_USER_IDS}.",
                users.len()
            )));
        }
        let user_ids = users.iter().enumerate().map(|(i, user)| token_user(user, i)).collect::<Result<_, _>>()?;
        let valid_for_ms = match body.get("validFor") {
            None | Some(StrictJson::Null) => MAX_VALID_FOR_MS,
            Some(StrictJson::Number(n)) => match n.as_i64() {
                Some(ms) if (MIN_VALID_FOR_MS..=MAX_VALID_FOR_MS).contains(&ms) => ms,
                _ => {
                    return Err(ApiError::invalid_parameter(
                        "validFor",
                        &n.to_string(),
                        "a token is valid for 900000 (15 minutes) to 86400000 (24 hours) milliseconds",
                    ));
                }
            },
            Some(other) => {
                return Err(ApiError::invalid_json(format!("'validFor' must be a number, not {}.", other.kind())));
            }
        };
        Ok(TokenParams {
            user_ids,
            search_hub: text("searchHub")?,
            pipeline: text("pipeline")?,
            filter: text("filter")?.filter(|f| !f.trim().is_empty()),
            user_display_name: text("userDisplayName")?,
            valid_for_ms,
        })
    }
}

fn token_user(user: &StrictJson, index: usize) -> Result<TokenUser, ApiError> {
    let at = |key: &str| format!("userIds[{index}].{key}");
    let text = |key: &str| match user.get(key) {
        None | Some(StrictJson::Null) => Ok(None),
        Some(StrictJson::String(text)) if text.trim().is_empty() => Ok(None),
        Some(StrictJson::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(ApiError::invalid_json(format!("'{}' must be a string, not {}.", at(key), other.kind()))),
    };
    if !matches!(user, StrictJson::Object(_)) {
        return Err(ApiError::invalid_json(format!("'userIds[{index}]' must be an object {{name, provider, type}}.")));
    }
    let name = text("name")?
        .ok_or_else(|| ApiError::invalid_json(format!("'{}' is missing: the user's name.", at("name"))))?;
    let kind = match text("type")? {
        None => IdentityType::User,
        Some(raw) => IdentityType::parse(&raw).ok_or_else(|| {
            ApiError::invalid_json(format!(
                "'{}' is '{raw}'; allowed values are User, Group, VirtualGroup and Unknown.",
                at("type")
            ))
        })?,
    };
    Ok(TokenUser {
        name,
        provider: text("provider")?.unwrap_or_else(|| EMAIL_PROVIDER.to_string()),
        kind: kind.as_str().to_string(),
    })
}

fn sign_token(claims: &SearchTokenClaims, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(JWT_HEADER);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signed = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(signing::sign(secret, signed.as_bytes()));
    format!("{signed}.{signature}")
}

/// Whether a bearer token looks like a search token (a JWT) rather than a key or an access token.
pub fn is_search_token(token: &str) -> bool {
    token.starts_with("eyJ") && token.matches('.').count() == 2
}

/// The claims of a search token whose signature is right and that has not expired at `now_ms`.
pub fn verify_search_token(token: &str, secret: &[u8], now_ms: i64) -> Result<SearchTokenClaims, ApiError> {
    let invalid = |why: &str| ApiError::new(ErrorCode::InvalidSearchToken, format!("The search token {why}."));
    let forged = || invalid("is not valid: its signature does not match (it was altered, or issued by another server)");
    let (signed, signature) = token.rsplit_once('.').ok_or_else(forged)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| forged())?;
    if !signing::verify(secret, signed.as_bytes(), &signature) {
        return Err(forged());
    }
    let (_, payload) = signed.split_once('.').ok_or_else(forged)?;
    let claims: SearchTokenClaims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(forged)?;
    if claims.exp * 1000 <= now_ms {
        return Err(invalid(&format!(
            "expired at {}; ask your server for a new one",
            intake_model::dates::format_ms(claims.exp * 1000)
        )));
    }
    Ok(claims)
}

/// Who a token searches as.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the shape for /openapi.json; the strict parser reads the body
pub struct TokenRequest {
    /// `[{name, provider (default: Email Security Provider), type (default: User)}]`.
    #[schema(value_type = Vec<Object>)]
    user_ids: Vec<serde_json::Value>,
    /// Milliseconds, 900000 (15 minutes) to 86400000 (24 hours, the default).
    valid_for: Option<i64>,
    /// A query expression ANDed with every query made with the token.
    filter: Option<String>,
    search_hub: Option<String>,
    pipeline: Option<String>,
    user_display_name: Option<String>,
}

/// A search token.
#[derive(Serialize, ToSchema)]
pub struct SearchTokenAnswer {
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> SearchTokenClaims {
        SearchTokenClaims {
            organization: "acme".into(),
            user_ids: vec![TokenUser {
                name: "alice@example.com".into(),
                provider: EMAIL_PROVIDER.into(),
                kind: "User".into(),
            }],
            search_hub: None,
            pipeline: None,
            filter: None,
            user_display_name: None,
            iat: 0,
            exp,
            kid: "k1".into(),
        }
    }

    #[test]
    fn tokens_verify_until_they_expire_and_refuse_tampering() {
        let token = sign_token(&claims(100), b"secret");
        assert!(is_search_token(&token));
        assert_eq!(verify_search_token(&token, b"secret", 99_999).unwrap(), claims(100));
        let expired = verify_search_token(&token, b"secret", 100_000).unwrap_err();
        assert_eq!(expired.code, ErrorCode::InvalidSearchToken);
        assert!(expired.message.contains("expired"), "{}", expired.message);
        assert!(verify_search_token(&token, b"other", 0).unwrap_err().message.contains("signature"));
        let (header, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let mut forged = claims(100);
        forged.organization = "globex".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert!(verify_search_token(&format!("{header}.{payload}.{signature}"), b"secret", 0).is_err());
    }
}
