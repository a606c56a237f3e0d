//! The Stream API's item changes for catalog sources: partial updates (`{documentId, operator, field, value}`)
//! and shallow merges (an item's keys over the stored item's). Parsed and checked when the file is accepted;
//! applied to an item's metadata by the applier, where a change that does not fit the stored item (a field of
//! another shape) is refused with the reason, for that item only.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::item::{Content, ItemContext, MetaValue, Scalar, item_from_json, meta_from_json};
use crate::json::{Json, JsonPath};
use crate::permissions::PermissionLevel;

/// How a partial update changes its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartialOperator {
    /// The field becomes `value` (any value; `null` removes the field).
    FieldValueReplace,
    /// `value`'s elements are added at the end of the array field (created if absent).
    ArrayAppend,
    /// Every element equal to one of `value`'s is removed from the array field.
    ArrayRemove,
    /// `value`'s keys are set in the dictionary field (created if absent).
    DictionaryPut,
    /// The keys `value` names (a string or an array of strings) are removed from the dictionary field.
    DictionaryRemove,
}

impl PartialOperator {
    pub const ALLOWED: &'static str = "fieldValueReplace, arrayAppend, arrayRemove, dictionaryPut, dictionaryRemove";

    pub fn parse(value: &str) -> Option<PartialOperator> {
        Some(match value.to_ascii_lowercase().as_str() {
            "fieldvaluereplace" => PartialOperator::FieldValueReplace,
            "arrayappend" => PartialOperator::ArrayAppend,
            "arrayremove" => PartialOperator::ArrayRemove,
            "dictionaryput" => PartialOperator::DictionaryPut,
            "dictionaryremove" => PartialOperator::DictionaryRemove,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PartialOperator::FieldValueReplace => "fieldValueReplace",
            PartialOperator::ArrayAppend => "arrayAppend",
            PartialOperator::ArrayRemove => "arrayRemove",
            PartialOperator::DictionaryPut => "dictionaryPut",
            PartialOperator::DictionaryRemove => "dictionaryRemove",
        }
    }
}

/// One `partialUpdate` entry, checked: the value has the shape its operator takes.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialUpdate {
    pub document_id: String,
    pub operator: PartialOperator,
    /// Lower-cased, as metadata keys are.
    pub field: String,
    /// `None` only for a `fieldValueReplace` with `null`.
    pub value: Option<MetaValue>,
}

/// Keys of the item model that a partial update or a merge's metadata cannot change: they are not metadata.
use crate::item::RESERVED as NOT_METADATA;

/// Parses a `partialUpdate` entry at `at`; every fault is the file's, with its place.
pub fn partial_update(value: Json, at: &JsonPath) -> Result<PartialUpdate, String> {
    let Json::Object(entries) = value else {
        return Err(format!("{at} must be an object {{documentId, operator, field, value}}, not {}", value.kind()));
    };
    let (mut document_id, mut operator, mut field, mut raw) = (None, None, None, None);
    for (key, value) in entries {
        match key.to_ascii_lowercase().as_str() {
            "documentid" => document_id = Some(text(value, &at.key(&key))?),
            "operator" => {
                let name = text(value, &at.key(&key))?;
                operator = Some(PartialOperator::parse(&name).ok_or_else(|| {
                    format!(
                        "'{}' is '{name}', which is not an operator: use one of {}",
                        at.key(&key),
                        PartialOperator::ALLOWED
                    )
                })?);
            }
            "field" => field = Some(text(value, &at.key(&key))?),
            "value" => raw = Some(value),
            _ => {
                return Err(format!(
                    "{at} has the key '{key}': a partial update has documentId, operator, field and value"
                ));
            }
        }
    }
    let missing = |name: &str| format!("{at} has no '{name}'");
    let document_id = document_id.filter(|id| !id.trim().is_empty()).ok_or_else(|| missing("documentId"))?;
    let operator = operator.ok_or_else(|| missing("operator"))?;
    let field = field.filter(|f| !f.trim().is_empty()).ok_or_else(|| missing("field"))?.to_lowercase();
    if NOT_METADATA.contains(&field.as_str()) {
        return Err(format!(
            "{at} changes '{field}', which is part of the item, not a metadata field: push the whole item again \
             (addOrUpdate) to change it"
        ));
    }
    let raw = raw.ok_or_else(|| missing("value"))?;
    let value = operator_value(operator, raw, &at.key("value"))?;
    Ok(PartialUpdate { document_id, operator, field, value })
}

/// The value, if it has the shape `operator` takes.
fn operator_value(operator: PartialOperator, raw: Json, at: &JsonPath) -> Result<Option<MetaValue>, String> {
    let shape_error =
        |wanted: &str, raw: &Json| format!("'{at}' is {}: {} takes {wanted}", raw.kind(), operator.as_str());
    let metadata = |raw: Json| meta_from_json(raw, at, true).map_err(|e| e.message.trim_end_matches('.').to_string());
    match operator {
        PartialOperator::FieldValueReplace => metadata(raw),
        PartialOperator::ArrayAppend | PartialOperator::ArrayRemove => match raw {
            Json::Array(_) => metadata(raw),
            other => Err(shape_error("an array of values", &other)),
        },
        PartialOperator::DictionaryPut => match raw {
            Json::Object(_) => metadata(raw),
            other => Err(shape_error("an object of keys and values", &other)),
        },
        PartialOperator::DictionaryRemove => match raw {
            Json::String(key) => Ok(Some(MetaValue::Many(vec![Scalar::Text(key)]))),
            Json::Array(keys) if keys.iter().all(|k| matches!(k, Json::String(_))) => Ok(Some(MetaValue::Many(
                keys.into_iter()
                    .filter_map(|k| if let Json::String(k) = k { Some(Scalar::Text(k)) } else { None })
                    .collect(),
            ))),
            other => Err(shape_error("a key or an array of keys (strings)", &other)),
        },
    }
}

fn text(value: Json, at: &JsonPath) -> Result<String, String> {
    match value {
        Json::String(s) => Ok(s),
        other => Err(format!("'{at}' must be a string, not {}", other.kind())),
    }
}

impl PartialUpdate {
    /// Applies the update to an item's metadata, or says why it does not fit (the field has another shape).
    pub fn apply(&self, metadata: &mut Vec<(String, MetaValue)>) -> Result<(), String> {
        let position = metadata.iter().position(|(key, _)| *key == self.field);
        let current = position.map(|i| &mut metadata[i].1);
        let wrong_shape = |current: &MetaValue, wanted: &str| {
            format!(
                "the field '{}' holds {}, and {} changes {wanted}; use fieldValueReplace to give it a new value",
                self.field,
                current.shape(),
                self.operator.as_str()
            )
        };
        match (self.operator, current, &self.value) {
            (PartialOperator::FieldValueReplace, _, None) => {
                if let Some(i) = position {
                    metadata.remove(i);
                }
            }
            (PartialOperator::FieldValueReplace, Some(current), Some(value)) => *current = value.clone(),
            (PartialOperator::ArrayAppend, Some(MetaValue::Many(list)), Some(value)) => {
                list.extend_from_slice(value.scalars());
            }
            (PartialOperator::ArrayRemove, Some(MetaValue::Many(list)), Some(value)) => {
                list.retain(|scalar| !value.scalars().iter().any(|removed| same(scalar, removed)));
            }
            (PartialOperator::ArrayRemove | PartialOperator::DictionaryRemove, None, _) => {}
            (PartialOperator::ArrayAppend | PartialOperator::ArrayRemove, Some(current), _) => {
                return Err(wrong_shape(current, "arrays"));
            }
            (PartialOperator::DictionaryPut, Some(MetaValue::Dict(dict)), Some(MetaValue::Dict(put))) => {
                dict.extend(put.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            (PartialOperator::DictionaryRemove, Some(MetaValue::Dict(dict)), Some(keys)) => {
                for key in keys.scalars() {
                    dict.remove(&key.to_text());
                }
            }
            (PartialOperator::DictionaryPut | PartialOperator::DictionaryRemove, Some(current), _) => {
                return Err(wrong_shape(current, "dictionaries"));
            }
            (_, None, Some(value)) => metadata.push((self.field.clone(), value.clone())),
            (_, _, None) => unreachable!("only fieldValueReplace may have no value"),
        }
        Ok(())
    }
}

/// Array elements compare as values: `3` removes `3` and `"3"`, as field queries match them.
fn same(a: &Scalar, b: &Scalar) -> bool {
    a == b || a.to_text() == b.to_text()
}

/// One entry of a merge file: what to change in the stored item, key by key. Keys it does not name stay.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemPatch {
    pub document_id: String,
    /// New data for the item, if the entry has some.
    pub content: Option<Content>,
    pub file_extension: Option<String>,
    pub parent_id: Option<String>,
    pub permissions: Option<Vec<PermissionLevel>>,
    /// Metadata to set; `None` removes the field (`null` in the entry).
    pub metadata: Vec<(String, Option<MetaValue>)>,
}

impl ItemPatch {
    /// Parses a merge entry at `at`: an item body whose keys are all optional but `documentId`.
    pub fn from_json(value: Json, at: &JsonPath) -> Result<ItemPatch, ApiError> {
        let Json::Object(entries) = value else {
            return Err(ApiError::invalid_json(format!("{at} must be an object, not {}.", value.kind())));
        };
        let has_content = entries.iter().any(|(key, _)| {
            matches!(key.to_ascii_lowercase().as_str(), "data" | "compressedbinarydata" | "compressedbinarydatafileid")
        });
        let mut metadata = Vec::new();
        let mut rest = Vec::new();
        for (key, value) in entries {
            let lower = key.to_lowercase();
            if NOT_METADATA.contains(&lower.as_str()) {
                rest.push((key, value));
            } else {
                let value = meta_from_json(value, &at.key(&key), true)?;
                metadata.push((lower, value));
            }
        }
        if !has_content {
            // An item needs data to parse; the stored item's stays.
            rest.push(("data".to_string(), Json::String(String::new())));
        }
        let present: Vec<String> = rest.iter().map(|(key, _)| key.to_lowercase()).collect();
        let item = item_from_json(Json::Object(rest), ItemContext::default(), at)?;
        let given = |name: &str| present.iter().any(|key| key == name);
        Ok(ItemPatch {
            document_id: item.document_id,
            content: has_content.then_some(item.content),
            file_extension: item.file_extension.filter(|_| given("fileextension")),
            parent_id: item.parent_id.filter(|_| given("parentid")),
            permissions: given("permissions").then_some(item.permissions),
            metadata,
        })
    }

    /// Sets the patch's metadata over `metadata`.
    pub fn merge_into(&self, metadata: &mut Vec<(String, MetaValue)>) {
        for (field, value) in &self.metadata {
            let position = metadata.iter().position(|(key, _)| key == field);
            match (position, value) {
                (Some(i), Some(value)) => metadata[i].1 = value.clone(),
                (Some(i), None) => {
                    metadata.remove(i);
                }
                (None, Some(value)) => metadata.push((field.clone(), value.clone())),
                (None, None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn update(text: &str) -> Result<PartialUpdate, String> {
        partial_update(json::parse(text.as_bytes()).unwrap(), &JsonPath::default().key("partialUpdate").index(0))
    }

    fn metadata() -> Vec<(String, MetaValue)> {
        let item = crate::item::parse_item(
            br#"{"data":"x","price":10,"tags":["a","b","a"],"stock":{"s1":3,"s2":0},"name":"Chair"}"#,
            ItemContext { document_id: Some("p1"), compression: None },
        )
        .unwrap();
        item.metadata
    }

    fn get<'a>(metadata: &'a [(String, MetaValue)], key: &str) -> Option<&'a MetaValue> {
        metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    #[test]
    fn each_operator_changes_its_field() {
        let mut meta = metadata();
        update(r#"{"documentId":"p1","operator":"fieldValueReplace","field":"Price","value":12.5}"#)
            .unwrap()
            .apply(&mut meta)
            .unwrap();
        assert_eq!(get(&meta, "price"), Some(&MetaValue::One(Scalar::Float(12.5))));
        update(r#"{"documentId":"p1","operator":"arrayAppend","field":"tags","value":["c"]}"#)
            .unwrap()
            .apply(&mut meta)
            .unwrap();
        update(r#"{"documentId":"p1","operator":"arrayRemove","field":"tags","value":["a"]}"#)
            .unwrap()
            .apply(&mut meta)
            .unwrap();
        assert_eq!(get(&meta, "tags").unwrap().to_json(), serde_json::json!(["b", "c"]));
        update(r#"{"documentId":"p1","operator":"dictionaryPut","field":"stock","value":{"s2":5,"s3":1}}"#)
            .unwrap()
            .apply(&mut meta)
            .unwrap();
        update(r#"{"documentId":"p1","operator":"dictionaryRemove","field":"stock","value":"s1"}"#)
            .unwrap()
            .apply(&mut meta)
            .unwrap();
        assert_eq!(get(&meta, "stock").unwrap().to_json(), serde_json::json!({"s2": 5, "s3": 1}));
        update(r#"{"documentId":"p1","operator":"fieldValueReplace","field":"name","value":null}"#)
            .unwrap()
            .apply(&mut meta)
            .unwrap();
        assert!(get(&meta, "name").is_none());
        update(r#"{"documentId":"p1","operator":"arrayAppend","field":"colors","value":["red"]}"#)
            .unwrap()
            .apply(&mut meta)
            .unwrap();
        assert_eq!(get(&meta, "colors").unwrap().to_json(), serde_json::json!(["red"]));
    }

    #[test]
    fn a_field_of_another_shape_is_refused_with_the_reason() {
        let mut meta = metadata();
        let before = meta.clone();
        let err = update(r#"{"documentId":"p1","operator":"arrayAppend","field":"price","value":[1]}"#)
            .unwrap()
            .apply(&mut meta)
            .unwrap_err();
        assert!(err.contains("'price' holds a single value, and arrayAppend changes arrays"), "{err}");
        let err = update(r#"{"documentId":"p1","operator":"dictionaryPut","field":"tags","value":{"k":1}}"#)
            .unwrap()
            .apply(&mut meta)
            .unwrap_err();
        assert!(err.contains("'tags' holds an array, and dictionaryPut changes dictionaries"), "{err}");
        assert_eq!(meta, before, "a refused update changes nothing");
    }

    #[test]
    fn malformed_entries_say_where_and_what() {
        let cases = [
            (
                r#"{"documentId":"p1","operator":"increment","field":"f","value":1}"#,
                "'partialUpdate[0].operator' is 'increment', which is not an operator: use one of fieldValueReplace",
            ),
            (
                r#"{"documentId":"p1","operator":"arrayAppend","field":"f","value":1}"#,
                "'partialUpdate[0].value' is a number: arrayAppend takes an array of values",
            ),
            (
                r#"{"documentId":"p1","operator":"dictionaryPut","field":"f","value":[1]}"#,
                "dictionaryPut takes an object of keys and values",
            ),
            (
                r#"{"documentId":"p1","operator":"dictionaryRemove","field":"f","value":[1]}"#,
                "dictionaryRemove takes a key or an array of keys",
            ),
            (r#"{"operator":"arrayAppend","field":"f","value":[1]}"#, "partialUpdate[0] has no 'documentId'"),
            (r#"{"documentId":"p1","operator":"fieldValueReplace","value":1}"#, "has no 'field'"),
            (r#"{"documentId":"p1","operator":"fieldValueReplace","field":"f"}"#, "has no 'value'"),
            (
                r#"{"documentId":"p1","operator":"fieldValueReplace","field":"data","value":"x"}"#,
                "changes 'data', which is part of the item",
            ),
            (r#"{"documentId":"p1","operator":"fieldValueReplace","field":"f","value":1,"x":2}"#, "has the key 'x'"),
            (r#"[1]"#, "must be an object {documentId, operator, field, value}, not an array"),
        ];
        for (text, expected) in cases {
            let err = update(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn a_merge_sets_only_the_keys_it_names() {
        let at = JsonPath::default().key("addOrUpdate").index(0);
        let patch =
            ItemPatch::from_json(json::parse(br#"{"documentId":"p1","price":11,"name":null}"#).unwrap(), &at).unwrap();
        assert_eq!(
            (patch.content.is_none(), patch.permissions.is_none(), patch.file_extension.is_none()),
            (true, true, true)
        );
        let mut meta = metadata();
        patch.merge_into(&mut meta);
        assert_eq!(get(&meta, "price"), Some(&MetaValue::One(Scalar::Integer(11))));
        assert!(get(&meta, "name").is_none());
        assert!(get(&meta, "tags").is_some(), "keys the entry does not name stay");
        let patch = ItemPatch::from_json(
            json::parse(br#"{"documentId":"p1","data":"new text","fileExtension":"txt"}"#).unwrap(),
            &at,
        )
        .unwrap();
        assert_eq!(patch.content, Some(Content::Text("new text".into())));
        assert_eq!(patch.file_extension.as_deref(), Some(".txt"));
        let err = ItemPatch::from_json(json::parse(br#"{"price":1}"#).unwrap(), &at).unwrap_err();
        assert!(err.message.contains("has no 'documentId'"), "{}", err.message);
    }
}
