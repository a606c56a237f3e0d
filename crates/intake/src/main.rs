//! The `intake` command: `serve` runs the server, `explain` prints an error code's catalog row, `search`
//! queries a running server, `admin` manages its organizations, sources, keys and fields, `push` sends
//! documents to a Push API source.

mod admin;
mod config;
mod connection;
mod push;
mod search;

/// mimalloc: the server allocates and frees many small buffers per request (JSON values, strings, tantivy's
/// documents); glibc's malloc was 13 % of a search load's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use intake_model::error::{CATALOG, ErrorCode, catalog_markdown};
use intake_server::RunningServer;
use intake_store::SystemClock;

#[derive(Parser)]
#[command(name = "intake", version, about = "A self-hosted service that speaks the Coveo Push API v1")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded storage in --data-dir; no configuration needed).
    Serve(config::ServeArgs),
    /// Print what an error code means, why it happens and what to do.
    Explain {
        /// An error code such as INVALID_JSON (any case).
        code: Option<String>,
        /// Print the whole catalog as Markdown (docs/errors.md).
        #[arg(long)]
        markdown: bool,
    },
    /// Search a running Intake (its address and key come from <data-dir>/bootstrap.json).
    Search(search::SearchArgs),
    /// Manage organizations, sources, API keys and fields of a running Intake (the Platform API).
    Admin(admin::AdminArgs),
    /// Push folders of documents, JSON Lines of items or batch files to a source (Intake's or Coveo's).
    Push(push::PushArgs),
}

fn main() -> anyhow::Result<()> {
    no_transparent_huge_pages();
    freed_memory_back_soon();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Explain { code, markdown } => explain(code.as_deref(), markdown),
        Command::Search(args) => tokio::runtime::Runtime::new()?.block_on(search::run(args)),
        Command::Admin(args) => tokio::runtime::Runtime::new()?.block_on(admin::run(args)),
        Command::Push(args) => {
            // Retries and other warnings of the client, one line each on standard error.
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("INTAKE_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .without_time()
                .with_target(false)
                .init();
            tokio::runtime::Runtime::new()?.block_on(push::run(args))
        }
    }
}

/// Transparent huge pages off for this process (what mimalloc's `allow_thp=0` does): with them, the first touch of
/// any byte of a fresh 2 MiB region makes the kernel zero all of it, and mimalloc touches fresh regions sparsely
/// (the free lists of its pages). Under linux-doc as one batch that zeroing was 11-20 % of the server's CPU; without
/// it the batch took a fifth less CPU and memory (bench/RESULTS.md §33), and the request path is unchanged.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes integers and changes only how this process's pages are faulted in.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// mimalloc's `purge_delay`: its index in `mi_option_e` (mimalloc.h, the same in v2 and v3), which the Rust bindings
/// name no constant for.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// How long freed memory stays with the allocator before it goes back to the system: mimalloc v2's default.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Freed memory goes back to the system after 10 ms instead of mimalloc v3's second. A batch's windows, tantivy's
/// indexing buffers and the prepare threads' documents come and go on several threads faster than that, and what
/// one thread freed was not yet reusable by another: the peak of a 262 MB batch was 220-238 MB above idle instead
/// of 122-131 MB, a catalog's full load up to 258 MB. The price is a few per cent of a large batch's time, for
/// faulting in pages again (bench/RESULTS.md §34); small PUTs are unchanged. `MIMALLOC_PURGE_DELAY` in the
/// environment, which mimalloc reads itself, still decides when it is set.
fn freed_memory_back_soon() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set takes an option index and a value, and range-checks the index.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

fn serve(args: config::ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INTAKE_LOG").unwrap_or_else(|_| "info,tantivy=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only where a terminal shows them, not in files and journald.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = args.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let server = intake_server::start(config.clone(), Arc::new(SystemClock)).await?;
        announce(&server, &config.data_dir);
        shutdown_signal().await;
        tracing::info!("shutting down");
        server.stop().await;
        Ok(())
    })
}

/// What a newcomer needs to push an item: printed at every start, with the key only when it was just made.
fn announce(server: &RunningServer, data_dir: &std::path::Path) {
    let b = &server.bootstrap;
    let bootstrap = data_dir.join("bootstrap.json");
    println!("Intake is running.");
    println!("  Base URL:       {}", b.base_url);
    println!("  Organization:   {}", b.organization_id);
    println!("  Source:         {}", b.source_id);
    match &server.generated_key {
        Some(key) => println!("  Master key:     {key}   (shown once; also in {})", bootstrap.display()),
        None => println!("  Master key:     in {}", bootstrap.display()),
    }
    println!(
        "  Push an item:   PUT {}/push/v1/organizations/{}/sources/{}/documents?documentId=…",
        b.base_url, b.organization_id, b.source_id
    );
    println!("  API reference:  {}/docs", b.base_url);
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn explain(code: Option<&str>, markdown: bool) -> anyhow::Result<()> {
    if markdown {
        print!("{}", catalog_markdown());
        return Ok(());
    }
    let Some(code) = code else {
        for entry in CATALOG {
            println!("{:<3} {:<45} {}", entry.status, entry.name, entry.meaning);
        }
        return Ok(());
    };
    let Some(code) = ErrorCode::parse(code) else {
        anyhow::bail!("'{code}' is not an Intake error code; `intake explain` lists them all");
    };
    let entry = code.entry();
    println!("{} (HTTP {})", entry.name, entry.status);
    println!();
    println!("Meaning:    {}", entry.meaning);
    println!("Cause:      {}", entry.cause);
    println!("Resolution: {}", entry.resolution);
    Ok(())
}

/// The data folder when none is given.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("./intake-data")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option set is mimalloc's purge delay: index 15 holds v3's default for it (a second) until it is set.
    #[test]
    fn freed_memory_goes_back_after_ten_milliseconds() {
        // SAFETY: mi_option_get reads an option by its index.
        let purge_delay = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert!(std::env::var_os("MIMALLOC_PURGE_DELAY").is_none(), "run without MIMALLOC_PURGE_DELAY set");
        assert_eq!(purge_delay(), 1000, "mimalloc v3's purge_delay, in milliseconds");
        freed_memory_back_soon();
        assert_eq!(purge_delay(), 10);
    }
}
