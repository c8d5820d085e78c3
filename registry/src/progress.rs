//! Progress of blob transfers on a terminal: one line per transfer,
//! redrawn in place (bytes done / total, rate), and a note when a request
//! is retried. Nothing at all when stderr is not a terminal or the caller
//! asked for quiet.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a progress line is redrawn at most.
const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// Whether progress goes to stderr: a terminal, and not quiet.
pub(crate) fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// One transfer's progress line.
pub(crate) struct Progress {
    enabled: bool,
    label: String,
    state: Mutex<State>,
}

struct State {
    total: Option<u64>,
    done: u64,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    /// A progress line labelled `label` (`push sha256:0123456789ab`);
    /// `enabled` false makes every call a no-op.
    pub(crate) fn new(enabled: bool, label: String, total: Option<u64>) -> Self {
        Self {
            enabled,
            label,
            state: Mutex::new(State {
                total,
                done: 0,
                started: Instant::now(),
                drawn: None,
            }),
        }
    }

    /// Sets the total once it is known (a pull learns it from the first
    /// response).
    pub(crate) fn set_total(&self, total: u64) {
        if let Ok(mut state) = self.state.lock() {
            state.total = Some(total);
        }
    }

    /// Sets the bytes done so far and redraws when due.
    pub(crate) fn update(&self, done: u64) {
        if !self.enabled {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.done = done;
        let now = Instant::now();
        if state
            .drawn
            .is_some_and(|drawn| now.duration_since(drawn) < REDRAW_EVERY)
        {
            return;
        }
        state.drawn = Some(now);
        let text = line(
            &self.label,
            state.done,
            state.total,
            now.duration_since(state.started),
        );
        draw(&format!("\r\x1b[2K{text}"));
    }

    /// Draws the final line (when anything was drawn) and ends it.
    pub(crate) fn finish(&self) {
        if !self.enabled {
            return;
        }
        let Ok(state) = self.state.lock() else {
            return;
        };
        if state.drawn.is_some() {
            let text = line(
                &self.label,
                state.done,
                state.total,
                state.started.elapsed(),
            );
            draw(&format!("\r\x1b[2K{text}\n"));
        }
    }

    /// A line saying a request is retried, below the progress line so far
    /// (which then starts again below the note).
    pub(crate) fn note(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.drawn.take().is_some() {
            draw(&format!("\n{text}\n"));
        } else {
            draw(&format!("\r\x1b[2K{text}\n"));
        }
    }
}

fn draw(text: &str) {
    // Progress is a courtesy: a closed or full stderr must not fail the
    // transfer.
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// `push sha256:0123456789ab: 3.2 MiB / 10.0 MiB (32%), 5.1 MiB/s`
pub(crate) fn line(label: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let rate = if elapsed.as_secs_f64() > 0.0 {
        human_size((done as f64 / elapsed.as_secs_f64()) as u64)
    } else {
        human_size(0)
    };
    match total {
        Some(total) if total > 0 => format!(
            "{label}: {} / {} ({}%), {rate}/s",
            human_size(done),
            human_size(total),
            done.saturating_mul(100) / total
        ),
        _ => format!("{label}: {}, {rate}/s", human_size(done)),
    }
}

/// Bytes in binary units, one decimal (`3.2 MiB`).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_done_total_share_and_rate() {
        let text = line(
            "push sha256:0123456789ab",
            5 * 1024 * 1024,
            Some(10 * 1024 * 1024),
            Duration::from_secs(2),
        );
        assert_eq!(
            text,
            "push sha256:0123456789ab: 5.0 MiB / 10.0 MiB (50%), 2.5 MiB/s"
        );
        let unknown = line("pull x", 512, None, Duration::ZERO);
        assert_eq!(unknown, "pull x: 512 B, 0 B/s");
    }

    #[test]
    fn disabled_progress_draws_nothing() {
        // No terminal check involved: a disabled line never touches stderr,
        // so calling it cannot fail or block.
        let progress = Progress::new(false, "pull x".into(), Some(10));
        progress.update(5);
        progress.note("retrying");
        progress.finish();
        assert!(progress.state.lock().unwrap().drawn.is_none());
    }
}
