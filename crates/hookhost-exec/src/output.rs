//! Bounded capture of a hook's output: keep the first bytes, read and drop the rest so the
//! hook never blocks on a full pipe.

use std::io::Read;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

/// What a capture thread collected.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

/// Reads `source` to its end on a thread; the result arrives on the returned channel.
pub fn capture(mut source: impl Read + Send + 'static, limit: usize) -> mpsc::Receiver<Captured> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut captured = Captured::default();
        let mut buf = [0u8; 8192];
        loop {
            match source.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = limit.saturating_sub(captured.bytes.len());
                    captured.bytes.extend_from_slice(&buf[..n.min(room)]);
                    captured.truncated |= n > room;
                }
            }
        }
        let _ = tx.send(captured);
    });
    rx
}

/// Waits for a capture until `deadline`. A hook that left a background process holding its
/// output open must not hold hookhost: past the deadline, what is there is lost.
pub fn collect(rx: &mpsc::Receiver<Captured>, deadline: Instant) -> Captured {
    let left = deadline.saturating_duration_since(Instant::now());
    rx.recv_timeout(left).unwrap_or(Captured {
        bytes: Vec::new(),
        truncated: true,
    })
}
