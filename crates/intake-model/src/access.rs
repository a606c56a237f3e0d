//! Privileges, as Coveo models them: `{owner, targetDomain, type, targetId}`.
//!
//! A held privilege grants a needed one when owner and domain match (ignoring case), its `targetId` is `*` or
//! the needed resource's id, and its type is the needed type — or `EDIT` where `VIEW` is needed: whoever may
//! change a thing may read it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::json::{Json, JsonPath};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Privilege {
    pub owner: String,
    pub target_domain: String,
    /// `VIEW`, `EDIT`, `CREATE`…; some domains have none.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A resource id, or `*` for every resource of the domain.
    #[serde(default = "every")]
    pub target_id: String,
}

fn every() -> String {
    "*".to_string()
}

impl Privilege {
    pub fn new(owner: &str, target_domain: &str, kind: Option<&str>, target_id: &str) -> Privilege {
        Privilege {
            owner: owner.to_ascii_uppercase(),
            target_domain: target_domain.to_ascii_uppercase(),
            kind: kind.map(str::to_ascii_uppercase),
            target_id: target_id.to_string(),
        }
    }

    /// `PLATFORM`-owned privilege of a domain, the usual kind.
    pub fn platform(target_domain: &str, kind: &str, target_id: &str) -> Privilege {
        Privilege::new("PLATFORM", target_domain, Some(kind), target_id)
    }

    /// Whether holding `self` grants `needed`.
    pub fn grants(&self, needed: &Privilege) -> bool {
        let kind_grants = match (&self.kind, &needed.kind) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(held), Some(needed)) => {
                held.eq_ignore_ascii_case(needed)
                    || (held.eq_ignore_ascii_case("EDIT") && needed.eq_ignore_ascii_case("VIEW"))
            }
        };
        self.owner.eq_ignore_ascii_case(&needed.owner)
            && self.target_domain.eq_ignore_ascii_case(&needed.target_domain)
            && kind_grants
            && (self.target_id == "*" || self.target_id == needed.target_id)
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.owner, self.target_domain)?;
        if let Some(kind) = &self.kind {
            write!(f, " {kind}")?;
        }
        write!(f, " on {}", if self.target_id == "*" { "all (*)".to_string() } else { format!("'{}'", self.target_id) })
    }
}

/// Parses a privilege object (keys in any case); `owner` and `targetDomain` are required.
pub fn parse_privilege(value: &Json, path: &JsonPath) -> Result<Privilege, ApiError> {
    let Json::Object(_) = value else {
        return Err(ApiError::invalid_json(format!(
            "'{path}' must be a privilege object {{owner, targetDomain, type, targetId}}, not {}.",
            value.kind()
        )));
    };
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        match value.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(other) => {
                Err(ApiError::invalid_json(format!("'{path}.{key}' must be a non-empty string, not {}.", other.kind())))
            }
        }
    };
    let owner = text("owner")?
        .ok_or_else(|| ApiError::invalid_json(format!("'{path}' has no 'owner' (such as PLATFORM or SEARCH_API).")))?;
    let domain = text("targetDomain")?
        .ok_or_else(|| ApiError::invalid_json(format!("'{path}' has no 'targetDomain' (such as SOURCE or FIELD).")))?;
    Ok(Privilege::new(&owner, &domain, text("type")?.as_deref(), &text("targetId")?.unwrap_or_else(every)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_rules() {
        let edit_any_source = Privilege::platform("SOURCE", "EDIT", "*");
        let edit_one = Privilege::platform("source", "edit", "src-1");
        assert!(edit_any_source.grants(&edit_one));
        assert!(edit_one.grants(&Privilege::platform("SOURCE", "EDIT", "src-1")));
        assert!(!edit_one.grants(&Privilege::platform("SOURCE", "EDIT", "src-2")));
        assert!(!edit_one.grants(&Privilege::platform("SOURCE", "EDIT", "*")), "one source does not grant all");
        assert!(edit_one.grants(&Privilege::platform("SOURCE", "VIEW", "src-1")), "EDIT implies VIEW");
        assert!(!Privilege::platform("SOURCE", "VIEW", "*").grants(&edit_one));
        assert!(!edit_any_source.grants(&Privilege::platform("FIELD", "EDIT", "*")));
        assert!(Privilege::new("SEARCH_API", "EXECUTE_QUERY", None, "*").grants(&Privilege::new(
            "SEARCH_API",
            "EXECUTE_QUERY",
            None,
            "*"
        )));
        assert_eq!(edit_one.to_string(), "PLATFORM SOURCE EDIT on 'src-1'");
    }

    #[test]
    fn parses_and_names_the_missing_key() {
        let value = crate::json::parse(br#"{"owner":"platform","targetDomain":"SOURCE","type":"EDIT"}"#).unwrap();
        let privilege = parse_privilege(&value, &JsonPath::default().key("privileges").index(0)).unwrap();
        assert_eq!(privilege, Privilege::platform("SOURCE", "EDIT", "*"));
        let value = crate::json::parse(br#"{"owner":"PLATFORM"}"#).unwrap();
        let err = parse_privilege(&value, &JsonPath::default().key("privileges").index(2)).unwrap_err();
        assert!(err.message.contains("'privileges[2]' has no 'targetDomain'"), "{}", err.message);
    }
}
