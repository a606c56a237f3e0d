//! The web console: a browser page served at `/` that shows what was pushed, what happened to it and why, and
//! lets an administrator act on it — all through the public API, with the key the user signs in with.
//!
//! Its files (`crates/intake-server/console/`: plain HTML, CSS and JavaScript modules, no build step) are
//! compiled into the binary. Each is answered with a strict Content-Security-Policy (scripts and styles of this
//! origin only, no inline code, no request to another origin), an `ETag` for revalidation, and gzip when the
//! browser takes it (compressed once, on first use).

mod assets;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use intake_model::{ApiError, ErrorCode};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::HandlerResult;
use crate::state::AppState;

pub use assets::ASSETS;

/// The console's policy: nothing but this origin's files and API; no inline script or style, no frames.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `/` and `/console/{file}`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(console_page)).routes(routes!(console_file))
}

/// The console's page (sign in with a key; everything else is fetched from the API with it).
#[utoipa::path(get, path = "/", tag = "Console", security(()), responses((status = 200, description = "The console's HTML page", content_type = "text/html"), (status = 304, description = "Not modified (If-None-Match)")))]
pub async fn console_page(headers: HeaderMap) -> Response {
    serve(assets::page(), &headers)
}

/// One of the console's files (scripts, styles).
#[utoipa::path(get, path = "/console/{file}", tag = "Console", security(()), params(("file" = String, Path, description = "A file of the console, such as `app.js`")),
    responses((status = 200, description = "The file"), (status = 304, description = "Not modified (If-None-Match)"), (status = 404, description = "NOT_FOUND: no such file")))]
pub async fn console_file(Path(file): Path<String>, headers: HeaderMap) -> HandlerResult<Response> {
    let asset = assets::named(&file).ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound, format!("The console has no file '{file}'; its page is at /."))
    })?;
    Ok(serve(asset, &headers))
}

fn serve(asset: &'static assets::Asset, headers: &HeaderMap) -> Response {
    let etag = asset.etag();
    let mut response = if headers.get(header::IF_NONE_MATCH).is_some_and(|tag| tag.as_bytes() == etag.as_bytes()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(headers) {
        ([(header::CONTENT_ENCODING, "gzip")], asset.gzipped()).into_response()
    } else {
        asset.bytes.into_response()
    };
    let answer = response.headers_mut();
    answer.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    answer.insert(header::ETAG, HeaderValue::from_str(etag).expect("etags are hex"));
    // Revalidated at each load, so an upgraded server's console is never mixed with an old cached file.
    answer.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    answer.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    answer.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    response
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused =
                parts.any(|p| matches!(p.trim().replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}
