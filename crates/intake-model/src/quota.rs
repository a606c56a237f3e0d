//! Organization limits and fault-injection rules: their names on the wire, their values, and how a rule is
//! read from the admin API or the configuration file.
//!
//! Limits follow Coveo's Platform limits API: each has a key in the `content` section and a value; a limit
//! without a value is unlimited. Fault rules make the failures Coveo's service produces on its own (429,
//! 5xx, throttling after a quiet period) happen on demand, so connectors can be tested against them.

use serde::{Deserialize, Serialize};

/// One limit of an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// Items in the index plus pending adds.
    MaximumItems,
    /// Push API calls per UTC day.
    DailyCalls,
    /// Items (adds and deletes, batch entries included) accepted per UTC day.
    DailyDocuments,
    /// Security identities accepted per UTC day.
    DailySecurityIdentities,
    /// Sustained Push API calls per second.
    RequestsPerSecond,
    /// Calls that may arrive at once above the sustained rate.
    Burst,
}

/// The section of the limits API every Intake limit is in (Coveo's content limits).
pub const LIMITS_SECTION: &str = "content";

impl LimitKey {
    pub const ALL: [LimitKey; 6] = [
        LimitKey::MaximumItems,
        LimitKey::DailyCalls,
        LimitKey::DailyDocuments,
        LimitKey::DailySecurityIdentities,
        LimitKey::RequestsPerSecond,
        LimitKey::Burst,
    ];

    /// The key as spelled in the limits API.
    pub fn name(self) -> &'static str {
        match self {
            LimitKey::MaximumItems => "maximumItems",
            LimitKey::DailyCalls => "pushApiMaximumDailyCalls",
            LimitKey::DailyDocuments => "pushApiMaximumDailyDocumentLimit",
            LimitKey::DailySecurityIdentities => "pushApiMaximumDailySecurityIdentities",
            LimitKey::RequestsPerSecond => "pushApiRequestsPerSecond",
            LimitKey::Burst => "pushApiBurst",
        }
    }

    /// A key by name, ignoring case.
    pub fn parse(name: &str) -> Option<LimitKey> {
        LimitKey::ALL.into_iter().find(|key| key.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The names of every key, for messages.
    pub fn names() -> String {
        LimitKey::ALL.map(LimitKey::name).join(", ")
    }

    /// Whether the limit counts per UTC day (and so resets at midnight).
    pub fn is_daily(self) -> bool {
        matches!(self, LimitKey::DailyCalls | LimitKey::DailyDocuments | LimitKey::DailySecurityIdentities)
    }

    /// Whether `value` means something for this limit: a rate or a burst of 0 would refuse every call, which
    /// is what pausing the organization or a fault rule is for, so it is refused with that advice.
    pub fn check(self, value: u64) -> Result<(), String> {
        match self {
            LimitKey::RequestsPerSecond | LimitKey::Burst if value == 0 => Err(format!(
                "{} must be at least 1; to refuse every push, pause the organization or add a fault rule, and to \
                 lift the limit set it to null",
                self.name()
            )),
            _ => Ok(()),
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// A value for each limit; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits([Option<u64>; 6]);

impl Limits {
    pub fn get(&self, key: LimitKey) -> Option<u64> {
        self.0[key.slot()]
    }

    pub fn set(&mut self, key: LimitKey, value: Option<u64>) {
        self.0[key.slot()] = value;
    }

    /// These limits with `overrides` on top (an override wins where it has a value).
    pub fn with(&self, overrides: &Limits) -> Limits {
        let mut merged = *self;
        for key in LimitKey::ALL {
            if let Some(value) = overrides.get(key) {
                merged.set(key, Some(value));
            }
        }
        merged
    }

    /// Whether any call-level limit (rate, burst, daily calls) is set: without one, admitting a call is free.
    pub fn limits_calls(&self) -> bool {
        [LimitKey::DailyCalls, LimitKey::RequestsPerSecond, LimitKey::Burst].iter().any(|key| self.get(*key).is_some())
    }
}

/// The statuses a fault rule may answer with.
pub const FAULT_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// A fault rule as written by its author: `{"status": 503, "count": 2}`, `{"status": 500, "percent": 10,
/// "seed": 7}`, `{"kind": "throttleAfterIdle", "idleSeconds": 900}`, each with an optional `route` (a path
/// pattern where `*` matches anything) and `method`, and `retryAfter` seconds for 429 and 503.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_seconds: Option<u64>,
}

/// When a rule fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// The next `count` matching calls.
    Next { count: u64 },
    /// Each matching call with this probability, drawn from a generator seeded with `seed` (reproducible).
    Percent { percent: f64, seed: u64 },
    /// The first `count` matching calls after `idle_seconds` without any.
    AfterIdle { idle_seconds: u64, count: u64 },
}

/// A checked fault rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub status: u16,
    pub trigger: Trigger,
    /// A pattern over the request path; `None` matches every path of the organization.
    pub route: Option<String>,
    /// An HTTP method, upper case; `None` matches every method.
    pub method: Option<String>,
    /// Seconds for `Retry-After` (429 and 503 answers).
    pub retry_after: Option<u64>,
}

/// Coveo throttles an organization after this long without calls, by default.
pub const DEFAULT_IDLE_SECONDS: u64 = 15 * 60;

impl FaultSpec {
    /// Checks the rule; the error names the offending member.
    pub fn check(&self) -> Result<FaultRule, String> {
        let throttle = match self.kind.as_deref().map(str::trim) {
            None | Some("") | Some("fail") => false,
            Some(kind) if kind.eq_ignore_ascii_case("throttleAfterIdle") => true,
            Some(kind) => return Err(format!("'kind' is '{kind}': use 'fail' (the default) or 'throttleAfterIdle'")),
        };
        let status = match (self.status, throttle) {
            (Some(status), _) if FAULT_STATUSES.contains(&status) => status,
            (Some(status), _) => return Err(format!("'status' is {status}: use one of 429, 500, 502, 503, 504")),
            (None, true) => 429,
            (None, false) => return Err("'status' is missing: use one of 429, 500, 502, 503, 504".into()),
        };
        let trigger = if throttle {
            if self.percent.is_some() || self.seed.is_some() {
                return Err(
                    "'percent' and 'seed' do not apply to throttleAfterIdle; give 'idleSeconds' and 'count'".into()
                );
            }
            let idle_seconds = self.idle_seconds.unwrap_or(DEFAULT_IDLE_SECONDS);
            if idle_seconds == 0 {
                return Err("'idleSeconds' must be at least 1".into());
            }
            Trigger::AfterIdle { idle_seconds, count: positive(self.count.unwrap_or(1), "count")? }
        } else {
            if self.idle_seconds.is_some() {
                return Err("'idleSeconds' applies only to \"kind\": \"throttleAfterIdle\"".into());
            }
            match (self.count, self.percent) {
                (Some(_), Some(_)) => return Err("give either 'count' or 'percent', not both".into()),
                (Some(count), None) => Trigger::Next { count: positive(count, "count")? },
                (None, Some(percent)) if percent > 0.0 && percent <= 100.0 => {
                    Trigger::Percent { percent, seed: self.seed.unwrap_or(0) }
                }
                (None, Some(percent)) => {
                    return Err(format!("'percent' is {percent}: it must be above 0 and at most 100"));
                }
                (None, None) => return Err("give 'count' (fail the next N calls) or 'percent' (with 'seed')".into()),
            }
        };
        if self.seed.is_some() && !matches!(trigger, Trigger::Percent { .. }) {
            return Err("'seed' applies only with 'percent'".into());
        }
        if self.retry_after.is_some() && !matches!(status, 429 | 503) {
            return Err(format!("'retryAfter' applies to 429 and 503 answers, not to {status}"));
        }
        let route = self.route.as_deref().map(str::trim).filter(|r| !r.is_empty() && *r != "*").map(str::to_string);
        let method = match self.method.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            Some(method) if method.bytes().all(|b| b.is_ascii_alphabetic()) => Some(method.to_ascii_uppercase()),
            Some(method) => return Err(format!("'method' is '{method}': give an HTTP method such as PUT")),
            None => None,
        };
        let retry_after = match status {
            429 => Some(self.retry_after.unwrap_or(1)),
            _ => self.retry_after,
        };
        Ok(FaultRule { status, trigger, route, method, retry_after })
    }
}

fn positive(value: u64, name: &str) -> Result<u64, String> {
    if value == 0 { Err(format!("'{name}' must be at least 1")) } else { Ok(value) }
}

impl FaultRule {
    /// Whether the rule is about this call (its trigger aside).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.route.as_deref().is_none_or(|pattern| glob_matches(pattern, path))
    }
}

/// `*` matches any run of characters (slashes included); everything else matches itself. A pattern that does
/// not start with `/` or `*` may match anywhere at the end of the path (`documents/batch` is `*documents/batch`).
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    let anchored = pattern.starts_with('/') || pattern.starts_with('*');
    let pattern = if anchored { pattern.to_string() } else { format!("*{pattern}") };
    wildcard_matches(&pattern, path, '*')
}

/// Whether `text` is `pattern` with each `wildcard` standing for any run of characters.
pub fn wildcard_matches(pattern: &str, text: &str, wildcard: char) -> bool {
    let parts: Vec<&str> = pattern.split(wildcard).collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return text == first;
    }
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The generator of `percent` rules: SplitMix64, so a seed gives the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct SeededDraws(u64);

impl SeededDraws {
    pub fn new(seed: u64) -> SeededDraws {
        SeededDraws(seed)
    }

    /// A number in [0, 100).
    pub fn next_percent(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }
}

/// Milliseconds in a day: daily limits count per UTC day `now_ms / DAY_MS`.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Whole seconds from `now_ms` to the next midnight UTC (at least 1).
pub fn seconds_to_midnight(now_ms: i64) -> u64 {
    let next = (now_ms.div_euclid(DAY_MS) + 1) * DAY_MS;
    ((next - now_ms + 999) / 1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<FaultRule, String> {
        serde_json::from_str::<FaultSpec>(json).map_err(|e| e.to_string())?.check()
    }

    #[test]
    fn limit_keys_round_trip_and_merge() {
        for key in LimitKey::ALL {
            assert_eq!(LimitKey::parse(&key.name().to_uppercase()), Some(key));
        }
        assert_eq!(LimitKey::parse("nope"), None);
        let mut defaults = Limits::default();
        defaults.set(LimitKey::MaximumItems, Some(10));
        defaults.set(LimitKey::Burst, Some(5));
        let mut overrides = Limits::default();
        overrides.set(LimitKey::MaximumItems, Some(3));
        let merged = defaults.with(&overrides);
        assert_eq!((merged.get(LimitKey::MaximumItems), merged.get(LimitKey::Burst)), (Some(3), Some(5)));
        assert!(merged.limits_calls());
        assert!(!overrides.limits_calls());
    }

    #[test]
    fn fault_rules_are_checked() {
        let rule = spec(r#"{"status": 503, "count": 2, "route": "*/documents", "method": "put"}"#).unwrap();
        assert_eq!(rule.trigger, Trigger::Next { count: 2 });
        assert_eq!(rule.method.as_deref(), Some("PUT"));
        assert_eq!(spec(r#"{"status": 429, "count": 1}"#).unwrap().retry_after, Some(1));
        let idle = spec(r#"{"kind": "throttleAfterIdle"}"#).unwrap();
        assert_eq!((idle.status, idle.trigger), (429, Trigger::AfterIdle { idle_seconds: 900, count: 1 }));
        assert_eq!(
            spec(r#"{"status": 500, "percent": 12.5, "seed": 7}"#).unwrap().trigger,
            Trigger::Percent { percent: 12.5, seed: 7 }
        );
        for (bad, words) in [
            (r#"{"status": 404, "count": 1}"#, "'status' is 404"),
            (r#"{"count": 1}"#, "'status' is missing"),
            (r#"{"status": 500}"#, "give 'count'"),
            (r#"{"status": 500, "count": 1, "percent": 5}"#, "not both"),
            (r#"{"status": 500, "percent": 0}"#, "above 0"),
            (r#"{"status": 500, "count": 0}"#, "at least 1"),
            (r#"{"status": 500, "count": 1, "retryAfter": 3}"#, "'retryAfter' applies"),
            (r#"{"status": 500, "count": 1, "statuss": 3}"#, "unknown field `statuss`"),
            (r#"{"kind": "sometimes", "status": 500}"#, "'kind' is 'sometimes'"),
        ] {
            let message = spec(bad).unwrap_err();
            assert!(message.contains(words), "{bad}: {message}");
        }
    }

    #[test]
    fn routes_are_globs_over_the_path() {
        let path = "/push/v1/organizations/acme/sources/s1/documents/batch";
        assert!(glob_matches("*/documents/batch", path));
        assert!(glob_matches("documents/batch", path));
        assert!(glob_matches("/push/v1/*/batch", path));
        assert!(glob_matches("/push/*/sources/*/documents*", path));
        assert!(!glob_matches("*/documents", path));
        assert!(!glob_matches("/v1/*", path));
        assert!(glob_matches(path, path));
        assert!(!glob_matches("*/files*", path));
    }

    #[test]
    fn seeded_draws_repeat_and_spread() {
        let draws: Vec<f64> = (0..1000).scan(SeededDraws::new(7), |d, _| Some(d.next_percent())).collect();
        let again: Vec<f64> = (0..1000).scan(SeededDraws::new(7), |d, _| Some(d.next_percent())).collect();
        assert_eq!(draws, again);
        let below_ten = draws.iter().filter(|p| **p < 10.0).count();
        assert!((60..140).contains(&below_ten), "{below_ten}");
        assert!(draws.iter().all(|p| (0.0..100.0).contains(p)));
    }

    #[test]
    fn midnight_is_counted_in_whole_seconds() {
        assert_eq!(seconds_to_midnight(0), 86_400);
        assert_eq!(seconds_to_midnight(DAY_MS - 1), 1);
        assert_eq!(seconds_to_midnight(DAY_MS - 1500), 2);
    }
}
