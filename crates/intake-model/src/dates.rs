//! Dates as clients send them (ISO 8601 with or without a zone, `yyyy/MM/dd HH:mm:ss`, RFC 2822, epoch
//! milliseconds), read into epoch milliseconds. A date without a zone is UTC, or in the time zone a search names
//! (its `timezone`, an IANA name such as `Europe/Paris`): the `…_in` functions take that zone.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
pub use chrono_tz::Tz;

/// The IANA time zone named `name` (`America/New_York`, `UTC`), as browsers name them; `None` if there is none.
pub fn zone(name: &str) -> Option<Tz> {
    name.trim().parse().ok()
}

/// The instant a local date and time of `tz` stands for (the earlier one in a repeated hour; a time skipped by
/// a DST change is taken an hour later, as clocks read then).
fn local_ms(naive: &NaiveDateTime, tz: Tz) -> Option<i64> {
    tz.from_local_datetime(naive)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(*naive + chrono::Duration::hours(1))).earliest())
        .map(|date| date.timestamp_millis())
}

const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y/%m/%d@%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

const DATE_FORMATS: &[&str] = &["%Y-%m-%d", "%Y/%m/%d"];

/// Parses a date into epoch milliseconds; `None` if no known form fits. A date without a zone is UTC.
pub fn parse_date_ms(text: &str) -> Option<i64> {
    parse_date_ms_in(text, Tz::UTC)
}

/// Parses a date into epoch milliseconds, a date without a zone being a local date of `tz`.
pub fn parse_date_ms_in(text: &str, tz: Tz) -> Option<i64> {
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
    // A trailing `Z` says UTC whatever the zone.
    let (without_z, tz) = match text.strip_suffix('Z') {
        Some(rest) => (rest, Tz::UTC),
        None => (text, tz),
    };
    for format in NAIVE_FORMATS {
        if let Ok(naive) = NaiveDateTime::parse_from_str(without_z, format) {
            return local_ms(&naive, tz);
        }
    }
    parse_day_in(text, tz).map(|(start, _)| start).or_else(|| epoch_ms(text))
}

/// A date without a time (`2024-01-02`, `2024/01/02`): the start of that UTC day and of the next.
pub fn parse_day(text: &str) -> Option<(i64, i64)> {
    parse_day_in(text, Tz::UTC)
}

/// A date without a time: the start of that day in `tz` and of the next (23 or 25 hours later across DST).
pub fn parse_day_in(text: &str, tz: Tz) -> Option<(i64, i64)> {
    let day = DATE_FORMATS.iter().find_map(|format| NaiveDate::parse_from_str(text.trim(), format).ok())?;
    let start = local_ms(&day.and_hms_opt(0, 0, 0)?, tz)?;
    let next = local_ms(&day.succ_opt()?.and_hms_opt(0, 0, 0)?, tz)?;
    Some((start, next))
}

/// A relative date of Coveo's query syntax — `now`, `today` or `yesterday`, optionally followed by `+N` or `-N` and a
/// unit (`s`, `m`, `h`, `d`, `mo`, `y`) — as the milliseconds it covers, inclusive: `now…` is an instant, `today…`
/// and `yesterday…` a whole UTC day, moved by the offset. `None` when `text` is not one.
pub fn relative_interval(text: &str, now_ms: i64) -> Option<(i64, i64)> {
    relative_interval_in(text, now_ms, Tz::UTC)
}

/// As [`relative_interval`], the days being those of `tz` (`today` starts at its midnight; offsets in days,
/// months and years move along its calendar).
pub fn relative_interval_in(text: &str, now_ms: i64, tz: Tz) -> Option<(i64, i64)> {
    let text = text.trim().to_ascii_lowercase();
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms)?.with_timezone(&tz);
    let midnight = tz.timestamp_millis_opt(local_ms(&now.date_naive().and_hms_opt(0, 0, 0)?, tz)?).single()?;
    let (base, rest, is_day) = if let Some(rest) = text.strip_prefix("now") {
        (now, rest, false)
    } else if let Some(rest) = text.strip_prefix("today") {
        (midnight, rest, true)
    } else if let Some(rest) = text.strip_prefix("yesterday") {
        (midnight - chrono::Duration::days(1), rest, true)
    } else {
        return None;
    };
    let start = if rest.is_empty() { base } else { shift(base, rest)? };
    let end = if is_day {
        let next = local_ms(&(start.date_naive().succ_opt()?.and_hms_opt(0, 0, 0)?), tz)?;
        tz.timestamp_millis_opt(next - 1).single()?
    } else {
        start
    };
    Some((start.timestamp_millis(), end.timestamp_millis()))
}

/// `base` moved by an offset such as `-7d`, `+2h` or `-1mo`.
fn shift(base: DateTime<Tz>, offset: &str) -> Option<DateTime<Tz>> {
    let (sign, rest) = match offset.as_bytes().first()? {
        b'+' => (1i64, &offset[1..]),
        b'-' => (-1i64, &offset[1..]),
        _ => return None,
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let amount: i64 = rest[..digits].parse().ok().filter(|n| *n <= 100_000)?;
    let signed = sign * amount;
    let months = |n: i64| {
        let magnitude = chrono::Months::new(u32::try_from(n.unsigned_abs()).ok()?);
        if n < 0 { base.checked_sub_months(magnitude) } else { base.checked_add_months(magnitude) }
    };
    match &rest[digits..] {
        "s" => base.checked_add_signed(chrono::Duration::seconds(signed)),
        "m" => base.checked_add_signed(chrono::Duration::minutes(signed)),
        "h" => base.checked_add_signed(chrono::Duration::hours(signed)),
        "d" => {
            let day = base.date_naive().checked_add_signed(chrono::Duration::days(signed))?;
            let local = day.and_time(base.time());
            base.timezone().timestamp_millis_opt(local_ms(&local, base.timezone())?).single()
        }
        "mo" => months(signed),
        "y" => months(signed.checked_mul(12)?),
        _ => None,
    }
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

/// How far `tz`'s clocks are ahead of UTC at the instant `ms`, in milliseconds.
pub fn utc_offset_ms(ms: i64, tz: Tz) -> i64 {
    use chrono::Offset;
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or(0, |d| i64::from(d.with_timezone(&tz).offset().fix().local_minus_utc()) * 1000)
}

/// Epoch milliseconds as Coveo's facets and query syntax write dates, UTC: `2024/01/02@03:04:05`.
pub fn format_coveo_ms(ms: i64) -> String {
    format_coveo_ms_in(ms, Tz::UTC)
}

/// As [`format_coveo_ms`], in the local time of `tz`.
pub fn format_coveo_ms_in(ms: i64, tz: Tz) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.with_timezone(&tz).format("%Y/%m/%d@%H:%M:%S").to_string())
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
        assert_eq!(format_coveo_ms(expected), "2024/01/02@03:04:05");
        assert_eq!(parse_date_ms("2024/01/02@03:04:05"), Some(expected));
    }

    #[test]
    fn relative_dates_are_instants_or_days() {
        let now = 1_704_164_645_000; // 2024-01-02T03:04:05Z
        let day = 86_400_000;
        let midnight = 1_704_153_600_000;
        assert_eq!(relative_interval("now", now), Some((now, now)));
        assert_eq!(relative_interval("NOW-7d", now), Some((now - 7 * day, now - 7 * day)));
        assert_eq!(relative_interval("now+2h", now), Some((now + 7_200_000, now + 7_200_000)));
        assert_eq!(relative_interval("today", now), Some((midnight, midnight + day - 1)));
        assert_eq!(relative_interval("yesterday", now), Some((midnight - day, midnight - 1)));
        assert_eq!(
            relative_interval("today-1mo", now).map(|r| format_ms(r.0)),
            Some("2023-12-02T00:00:00.000Z".into())
        );
        assert_eq!(relative_interval("now-1y", now).map(|r| format_ms(r.0)), Some("2023-01-02T03:04:05.000Z".into()));
        for bad in ["now-", "now-7", "now-7w", "now7d", "tomorrow", "now-99999999999d", "nowadays"] {
            assert_eq!(relative_interval(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn dates_without_a_zone_are_read_in_the_search_time_zone() {
        let new_york = zone("America/New_York").unwrap();
        assert_eq!(zone("Mars/Olympus"), None);
        // 2026-01-01T00:00:00Z is 2025-12-31 19:00 in New York (UTC-5).
        let now = 1_767_225_600_000;
        let hour = 3_600_000;
        assert_eq!(parse_date_ms_in("2025/12/31@19:00:00", new_york), Some(now));
        assert_eq!(parse_date_ms_in("2025-12-31T19:00:00", new_york), Some(now));
        assert_eq!(parse_date_ms_in("2026-01-01T00:00:00Z", new_york), Some(now), "a Z says UTC");
        assert_eq!(parse_date_ms_in("2026-01-01T00:00:00+00:00", new_york), Some(now));
        assert_eq!(parse_day_in("2025-12-31", new_york), Some((now - 19 * hour, now + 5 * hour)));
        // Today in New York is still December 31.
        assert_eq!(relative_interval_in("today", now, new_york), Some((now - 19 * hour, now + 5 * hour - 1)));
        assert_eq!(relative_interval_in("yesterday", now, new_york).unwrap().0, now - 43 * hour);
        assert_eq!(relative_interval_in("now-1d", now, new_york), Some((now - 24 * hour, now - 24 * hour)));
        assert_eq!(format_coveo_ms_in(now, new_york), "2025/12/31@19:00:00");
        // Across a DST change a day is 23 hours: March 8, 2026 in New York.
        let (start, next) = parse_day_in("2026-03-08", new_york).unwrap();
        assert_eq!(next - start, 23 * hour);
        // A time skipped by the change is read an hour later, as clocks then read.
        assert_eq!(
            parse_date_ms_in("2026-03-08T02:30:00", new_york),
            parse_date_ms_in("2026-03-08T03:30:00", new_york)
        );
    }
}
