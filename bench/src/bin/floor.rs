//! The floor server of the request-path benchmark (issue 15): the same HTTP stack as Intake doing the least a
//! Push API server must — axum on tokio, read the whole body, parse it as JSON into a `serde_json::Value`, drop
//! it, answer 202 with a body of the size Intake answers — with no validation of the Push model, no journal, no
//! fsync and no index. Intake's PUT throughput is measured against it in the same run (`STEPS=floor`).
//!
//!   intake-floor --listen 127.0.0.1:8080

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

/// Any request: its body parsed as JSON (a 400 if it is not), then a 202 like Intake's.
async fn accept(body: Bytes) -> impl IntoResponse {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(value) => {
            drop(value);
            let answer = r#"{"orderingId":1764331200000,"requestId":"00000000-0000-4000-8000-000000000000"}"#;
            (StatusCode::ACCEPTED, [("content-type", "application/json")], answer)
        }
        Err(_) => (StatusCode::BAD_REQUEST, [("content-type", "application/json")], r#"{"errorCode":"INVALID_JSON"}"#),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Intake reads bodies up to 6 MiB on this route; so does the floor.
    let app = Router::new()
        .route("/ready", axum::routing::get(|| async { "ready" }))
        .fallback(accept)
        .layer(axum::extract::DefaultBodyLimit::max(6 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
