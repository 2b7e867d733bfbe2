//! Capture of a guest's stdout and stderr, bounded per stream.
//!
//! The guest's writes always succeed (a task must never fail because it logs too much): past
//! the cap the bytes are counted and dropped, and the kept text ends with a visible mark.
//! `MemoryOutputPipe` of wasmtime-wasi is not usable here because it traps when full.

use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The write permit granted to the guest at every readiness check: any positive size works
/// since writes past the cap are accepted and dropped.
const WRITE_PERMIT: usize = 64 * 1024;

/// One bounded log stream, shared by every handle the guest opens on it.
#[derive(Clone)]
pub(crate) struct LogPipe {
    buffer: Arc<Mutex<LogBuffer>>,
}

struct LogBuffer {
    kept: Vec<u8>,
    limit: usize,
    dropped: u64,
}

impl LogPipe {
    /// An empty stream keeping at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> LogPipe {
        LogPipe {
            buffer: Arc::new(Mutex::new(LogBuffer {
                kept: Vec::new(),
                limit,
                dropped: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LogBuffer> {
        // A panic while holding the lock cannot leave the buffer inconsistent (it only
        // appends), so a poisoned lock is still usable.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn append(&self, bytes: &[u8]) {
        let mut buffer = self.lock();
        let room = buffer.limit.saturating_sub(buffer.kept.len());
        let kept = bytes.len().min(room);
        buffer.kept.extend_from_slice(&bytes[..kept]);
        buffer.dropped += (bytes.len() - kept) as u64;
    }

    /// The captured text (lossy UTF-8) and whether bytes were dropped; the text then ends
    /// with the truncation mark.
    pub(crate) fn text(&self) -> (String, bool) {
        let buffer = self.lock();
        let mut text = String::from_utf8_lossy(&buffer.kept).into_owned();
        let truncated = buffer.dropped > 0;
        if truncated {
            text.push_str(&format!(
                "\n[weir: output truncated: {} bytes kept, {} more dropped]\n",
                buffer.kept.len(),
                buffer.dropped
            ));
        }
        (text, truncated)
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl AsyncWrite for LogPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_under_the_cap() {
        let mut pipe = LogPipe::new(10);
        pipe.write(Bytes::from_static(b"hello")).unwrap();
        assert_eq!(pipe.text(), ("hello".to_string(), false));
    }

    #[test]
    fn drops_past_the_cap_and_marks_it() {
        let mut pipe = LogPipe::new(4);
        pipe.write(Bytes::from_static(b"abcdef")).unwrap();
        pipe.write(Bytes::from_static(b"gh")).unwrap();
        assert_eq!(pipe.check_write().unwrap(), WRITE_PERMIT);
        let (text, truncated) = pipe.text();
        assert!(truncated);
        assert_eq!(
            text,
            "abcd\n[weir: output truncated: 4 bytes kept, 4 more dropped]\n"
        );
    }

    #[test]
    fn invalid_utf8_is_kept_lossily() {
        let mut pipe = LogPipe::new(16);
        pipe.write(Bytes::from_static(b"a\xffb")).unwrap();
        assert_eq!(pipe.text().0, "a\u{fffd}b");
    }
}
