//! The item log's queries, written once for both SQL backends: the filters of the Logs API and the "committed
//! only" rule become one statement with its parameters, in the placeholder style and the few functions of the
//! backend's dialect.

use intake_model::logs::LogResult;

use crate::item_log::{ActivityCount, ActivityQuery, CommittedThrough, IdMatching, LogQuery};

/// The SQL backend a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A parameter of a statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// A statement and its parameters, in order.
pub(crate) struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
    dialect: Dialect,
}

/// The columns of an entry, in the order [`query`] selects them.
pub(crate) const ENTRY_COLUMNS: &str = "row_id, organization_id, source_id, document_id, operation, result, task, \
    reason, request_id, ordering_id, journal_seq, item_index, datetime_ms";

impl Statement {
    fn new(dialect: Dialect) -> Statement {
        Statement { sql: String::new(), params: Vec::new(), dialect }
    }

    /// A statement without parameters.
    pub fn plain(sql: &str) -> Statement {
        Statement { sql: sql.to_string(), params: Vec::new(), dialect: Dialect::Postgres }
    }

    /// Appends `param` and the placeholder that stands for it.
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        match self.dialect {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }

    fn int(&mut self, value: i64) -> String {
        self.bind(Param::Int(value))
    }

    fn text(&mut self, value: String) -> String {
        self.bind(Param::Text(value))
    }

    /// `AND column IN (…)` for an allow list, else `AND column NOT IN (…)` for a deny list: the allow list has
    /// priority, as the Logs API documents.
    fn filter<T>(&mut self, column: &str, allow: &[T], deny: &[T], text: impl Fn(&T) -> String) {
        let (list, negate) = match (allow.is_empty(), deny.is_empty()) {
            (false, _) => (allow, ""),
            (true, false) => (deny, "NOT "),
            (true, true) => return,
        };
        let marks: Vec<String> = list.iter().map(|v| self.text(text(v))).collect();
        self.sql.push_str(&format!(" AND {column} {negate}IN ({})", marks.join(", ")));
    }

    /// Keeps the entries whose operation is committed (see [`CommittedThrough`]).
    fn committed_only(&mut self, committed: &CommittedThrough) {
        let through = self.int(committed.journal_seq as i64);
        self.sql.push_str(&format!(" AND ((journal_seq <= {through}"));
        if !committed.pending.is_empty() {
            let marks: Vec<String> = committed.pending.iter().map(|seq| self.int(*seq as i64)).collect();
            self.sql.push_str(&format!(" AND journal_seq NOT IN ({})", marks.join(", ")));
        }
        self.sql.push(')');
        if let Some((seq, outcomes)) = committed.batch {
            let (seq, outcomes) = (self.int(seq as i64), self.int(i64::from(outcomes)));
            self.sql.push_str(&format!(" OR (journal_seq = {seq} AND item_index < {outcomes})"));
        }
        self.sql.push(')');
    }

    /// Matches `documentId` as the Logs API asks.
    fn document(&mut self, id: &str, matching: IdMatching) {
        let condition = match (matching, self.dialect) {
            (IdMatching::Exact, _) => format!("document_id = {}", self.text(id.to_string())),
            (IdMatching::Partial, Dialect::Sqlite) => format!("instr(document_id, {}) > 0", self.text(id.to_string())),
            (IdMatching::Partial, Dialect::Postgres) => {
                format!("strpos(document_id, {}) > 0", self.text(id.to_string()))
            }
            (IdMatching::Wildcard, Dialect::Sqlite) => format!("document_id GLOB {}", self.text(glob_pattern(id))),
            (IdMatching::Wildcard, Dialect::Postgres) => {
                format!("document_id LIKE {} ESCAPE '\\'", self.text(like_pattern(id)))
            }
        };
        self.sql.push_str(" AND ");
        self.sql.push_str(&condition);
    }
}

/// One page of entries (plus one, to tell whether another page follows), newest first.
pub(crate) fn query(query: &LogQuery, dialect: Dialect) -> Statement {
    let mut statement = Statement::new(dialect);
    let (organization, from, to) =
        (statement.text(query.organization_id.clone()), statement.int(query.from_ms), statement.int(query.to_ms));
    statement.sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM item_log WHERE organization_id = {organization} AND datetime_ms >= {from} \
         AND datetime_ms <= {to}"
    );
    if let Some((id, matching)) = &query.document_id {
        statement.document(id, *matching);
    }
    statement.filter("source_id", &query.source_ids, &query.exclude_source_ids, |s| s.clone());
    statement.filter("operation", &query.operations, &query.exclude_operations, |o| o.as_str().to_string());
    statement.filter("result", &query.results, &query.exclude_results, |r| r.as_str().to_string());
    statement.filter("task", &query.tasks, &query.exclude_tasks, |t| t.as_str().to_string());
    statement.committed_only(&query.committed);
    let per_page = i64::from(query.per_page.max(1));
    let (limit, offset) = (statement.int(per_page + 1), statement.int(i64::from(query.page) * per_page));
    statement.sql.push_str(&format!(" ORDER BY datetime_ms DESC, row_id DESC LIMIT {limit} OFFSET {offset}"));
    statement
}

/// The committed outcomes counted by (bucket, result): one grouped scan of the time index.
pub(crate) fn activity(query: &ActivityQuery, dialect: Dialect) -> Statement {
    let bucket_ms = query.bucket_ms.max(1);
    let to_ms = query.from_ms.saturating_add(bucket_ms.saturating_mul(i64::from(query.buckets)));
    let mut statement = Statement::new(dialect);
    let (origin, width) = (statement.int(query.from_ms), statement.int(bucket_ms));
    let organization = statement.text(query.organization_id.clone());
    let (from, to) = (statement.int(query.from_ms), statement.int(to_ms));
    statement.sql = format!(
        "SELECT (datetime_ms - {origin}) / {width} AS bucket, result, count(*) FROM item_log \
         WHERE organization_id = {organization} AND datetime_ms >= {from} AND datetime_ms < {to}"
    );
    statement.committed_only(&query.committed);
    statement.sql.push_str(" GROUP BY bucket, result");
    statement
}

/// The rows of [`query`] as one page, and whether another follows (the extra row).
pub(crate) fn one_page<T>(mut rows: Vec<T>, query: &LogQuery) -> (Vec<T>, bool) {
    let per_page = query.per_page.max(1) as usize;
    let has_next = rows.len() > per_page;
    rows.truncate(per_page);
    (rows, has_next)
}

/// The rows of [`activity`] (bucket, result, count) as counts; an unknown result is left out.
pub(crate) fn counts(rows: Vec<(i64, String, i64)>) -> Vec<ActivityCount> {
    rows.into_iter()
        .filter_map(|(bucket, result, count)| {
            Some(ActivityCount { bucket: bucket as u32, result: LogResult::parse(&result)?, count: count as u64 })
        })
        .collect()
}

/// A Logs API wildcard (`*`, `?`) as an SQLite GLOB, with GLOB's own specials escaped.
fn glob_pattern(wildcard: &str) -> String {
    wildcard
        .chars()
        .map(|c| match c {
            '[' => "[[]".to_string(),
            ']' => "[]]".to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// A Logs API wildcard (`*`, `?`) as a LIKE pattern (escape `\`), with LIKE's own specials escaped.
fn like_pattern(wildcard: &str) -> String {
    wildcard
        .chars()
        .map(|c| match c {
            '*' => "%".to_string(),
            '?' => "_".to_string(),
            '%' | '_' | '\\' => format!("\\{c}"),
            other => other.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_keep_the_dialects_own_specials_literal() {
        assert_eq!(glob_pattern("file://[a]/*.html"), "file://[[]a[]]/*.html");
        assert_eq!(like_pattern(r"file://50%_off\?/*.html"), r"file://50\%\_off\\_/%.html");
    }

    #[test]
    fn placeholders_follow_the_dialect_and_the_parameters() {
        let query = LogQuery {
            organization_id: "org".into(),
            document_id: Some(("a*".into(), IdMatching::Wildcard)),
            source_ids: vec!["s1".into(), "s2".into()],
            committed: CommittedThrough { journal_seq: 9, pending: vec![4], batch: Some((10, 3)) },
            ..Default::default()
        };
        let postgres = super::query(&query, Dialect::Postgres);
        let sqlite = super::query(&query, Dialect::Sqlite);
        assert_eq!((&postgres.params[3], &sqlite.params[3]), (&Param::Text("a%".into()), &Param::Text("a*".into())));
        assert_eq!(postgres.params.len(), 12);
        let marks = postgres.sql.matches('$').count();
        assert_eq!((marks, sqlite.sql.matches('?').count()), (12, 12));
        assert!(postgres.sql.contains("document_id LIKE $4 ESCAPE"), "{}", postgres.sql);
        assert!(postgres.sql.ends_with("LIMIT $11 OFFSET $12"), "{}", postgres.sql);
    }
}
