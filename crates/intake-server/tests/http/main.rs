//! The HTTP API over real loopback connections, against a server started in the test process on real files:
//! one test binary for the crate, one module per area, shared helpers in `common`.

mod common;

mod access_matrix;
mod bootstrap;
mod console;
mod containers;
mod conversion;
mod corpora;
mod errors;
mod facets;
mod hostile;
mod items;
mod openapi;
mod platform;
mod query_syntax;
mod quotas;
mod scale_out;
mod search;
mod search_endpoints;
mod security;
mod security_property;
mod streams;
