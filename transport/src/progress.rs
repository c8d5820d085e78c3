//! Progress lines on stderr, for the steps that take more than a moment.

use std::time::Instant;

/// Where progress goes: stderr, or nowhere (`--quiet`, tests).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// The program named at the start of each line; `None` when quiet.
    program: Option<&'static str>,
}

impl Progress {
    /// Progress on stderr, each line starting with `program:`.
    pub fn stderr(program: &'static str) -> Self {
        Self {
            program: Some(program),
        }
    }

    /// No progress.
    pub fn quiet() -> Self {
        Self { program: None }
    }

    /// Whether anything is printed.
    pub fn enabled(&self) -> bool {
        self.program.is_some()
    }

    /// Prints one line.
    pub fn note(&self, message: impl AsRef<str>) {
        if let Some(program) = self.program {
            eprintln!("{program}: {}", message.as_ref());
        }
    }

    /// Announces a step; the returned guard reports its duration.
    pub fn step(&self, message: impl AsRef<str>) -> Step {
        self.note(format!("{} ...", message.as_ref()));
        Step {
            progress: *self,
            start: Instant::now(),
        }
    }
}

/// A step under way.
#[derive(Debug)]
pub struct Step {
    progress: Progress,
    start: Instant,
}

impl Step {
    /// Reports the step done, with what it produced.
    pub fn done(self, result: impl AsRef<str>) {
        self.progress.note(format!(
            "  done in {:.2} s: {}",
            self.start.elapsed().as_secs_f64(),
            result.as_ref()
        ));
    }
}

/// `12.3 MiB`-style size.
pub fn human_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / MIB)
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}
