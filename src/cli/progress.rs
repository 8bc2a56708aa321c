//! Progress of long work (pulls, precompiles) on a terminal: drawn on stderr once the work
//! has taken a second, never when stderr is not a terminal (logs and pipes stay clean).

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long work runs before progress shows, as users of `docker pull` expect.
const DELAY: Duration = Duration::from_secs(1);
/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(200);
/// Shortens [`DELAY`] (milliseconds), so that tests see progress without slow work.
const DELAY_ENV: &str = "HOOKHOST_PROGRESS_DELAY_MS";

#[derive(Default)]
struct Status {
    label: String,
    done: u64,
    total: u64,
}

/// A progress line for one piece of work; cleared when dropped.
pub struct Progress {
    status: Arc<Mutex<Status>>,
    stop: Option<mpsc::Sender<()>>,
    drawer: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts reporting `label` (drawn only on a terminal, after the delay).
    pub fn start(label: impl Into<String>) -> Progress {
        let status = Arc::new(Mutex::new(Status {
            label: label.into(),
            ..Status::default()
        }));
        if !std::io::stderr().is_terminal() {
            return Progress {
                status,
                stop: None,
                drawer: None,
            };
        }
        let (stop, stopped) = mpsc::channel();
        let shared = Arc::clone(&status);
        let started = Instant::now();
        let drawer = std::thread::spawn(move || draw_until_stopped(&shared, &stopped, started));
        Progress {
            status,
            stop: Some(stop),
            drawer: Some(drawer),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Status)) {
        if let Ok(mut status) = self.status.lock() {
            change(&mut status);
        }
    }
}

impl hookhost_oci::Progress for Progress {
    fn downloaded(&self, done: u64, total: u64) {
        self.update(|s| {
            s.done = done;
            s.total = total;
        });
    }

    fn precompiling(&self) {
        self.update(|s| {
            s.label = "validating and precompiling the module".into();
            s.total = 0;
            s.done = 0;
        });
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(drawer) = self.drawer.take() {
            let _ = drawer.join();
        }
    }
}

fn delay() -> Duration {
    std::env::var(DELAY_ENV)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(DELAY, Duration::from_millis)
}

/// Draws from `delay()` after `started` until the work is done. Work that ended in the same
/// instant the delay ran out (or, with no delay, before this thread ran) is drawn once.
fn draw_until_stopped(status: &Mutex<Status>, stopped: &mpsc::Receiver<()>, started: Instant) {
    let delay = delay();
    let waited = stopped.recv_timeout(delay.saturating_sub(started.elapsed()));
    if waited != Err(RecvTimeoutError::Timeout) && started.elapsed() < delay {
        return;
    }
    let mut stderr = std::io::stderr();
    loop {
        if let Ok(status) = status.lock() {
            let _ = write!(stderr, "\r\x1b[2K{}", line(&status));
            let _ = stderr.flush();
        }
        if stopped.recv_timeout(TICK) != Err(RecvTimeoutError::Timeout) {
            break;
        }
    }
    let _ = write!(stderr, "\r\x1b[2K");
    let _ = stderr.flush();
}

fn line(status: &Status) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    match (status.done, status.total) {
        (0, _) => format!("{}…", status.label),
        (done, 0) => format!("{}: {:.1} MiB", status.label, done as f64 / MIB),
        (done, total) => format!(
            "{}: {:.1}/{:.1} MiB ({}%)",
            status.label,
            done as f64 / MIB,
            total as f64 / MIB,
            done * 100 / total.max(1)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_what_is_known() {
        let mut status = Status {
            label: "pulling x".into(),
            ..Status::default()
        };
        assert_eq!(line(&status), "pulling x…");
        status.done = 1 << 20;
        assert_eq!(line(&status), "pulling x: 1.0 MiB");
        status.total = 4 << 20;
        assert_eq!(line(&status), "pulling x: 1.0/4.0 MiB (25%)");
    }
}
