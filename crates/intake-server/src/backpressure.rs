//! Admission that keeps what is accepted searchable soon. The applier runs at a lower priority than the
//! request path, so bursts of pushes are answered at full speed; but under a sustained stream of pushes it gets
//! too little of the cores, and the journal's backlog — and the time from 202 to searchable — would grow
//! without bound (RESULTS §11: 17–22 s after 30 s of load). So when the oldest record journaled and not yet
//! applied has waited longer than a bound, a new push waits — its cores go to applying — until the applier is
//! back within it, at most [`MAX_WAIT`]; then it is journaled anyway (a 202 still means durable).
//!
//! The bound is a time, not a count or a size: how long indexing takes varies a hundredfold between a 1 KB item
//! and a 40 KB HTML page. Applied, not committed: records handed to the indexes are searchable at the next
//! commit (the commit interval at most), and bounding what is not yet committed would make every commit small.
//! Not while a batch is applied (its items are not in the journal, and what follows it waits for it anyway),
//! and not while commits fail (`/ready` says so; pushes are still accepted, as before).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use intake_store::Seq;
use tokio::sync::Notify;

/// The longest a push waits for the applier.
pub const MAX_WAIT: Duration = Duration::from_millis(500);
/// Journaled records remembered at most (a stalled applier must not make this grow without bound); past it the
/// newest are not remembered, which only makes the backlog look younger.
const MAX_RECORDS: usize = 1 << 20;

pub struct Backpressure {
    /// The bound on the oldest unapplied record's wait; zero turns admission control off.
    max_lag: Duration,
    /// (seq, when it was journaled) of the records not yet applied, oldest first.
    unapplied: Mutex<VecDeque<(Seq, Instant)>>,
    applied_seq: AtomicU64,
    applying_batch: AtomicBool,
    progress: Notify,
}

impl Backpressure {
    pub fn new(max_lag: Duration) -> Backpressure {
        Backpressure {
            max_lag,
            unapplied: Mutex::default(),
            applied_seq: AtomicU64::new(0),
            applying_batch: AtomicBool::new(false),
            progress: Notify::new(),
        }
    }

    /// Waits while the applier is further behind than the bound (at most [`MAX_WAIT`]); `stalled` (commits
    /// failing) turns waiting off.
    pub async fn admit(&self, stalled: bool) {
        if self.max_lag.is_zero() || stalled {
            return;
        }
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        while self.lag() > self.max_lag && !self.applying_batch.load(Ordering::Acquire) {
            let progressed = self.progress.notified();
            if tokio::time::timeout_at(deadline, progressed).await.is_err() {
                return;
            }
        }
    }

    /// A record became durable at `seq`.
    pub fn journaled(&self, seq: Seq) {
        if self.max_lag.is_zero() || seq <= self.applied_seq.load(Ordering::Acquire) {
            return;
        }
        let mut unapplied = self.unapplied.lock().expect("backpressure lock");
        if unapplied.len() < MAX_RECORDS {
            // Group commit makes records durable out of order by a little: keep the queue sorted by seq.
            let at = unapplied.iter().rposition(|(s, _)| *s < seq).map_or(0, |i| i + 1);
            unapplied.insert(at, (seq, Instant::now()));
        }
    }

    /// Everything through `seq` is handed to the indexes; `applying_batch` says whether a batch is being applied.
    pub fn applied(&self, seq: Seq, applying_batch: bool) {
        self.applying_batch.store(applying_batch, Ordering::Release);
        if self.applied_seq.fetch_max(seq, Ordering::AcqRel) < seq {
            let mut unapplied = self.unapplied.lock().expect("backpressure lock");
            while unapplied.front().is_some_and(|(front, _)| *front <= seq) {
                unapplied.pop_front();
            }
        }
        self.progress.notify_waiters();
    }

    /// How long the oldest record journaled and not yet applied has waited.
    pub fn lag(&self) -> Duration {
        let unapplied = self.unapplied.lock().expect("backpressure lock");
        unapplied.front().map_or(Duration::ZERO, |(_, at)| at.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pushes_wait_while_the_applier_is_behind_and_go_once_it_catches_up() {
        let pressure = std::sync::Arc::new(Backpressure::new(Duration::from_millis(30)));
        pressure.journaled(1);
        pressure.journaled(2);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(pressure.lag() >= Duration::from_millis(40));
        let waiting = tokio::spawn({
            let pressure = pressure.clone();
            async move {
                let started = tokio::time::Instant::now();
                pressure.admit(false).await;
                started.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "behind the bound: the push waits");
        pressure.journaled(3);
        pressure.applied(2, false);
        assert!(pressure.lag() < Duration::from_millis(30), "record 3 is the oldest now");
        let waited = waiting.await.unwrap();
        assert!(waited >= Duration::from_millis(50) && waited < MAX_WAIT, "{waited:?}");

        // Behind again, but a batch is being applied, or commits fail: no wait.
        tokio::time::sleep(Duration::from_millis(40)).await;
        pressure.applied(2, true);
        tokio::time::timeout(Duration::from_millis(20), pressure.admit(false)).await.unwrap();
        pressure.applied(2, false);
        tokio::time::timeout(Duration::from_millis(20), pressure.admit(true)).await.unwrap();
        // With nothing applied, the wait ends at MAX_WAIT.
        let started = tokio::time::Instant::now();
        pressure.admit(false).await;
        assert!(started.elapsed() >= MAX_WAIT);
        pressure.applied(3, false);
        assert_eq!(pressure.lag(), Duration::ZERO);
    }

    #[test]
    fn off_remembers_nothing() {
        let pressure = Backpressure::new(Duration::ZERO);
        pressure.journaled(1);
        assert_eq!(pressure.lag(), Duration::ZERO);
    }
}
