//! Access tokens: `POST /oauth/token` (client credentials: the key's id and value) and `POST /oauth/check_token`
//! (as the Coveo CLI calls it, with a `token` form field).

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use intake_model::error::shorten;
use intake_model::{ApiError, ErrorCode, QueryParams};
use serde::Serialize;

use crate::auth::{Principal, authenticate, check_key_use, issue_token, secret_hash};
use crate::http::{BodyLimit, HandlerResult};
use crate::state::AppState;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const FORM: BodyLimit = BodyLimit { what: "The form", bytes: 64 * 1024, advice: "A token request is a short form." };

/// `/oauth/token` and `/oauth/check_token`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(token)).routes(routes!(check_token))
}

/// Client credentials for an access token: `grant_type=client_credentials`, the key's id as `client_id` and its
/// value as `client_secret`, in the form body or as HTTP Basic credentials. Errors are RFC 6749's: 400
/// `invalid_request` or `unsupported_grant_type`, 401 `invalid_client`.
#[utoipa::path(
    post, path = "/oauth/token", tag = "Access tokens", security(()),
    request_body(content = String, description = "grant_type=client_credentials&client_id=<key id>&client_secret=<key value> (or the two as HTTP Basic credentials)", content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An access token for the key", body = TokenAnswer),
        (status = 400, description = "INVALID_REQUEST (RFC 6749 invalid_request) or UNSUPPORTED_GRANT_TYPE"),
        (status = 401, description = "INVALID_CLIENT (RFC 6749 invalid_client)"),
    )
)]
pub async fn token(State(state): State<AppState>, request: Request) -> HandlerResult<Json<TokenAnswer>> {
    let (parts, body) = request.into_parts();
    let form = read_form(&state, &parts, body).await.map_err(as_oauth_error)?;
    let grant = form.required("grant_type").map_err(as_oauth_error)?;
    if grant != "client_credentials" {
        return Err(ApiError::new(
            ErrorCode::UnsupportedGrantType,
            format!("The grant type '{}' is not supported: send grant_type=client_credentials.", shorten(grant, 40)),
        )
        .into());
    }
    let (client_id, secret) = match basic_credentials(&parts) {
        Some(credentials) => credentials,
        None => (
            form.required("client_id").map_err(as_oauth_error)?.to_string(),
            form.required("client_secret").map_err(as_oauth_error)?.to_string(),
        ),
    };
    let unknown = || {
        ApiError::new(
            ErrorCode::InvalidClient,
            "The client credentials are not recognized: client_id is an API key's id and client_secret its value.",
        )
    };
    let key =
        state.catalog.api_key_by_hash(&secret_hash(&secret)).filter(|key| key.id == client_id).ok_or_else(unknown)?;
    check_key_use(&key, &parts, &state).map_err(|e| ApiError::new(ErrorCode::InvalidClient, e.message))?;
    let now = state.clock.now_ms();
    let expires_at =
        key.expiration_ms.map_or(now + state.auth.token_lifetime_ms, |end| end.min(now + state.auth.token_lifetime_ms));
    let token = issue_token(&key, expires_at, &state.auth.token_secret);
    tracing::info!(organization = key.organization_id, key = key.id, "access token issued");
    Ok(Json(TokenAnswer {
        access_token: token,
        token_type: "bearer",
        expires_in: (expires_at - now) / 1000,
        scope: "full",
        organization_id: key.organization_id,
    }))
}

/// A parameter error of the token endpoint, as RFC 6749 words it (400 `invalid_request`).
fn as_oauth_error(error: ApiError) -> ApiError {
    match error.code {
        ErrorCode::MissingParameter | ErrorCode::InvalidParameter => {
            ApiError::new(ErrorCode::InvalidRequest, error.message)
        }
        _ => error,
    }
}

/// Whether a token is valid: `{active, client_id, organizationId, exp, authorities}`, or 401 INVALID_TOKEN.
#[utoipa::path(
    method(get, post), path = "/oauth/check_token", tag = "Access tokens", security(()),
    request_body(content = String, description = "token=<token>, as a form (multipart, as the Coveo CLI sends it, or urlencoded) or in the query string", content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The token is valid", body = TokenCheck),
        (status = 401, description = "INVALID_TOKEN: unknown, expired or tampered"),
        (status = 412, description = "MISSING_PARAMETER: no token"),
    )
)]
pub async fn check_token(State(state): State<AppState>, request: Request) -> HandlerResult<Json<TokenCheck>> {
    let (parts, body) = request.into_parts();
    let token = match form_field_multipart(&state, &parts, body).await? {
        Some(token) => token,
        None => return Err(ApiError::missing_parameter("token").into()),
    };
    let principal = authenticate(&token, &parts, &state)?;
    let body = match &principal {
        Principal::Master => TokenCheck {
            active: true,
            client_id: "master".into(),
            organization_id: None,
            exp: None,
            authorities: vec!["*".into()],
        },
        Principal::Key(key) | Principal::Token(key) => TokenCheck {
            active: true,
            client_id: key.id.clone(),
            organization_id: Some(key.organization_id.clone()),
            exp: Some(key.expiration_ms.map(|ms| ms / 1000)),
            authorities: key.privileges.iter().map(ToString::to_string).collect(),
        },
        Principal::SearchToken(claims) => TokenCheck {
            active: true,
            client_id: claims.kid.clone(),
            organization_id: Some(claims.organization.clone()),
            exp: Some(Some(claims.exp)),
            authorities: vec!["SEARCH_API EXECUTE_QUERY".into()],
        },
    };
    Ok(Json(body))
}

/// An access token (RFC 6749 §5.1, with Coveo's `organizationId`).
#[derive(Serialize, ToSchema)]
pub struct TokenAnswer {
    access_token: String,
    /// Always `bearer`.
    token_type: &'static str,
    /// Seconds until it expires.
    expires_in: i64,
    scope: &'static str,
    #[serde(rename = "organizationId")]
    organization_id: String,
}

/// What a valid token is.
#[derive(Serialize, ToSchema)]
pub struct TokenCheck {
    active: bool,
    /// The API key's id, or `master`.
    client_id: String,
    #[serde(rename = "organizationId", skip_serializing_if = "Option::is_none")]
    organization_id: Option<String>,
    /// Epoch seconds of the key's expiry; null when it never expires. Absent for the master key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    exp: Option<Option<i64>>,
    /// The key's privileges (`*` for the master key).
    authorities: Vec<String>,
}

/// `Authorization: Basic base64(id:secret)`.
fn basic_credentials(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// The query string and an `application/x-www-form-urlencoded` body, as one set of parameters.
async fn read_form(state: &AppState, parts: &Parts, body: Body) -> Result<QueryParams, ApiError> {
    let bytes = state.body_budget.read(&parts.headers, body, FORM).await?;
    let form = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::invalid_parameter("body", "(bytes)", "the form must be UTF-8"))?;
    let query = parts.uri.query().unwrap_or("");
    Ok(QueryParams::parse(Some(&format!("{query}&{form}"))))
}

/// The `token` field, from a multipart form (the Coveo CLI), a urlencoded form, or the query string.
async fn form_field_multipart(state: &AppState, parts: &Parts, body: Body) -> Result<Option<String>, ApiError> {
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        return Ok(read_form(state, parts, body).await?.get("token")?.map(str::to_string));
    }
    let bytes = state.body_budget.read(&parts.headers, body, FORM).await?;
    let request = Request::from_parts(parts.clone(), Body::from(bytes.to_vec()));
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::invalid_parameter("body", "multipart", &e.to_string()))?;
    while let Some(field) =
        form.next_field().await.map_err(|e| ApiError::invalid_parameter("body", "multipart", &e.to_string()))?
    {
        if field.name() == Some("token") {
            return Ok(Some(
                field.text().await.map_err(|e| ApiError::invalid_parameter("token", "multipart", &e.to_string()))?,
            ));
        }
    }
    Ok(None)
}
