//! `GET /errors`: the error catalog as JSON — every code's status, meaning, cause and resolution, with the
//! commands that reproduce it — and what each result of the item log means. The console's Errors page and its
//! "explain a response" box read it; so can any tool.
//!
//! The commands are those of `docs/reproduce-errors.md`, compiled in: a test runs every command of that page
//! against a real server and checks the answers it shows, so what is offered here is known to work.

use std::sync::OnceLock;

use axum::Json;
use intake_model::error::CATALOG;
use intake_model::logs::LogResult;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

const PAGE: &str = include_str!("../../../docs/reproduce-errors.md");

/// `/errors`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(error_catalog))
}

/// Every error code Intake answers, how to reproduce it, and what each item log result means.
#[utoipa::path(get, path = "/errors", tag = "Operations", security(()), responses((status = 200, description = "The catalog", body = ErrorCatalog)))]
pub async fn error_catalog() -> Json<&'static ErrorCatalog> {
    static CATALOG_ANSWER: OnceLock<ErrorCatalog> = OnceLock::new();
    Json(CATALOG_ANSWER.get_or_init(build))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCatalog {
    codes: Vec<CodeAnswer>,
    /// The commands every reproduction starts from (start a server, set the variables).
    setup: Vec<String>,
    log_results: Vec<LogResultAnswer>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CodeAnswer {
    status: u16,
    error_code: &'static str,
    meaning: &'static str,
    cause: &'static str,
    resolution: &'static str,
    reproduce: Option<Reproduction>,
}

/// A section of `docs/reproduce-errors.md`.
#[derive(Serialize, ToSchema, Clone)]
pub struct Reproduction {
    /// Its title.
    section: String,
    /// Its prose, without the commands.
    text: String,
    /// Its shell commands, in order.
    commands: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LogResultAnswer {
    result: &'static str,
    meaning: &'static str,
    resolution: &'static str,
}

fn build() -> ErrorCatalog {
    let sections = sections(PAGE);
    let setup = sections.iter().find(|s| s.section == "Setup").map(|s| s.commands.clone()).unwrap_or_default();
    let codes = CATALOG
        .iter()
        .map(|entry| CodeAnswer {
            status: entry.status,
            error_code: entry.name,
            meaning: entry.meaning,
            cause: entry.cause,
            resolution: entry.resolution,
            reproduce: reproduction(&sections, entry.name, entry.status).cloned(),
        })
        .collect();
    let log_results = LogResult::ALL
        .iter()
        .map(|result| {
            let (meaning, resolution) = result.explanation();
            LogResultAnswer { result: result.as_str(), meaning, resolution }
        })
        .collect();
    ErrorCatalog { codes, setup, log_results }
}

/// The section that reproduces a code: the one whose title names it, else for a 5xx the `5XX` section.
fn reproduction<'a>(sections: &'a [Reproduction], code: &str, status: u16) -> Option<&'a Reproduction> {
    let names = |s: &Reproduction| s.section.split([' ', ',']).any(|word| word == code);
    sections.iter().find(|s| names(s)).or_else(|| sections.iter().find(|s| status >= 500 && s.section == "5XX"))
}

/// The page's `##` sections: prose and `sh` blocks (the answers shown are left out).
fn sections(page: &str) -> Vec<Reproduction> {
    let mut sections: Vec<Reproduction> = Vec::new();
    let mut block: Option<(bool, String)> = None;
    for line in page.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match block.take() {
                None => block = Some((info.trim().starts_with("sh"), String::new())),
                Some((true, text)) => {
                    if let Some(section) = sections.last_mut() {
                        section.commands.push(text.trim_end().to_string());
                    }
                }
                Some((false, _)) => {}
            }
        } else if let Some((_, text)) = &mut block {
            text.push_str(line);
            text.push('\n');
        } else if let Some(title) = line.strip_prefix("## ") {
            sections.push(Reproduction {
                section: title.trim().to_string(),
                text: String::new(),
                commands: Vec::new(),
            });
        } else if let Some(section) = sections.last_mut() {
            section.text.push_str(line);
            section.text.push('\n');
        }
    }
    for section in &mut sections {
        section.text = section.text.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_commands_that_reproduce_it() {
        let catalog = build();
        let missing: Vec<&str> = catalog
            .codes
            .iter()
            .filter(|code| code.reproduce.as_ref().is_none_or(|r| r.commands.is_empty()))
            .map(|code| code.error_code)
            .collect();
        assert!(missing.is_empty(), "docs/reproduce-errors.md has no section for {missing:?}");
        assert!(catalog.setup.iter().any(|command| command.contains("intake serve")));
    }
}
