//! Client connections under the `http:` limits. At most `max_connections` are served at
//! once: the accept loop waits for a free slot, and clients beyond it wait in the listen
//! backlog instead of being refused, so Alertmanager's next connection is served as soon
//! as a slow client is cut off. A request must arrive whole, headers and body, within
//! `read_timeout` of its first byte, and a keep-alive connection may wait `idle_timeout`
//! for its next request; a client that trickles bytes is closed at its deadline however
//! often it sends one. While a request is being handled (a passthrough send can take
//! longer than either), no deadline runs.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::config::HttpLimits;

/// The connections open now, and a signal when one closes.
#[derive(Debug, Default)]
pub(super) struct Slots {
    open: AtomicUsize,
    freed: Notify,
}

impl Slots {
    /// Whether `max` connections or more are open.
    pub(super) fn full(&self, max: usize) -> bool {
        self.open.load(Ordering::Acquire) >= max
    }

    /// Waits until fewer than `max` connections are open, then counts one more.
    pub(super) async fn take(self: &Arc<Self>, max: usize) -> Slot {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let open = self.open.load(Ordering::Acquire);
            if open < max
                && self
                    .open
                    .compare_exchange(open, open + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                return Slot(self.clone());
            }
            if open >= max {
                freed.await;
            }
        }
    }
}

/// One open connection's place among the `max_connections`; freed when dropped.
#[derive(Debug)]
pub(super) struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

/// When a request's body must have arrived: a request extension the serve loop sets for
/// the handler.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyDeadline(pub(super) Instant);

/// Where a connection is between requests, and until when it may stay there.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's first byte.
    Idle { until: Instant },
    /// A request has begun to arrive.
    Reading { until: Instant },
    /// The request is being handled; its body is read by the handler.
    Handling,
}

/// A connection's deadlines, shared by its stream and its request handler.
#[derive(Debug)]
pub(super) struct Deadlines {
    limits: HttpLimits,
    phase: Mutex<Phase>,
}

impl Deadlines {
    /// A new connection, which must begin its first request within `read_timeout`.
    pub(super) fn new(limits: HttpLimits) -> Arc<Self> {
        let until = Instant::now() + limits.read_timeout;
        Arc::new(Deadlines {
            limits,
            phase: Mutex::new(Phase::Idle { until }),
        })
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: a request begins if none was arriving.
    fn arrived(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Reading {
                until: Instant::now() + self.limits.read_timeout,
            };
        }
    }

    /// The handler took a request whose head has arrived: its body must arrive by the
    /// returned deadline, which the handler enforces.
    pub(super) fn handling(&self) -> Instant {
        let mut phase = self.phase();
        let until = match *phase {
            Phase::Reading { until } => until,
            // Headers and body came in one read before the stream saw them begin.
            Phase::Idle { .. } | Phase::Handling => Instant::now() + self.limits.read_timeout,
        };
        *phase = Phase::Handling;
        until
    }

    /// The handler answered: the connection waits for its next request.
    pub(super) fn answered(&self) {
        *self.phase() = Phase::Idle {
            until: Instant::now() + self.limits.idle_timeout,
        };
    }

    fn deadline(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Idle { until } | Phase::Reading { until } => Some(until),
            Phase::Handling => None,
        }
    }
}

/// A client's stream that fails its reads once the connection's deadline has passed, which
/// makes hyper close it.
pub(super) struct Deadlined<S> {
    inner: S,
    deadlines: Arc<Deadlines>,
    sleep: Pin<Box<Sleep>>,
}

impl<S> Deadlined<S> {
    pub(super) fn new(inner: S, deadlines: Arc<Deadlines>) -> Self {
        let first = deadlines.deadline().unwrap_or_else(Instant::now);
        Deadlined {
            inner,
            deadlines,
            sleep: Box::pin(tokio::time::sleep_until(first)),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlined<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.deadlines.arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                let Some(deadline) = self.deadlines.deadline() else {
                    return Poll::Pending;
                };
                if self.sleep.deadline() != deadline {
                    self.sleep.as_mut().reset(deadline);
                }
                match self.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client did not send a whole request in time",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlined<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
