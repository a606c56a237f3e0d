//! The HTTP listener: it accepts connections up to a cap, gives clients a deadline for each request's headers
//! and a minimum pace for its body, and shuts down gracefully.
//!
//! A client that opens connections and sends nothing, or sends a body a byte at a time, holds a file
//! descriptor and memory as long as the server lets it. So:
//!
//! - **Connections** are capped ([`ConnectionLimits::max_connections`]). Past the cap, a few more
//!   ([`ConnectionLimits::headroom`]) are accepted for `/health`, `/ready` and `/metrics` only (every other
//!   request is answered 503 and the connection closed), so an operator can always see what is happening.
//!   Past that, a new connection is closed at once.
//! - **Headers** must arrive whole within [`ConnectionLimits::header_timeout`] of the moment the server waits
//!   for them; this also closes keep-alive connections that stay idle that long.
//! - **Bodies** must keep moving: a body that sends nothing for [`ConnectionLimits::body_idle_timeout`], or
//!   whose pace stays under [`ConnectionLimits::body_min_rate`] bytes per second once past
//!   [`ConnectionLimits::body_grace`], is cut with `408 REQUEST_TIMEOUT`. Only the time the server spends
//!   waiting for the client counts, so a slow but live 256 MiB upload completes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::metrics::Metrics;

/// What the listener allows a client; see the module documentation.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub headroom: usize,
    pub header_timeout: Duration,
    pub body_idle_timeout: Duration,
    pub body_min_rate: u64,
    pub body_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 16_384,
            headroom: 64,
            header_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(30),
            body_min_rate: 1024,
            body_grace: Duration::from_secs(10),
        }
    }
}

/// File descriptors kept for the data directory (journal, SQLite, index segments) whatever the connections.
const RESERVED_DESCRIPTORS: u64 = 2048;

impl ConnectionLimits {
    /// The cap lowered, if need be, to what the process's file descriptor limit allows (raised to its hard
    /// limit first), so that accepting connections never starves the storage of descriptors.
    pub fn fitted_to_descriptors(mut self) -> ConnectionLimits {
        let descriptors = raise_descriptor_limit();
        let room = descriptors.saturating_sub(RESERVED_DESCRIPTORS + self.headroom as u64).max(16) as usize;
        if self.max_connections > room {
            tracing::warn!(
                wanted = self.max_connections,
                allowed = room,
                descriptors,
                "the connection cap is lowered to fit the file descriptor limit (raise it with ulimit -n)"
            );
            self.max_connections = room;
        }
        self
    }
}

/// Raises the soft limit on open files to the hard limit; returns the soft limit now in force.
fn raise_descriptor_limit() -> u64 {
    #[cfg(unix)]
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
        limit.rlim_cur
    }
    #[cfg(not(unix))]
    1024
}

/// Connections the kernel queues before the server accepts them (it caps this at `net.core.somaxconn`).
/// A burst of connections must not overflow the queue: an overflowing client waits a second per retry.
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `address` with a backlog sized for bursts of connections.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Marks a request that came on a connection past the cap (of `max_connections`): only the operations
/// endpoints answer it.
#[derive(Debug, Clone, Copy)]
pub struct OverCapacity {
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let spare = Arc::new(Semaphore::new(limits.headroom));
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, or a connection reset before it was accepted: wait a moment, go on.
                    tracing::warn!(%error, "a connection could not be accepted");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (permit, over_capacity) = match open.clone().try_acquire_owned() {
            Ok(permit) => (permit, false),
            Err(_) => match spare.clone().try_acquire_owned() {
                Ok(permit) => (permit, true),
                Err(_) => {
                    metrics.connection_refused();
                    drop(stream);
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection { app: app.clone(), remote, over_capacity, limits: limits.clone() };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(HYPER_MAX_HEAD_BYTES)
            .max_headers(HYPER_MAX_HEADERS)
            .keep_alive(!over_capacity);
        let serving = graceful.watch(builder.serve_connection(TokioIo::new(stream), connection));
        let metrics = metrics.clone();
        tokio::spawn(async move {
            metrics.connection_opened(over_capacity);
            let _ = serving.await;
            metrics.connection_closed();
            drop::<OwnedSemaphorePermit>(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still running after {} s are cut off", SHUTDOWN_GRACE.as_secs());
    }
}

/// How long requests in flight get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Hyper's own limits sit above Intake's ([`crate::http::MAX_HEAD_BYTES`], [`crate::http::MAX_HEADERS`]), so
/// that a request over Intake's reaches the envelope and gets the JSON error; hyper answers past these
/// with a bare status.
const HYPER_MAX_HEAD_BYTES: usize = 256 * 1024;
const HYPER_MAX_HEADERS: usize = 400;

/// One accepted connection: each request gets the client's address, its paced body, and the capacity mark.
#[derive(Clone)]
struct Connection {
    app: Router,
    remote: SocketAddr,
    over_capacity: bool,
    limits: Arc<ConnectionLimits>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Connection {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let mut request = request.map(|body| Body::new(PacedBody::new(body, &self.limits)));
        request.extensions_mut().insert(ConnectInfo(self.remote));
        if self.over_capacity {
            request.extensions_mut().insert(OverCapacity { max_connections: self.limits.max_connections });
        }
        Box::pin(self.app.clone().oneshot(request))
    }
}

/// The error a body yields when its client stalls or crawls; handlers answer it with 408.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyTooSlow(String);

/// A request body that must keep pace: see the module documentation.
struct PacedBody {
    inner: Incoming,
    idle_timeout: Duration,
    min_rate: u64,
    grace: Duration,
    received: u64,
    /// Time spent waiting for the client before the current wait.
    waited: Duration,
    /// When the current wait for the client began.
    waiting_since: Option<Instant>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl PacedBody {
    fn new(inner: Incoming, limits: &ConnectionLimits) -> PacedBody {
        PacedBody {
            inner,
            idle_timeout: limits.body_idle_timeout,
            min_rate: limits.body_min_rate.max(1),
            grace: limits.body_grace,
            received: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            deadline: None,
        }
    }

    /// When, if nothing more arrives, the current wait breaks a rule: the idle timeout, or the pace (the
    /// total wait reaching the time `received` bytes would take at the minimum rate, past the grace period).
    fn deadline(&self, since: Instant) -> Instant {
        let idle = since + self.idle_timeout;
        let paced_wait = self.grace.max(Duration::from_secs_f64(self.received as f64 / self.min_rate as f64));
        let pace = since + paced_wait.saturating_sub(self.waited);
        idle.min(pace)
    }

    /// Why the body is cut, once a deadline has passed.
    fn verdict(&self, since: Instant) -> BodyTooSlow {
        let waiting = since.elapsed();
        if waiting >= self.idle_timeout {
            BodyTooSlow(format!(
                "The request body stalled: no byte arrived for {} s after {} bytes; the server waits at most {} s.",
                waiting.as_secs(),
                self.received,
                self.idle_timeout.as_secs()
            ))
        } else {
            let total = self.waited + waiting;
            BodyTooSlow(format!(
                "The request body is too slow: {} bytes in {} s, under the minimum of {} bytes per second.",
                self.received,
                total.as_secs(),
                self.min_rate
            ))
        }
    }
}

impl http_body::Body for PacedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                this.deadline = None;
                if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                    this.received += data.map_or(0, |d| d.len() as u64);
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let since = *this.waiting_since.get_or_insert_with(Instant::now);
                let deadline = this.deadline(since);
                let sleep = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
                if sleep.deadline() != deadline.into() {
                    sleep.as_mut().reset(deadline.into());
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(this.verdict(since))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
