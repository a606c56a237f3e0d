//! Item permissions, in both of Coveo's models, normalized to levels of sets.
//!
//! The simplified model is an array of permission sets; the complete model an array of named levels, each
//! with its sets. Both become `Vec<PermissionLevel>`: the simplified array is one unnamed level. Evaluation
//! (later, for permission-trimmed search): within a level an identity must be allowed by every set and denied
//! by none; earlier levels take precedence over later ones.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::json::{Json, JsonPath};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionLevel {
    /// `None` for the simplified model.
    pub name: Option<String>,
    pub sets: Vec<PermissionSet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PermissionSet {
    pub allow_anonymous: bool,
    pub allowed: Vec<PermissionIdentity>,
    pub denied: Vec<PermissionIdentity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionIdentity {
    pub identity: String,
    pub identity_type: IdentityType,
    pub security_provider: Option<String>,
}

/// `User`/`USER`, `VirtualGroup`/`VIRTUAL_GROUP`…: the Node SDK and the Python SDK spell them differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdentityType {
    User,
    Group,
    VirtualGroup,
    Unknown,
}

impl IdentityType {
    pub fn parse(value: &str) -> Option<IdentityType> {
        let folded: String = value.chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_ascii_lowercase();
        Some(match folded.as_str() {
            "user" => IdentityType::User,
            "group" => IdentityType::Group,
            "virtualgroup" => IdentityType::VirtualGroup,
            "unknown" => IdentityType::Unknown,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IdentityType::User => "User",
            IdentityType::Group => "Group",
            IdentityType::VirtualGroup => "VirtualGroup",
            IdentityType::Unknown => "Unknown",
        }
    }
}

impl PermissionLevel {
    /// How many identities the level names, for the 5,000-per-item limit.
    pub fn identity_count(&self) -> usize {
        self.sets.iter().map(|set| set.allowed.len() + set.denied.len()).sum()
    }
}

/// Parses the `permissions` value of an item (either model).
pub fn parse_permissions(value: Json, path: &JsonPath) -> Result<Vec<PermissionLevel>, ApiError> {
    let items = match value {
        Json::Array(items) => items,
        Json::Null => return Ok(Vec::new()),
        other => {
            return Err(invalid(path, &format!("must be an array, not {}", other.kind())));
        }
    };
    let is_level = |item: &Json| item.get("permissionSets").is_some();
    let levels = items.iter().filter(|item| is_level(item)).count();
    if levels == 0 {
        let sets = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| parse_set(item, &path.index(i)))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if sets.is_empty() { Vec::new() } else { vec![PermissionLevel { name: None, sets }] });
    }
    if levels != items.len() {
        return Err(invalid(
            path,
            "mixes permission sets (simplified model) with permission levels that have 'permissionSets' \
             (complete model); use one model for the whole array",
        ));
    }
    items.into_iter().enumerate().map(|(i, item)| parse_level(item, &path.index(i))).collect()
}

fn parse_level(value: Json, path: &JsonPath) -> Result<PermissionLevel, ApiError> {
    let Json::Object(entries) = value else {
        return Err(invalid(path, &format!("must be a permission level object, not {}", value.kind())));
    };
    let mut level = PermissionLevel { name: None, sets: Vec::new() };
    for (key, value) in entries {
        let at = path.key(&key);
        match key.to_lowercase().as_str() {
            "name" => level.name = Some(text(value, &at)?),
            "permissionsets" => {
                level.sets = array(value, &at)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, set)| parse_set(set, &at.index(i)))
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(unknown_key(&at, "'name' and 'permissionSets'")),
        }
    }
    Ok(level)
}

fn parse_set(value: Json, path: &JsonPath) -> Result<PermissionSet, ApiError> {
    let Json::Object(entries) = value else {
        return Err(invalid(path, &format!("must be a permission set object, not {}", value.kind())));
    };
    let mut set = PermissionSet::default();
    for (key, value) in entries {
        let at = path.key(&key);
        match key.to_lowercase().as_str() {
            "allowanonymous" => {
                set.allow_anonymous = match value {
                    Json::Bool(b) => b,
                    Json::Null => false,
                    other => {
                        return Err(invalid(&at, &format!("must be a boolean, not {}", other.kind())));
                    }
                }
            }
            "allowedpermissions" => set.allowed = identities(value, &at)?,
            "deniedpermissions" => set.denied = identities(value, &at)?,
            _ => {
                return Err(unknown_key(&at, "'allowAnonymous', 'allowedPermissions' and 'deniedPermissions'"));
            }
        }
    }
    Ok(set)
}

fn identities(value: Json, path: &JsonPath) -> Result<Vec<PermissionIdentity>, ApiError> {
    array(value, path)?.into_iter().enumerate().map(|(i, item)| identity(item, &path.index(i))).collect()
}

fn identity(value: Json, path: &JsonPath) -> Result<PermissionIdentity, ApiError> {
    let Json::Object(entries) = value else {
        return Err(invalid(path, &format!("must be an identity object, not {}", value.kind())));
    };
    let (mut identity, mut identity_type, mut security_provider) = (None, IdentityType::Unknown, None);
    for (key, value) in entries {
        let at = path.key(&key);
        match key.to_lowercase().as_str() {
            "identity" => identity = Some(text(value, &at)?),
            "identitytype" => {
                let raw = text(value, &at)?;
                identity_type = IdentityType::parse(&raw).ok_or_else(|| {
                    invalid(&at, &format!("is '{raw}'; allowed values are User, Group, VirtualGroup and Unknown (any case, VIRTUAL_GROUP too)"))
                })?;
            }
            "securityprovider" => security_provider = Some(text(value, &at)?).filter(|s| !s.is_empty()),
            _ => {
                return Err(unknown_key(&at, "'identity', 'identityType' and 'securityProvider'"));
            }
        }
    }
    let identity =
        identity.filter(|s| !s.is_empty()).ok_or_else(|| invalid(path, "has no 'identity' (the identity's name)"))?;
    Ok(PermissionIdentity { identity, identity_type, security_provider })
}

fn array(value: Json, path: &JsonPath) -> Result<Vec<Json>, ApiError> {
    match value {
        Json::Array(items) => Ok(items),
        Json::Null => Ok(Vec::new()),
        other => Err(invalid(path, &format!("must be an array, not {}", other.kind()))),
    }
}

fn text(value: Json, path: &JsonPath) -> Result<String, ApiError> {
    match value {
        Json::String(s) => Ok(s),
        other => Err(invalid(path, &format!("must be a string, not {}", other.kind()))),
    }
}

fn invalid(path: &JsonPath, what: &str) -> ApiError {
    ApiError::invalid_json(format!("'{path}' {what}."))
}

fn unknown_key(path: &JsonPath, known: &str) -> ApiError {
    invalid(path, &format!("is not a permission key; the keys here are {known}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn parse(text: &str) -> Result<Vec<PermissionLevel>, ApiError> {
        parse_permissions(json::parse(text.as_bytes()).unwrap(), &JsonPath::default().key("permissions"))
    }

    #[test]
    fn simplified_model_is_one_level() {
        let levels = parse(
            r#"[{"allowAnonymous":false,"allowedPermissions":[{"identity":"AlphaTeam","identityType":"Group"}],
                "deniedPermissions":[{"identity":"bob@example.com","identityType":"USER","securityProvider":"P"}]}]"#,
        )
        .unwrap();
        assert_eq!(levels.len(), 1);
        assert_eq!(levels[0].sets[0].allowed[0].identity_type, IdentityType::Group);
        assert_eq!(levels[0].sets[0].denied[0].security_provider.as_deref(), Some("P"));
    }

    #[test]
    fn complete_model_keeps_levels_in_order() {
        let levels = parse(
            r#"[{"name":"L1","permissionSets":[{"allowAnonymous":true}]},
                {"name":"L2","permissionSets":[{"allowedPermissions":[{"identity":"g","identityType":"VIRTUAL_GROUP"}]}]}]"#,
        )
        .unwrap();
        assert_eq!(levels.iter().map(|l| l.name.as_deref().unwrap()).collect::<Vec<_>>(), ["L1", "L2"]);
        assert_eq!(levels[1].sets[0].allowed[0].identity_type, IdentityType::VirtualGroup);
    }

    #[test]
    fn names_the_offending_place() {
        let err = parse(r#"[{"allowedPermissions":[{"identity":"a","identityType":"Robot"}]}]"#).unwrap_err();
        assert!(err.message.contains("permissions[0].allowedPermissions[0].identityType"), "{}", err.message);
        let err = parse(r#"[{"allowedPermissions":[{"identityType":"User"}]}]"#).unwrap_err();
        assert!(err.message.contains("has no 'identity'"), "{}", err.message);
        let err = parse(r#"[{"permissionSets":[]},{"allowAnonymous":true}]"#).unwrap_err();
        assert!(err.message.contains("mixes"), "{}", err.message);
    }
}
