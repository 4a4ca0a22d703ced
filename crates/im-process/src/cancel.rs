//! `CancelToken`: the one way to ask running work to stop. Made once (in `main`), cloned
//! into everything that runs: the process runner polls it, a thread can block on it
//! ([`CancelToken::wait_timeout`]) and async code can await it ([`CancelToken::cancelled`],
//! with any executor).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// A shared flag that asks running work to stop. Cloning is cheap and shares the flag;
/// once cancelled, a token stays cancelled.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// The fast path of [`CancelToken::is_cancelled`]; set before `waiting` is woken.
    cancelled: AtomicBool,
    waiting: Mutex<Waiting>,
    changed: Condvar,
}

/// The futures waiting for cancellation, by an id each holds while it lives.
#[derive(Debug, Default)]
struct Waiting {
    cancelled: bool,
    next_id: u64,
    wakers: BTreeMap<u64, Waker>,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything holding a clone to stop, and wakes whoever waits.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let wakers = {
            let mut waiting = self.lock();
            waiting.cancelled = true;
            std::mem::take(&mut waiting.wakers)
        };
        self.0.changed.notify_all();
        for waker in wakers.into_values() {
            waker.wake();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Blocks until the token is cancelled or `timeout` passes; returns whether it was
    /// cancelled.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let waiting = self.lock();
        let (waiting, _) = self
            .0
            .changed
            .wait_timeout_while(waiting, timeout, |w| !w.cancelled)
            .unwrap_or_else(PoisonError::into_inner);
        waiting.cancelled
    }

    /// A future that completes once the token is cancelled (at once if it already is).
    pub fn cancelled(&self) -> Cancelled {
        Cancelled {
            token: self.clone(),
            id: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.0
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The future of [`CancelToken::cancelled`]. Dropping it unregisters its waker.
#[derive(Debug)]
pub struct Cancelled {
    token: CancelToken,
    id: Option<u64>,
}

impl Future for Cancelled {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Cancelled { token, id } = &mut *self;
        if token.is_cancelled() {
            return Poll::Ready(());
        }
        let mut waiting = token.lock();
        if waiting.cancelled {
            return Poll::Ready(());
        }
        let id = *id.get_or_insert_with(|| {
            waiting.next_id += 1;
            waiting.next_id
        });
        waiting.wakers.insert(id, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Cancelled {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.token.lock().wakers.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;
    use std::time::Instant;

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn clones_share_the_flag() {
        let token = CancelToken::new();
        let clone = token.clone();
        assert!(!clone.is_cancelled());
        token.cancel();
        assert!(clone.is_cancelled());
    }

    #[test]
    fn a_waiting_thread_wakes_when_another_cancels() {
        let token = CancelToken::new();
        assert!(!token.wait_timeout(Duration::from_millis(10)));
        let canceller = token.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            canceller.cancel();
        });
        assert!(token.wait_timeout(Duration::from_secs(10)));
        assert!(started.elapsed() < Duration::from_secs(5));
        thread.join().unwrap();
    }

    #[test]
    fn the_future_is_woken_once_and_dropped_futures_leave_no_waker() {
        let token = CancelToken::new();
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        // A future polled and dropped (the other branch of a select won) unregisters.
        for _ in 0..3 {
            let mut dropped = std::pin::pin!(token.cancelled());
            assert_eq!(dropped.as_mut().poll(&mut cx), Poll::Pending);
        }
        assert!(token.lock().wakers.is_empty());
        let mut pending = std::pin::pin!(token.cancelled());
        assert_eq!(pending.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(pending.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(token.lock().wakers.len(), 1, "a re-poll replaces its waker");
        token.cancel();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(pending.as_mut().poll(&mut cx), Poll::Ready(()));
        let mut late = std::pin::pin!(token.cancelled());
        assert_eq!(late.as_mut().poll(&mut cx), Poll::Ready(()));
    }
}
