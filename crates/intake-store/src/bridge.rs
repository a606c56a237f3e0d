//! Calling asynchronous clients (PostgreSQL, S3) from the synchronous storage traits.
//!
//! The traits are synchronous (the embedded backend is SQLite and files), while the clients of the shared
//! backends are asynchronous. A [`Bridge`] owns a small runtime that drives the clients' connections; a store
//! method enters that runtime's context and waits for its future on the calling thread ([`Bridge::run`]), which
//! is what a SQLite call costs the caller too. No connection is ever driven by the caller's runtime, so a call
//! works from a server handler, a blocking thread or a plain test alike.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A runtime of its own for a backend's connections.
pub(crate) struct Bridge {
    /// `Some` until dropped: a runtime may not be dropped (blocking) inside another runtime, so it is shut
    /// down in the background instead.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Bridge {
    /// A runtime of two threads named `name`.
    pub fn new(name: &str) -> std::io::Result<Bridge> {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(name).enable_all().build()?;
        Ok(Bridge { runtime: Some(runtime) })
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives as long as the bridge")
    }

    /// Runs `future` in this runtime's context, waiting for it on the calling thread.
    pub fn run<F: Future>(&self, future: F) -> F::Output {
        let _context = self.runtime().enter();
        block_on(future)
    }

    /// Starts `future` on this runtime (a task that outlives the call, such as a listener).
    pub fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        self.runtime().spawn(future);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Polls `future` to completion on this thread, parking between wake-ups. The connections it waits on are
/// driven by the bridge's runtime, so nothing here needs the caller to be (or not to be) in a runtime.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}
