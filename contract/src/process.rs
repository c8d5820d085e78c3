//! Child processes run with a deadline and bounded output: each in a
//! process group of its own, its pipes drained on threads (so a chatty child
//! never blocks on a full pipe), and its group killed when it ends or at the
//! deadline, so nothing it started can keep the caller waiting.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a bounded run gave.
#[derive(Debug)]
pub struct BoundedOutput {
    /// How it ended.
    pub status: std::process::ExitStatus,
    /// The first `limit` bytes of its standard output.
    pub stdout: Vec<u8>,
    /// The first `limit` bytes of its standard error.
    pub stderr: Vec<u8>,
}

/// Runs `command` in a process group of its own, keeping the first
/// `limit` bytes of each output. At `timeout` the group is killed
/// and the run fails; when the command ends, whatever it left running in
/// its group is killed too, so a process that keeps the output pipes open
/// cannot make the caller wait.
pub fn run_bounded(
    command: &mut Command,
    timeout: Duration,
    limit: u64,
) -> Result<BoundedOutput, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|err| format!("could not start it: {err}"))?;
    let group = rustix::process::Pid::from_child(&child);
    let kill_group = || {
        // The group may be gone already; nothing to report then.
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    };
    let stdout = drain(
        limit,
        child
            .stdout
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        limit,
        child
            .stderr
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                kill_group();
                let _ = child.wait();
                return Err(format!("did not finish within {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(err) => {
                kill_group();
                return Err(format!("could not wait for it: {err}"));
            }
        }
    };
    kill_group();
    Ok(BoundedOutput {
        status,
        stdout: finish(stdout),
        stderr: finish(stderr),
    })
}

/// A reader thread keeping the first `limit` bytes of `pipe` and
/// reading the rest away, so the writer never blocks on a full pipe.
fn drain(
    limit: u64,
    pipe: Option<Box<dyn Read + Send>>,
) -> (JoinHandle<()>, mpsc::Receiver<Vec<u8>>) {
    let (sender, receiver) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(pipe) = pipe {
            let mut limited = pipe.take(limit);
            let _ = limited.read_to_end(&mut kept);
            let _ = std::io::copy(&mut limited.into_inner(), &mut std::io::sink());
        }
        let _ = sender.send(kept);
    });
    (handle, receiver)
}

/// What a drain thread kept. The group is dead by now, so the pipe closes
/// at once; the short wait covers a writer outside the group (a process
/// that left it with setsid), whose output is then left unread.
fn finish((handle, receiver): (JoinHandle<()>, mpsc::Receiver<Vec<u8>>)) -> Vec<u8> {
    match receiver.recv_timeout(Duration::from_secs(2)) {
        Ok(kept) => {
            let _ = handle.join();
            kept
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 64 * 1024;

    #[test]
    fn a_process_left_holding_the_output_does_not_hold_up_the_run() {
        let started = Instant::now();
        let output = run_bounded(
            Command::new("sh").args(["-c", "sleep 600 & echo done"]),
            Duration::from_secs(20),
            LIMIT,
        )
        .unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, b"done\n");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_run_past_its_deadline_is_killed_with_its_group() {
        let started = Instant::now();
        let err = run_bounded(
            Command::new("sh").args(["-c", "sleep 600 & sleep 600"]),
            Duration::from_millis(300),
            LIMIT,
        )
        .unwrap_err();
        assert!(err.contains("did not finish within"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn output_beyond_the_limit_is_read_away_not_kept() {
        let output = run_bounded(
            Command::new("sh").args(["-c", "head -c 1048576 /dev/zero; echo end >&2"]),
            Duration::from_secs(20),
            LIMIT,
        )
        .unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout.len() as u64, LIMIT);
        assert_eq!(output.stderr, b"end\n");
    }
}
