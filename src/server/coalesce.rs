//! Fewer, larger writes on client connections.
//!
//! Many responses finish at once (every proposal of one applied batch), each in its own task,
//! and each wakes the connection, which would write whatever it has at that moment: one
//! `writev` (and one TLS record) per response. Before a write, the connection first yields to
//! the scheduler once, so that the other responses that are ready get queued behind it; the
//! next attempt writes them together. A connection with nothing else to wait for loses one
//! scheduler round (microseconds), not a timer tick.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An IO stream whose writes yield once before they go out.
pub struct Coalesce<S> {
    inner: S,
    yielded: bool,
}

impl<S> Coalesce<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            yielded: false,
        }
    }

    /// True (and armed for the next write) when this attempt should yield first.
    fn should_yield(&mut self, cx: &mut Context<'_>) -> bool {
        if self.yielded {
            self.yielded = false;
            return false;
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.should_yield(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.should_yield(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_write_yields_once_then_goes_through_whole() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut w = Coalesce::new(client);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut w).poll_write(&mut cx, b"ab").is_pending());
        assert!(matches!(
            Pin::new(&mut w).poll_write(&mut cx, b"ab"),
            Poll::Ready(Ok(2))
        ));
        w.write_all(b"cd").await.expect("write");
        let mut got = [0u8; 4];
        tokio::io::AsyncReadExt::read_exact(&mut server, &mut got)
            .await
            .expect("read");
        assert_eq!(&got, b"abcd");
    }
}
