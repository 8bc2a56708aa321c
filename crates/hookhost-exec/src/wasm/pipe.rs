//! A bounded in-memory output pipe for the guest's stdout and stderr.
//!
//! wasmtime-wasi's `MemoryOutputPipe` traps the guest once its capacity is reached, which would
//! turn a chatty but otherwise healthy hook into a failure. This pipe keeps the first `capacity`
//! bytes, silently discards the rest (recording that it did), and always reports success to the
//! guest.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much the guest may write in one go; the pipe accepts any amount, this only sizes the
/// guest's write chunks.
const WRITE_BUDGET: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Buffer {
    data: Vec<u8>,
    capacity: usize,
    truncated: bool,
}

/// Cloneable handle: the WASI context holds one clone, `run` keeps another to read the result.
#[derive(Debug, Clone)]
pub(crate) struct BoundedPipe {
    buffer: Arc<Mutex<Buffer>>,
}

impl BoundedPipe {
    pub(crate) fn new(capacity: usize) -> Self {
        BoundedPipe {
            buffer: Arc::new(Mutex::new(Buffer {
                data: Vec::new(),
                capacity,
                truncated: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned lock only means another writer panicked; the bytes are still usable.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps what fits and drops the rest.
    fn push(&self, bytes: &[u8]) {
        let mut buf = self.lock();
        let room = buf.capacity.saturating_sub(buf.data.len());
        let kept = bytes.len().min(room);
        buf.data.extend_from_slice(&bytes[..kept]);
        if kept < bytes.len() {
            buf.truncated = true;
        }
    }

    /// The captured bytes and whether anything was discarded.
    pub(crate) fn take(&self) -> (Vec<u8>, bool) {
        let mut buf = self.lock();
        (std::mem::take(&mut buf.data), buf.truncated)
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for BoundedPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BoundedPipe {
    async fn ready(&mut self) {}
}

impl AsyncWrite for BoundedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for BoundedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for BoundedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_head_and_flags_truncation() {
        let pipe = BoundedPipe::new(5);
        pipe.push(b"abc");
        assert_eq!(pipe.take(), (b"abc".to_vec(), false));
        let pipe = BoundedPipe::new(5);
        pipe.push(b"abc");
        pipe.push(b"defgh");
        pipe.push(b"ij");
        assert_eq!(pipe.take(), (b"abcde".to_vec(), true));
    }
}
