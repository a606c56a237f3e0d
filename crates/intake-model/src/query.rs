//! Query strings as the real clients send them: form-encoded (`+` is a space, UTF-8 percent-encoded), with
//! typed getters that answer MISSING_PARAMETER and INVALID_PARAMETER naming the parameter.

use crate::error::ApiError;
use crate::{OrderingId, limits};

/// The decoded parameters of one request, in order. Names are matched ignoring case.
#[derive(Debug, Clone, Default)]
pub struct QueryParams {
    pairs: Vec<(String, Result<String, String>)>,
}

impl QueryParams {
    /// Decodes a raw query string (without the `?`). A value that is not UTF-8 once decoded is kept as an
    /// error and reported when the parameter is read.
    pub fn parse(raw: Option<&str>) -> QueryParams {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                let name = decode(name).unwrap_or_else(|raw| raw);
                (name, decode(value))
            })
            .collect();
        QueryParams { pairs }
    }

    /// The value of `name`, if present. A parameter given twice is refused: which one was meant is not ours to
    /// guess.
    pub fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut given = self.pairs.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let first = given.next();
        let repeats = given.count();
        if repeats > 0 {
            return Err(ApiError::new(
                crate::ErrorCode::InvalidParameter,
                format!("Parameter '{name}' is given {} times; give it once.", repeats + 1),
            ));
        }
        match first {
            None => Ok(None),
            Some((_, Ok(value))) => Ok(Some(value.as_str())),
            Some((_, Err(raw))) => Err(ApiError::invalid_parameter(
                name,
                raw,
                "it is not valid UTF-8 once percent-decoded; percent-encode the UTF-8 bytes of the value",
            )),
        }
    }

    /// The value of a required parameter; absent or empty is MISSING_PARAMETER.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name)? {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(ApiError::missing_parameter(name)),
        }
    }

    /// An optional non-negative 64-bit `orderingId`.
    pub fn ordering_id(&self, name: &str) -> Result<Option<OrderingId>, ApiError> {
        match self.get(name)? {
            None | Some("") => Ok(None),
            Some(value) => digits(value).and_then(|v| v.parse::<i64>().ok()).map(Some).ok_or_else(|| {
                ApiError::invalid_parameter(
                    name,
                    value,
                    "it must be an integer from 0 to 9223372036854775807 (a signed 64-bit integer)",
                )
            }),
        }
    }

    /// An optional boolean (`true` or `false`, any case).
    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name)? {
            None | Some("") => Ok(default),
            Some(value) if value.eq_ignore_ascii_case("true") => Ok(true),
            Some(value) if value.eq_ignore_ascii_case("false") => Ok(false),
            Some(value) => Err(ApiError::invalid_parameter(name, value, "it must be a boolean, true or false")),
        }
    }

    /// An optional non-negative integer no larger than `max`.
    pub fn non_negative(&self, name: &str, max: u64) -> Result<Option<u64>, ApiError> {
        match self.get(name)? {
            None | Some("") => Ok(None),
            Some(value) => {
                digits(value).and_then(|v| v.parse::<u64>().ok()).filter(|v| *v <= max).map(Some).ok_or_else(|| {
                    ApiError::invalid_parameter(name, value, &format!("it must be an integer from 0 to {max}"))
                })
            }
        }
    }

    /// The `documentId` of an item call: required, at most [`limits::MAX_DOCUMENT_ID_BYTES`].
    pub fn document_id(&self) -> Result<&str, ApiError> {
        let id = self.required("documentId")?;
        check_document_id(id).map_err(|why| ApiError::invalid_parameter("documentId", id, &why))?;
        Ok(id)
    }
}

/// `value` when it is only ASCII digits: no sign, no spaces (`%205` is not 5), no decimal point.
fn digits(value: &str) -> Option<&str> {
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())).then_some(value)
}

/// A document id is any non-blank string of at most [`limits::MAX_DOCUMENT_ID_BYTES`] bytes.
pub fn check_document_id(id: &str) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err("it must not be blank".to_string());
    }
    if id.len() > limits::MAX_DOCUMENT_ID_BYTES {
        return Err(format!(
            "it is {} bytes long; a document id is at most {} bytes",
            id.len(),
            limits::MAX_DOCUMENT_ID_BYTES
        ));
    }
    Ok(())
}

/// Form-decodes one component: `+` is a space, `%XX` a byte; the bytes must be UTF-8 (else the component as
/// it is is the error).
pub fn decode(component: &str) -> Result<String, String> {
    let bytes: Vec<u8> = percent_decode(component.as_bytes());
    String::from_utf8(bytes).map_err(|_| component.to_string())
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let escaped = match (input[i], input.get(i + 1).and_then(|b| hex(*b)), input.get(i + 2).and_then(|b| hex(*b))) {
            (b'%', Some(high), Some(low)) => Some(high << 4 | low),
            _ => None,
        };
        match (escaped, input[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn decodes_like_the_sdks_encode() {
        let q = QueryParams::parse(Some(
            "documentId=https%3A%2F%2Fexample.com%2Fdocs%2Fa+b%2F%C3%A9t%C3%A9%3Fx%3D1%26y%3D2%23frag&deleteChildren=true",
        ));
        assert_eq!(q.document_id().unwrap(), "https://example.com/docs/a b/été?x=1&y=2#frag");
        assert!(q.boolean("DeleteChildren", false).unwrap());
    }

    #[test]
    fn names_the_bad_parameter() {
        let q = QueryParams::parse(Some("orderingId=12a&deleteChildren=yes&queueDelay=-1&documentId=%FF"));
        let err = q.ordering_id("orderingId").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidParameter);
        assert!(err.message.contains("'orderingId'") && err.message.contains("12a"), "{}", err.message);
        assert!(q.boolean("deleteChildren", false).unwrap_err().message.contains("boolean"));
        assert!(q.non_negative("queueDelay", 100).unwrap_err().message.contains("'queueDelay'"));
        assert!(q.document_id().unwrap_err().message.contains("UTF-8"));
        assert_eq!(QueryParams::parse(None).document_id().unwrap_err().code, ErrorCode::MissingParameter);
    }

    #[test]
    fn a_repeated_parameter_or_a_padded_number_is_refused() {
        let twice = QueryParams::parse(Some("documentId=a&DocumentId=b"));
        let error = twice.document_id().unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameter);
        assert!(error.message.contains("'documentId' is given 2 times"), "{}", error.message);
        for padded in ["%205", "5%20", "+5", "5.0", "-0"] {
            let q = QueryParams::parse(Some(&format!("orderingId={padded}&queueDelay={padded}")));
            assert!(q.ordering_id("orderingId").is_err(), "{padded}");
            assert!(q.non_negative("queueDelay", 100).is_err(), "{padded}");
        }
        assert_eq!(QueryParams::parse(Some("orderingId=5")).ordering_id("orderingId").unwrap(), Some(5));
    }

    #[test]
    fn keeps_a_lone_percent() {
        assert_eq!(QueryParams::parse(Some("q=100%")).get("q").unwrap(), Some("100%"));
        assert_eq!(QueryParams::parse(Some("q=%4")).get("q").unwrap(), Some("%4"));
    }
}
