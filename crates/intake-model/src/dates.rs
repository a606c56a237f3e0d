//! Dates as clients send them (ISO 8601 with or without a zone, `yyyy/MM/dd HH:mm:ss`, RFC 2822, epoch
//! milliseconds), read into epoch milliseconds. A date without a zone is UTC.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y/%m/%d@%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

const DATE_FORMATS: &[&str] = &["%Y-%m-%d", "%Y/%m/%d"];

/// Parses a date into epoch milliseconds; `None` if no known form fits.
pub fn parse_date_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(date) = DateTime::parse_from_rfc3339(text) {
        return Some(date.timestamp_millis());
    }
    // `2002-01-31 11:53:12.999Z`: RFC 3339 but for the space.
    if let Ok(date) = DateTime::parse_from_rfc3339(&text.replacen(' ', "T", 1)) {
        return Some(date.timestamp_millis());
    }
    if let Ok(date) = DateTime::parse_from_rfc2822(text) {
        return Some(date.timestamp_millis());
    }
    let without_z = text.strip_suffix('Z').unwrap_or(text);
    for format in NAIVE_FORMATS {
        if let Ok(naive) = NaiveDateTime::parse_from_str(without_z, format) {
            return Some(Utc.from_utc_datetime(&naive).timestamp_millis());
        }
    }
    parse_day(text).map(|(start, _)| start).or_else(|| epoch_ms(text))
}

/// A date without a time (`2024-01-02`, `2024/01/02`): the start of that UTC day and of the next.
pub fn parse_day(text: &str) -> Option<(i64, i64)> {
    DATE_FORMATS.iter().find_map(|format| NaiveDate::parse_from_str(text.trim(), format).ok()).map(|day| {
        let start = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists")).timestamp_millis();
        (start, start + 86_400_000)
    })
}

/// Plausible epoch milliseconds (1970 to 2200).
fn epoch_ms(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|ms| (0..7_258_118_400_000).contains(ms))
}

/// Epoch milliseconds as ISO 8601 UTC with milliseconds, e.g. `2024-01-02T03:04:05.000Z`.
pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_clients_send() {
        let expected = 1_704_164_645_000; // 2024-01-02T03:04:05Z
        for text in [
            "2024-01-02T03:04:05.000Z",
            "2024-01-02T03:04:05+00:00",
            "2024-01-02T03:04:05",
            "2024-01-02 03:04:05",
            "2024/01/02 03:04:05",
            "2024-01-02 03:04:05.000Z",
            "Tue, 02 Jan 2024 03:04:05 GMT",
            "1704164645000",
        ] {
            assert_eq!(parse_date_ms(text), Some(expected), "{text}");
        }
        assert_eq!(parse_date_ms("2024-01-02"), Some(1_704_153_600_000));
        assert_eq!(parse_date_ms("yesterday"), None);
        assert_eq!(format_ms(expected), "2024-01-02T03:04:05.000Z");
    }
}
