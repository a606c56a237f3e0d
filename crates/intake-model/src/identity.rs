//! Security identities as the Push API's identity endpoints take them: an identity with its members and
//! granted identities (`IdentityBody`), an identity with its aliases in other providers (`MappedIdentityBody`),
//! and an identity to disable (`BaseIdentityBody`) — singly, or many in an identity batch file.
//!
//! Parsing is as strict as for items (repeated keys refused, every fault named by its path) and as liberal
//! as the clients need (key case, `USER` or `User`).

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::json::{self, Json, JsonPath};
use crate::permissions::IdentityType;

/// The most members, granted identities or aliases one identity may list: a group of more members is rare, and
/// the bound keeps one body's expansion (and its resolution) proportionate.
pub const MAX_IDENTITY_LINKS: usize = 100_000;
/// The longest identity name or `additionalInfo` value.
pub const MAX_NAME_BYTES: usize = 1024;

/// `{name, type, additionalInfo}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityIdentity {
    pub name: String,
    pub kind: IdentityType,
    /// Disambiguates identities of the same name (kept and shown; not part of matching).
    pub additional_info: Vec<(String, String)>,
}

/// An alias: an identity of another provider (the one the pushing provider cascades to, when `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedIdentity {
    pub identity: SecurityIdentity,
    pub provider: Option<String>,
}

/// What one identity operation asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityChange {
    /// `PUT …/permissions`: the identity, its members (replacing the previous ones) and granted identities.
    Upsert { identity: SecurityIdentity, members: Vec<SecurityIdentity>, well_knowns: Vec<SecurityIdentity> },
    /// `PUT …/mappings`: the identity and its aliases in other providers.
    Alias { identity: SecurityIdentity, mappings: Vec<MappedIdentity>, well_knowns: Vec<SecurityIdentity> },
    /// `DELETE …/permissions`: the identity is disabled (kept, granting nothing).
    Disable { identity: SecurityIdentity },
}

impl IdentityChange {
    pub fn identity(&self) -> &SecurityIdentity {
        match self {
            IdentityChange::Upsert { identity, .. }
            | IdentityChange::Alias { identity, .. }
            | IdentityChange::Disable { identity } => identity,
        }
    }
}

/// Which body an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityBodyKind {
    /// `IdentityBody`: `identity`, `members`, `wellKnowns`.
    Members,
    /// `MappedIdentityBody`: `identity`, `mappings`, `wellKnowns`.
    Mappings,
    /// `BaseIdentityBody`: `identity`.
    Deleted,
}

impl IdentityBodyKind {
    fn keys(self) -> &'static str {
        match self {
            IdentityBodyKind::Members => "'identity', 'members' and 'wellKnowns'",
            IdentityBodyKind::Mappings => "'identity', 'mappings' and 'wellKnowns'",
            IdentityBodyKind::Deleted => "'identity'",
        }
    }
}

/// Parses a request body of the given kind.
pub fn parse_identity_body(bytes: &[u8], kind: IdentityBodyKind) -> Result<IdentityChange, ApiError> {
    let value = json::parse(bytes).map_err(|e| ApiError::invalid_json(format!("The body is not valid JSON: {e}.")))?;
    identity_change(value, kind, &JsonPath::default())
}

/// Builds one identity operation from its JSON (a body, or an entry of a batch file at `path`).
pub fn identity_change(value: Json, kind: IdentityBodyKind, path: &JsonPath) -> Result<IdentityChange, ApiError> {
    let Json::Object(entries) = value else {
        return Err(invalid(path, &format!("must be an object with {}, not {}", kind.keys(), value.kind())));
    };
    let (mut identity, mut links, mut well_knowns) = (None, Vec::new(), Vec::new());
    for (key, value) in entries {
        let at = path.key(&key);
        match (key.to_lowercase().as_str(), kind) {
            ("identity", _) => identity = Some(security_identity(value, &at)?),
            ("members", IdentityBodyKind::Members) | ("mappings", IdentityBodyKind::Mappings) => {
                links = bounded_array(value, &at)?
            }
            ("wellknowns", IdentityBodyKind::Members | IdentityBodyKind::Mappings) => {
                well_knowns = bounded_array(value, &at)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| security_identity(item, &at.index(i)))
                    .collect::<Result<_, _>>()?;
            }
            // Coveo's `EntityUpdateResult`, filled by the service; a client echoing it back is harmless.
            ("result", _) => {}
            _ => return Err(invalid(&at, &format!("is not a key of this body; its keys are {}", kind.keys()))),
        }
    }
    let identity = identity.ok_or_else(|| invalid(path, "has no 'identity' (the security identity it is about)"))?;
    Ok(match kind {
        IdentityBodyKind::Members => IdentityChange::Upsert {
            identity,
            members: links
                .into_iter()
                .enumerate()
                .map(|(i, item)| security_identity(item, &path.key("members").index(i)))
                .collect::<Result<_, _>>()?,
            well_knowns,
        },
        IdentityBodyKind::Mappings => IdentityChange::Alias {
            identity,
            mappings: links
                .into_iter()
                .enumerate()
                .map(|(i, item)| mapped_identity(item, &path.key("mappings").index(i)))
                .collect::<Result<_, _>>()?,
            well_knowns,
        },
        IdentityBodyKind::Deleted => IdentityChange::Disable { identity },
    })
}

fn mapped_identity(value: Json, path: &JsonPath) -> Result<MappedIdentity, ApiError> {
    let provider = match value.get("provider") {
        None | Some(Json::Null) => None,
        Some(Json::String(provider)) if provider.trim().is_empty() => None,
        Some(Json::String(provider)) => Some(provider.clone()),
        Some(other) => return Err(invalid(&path.key("provider"), &format!("must be a string, not {}", other.kind()))),
    };
    let Json::Object(entries) = value else { unreachable!("`get` found a key, so this is an object") };
    let entries = entries.into_iter().filter(|(key, _)| !key.eq_ignore_ascii_case("provider")).collect();
    Ok(MappedIdentity { identity: security_identity(Json::Object(entries), path)?, provider })
}

fn security_identity(value: Json, path: &JsonPath) -> Result<SecurityIdentity, ApiError> {
    let Json::Object(entries) = value else {
        return Err(invalid(
            path,
            &format!("must be an identity object {{name, type, additionalInfo}}, not {}", value.kind()),
        ));
    };
    let (mut name, mut kind, mut additional_info) = (None, None, Vec::new());
    for (key, value) in entries {
        let at = path.key(&key);
        match key.to_lowercase().as_str() {
            "name" => name = Some(bounded_text(value, &at)?),
            "type" => {
                let raw = bounded_text(value, &at)?;
                kind = Some(IdentityType::parse(&raw).ok_or_else(|| {
                    invalid(&at, &format!("is '{raw}'; allowed values are USER, GROUP, VIRTUAL_GROUP and UNKNOWN"))
                })?);
            }
            "additionalinfo" => additional_info = info(value, &at)?,
            _ => {
                return Err(invalid(
                    &at,
                    "is not a key of an identity; its keys are 'name', 'type' and 'additionalInfo'",
                ));
            }
        }
    }
    let name = name
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| invalid(path, "has no 'name' (the identity's name, such as alice@example.com)"))?;
    Ok(SecurityIdentity { name, kind: kind.unwrap_or(IdentityType::Unknown), additional_info })
}

fn info(value: Json, path: &JsonPath) -> Result<Vec<(String, String)>, ApiError> {
    match value {
        Json::Null => Ok(Vec::new()),
        Json::Object(entries) => entries
            .into_iter()
            .map(|(key, value)| {
                let at = path.key(&key);
                Ok((key, bounded_text(value, &at)?))
            })
            .collect(),
        other => Err(invalid(path, &format!("must be an object of strings, not {}", other.kind()))),
    }
}

fn bounded_array(value: Json, path: &JsonPath) -> Result<Vec<Json>, ApiError> {
    match value {
        Json::Null => Ok(Vec::new()),
        Json::Array(items) if items.len() > MAX_IDENTITY_LINKS => Err(invalid(
            path,
            &format!("has {} entries; an identity may list at most {MAX_IDENTITY_LINKS}", items.len()),
        )),
        Json::Array(items) => Ok(items),
        other => Err(invalid(path, &format!("must be an array, not {}", other.kind()))),
    }
}

fn bounded_text(value: Json, path: &JsonPath) -> Result<String, ApiError> {
    match value {
        Json::String(text) if text.len() > MAX_NAME_BYTES => {
            Err(invalid(path, &format!("is {} bytes long; at most {MAX_NAME_BYTES} are allowed", text.len())))
        }
        Json::String(text) => Ok(text),
        other => Err(invalid(path, &format!("must be a string, not {}", other.kind()))),
    }
}

fn invalid(path: &JsonPath, what: &str) -> ApiError {
    if path.is_root() {
        ApiError::invalid_json(format!("The body {what}."))
    } else {
        ApiError::invalid_json(format!("'{path}' {what}."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_body_as_the_sdks_send_it() {
        let body = br#"{"identity":{"name":"team","type":"GROUP","additionalInfo":{}},"members":[{"name":"alice@example.com","type":"USER","additionalInfo":{}}],"wellKnowns":[]}"#;
        let IdentityChange::Upsert { identity, members, .. } =
            parse_identity_body(body, IdentityBodyKind::Members).unwrap()
        else {
            panic!("an upsert")
        };
        assert_eq!((identity.name.as_str(), identity.kind), ("team", IdentityType::Group));
        assert_eq!(members[0].kind, IdentityType::User);
        let body = br#"{"identity":{"name":"alice","type":"USER"},"mappings":[{"name":"alice@example.com","type":"User","additionalInfo":{},"provider":"Email Security Provider"}],"wellKnowns":[]}"#;
        let IdentityChange::Alias { mappings, .. } = parse_identity_body(body, IdentityBodyKind::Mappings).unwrap()
        else {
            panic!("an alias")
        };
        assert_eq!(mappings[0].provider.as_deref(), Some("Email Security Provider"));
        let body = br#"{"identity":{"name":"bob","type":"USER","additionalInfo":{"employee":"7"}}}"#;
        let change = parse_identity_body(body, IdentityBodyKind::Deleted).unwrap();
        assert_eq!(change.identity().additional_info, vec![("employee".to_string(), "7".to_string())]);
    }

    #[test]
    fn names_the_offending_place() {
        let err =
            parse_identity_body(br#"{"identity":{"name":"a","type":"ROBOT"}}"#, IdentityBodyKind::Members).unwrap_err();
        assert!(err.message.contains("'identity.type' is 'ROBOT'"), "{}", err.message);
        let err = parse_identity_body(br#"{"members":[]}"#, IdentityBodyKind::Members).unwrap_err();
        assert!(err.message.contains("has no 'identity'"), "{}", err.message);
        let err =
            parse_identity_body(br#"{"identity":{"name":"a"},"members":[{"type":"USER"}]}"#, IdentityBodyKind::Members)
                .unwrap_err();
        assert!(err.message.contains("'members[0]' has no 'name'"), "{}", err.message);
        let err =
            parse_identity_body(br#"{"identity":{"name":"a"},"mappings":[]}"#, IdentityBodyKind::Members).unwrap_err();
        assert!(err.message.contains("'mappings' is not a key"), "{}", err.message);
        let err =
            parse_identity_body(br#"{"identity":{"name":"a","Name":"b"}}"#, IdentityBodyKind::Deleted).unwrap_err();
        assert!(err.message.contains("duplicate key"), "{}", err.message);
    }
}
