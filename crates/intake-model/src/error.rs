//! The error catalog: every error Intake answers, one row each.
//!
//! The HTTP layer takes the status from here, `intake explain CODE` prints a row, `docs/errors.md` is generated
//! from [`CATALOG`], and tests assert against the same codes. An [`ApiError`] pairs a row with a message that
//! names the exact offending thing (a parameter, a key, a byte offset).

use std::fmt;

macro_rules! catalog {
    ($($code:ident => $status:literal, $name:literal, $meaning:literal, $cause:literal, $resolution:literal;)*) => {
        /// One error code of the catalog, spelled on the wire as in Coveo's Push API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($code,)*
        }

        /// Every error Intake can answer, in the order of [`ErrorCode`]'s variants.
        pub const CATALOG: &[CatalogEntry] = &[
            $(CatalogEntry {
                code: ErrorCode::$code,
                status: $status,
                name: $name,
                meaning: $meaning,
                cause: $cause,
                resolution: $resolution,
            },)*
        ];
    };
}

/// A row of the catalog: what the code means, why a client meets it, and what to do.
#[derive(Debug)]
pub struct CatalogEntry {
    pub code: ErrorCode,
    pub status: u16,
    pub name: &'static str,
    pub meaning: &'static str,
    pub cause: &'static str,
    pub resolution: &'static str,
}

catalog! {
    InvalidJson => 400, "INVALID_JSON",
        "The request body is not a valid item (or identity) body.",
        "The body is not JSON, has trailing characters, repeats a key (keys are case-insensitive, so `title` and `Title` are the same key), has none or more than one of `data`, `compressedBinaryData` and `compressedBinaryDataFileId`, has a metadata value that is a nested array or an object inside a dictionary, or has `compressedBinaryData` that is not Base64.",
        "Fix the body at the place the message names. An item body needs exactly one of `data` (uncompressed text), `compressedBinaryData` (Base64, 5 MiB at most) or `compressedBinaryDataFileId` (a file container); metadata values are strings, numbers, booleans or arrays of those.";
    SourceNotStreamEnabled => 400, "SOURCE_NOT_STREAM_ENABLED",
        "The source does not take Stream API calls.",
        "`stream/*` calls (open, chunk, close, update, merge, deleteolderthan) were sent to a PUSH source; only CATALOG sources are stream enabled.",
        "Push to this source with the item endpoints (`…/documents`, `…/documents/batch`), or create a CATALOG source (`POST /rest/organizations/{org}/sources` with `sourceType: CATALOG`) and stream to it.";
    OrganizationIsPaused => 400, "ORGANIZATION_IS_PAUSED",
        "The organization is paused.",
        "An administrator paused the organization; push calls are refused until it is resumed.",
        "Resume the organization (`POST /rest/organizations/{org}/resume` or `intake admin org resume`), then retry.";
    InvalidRequest => 400, "INVALID_REQUEST",
        "The OAuth token request is malformed.",
        "`POST /oauth/token` lacks `grant_type`, `client_id` or `client_secret` (in the form or as HTTP Basic credentials), or repeats one of them. The answer also carries RFC 6749's `error: invalid_request`.",
        "Send `grant_type=client_credentials`, `client_id=<API key id>` and `client_secret=<API key value>`, each once.";
    UnsupportedGrantType => 400, "UNSUPPORTED_GRANT_TYPE",
        "The OAuth grant type is not supported.",
        "`grant_type` is not `client_credentials`, the only grant Intake issues tokens for (RFC 6749 `unsupported_grant_type`).",
        "Send `grant_type=client_credentials`.";
    InvalidQuerySyntax => 400, "INVALID_QUERY_SYNTAX",
        "The search query could not be parsed.",
        "An expression (`aq`, `cq`, `dq`, or `q` with the query syntax) is malformed (an unterminated quote, an unbalanced parenthesis, an operator without a value), over a limit (length, nesting, terms, a wildcard matching too much), or uses Coveo syntax Intake does not support (`+word`, `~=`, `%=`, `/=`, `$extensions`, `[[nested]]`); the message gives the character position.",
        "Fix the expression at the position given, or write it as the message suggests; see docs/search.md for the syntax.";
    Unauthorized => 401, "UNAUTHORIZED",
        "The request carries no usable credentials.",
        "There is no `Authorization` header, or it is not of the form `Bearer <token>`.",
        "Send `Authorization: Bearer <API key or access token>`. The master key printed by `intake serve` on first start (also in `<data-dir>/bootstrap.json`) works for every organization.";
    InvalidToken => 401, "INVALID_TOKEN",
        "The token is not recognized.",
        "The API key or access token is unknown, disabled, deleted or expired, belongs to another organization, or the caller's IP address is not allowed for it.",
        "Check that the token is the full value of an active key of this organization, and that your IP address is allowed for it.";
    InvalidClient => 401, "INVALID_CLIENT",
        "The OAuth client credentials are not recognized.",
        "`client_id` is not the id of an active API key whose value is `client_secret` (RFC 6749 `invalid_client`).",
        "Use an API key's id as `client_id` and its value as `client_secret`; check that the key is enabled, unexpired and allows your IP address.";
    AccessDenied => 403, "ACCESS_DENIED",
        "The token lacks a privilege this call needs.",
        "The API key or access token is valid but was not granted the privilege that the message names.",
        "Grant the named privilege to the key (for pushing items: SOURCE EDIT on the source), or use a key that has it.";
    OrganizationNotFound => 404, "ORGANIZATION_NOT_FOUND",
        "The organization does not exist.",
        "The organization id in the path is unknown to this Intake.",
        "Check the organization id (`intake serve` prints it; it is in `<data-dir>/bootstrap.json`).";
    ErrorDeserializingBatchDocumentFromS3 => 404, "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3",
        "The batch file container could not be read as a batch.",
        "The container is unknown, expired or was never uploaded to, or its content is not UTF-8, not valid JSON, repeats a key, or has an item without `documentId`.",
        "Fix the batch file at the place the message names, upload it to a new file container and push the batch again.";
    SecurityProviderNotFound => 404, "SECURITY_PROVIDER_NOT_FOUND",
        "The security provider does not exist.",
        "The provider id in the path is unknown in this organization, or the provider was deleted.",
        "List the organization's providers (`GET /rest/organizations/{org}/securityproviders` or `intake admin provider list`) for their ids, or create it with `PUT /rest/organizations/{org}/securityproviders/{id}`.";
    StreamNotFound => 404, "STREAM_NOT_FOUND",
        "The stream does not exist.",
        "The `streamId` in the path was never opened on this source, or it expired (an open stream lives 24 hours; its chunks are then deleted).",
        "Open a new stream (`POST …/sources/{src}/stream/open`) and upload the whole catalog again.";
    FaultRuleNotFound => 404, "FAULT_RULE_NOT_FOUND",
        "The fault rule does not exist.",
        "The rule id in the path is unknown in this organization, or the rule was removed.",
        "List the organization's rules (`GET /rest/organizations/{org}/faults` or `intake admin fault list`) for their ids.";
    ApiKeyNotFound => 404, "API_KEY_NOT_FOUND",
        "The API key does not exist.",
        "The key id in the path is unknown in this organization, or the key was deleted.",
        "List the organization's keys (`GET /rest/organizations/{org}/apikeys`) for their ids.";
    ItemNotFound => 404, "ITEM_NOT_FOUND",
        "No item with that unique id is visible to the caller.",
        "The `uniqueId` (a search result's) names no live item, the item was deleted since, or the caller's identities may not see it.",
        "Take the `uniqueId` from a search made with the same key or search token, and open it while the item is still indexed.";
    NotFound => 404, "NOT_FOUND",
        "No such endpoint.",
        "The path does not name any Intake endpoint.",
        "Check the path against the API reference served at `/docs` (for example `/push/v1/organizations/{org}/sources/{src}/documents`).";
    MethodNotAllowed => 405, "METHOD_NOT_ALLOWED",
        "The endpoint exists but not with this HTTP method.",
        "The method is not one the endpoint accepts (for example GET on a PUT-only path).",
        "Use the method given in the `Allow` header of the answer.";
    AlreadyExists => 409, "ALREADY_EXISTS",
        "Something with that id or name already exists.",
        "An organization with the requested id, or a source with the requested name in the organization, already exists.",
        "Choose another id or name, or use the existing one.";
    SourceDoesNotExist => 412, "SOURCE_DOES_NOT_EXIST",
        "The source does not exist.",
        "The source id in the path is unknown in this organization, was deleted, or is still being provisioned.",
        "Check the source id (`intake serve` prints the default one). If the source was just created, retry in a moment.";
    SecurityProviderDoesNotExist => 412, "SECURITY_PROVIDER_DOES_NOT_EXIST",
        "The security identity provider does not exist.",
        "Identities are pushed to a provider that is not defined in this organization (the Push API does not create providers).",
        "Create the provider first (`PUT /rest/organizations/{org}/securityproviders/{providerId}` with `type: EXPANDED`, as the SDKs' `createOrUpdateSecurityProvider` does, or `intake admin provider create`), then push again.";
    InvalidSearchToken => 401, "INVALID_SEARCH_TOKEN",
        "The search token is expired, forged, or not for this organization.",
        "A search was made with a token whose signature does not verify, whose `exp` has passed, or that was issued for another organization.",
        "Ask your server for a new search token (`POST /rest/search/v2/token` with a key that has the impersonation privilege); tokens last `validFor` milliseconds (15 min to 24 h).";
    StreamClosed => 412, "STREAM_CLOSED",
        "The stream is already closed.",
        "A chunk was requested from, or a close sent to, a stream that was closed before: its load is already accepted.",
        "Open a new stream for another full load; to change some items of a loaded catalog, use `stream/update` or `stream/merge`.";
    FullLoadRequired => 412, "FULL_LOAD_REQUIRED",
        "The catalog source has not been loaded yet.",
        "`stream/update` or `stream/merge` was sent to a CATALOG source that never received a full load; Coveo says incremental updates must only follow a full catalog upload.",
        "Load the whole catalog first: `stream/open`, upload each chunk, `stream/{streamId}/close`; then send updates.";
    MissingParameter => 412, "MISSING_PARAMETER",
        "A required parameter is missing.",
        "A query parameter the endpoint requires (such as `documentId`, `orderingId` or `statusType`) is absent or empty.",
        "Add the parameter named in the message.";
    InvalidParameter => 412, "INVALID_PARAMETER",
        "A parameter has a value of the wrong type or outside its allowed values.",
        "For example `orderingId` that is not a 64-bit integer, `deleteChildren` that is not a boolean, a negative `queueDelay`, or an unknown `compressionType` or `statusType`.",
        "Send a value of the type and range the message gives.";
    DocumentLimitExceeded => 412, "DOCUMENT_LIMIT_EXCEEDED",
        "The organization's item limit is reached.",
        "Accepting this add would bring the items in the index plus the pending adds over the organization's `maximumItems` limit.",
        "Delete items, or raise the limit (`PUT /rest/organizations/{org}/limits/maximumItems`).";
    RequestTimeout => 408, "REQUEST_TIMEOUT",
        "The request body came too slowly.",
        "The client sent no byte of the body for the body idle timeout (30 s by default), or sent it slower than the minimum pace (1 KiB/s by default, after a 10 s grace period). Only the time the server waits for the client counts.",
        "Send the body without pauses; on a slow link, push large content through a file container. The limits are in docs/operations.md.";
    RequestEntityTooLarge => 413, "REQUEST_ENTITY_TOO_LARGE",
        "The request or a part of it is too large.",
        "A single item request is over 6 MiB, inline `data` or `compressedBinaryData` is over 5 MiB, or a file container upload is over 256 MiB.",
        "Push large items through a file container and `compressedBinaryDataFileId`, and large volumes as batches.";
    UriTooLong => 414, "URI_TOO_LONG",
        "The request's URI is too long.",
        "The path and query string together are over 32 KiB.",
        "Shorten the query string: a `documentId` is at most 2,000 bytes; send search parameters in a JSON body instead of the query string.";
    UnsupportedMediaType => 415, "UNSUPPORTED_MEDIA_TYPE",
        "The request's Content-Type is not accepted here.",
        "Push API calls with a body need `Content-Type: application/json`; uploads to a file container need exactly the headers returned in `requiredHeaders`.",
        "Send the Content-Type named in the message.";
    RequestHeaderFieldsTooLarge => 431, "REQUEST_HEADER_FIELDS_TOO_LARGE",
        "The request's headers are too large.",
        "The headers are over 64 KiB in all, or there are more than 100 of them.",
        "Send fewer or shorter headers (a cookie jar sent by mistake is the usual cause).";
    TooManyRequests => 429, "TOO_MANY_REQUESTS",
        "Too many requests.",
        "A limit of the organization is reached (`pushApiRequestsPerSecond` with `pushApiBurst`, `pushApiMaximumDailyCalls`, `pushApiMaximumDailySecurityIdentities`), or a fault rule of the organization throttles it (the message says which).",
        "Wait the number of seconds given in the `Retry-After` header, then retry with exponential backoff.";
    TooManyDocumentsDaily => 429, "TOO_MANY_DOCUMENTS_DAILY",
        "The daily limit of items processed is reached.",
        "The organization pushed more items today (UTC) than its `pushApiMaximumDailyDocumentLimit`.",
        "Wait until midnight UTC (`Retry-After` gives the seconds), or raise the limit.";
    InternalServerError => 500, "INTERNAL_SERVER_ERROR",
        "Intake failed to process the request.",
        "An unexpected internal error; the server log has the cause under the request id.",
        "Retry with backoff. If it persists, report it with the `requestId` of the answer.";
    BadGateway => 502, "BAD_GATEWAY",
        "A gateway in front of the service failed.",
        "Intake itself never answers 502 on its own: this answer comes from a fault rule set on the organization (its message says so) to reproduce what Coveo's gateways do.",
        "Retry with backoff. To stop it, remove the rule (`DELETE /rest/organizations/{org}/faults/{id}`).";
    ServiceUnavailable => 503, "SERVICE_UNAVAILABLE",
        "Intake cannot take the request right now.",
        "The server is starting, shutting down, or its storage refused the write (for example a full disk); or a fault rule of the organization injected it (the message says so).",
        "Retry with backoff; check the server log and free disk space if the message says so.";
    GatewayTimeout => 504, "GATEWAY_TIMEOUT",
        "A gateway in front of the service timed out.",
        "Intake itself never answers 504 on its own: this answer comes from a fault rule set on the organization (its message says so) to reproduce what Coveo's gateways do.",
        "Retry with backoff. To stop it, remove the rule (`DELETE /rest/organizations/{org}/faults/{id}`).";
}

impl ErrorCode {
    /// The catalog row of this code (the enum and the table are generated together, in the same order).
    pub fn entry(self) -> &'static CatalogEntry {
        &CATALOG[self as usize]
    }

    /// The HTTP status this code is answered with.
    pub fn status(self) -> u16 {
        self.entry().status
    }

    /// The code as spelled on the wire, e.g. `INVALID_JSON`.
    pub fn as_str(self) -> &'static str {
        self.entry().name
    }

    /// RFC 6749's `error` value, for the codes `/oauth/token` answers.
    pub fn oauth_error(self) -> Option<&'static str> {
        match self {
            ErrorCode::InvalidRequest => Some("invalid_request"),
            ErrorCode::UnsupportedGrantType => Some("unsupported_grant_type"),
            ErrorCode::InvalidClient => Some("invalid_client"),
            _ => None,
        }
    }

    /// Looks a code up by its wire name, ignoring case (`intake explain invalid_json` works).
    pub fn parse(name: &str) -> Option<ErrorCode> {
        CATALOG.iter().find(|entry| entry.name.eq_ignore_ascii_case(name.trim())).map(|entry| entry.code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answered to a client: a catalog code and a message naming the culprit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds a client should wait before retrying (429 and 503 answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), retry_after: None }
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidJson, message)
    }

    pub fn missing_parameter(name: &str) -> Self {
        Self::new(ErrorCode::MissingParameter, format!("Parameter '{name}' is missing."))
    }

    /// A parameter whose value is not acceptable; `expected` says what would be.
    pub fn invalid_parameter(name: &str, value: &str, expected: &str) -> Self {
        Self::new(
            ErrorCode::InvalidParameter,
            format!("Parameter '{name}' has the invalid value '{}': {expected}.", shorten(value, 100)),
        )
    }

    pub fn too_large(what: &str, size: u64, limit: u64, advice: &str) -> Self {
        Self::new(
            ErrorCode::RequestEntityTooLarge,
            format!("{what} is {size} bytes; the limit is {limit} bytes ({}). {advice}", human_size(limit)),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalServerError, message)
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Cuts a client-supplied value so an error message stays readable, on a char boundary.
pub fn shorten(value: &str, max_chars: usize) -> String {
    match value.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

/// `5242880` → `5 MiB`; sizes in limits are binary.
pub fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// The catalog as a Markdown page (`docs/errors.md` is this text; a test keeps them equal).
pub fn catalog_markdown() -> String {
    let mut out = String::from(
        "# Error codes\n\n\
         Every error Intake answers is JSON:\n\n\
         ```json\n\
         {\"statusCode\": 412, \"errorCode\": \"MISSING_PARAMETER\", \"message\": \"Parameter 'documentId' is missing.\",\n \
         \"requestId\": \"…\", \"resolution\": \"Add the parameter named in the message.\"}\n\
         ```\n\n\
         and carries an `X-Request-ID` header. The `message` names the exact culprit; `resolution` says what to do. \
         `intake explain CODE` prints a row of this table. This page is generated from the catalog in \
         `crates/intake-model/src/error.rs` (`intake explain --markdown`); a test keeps the two equal.\n\n\
         | Status | errorCode | Meaning |\n| --- | --- | --- |\n",
    );
    for entry in CATALOG {
        out.push_str(&format!(
            "| {} | [`{}`](#{}) | {} |\n",
            entry.status,
            entry.name,
            entry.name.to_lowercase(),
            entry.meaning
        ));
    }
    for entry in CATALOG {
        out.push_str(&format!(
            "\n## {}\n\nStatus **{}**. {}\n\n**Cause.** {}\n\n**Resolution.** {}\n",
            entry.name, entry.status, entry.meaning, entry.cause, entry.resolution
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_its_own_row() {
        for entry in CATALOG {
            assert_eq!(entry.code.entry().name, entry.name);
            assert_eq!(ErrorCode::parse(&entry.name.to_lowercase()), Some(entry.code));
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = CATALOG.iter().map(|e| e.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOG.len());
    }

    #[test]
    fn shorten_respects_char_boundaries() {
        assert_eq!(shorten("été", 2), "ét…");
        assert_eq!(shorten("abc", 3), "abc");
    }
}
