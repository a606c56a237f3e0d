//! `GET|POST /rest/search/v2/html`: the quickview of a result — the item's stored text as an HTML page, with
//! the query's words marked. Headless loads it in an iframe, so the token may come as `access_token` in the query
//! string (or in the form body of a POST) instead of the `Authorization` header.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use intake_index::search::quickview_item;
use intake_model::{ApiError, ErrorCode, QueryParams};
use serde_json::{Map, Value};

use super::{Params, on_index, query_terms, search_organization};
use crate::auth::{authenticate, bearer_token};
use crate::http::{BodyLimit, Framable, HandlerResult};
use crate::state::AppState;

const FORM_BODY: BodyLimit =
    BodyLimit { what: "The quickview body", bytes: 64 * 1024, advice: "It holds uniqueId, q and a few options." };

/// An item's text as HTML, for the quickview of a result.
#[utoipa::path(
    method(get, post), path = "/rest/search/v2/html", tag = "Search",
    params(
        ("uniqueId" = String, Query, description = "A search result's uniqueId"),
        ("q" = Option<String>, Query, description = "The query, whose words are marked"),
        ("organizationId" = Option<String>, Query, description = "Organization id; optional when the server has one organization"),
        ("access_token" = Option<String>, Query, description = "The key or search token, when no Authorization header can be sent (an iframe)"),
        ("requestedOutputSize" = Option<u64>, Query, description = "The most bytes of text to show (0 or absent: all that is stored, up to 64 KiB)"),
    ),
    responses(
        (status = 200, description = "The item as an HTML page", body = String, content_type = "text/html"),
        (status = 400, description = "INVALID_JSON: a body that is neither a form nor a JSON object"),
        (status = 401, description = "UNAUTHORIZED or INVALID_TOKEN"),
        (status = 403, description = "ACCESS_DENIED: SEARCH_API EXECUTE_QUERY"),
        (status = 404, description = "ITEM_NOT_FOUND (or not visible to the caller), ORGANIZATION_NOT_FOUND"),
        (status = 412, description = "MISSING_PARAMETER (uniqueId) or INVALID_PARAMETER"),
    )
)]
pub async fn quickview(
    State(state): State<AppState>,
    parts: Parts,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let query = QueryParams::parse(query.as_deref());
    let form = read_form(&state, &headers, body).await?;
    let params = Params { query: &query, body: &form };
    let token = match bearer_token(&parts) {
        Ok(token) => token.to_string(),
        Err(missing) => params.text("access_token")?.ok_or(missing)?,
    };
    let principal = authenticate(&token, &parts, &state)?;
    let organization_id = search_organization(&state, &principal, &params)?;
    let viewer = super::viewer(&state, &principal, &organization_id, params.flag("viewAllContent")?)?;
    let unique_id = params.text("uniqueId")?.ok_or_else(|| ApiError::missing_parameter("uniqueId"))?;
    let key = item_key_of(&unique_id)?;
    let limit = params.count("requestedOutputSize", usize::MAX)?.filter(|n| *n > 0);
    let terms = query_terms(&params.text("q")?.unwrap_or_default());
    let found = on_index(&state, &organization_id, 1, move |handle| {
        let searcher = handle.reader.searcher();
        quickview_item(&searcher, &handle.fields, &handle.permissions, &viewer, &key)
    })
    .await?
    .flatten();
    let Some((title, text)) = found else {
        return Err(ApiError::new(
            ErrorCode::ItemNotFound,
            format!("No item with uniqueId '{unique_id}' that this caller may see."),
        )
        .into());
    };
    let text = match limit {
        Some(limit) if limit < text.len() => {
            &text[..(0..=limit).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0)]
        }
        _ => text.as_str(),
    };
    let mut response = page(&title, text, &terms).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // The page is text: nothing in it may run or load, even if an item's text looks like markup. Search pages
    // of any origin show it in a frame.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors *"),
    );
    response.extensions_mut().insert(Framable);
    Ok(response)
}

/// A POST's form (or JSON) body as an object of parameters; empty for a GET.
async fn read_form(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = state.body_budget.read(headers, body, FORM_BODY).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid_json("The quickview body is not UTF-8."))?;
    if text.trim_start().starts_with('{') {
        return serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| ApiError::invalid_json("The quickview body is neither a form nor a JSON object."));
    }
    let form = QueryParams::parse(Some(text));
    let mut map = Map::new();
    for name in ["uniqueId", "q", "organizationId", "access_token", "requestedOutputSize"] {
        if let Some(value) = form.get(name)? {
            let value = match name {
                "requestedOutputSize" => value.parse::<u64>().map(Value::from).unwrap_or(Value::from(value)),
                _ => Value::from(value),
            };
            map.insert(name.to_string(), value);
        }
    }
    Ok(Value::Object(map))
}

/// The index key of a result's `uniqueId` (`42.<source id>$<document id>`).
fn item_key_of(unique_id: &str) -> Result<String, ApiError> {
    let expected = "it must be a search result's uniqueId, such as 42.<source id>$<document id>";
    let rest =
        unique_id.strip_prefix("42.").ok_or_else(|| ApiError::invalid_parameter("uniqueId", unique_id, expected))?;
    let (source, document) =
        rest.split_once('$').ok_or_else(|| ApiError::invalid_parameter("uniqueId", unique_id, expected))?;
    Ok(intake_index::schema::item_key(source, document))
}

/// The page: the title, and the text with the query's words marked as Coveo's quickview marks them.
fn page(title: &str, text: &str, terms: &[String]) -> String {
    let mut body = String::with_capacity(text.len() + text.len() / 8);
    for word in text.split_inclusive(|c: char| !c.is_alphanumeric()) {
        let split = word.find(|c: char| !c.is_alphanumeric()).unwrap_or(word.len());
        let (letters, rest) = word.split_at(split);
        if !letters.is_empty() && terms.contains(&letters.to_lowercase()) {
            body.push_str("<span class=\"coveo-highlight\">");
            body.push_str(&escape(letters));
            body.push_str("</span>");
        } else {
            body.push_str(&escape(letters));
        }
        body.push_str(&escape(rest));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title><style>body{{font-family:sans-serif;\
         margin:1.5em;line-height:1.5}}.intake-text{{white-space:pre-wrap}}.coveo-highlight{{background:#fff59d}}\
         </style></head><body><h1>{title}</h1><div class=\"intake-text\">{body}</div></body></html>\n",
        title = escape(title)
    )
}

/// Text as HTML text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_mark_words_and_escape_everything() {
        let html = page("<b>T</b>", "Kernel <script>alert(1)</script> kernels & kernel.", &["kernel".to_string()]);
        assert!(html.contains("<title>&lt;b&gt;T&lt;/b&gt;</title>"), "{html}");
        assert!(html.contains("<span class=\"coveo-highlight\">Kernel</span> &lt;script&gt;alert(1)&lt;/script&gt; kernels &amp; <span class=\"coveo-highlight\">kernel</span>."), "{html}");
        assert_eq!(item_key_of("42.src$file://a$b").unwrap(), intake_index::schema::item_key("src", "file://a$b"));
        assert!(item_key_of("nope").is_err());
    }
}
