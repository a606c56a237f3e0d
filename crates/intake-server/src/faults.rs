//! Fault injection: per-organization rules that make calls fail on demand, as Coveo's service sometimes does
//! on its own — the next N calls, a seeded percentage of them, or the first calls after a quiet period
//! (throttling after inactivity) — with a chosen status (429 with `Retry-After`, 500, 502, 503, 504) on chosen
//! routes. Off until a rule exists.
//!
//! [`inject`] runs before authentication, as a gateway's failures do, on every path that names an
//! organization (`/organizations/{org}/…` and the upload URLs `/upload/{org}/…`), except the limits and fault
//! endpoints themselves, so a rule can always be looked at and removed. Injected answers carry the catalog's
//! JSON body, say that they were injected and by which rule, and an `X-Intake-Fault` header with its id.
//!
//! Rules set through the API are kept in the catalog (with what is left of a counted rule) and survive
//! restarts; rules from the configuration file are added at each start. With a catalog that nodes share, every
//! node takes in the rules added or removed on the others within half a second ([`Faults::sync`]), and a counted
//! rule's firings are counted in the catalog, so "the next N calls" means N calls across the cluster; a
//! percentage's seeded draws and an idle throttle are each node's own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use intake_model::quota::{FaultRule, FaultSpec, SeededDraws, Trigger};
use intake_model::{ApiError, ErrorCode};
use intake_store::{Catalog, Clock, StoredFault};
use serde_json::{Value, json};

use crate::http::HandlerError;
use crate::state::AppState;

pub struct Faults {
    catalog: Arc<dyn Catalog>,
    clock: Arc<dyn Clock>,
    rules: RwLock<Vec<Arc<ActiveRule>>>,
    /// Whether any rule exists: the request path costs one atomic load when none does.
    armed: AtomicBool,
    /// Nodes share the catalog: counted firings are taken from it, and its rules are followed.
    shared: bool,
    /// Held while the catalog's rules and the active ones are brought in line: a [`Faults::sync`] that read the
    /// catalog just before a rule was added (or removed) here must not drop (or bring back) that rule.
    changing: Mutex<()>,
}

struct ActiveRule {
    /// A number for rules from the API, `config-N` for rules from the configuration file.
    id: String,
    /// The catalog row, for rules from the API.
    stored: Option<i64>,
    organization_id: String,
    spec: FaultSpec,
    rule: FaultRule,
    created_at_ms: i64,
    state: Mutex<RuleState>,
}

struct RuleState {
    /// Firings left of a counted rule.
    remaining: Option<u64>,
    draws: Option<SeededDraws>,
    /// The last matching call (throttle after idle), and the throttled calls still to answer.
    last_call_ms: i64,
    throttling: u64,
    fired: u64,
}

/// What a matching call did to a rule.
enum Firing {
    No,
    Yes,
    /// It fired for the last time: the rule is spent.
    Last,
}

impl Faults {
    /// Loads the stored rules and adds those of the configuration file.
    pub fn load(
        catalog: Arc<dyn Catalog>,
        clock: Arc<dyn Clock>,
        configured: &[(String, FaultSpec)],
        shared: bool,
    ) -> anyhow::Result<Faults> {
        let faults = Faults {
            catalog,
            clock,
            rules: RwLock::default(),
            armed: AtomicBool::new(false),
            shared,
            changing: Mutex::default(),
        };
        for stored in faults.catalog.fault_rules()? {
            faults.insert(ActiveRule::stored(stored)?);
        }
        let now = faults.clock.now_ms();
        for (n, (organization_id, spec)) in configured.iter().enumerate() {
            let rule =
                spec.check().map_err(|why| anyhow::anyhow!("fault rule {} of the configuration file: {why}", n + 1))?;
            faults.insert(ActiveRule {
                id: format!("config-{}", n + 1),
                stored: None,
                organization_id: organization_id.clone(),
                spec: spec.clone(),
                state: Mutex::new(RuleState::new(&rule, None, now)),
                rule,
                created_at_ms: now,
            });
        }
        Ok(faults)
    }

    /// With a shared catalog: takes in the rules other nodes added and drops those they removed (or spent).
    pub fn sync(&self) {
        let _changing = self.changing.lock().expect("faults lock");
        let stored = match self.catalog.fault_rules() {
            Ok(stored) => stored,
            Err(error) => return tracing::debug!(%error, "fault rules could not be read"),
        };
        let ids: std::collections::HashSet<i64> = stored.iter().map(|rule| rule.id).collect();
        let mut rules = self.rules.write().expect("faults lock");
        rules.retain(|rule| rule.stored.is_none_or(|id| ids.contains(&id)));
        for stored in stored {
            if rules.iter().any(|rule| rule.stored == Some(stored.id)) {
                continue;
            }
            match ActiveRule::stored(stored) {
                Ok(rule) => rules.push(Arc::new(rule)),
                Err(error) => tracing::warn!(%error, "a fault rule made on another node does not read"),
            }
        }
        self.armed.store(!rules.is_empty(), Ordering::Release);
    }

    fn insert(&self, rule: ActiveRule) {
        let mut rules = self.rules.write().expect("faults lock");
        rules.push(Arc::new(rule));
        self.armed.store(true, Ordering::Release);
    }

    /// Adds a rule to an organization; returns it as listed.
    pub fn add(&self, organization_id: &str, spec: FaultSpec) -> Result<Value, ApiError> {
        let rule =
            spec.check().map_err(|why| ApiError::invalid_json(format!("The fault rule is not valid: {why}.")))?;
        let now = self.clock.now_ms();
        let state = RuleState::new(&rule, None, now);
        let text = serde_json::to_string(&spec).expect("a rule serializes");
        let _changing = self.changing.lock().expect("faults lock");
        let id = self
            .catalog
            .add_fault_rule(organization_id, &text, state.remaining, now)
            .map_err(|e| crate::http::storage_failure("The fault rule could not be saved", e))?;
        let active = ActiveRule {
            id: id.to_string(),
            stored: Some(id),
            organization_id: organization_id.to_string(),
            spec,
            rule,
            created_at_ms: now,
            state: Mutex::new(state),
        };
        let listed = active.describe();
        self.insert(active);
        tracing::info!(organization = organization_id, rule = id, "fault rule added");
        Ok(listed)
    }

    /// The organization's rules, oldest first.
    pub fn list(&self, organization_id: &str) -> Vec<Value> {
        let rules = self.rules.read().expect("faults lock");
        rules.iter().filter(|r| r.organization_id == organization_id).map(|r| r.describe()).collect()
    }

    /// Removes a rule; false when the organization has none with that id.
    pub fn remove(&self, organization_id: &str, id: &str) -> Result<bool, ApiError> {
        let _changing = self.changing.lock().expect("faults lock");
        let removed = {
            let mut rules = self.rules.write().expect("faults lock");
            let at = rules.iter().position(|r| r.organization_id == organization_id && r.id == id);
            let removed = at.map(|at| rules.remove(at));
            self.armed.store(!rules.is_empty(), Ordering::Release);
            removed
        };
        let Some(rule) = removed else { return Ok(false) };
        if let Some(stored) = rule.stored {
            self.catalog
                .delete_fault_rule(organization_id, stored)
                .map_err(|e| crate::http::storage_failure("The fault rule could not be removed", e))?;
        }
        Ok(true)
    }

    /// Forgets a deleted organization's rules (the catalog rows go with the organization).
    pub fn forget(&self, organization_id: &str) {
        let mut rules = self.rules.write().expect("faults lock");
        rules.retain(|r| r.organization_id != organization_id);
        self.armed.store(!rules.is_empty(), Ordering::Release);
    }

    /// The injected error for this call, if a rule fires.
    pub fn fire(&self, organization_id: &str, method: &str, path: &str) -> Option<(String, ApiError)> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let now = self.clock.now_ms();
        let matching: Vec<Arc<ActiveRule>> = {
            let rules = self.rules.read().expect("faults lock");
            rules
                .iter()
                .filter(|r| r.organization_id == organization_id && r.rule.matches(method, path))
                .cloned()
                .collect()
        };
        let mut injected = None;
        for rule in matching {
            let counted_here =
                !(self.shared && rule.stored.is_some() && matches!(rule.rule.trigger, Trigger::Next { .. }));
            let firing = match (counted_here, injected.is_none()) {
                // Every matching call counts as activity for idle rules, even one another rule answers.
                (true, may_fire) => rule.state.lock().expect("rule lock").observe(&rule.rule, now, may_fire),
                (false, true) => self.take_shared_firing(&rule),
                (false, false) => Firing::No,
            };
            if matches!(firing, Firing::No) {
                continue;
            }
            injected = Some((rule.id.clone(), rule.error(method, path)));
            if matches!(firing, Firing::Last) {
                let _ = self.remove(organization_id, &rule.id);
            } else if let (Some(stored), Trigger::Next { .. }, true) = (rule.stored, &rule.rule.trigger, counted_here) {
                let remaining = rule.state.lock().expect("rule lock").remaining.unwrap_or(0);
                if let Err(error) = self.catalog.set_fault_remaining(stored, remaining) {
                    tracing::warn!(%error, rule = rule.id, "a fault rule's count could not be saved");
                }
            }
        }
        injected
    }
}

impl Faults {
    /// One firing of a counted rule, taken from the shared catalog: the rule fires only if some are left there.
    fn take_shared_firing(&self, rule: &ActiveRule) -> Firing {
        let Some(stored) = rule.stored else { return Firing::No };
        let left = match self.catalog.take_fault_firing(stored) {
            Ok(left) => left,
            Err(error) => {
                tracing::warn!(%error, rule = rule.id, "a fault rule's firing could not be counted; not injected");
                return Firing::No;
            }
        };
        let Some(left) = left else {
            // Spent on other nodes (or removed): gone here too.
            let _ = self.remove(&rule.organization_id, &rule.id);
            return Firing::No;
        };
        let mut state = rule.state.lock().expect("rule lock");
        state.remaining = Some(left);
        state.fired += 1;
        if left == 0 { Firing::Last } else { Firing::Yes }
    }
}

impl RuleState {
    fn new(rule: &FaultRule, remaining: Option<u64>, now: i64) -> RuleState {
        let (remaining, draws) = match rule.trigger {
            Trigger::Next { count } => (Some(remaining.unwrap_or(count)), None),
            Trigger::Percent { seed, .. } => (None, Some(SeededDraws::new(seed))),
            Trigger::AfterIdle { .. } => (None, None),
        };
        RuleState { remaining, draws, last_call_ms: now, throttling: 0, fired: 0 }
    }

    /// Records a matching call; whether the rule answers it (only when `may_fire`: no earlier rule did).
    fn observe(&mut self, rule: &FaultRule, now: i64, may_fire: bool) -> Firing {
        let fires = match rule.trigger {
            Trigger::AfterIdle { idle_seconds, count } => {
                if now - self.last_call_ms >= idle_seconds as i64 * 1000 {
                    self.throttling = count;
                }
                self.last_call_ms = now;
                may_fire && self.throttling > 0 && {
                    self.throttling -= 1;
                    true
                }
            }
            _ if !may_fire => false,
            Trigger::Next { .. } => {
                // Spent, but not yet removed by the call that spent it.
                let Some(remaining) = self.remaining.as_mut().filter(|r| **r > 0) else { return Firing::No };
                *remaining -= 1;
                self.fired += 1;
                return if *remaining == 0 { Firing::Last } else { Firing::Yes };
            }
            Trigger::Percent { percent, .. } => self.draws.as_mut().is_some_and(|d| d.next_percent() < percent),
        };
        if fires {
            self.fired += 1;
            Firing::Yes
        } else {
            Firing::No
        }
    }
}

impl ActiveRule {
    /// A rule as the catalog holds it.
    fn stored(stored: StoredFault) -> anyhow::Result<ActiveRule> {
        let spec: FaultSpec = serde_json::from_str(&stored.spec)?;
        let rule = spec.check().map_err(|why| anyhow::anyhow!("stored fault rule {}: {why}", stored.id))?;
        Ok(ActiveRule {
            id: stored.id.to_string(),
            stored: Some(stored.id),
            organization_id: stored.organization_id,
            state: Mutex::new(RuleState::new(&rule, stored.remaining, stored.created_at_ms)),
            spec,
            rule,
            created_at_ms: stored.created_at_ms,
        })
    }

    fn describe(&self) -> Value {
        let state = self.state.lock().expect("rule lock");
        let mut listed = serde_json::to_value(&self.spec).expect("a rule serializes");
        listed["id"] = json!(self.id);
        listed["status"] = json!(self.rule.status);
        listed["source"] = json!(if self.stored.is_some() { "api" } else { "configuration" });
        listed["createdDate"] = json!(self.created_at_ms);
        listed["fired"] = json!(state.fired);
        if let Some(remaining) = state.remaining {
            listed["remaining"] = json!(remaining);
        }
        listed
    }

    fn error(&self, method: &str, path: &str) -> ApiError {
        let code = match self.rule.status {
            429 => ErrorCode::TooManyRequests,
            502 => ErrorCode::BadGateway,
            503 => ErrorCode::ServiceUnavailable,
            504 => ErrorCode::GatewayTimeout,
            _ => ErrorCode::InternalServerError,
        };
        let what = match self.rule.trigger {
            Trigger::Next { count } => format!("the next {count} matching calls"),
            Trigger::Percent { percent, seed } => format!("{percent}% of matching calls (seed {seed})"),
            Trigger::AfterIdle { idle_seconds, count } => {
                format!("the first {count} calls after {idle_seconds} s without calls (throttleAfterIdle)")
            }
        };
        let org = &self.organization_id;
        let mut error = ApiError::new(
            code,
            format!(
                "Injected by fault rule {} of organization '{org}', which answers {} to {what}; this call was {method} \
                 {path}. Remove the rule with DELETE /rest/organizations/{org}/faults/{} or `intake admin fault \
                 remove {}`.",
                self.id, self.rule.status, self.id, self.id
            ),
        );
        error.retry_after = self.rule.retry_after;
        error
    }
}

/// The organization a path names, when it is one faults apply to.
fn organization_of(path: &str) -> Option<&str> {
    let mut segments = path.split('/').skip(1);
    match segments.next()? {
        "upload" => segments.next(),
        _ => {
            let mut segments = path.split('/');
            segments.find(|s| *s == "organizations")?;
            let org = segments.next()?;
            // The limits and fault endpoints stay reachable, whatever the rules.
            let control = path.starts_with("/rest/") && matches!(segments.next(), Some("faults" | "limits"));
            (!control && !org.is_empty()).then_some(org)
        }
    }
}

/// The layer: answers a call with an injected fault when a rule of its organization fires.
pub async fn inject(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.headers().contains_key(&crate::forward::X_FORWARDED_BY) {
        // Sent on by the node the client called, which already applied the rules: a rule fires once per call.
        return next.run(request).await;
    }
    let fired = organization_of(request.uri().path())
        .and_then(|org| state.faults.fire(org, request.method().as_str(), request.uri().path()));
    let Some((rule, error)) = fired else { return next.run(request).await };
    tracing::info!(rule, path = request.uri().path(), status = error.status(), "fault injected");
    let mut response = HandlerError(error).into_response();
    if let Ok(value) = HeaderValue::from_str(&rule) {
        response.headers_mut().insert("x-intake-fault", value);
    }
    response.extensions_mut().insert(Injected);
    response
}

/// Marks an injected answer, so it is not logged as a failure of the server.
#[derive(Clone, Copy)]
pub struct Injected;

#[cfg(test)]
mod tests {
    use super::*;
    use intake_store::OrganizationStore;

    #[test]
    fn a_counted_rule_fires_exactly_its_count_even_before_it_is_removed() {
        let rule = serde_json::from_str::<FaultSpec>(r#"{"status": 503, "count": 2}"#).unwrap().check().unwrap();
        let mut state = RuleState::new(&rule, None, 0);
        let firings: Vec<_> = (0..4).map(|_| state.observe(&rule, 0, true)).collect();
        assert!(matches!(firings[..], [Firing::Yes, Firing::Last, Firing::No, Firing::No]));
        assert_eq!(state.fired, 2);
    }

    /// A rule added or removed on this node is in force (or gone) at once, even while the rules of other
    /// nodes are being taken in: a sync that read the catalog a moment earlier does not undo it.
    #[test]
    fn adding_and_removing_a_rule_is_not_undone_by_a_concurrent_sync() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(intake_store::SqliteCatalog::open(&dir.path().join("catalog.sqlite")).unwrap());
        catalog.create_organization("acme", "Acme", 0).unwrap();
        let faults = Faults::load(catalog, Arc::new(intake_store::ManualClock::new(0)), &[], true).unwrap();
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    faults.sync();
                }
            });
            for n in 0..300 {
                let spec = serde_json::from_value(json!({"status": 503, "count": 5})).unwrap();
                let id = faults.add("acme", spec).unwrap()["id"].as_str().unwrap().to_string();
                let listed = faults.list("acme").len();
                let removed = faults.remove("acme", &id).unwrap();
                let left = faults.list("acme").len();
                if (listed, removed, left) != (1, true, 0) {
                    stop.store(true, Ordering::Relaxed);
                    panic!("round {n}: listed {listed} after adding, removed {removed}, {left} left after removing");
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
    }

    #[test]
    fn faults_apply_to_organization_paths_but_not_to_their_own_endpoints() {
        assert_eq!(organization_of("/push/v1/organizations/acme/sources/s/documents"), Some("acme"));
        assert_eq!(organization_of("/v1/organizations/acme/files"), Some("acme"));
        assert_eq!(organization_of("/upload/acme/0c4e"), Some("acme"));
        assert_eq!(organization_of("/rest/organizations/acme/sources"), Some("acme"));
        assert_eq!(organization_of("/rest/organizations/acme/faults/3"), None);
        assert_eq!(organization_of("/rest/organizations/acme/limits"), None);
        assert_eq!(organization_of("/rest/organizations"), None);
        assert_eq!(organization_of("/health"), None);
    }
}
