//! What keeps one registry operation bounded: a watchdog that ends an
//! attempt when no byte moved for the read timeout or when the operation's
//! deadline passes, and the retry policy (which failures are worth another
//! attempt, how long to wait before it, and when to give up).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

// tokio's clock, so that tests with paused time see the watchdog fire.
use tokio::time::Instant;

use crate::RegistryError;
use crate::error::{error_chain, looks_like_tls, tls_hint};
use crate::progress::Progress;
use crate::settings::{NetworkSettings, show};

/// First back-off delay; each later one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Longest back-off delay between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Longest wait a `Retry-After` header can ask for: a registry asking for
/// an hour is waited on for this long, then tried again.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How much of an error response body is read for its message: enough for
/// a registry's JSON error envelope, never an unbounded body.
pub(crate) const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The registry answered with a status that is not the expected one.
    Status {
        status: u16,
        retry_after: Option<Duration>,
        detail: String,
        /// A client error that another attempt can cure (see
        /// [`manifest_blobs_lagging`]).
        transient: bool,
    },
    /// The connection failed (refused, reset, closed early, DNS, TLS).
    Transport {
        reason: String,
        connect: bool,
        retryable: bool,
    },
    /// The credentials were checked and refused.
    Denied,
    /// No byte moved for the read timeout.
    Stalled,
    /// The operation's deadline passed.
    Deadline,
    /// A verdict no retry can change (a digest mismatch, a size over the
    /// limit, bytes already handed to the caller).
    Fatal(Box<RegistryError>),
}

impl Failure {
    /// A final verdict.
    pub(crate) fn fatal(error: RegistryError) -> Self {
        Self::Fatal(Box::new(error))
    }

    /// Classifies a reqwest error.
    pub(crate) fn from_reqwest(error: reqwest::Error) -> Self {
        // The URL is left out: the message names the registry and the
        // operation already, and an upload URL is long and opaque.
        let error = error.without_url();
        let reason = error_chain(&error);
        if error.is_timeout() && !error.is_connect() {
            // Only the authentication client sets reqwest's own read
            // timeout; the requests sent here are watched by [`Activity`].
            return Self::Stalled;
        }
        let retryable = !(error.is_builder() || error.is_redirect() || looks_like_tls(&reason));
        Self::Transport {
            reason,
            connect: error.is_connect(),
            retryable,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            Self::Status {
                status, transient, ..
            } => *transient || retryable_status(*status),
            Self::Transport { retryable, .. } => *retryable,
            Self::Stalled => true,
            Self::Denied | Self::Deadline | Self::Fatal(_) => false,
        }
    }
}

/// Statuses worth another attempt: request timeout, too many requests, and
/// server errors, except those that say the server will never do it (501
/// Not Implemented, 505 HTTP Version Not Supported).
pub(crate) fn retryable_status(status: u16) -> bool {
    status == 408
        || status == 429
        || ((500..600).contains(&status) && status != 501 && status != 505)
}

/// Whether a manifest PUT's refusal is worth another attempt: 400 with
/// `MANIFEST_BLOB_UNKNOWN` right after its blobs were uploaded. Under
/// concurrent pushes docker-registry answers that for a moment while
/// another upload of the same blob is being committed; a manifest whose
/// blob is really missing still fails, after the bounded attempts.
pub(crate) fn manifest_blobs_lagging(status: u16, detail: &str) -> bool {
    status == 400 && detail.contains("MANIFEST_BLOB_UNKNOWN")
}

/// The delay before attempt `made + 1`: exponential, with "equal jitter"
/// (a random point in the upper half) so that many clients failing at once
/// do not come back at once.
pub(crate) fn backoff(made: u32) -> Duration {
    let ceiling_ms = backoff_ceiling(made).as_millis() as u64;
    Duration::from_millis(fastrand::u64(ceiling_ms / 2..=ceiling_ms))
}

/// The longest delay [`backoff`] waits before attempt `made + 1`.
pub(crate) fn backoff_ceiling(made: u32) -> Duration {
    let doublings = made.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// The wait a `Retry-After` header asks for: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The clock of one operation: when a byte last moved, and the deadline.
/// Shared with request bodies, which touch it as they are sent.
pub(crate) struct Activity {
    base: Instant,
    /// Milliseconds from `base` to the last byte moved.
    last: AtomicU64,
    /// Milliseconds from `base` to the deadline.
    deadline: AtomicU64,
}

impl Activity {
    pub(crate) fn new(deadline: Duration) -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            last: AtomicU64::new(0),
            deadline: AtomicU64::new(millis(deadline)),
        })
    }

    fn now(&self) -> u64 {
        millis(self.base.elapsed())
    }

    /// Records that a byte moved.
    pub(crate) fn touch(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// Records that a byte moved, and gives the other side `grace` more
    /// than the read timeout before its next one: a registry that has just
    /// received a whole blob hashes and stores it before it answers.
    pub(crate) fn touch_with_grace(&self, grace: Duration) {
        self.last
            .store(self.now().saturating_add(millis(grace)), Ordering::Relaxed);
    }

    /// Moves the deadline `extra` later (a blob whose size became known).
    pub(crate) fn extend(&self, extra: Duration) {
        self.deadline.fetch_add(millis(extra), Ordering::Relaxed);
    }

    /// The whole deadline, from the operation's start.
    pub(crate) fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline.load(Ordering::Relaxed))
    }

    /// Time left before the deadline.
    pub(crate) fn remaining(&self) -> Duration {
        Duration::from_millis(
            self.deadline
                .load(Ordering::Relaxed)
                .saturating_sub(self.now()),
        )
    }

    /// Completes when no byte moved for `idle`, or at the deadline,
    /// whichever comes first; both may move while it waits.
    async fn watch(&self, idle: Duration) -> Failure {
        let idle = millis(idle);
        loop {
            let now = self.now();
            let deadline = self.deadline.load(Ordering::Relaxed);
            let stall = self.last.load(Ordering::Relaxed).saturating_add(idle);
            if now >= deadline {
                return Failure::Deadline;
            }
            if now >= stall {
                return Failure::Stalled;
            }
            tokio::time::sleep(Duration::from_millis(deadline.min(stall) - now)).await;
        }
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX / 2)) as u64
}

/// One operation's attempts: runs each under the watchdog, decides whether
/// a failure is retried, and turns the last failure into the error the
/// caller sees.
pub(crate) struct Attempts {
    pub(crate) operation: String,
    pub(crate) registry: String,
    pub(crate) reference: String,
    pub(crate) credentials: String,
    pub(crate) settings: NetworkSettings,
    pub(crate) activity: Arc<Activity>,
    pub(crate) progress: Arc<Progress>,
    made: AtomicU32,
    reauthenticated: AtomicBool,
}

/// What to do after a failed attempt.
pub(crate) enum Next {
    /// Try again.
    Retry,
    /// Try again with fresh credentials (the cached ones were refused).
    Reauthenticate,
}

impl Attempts {
    pub(crate) fn new(
        operation: String,
        registry: String,
        reference: String,
        credentials: String,
        settings: NetworkSettings,
        deadline: Duration,
        progress: Arc<Progress>,
    ) -> Self {
        Self {
            operation,
            registry,
            reference,
            credentials,
            settings,
            activity: Activity::new(deadline),
            progress,
            made: AtomicU32::new(0),
            reauthenticated: AtomicBool::new(false),
        }
    }

    /// The same attempts with another deadline (a blob of known size).
    pub(crate) fn with_deadline(mut self, deadline: Duration) -> Self {
        self.activity = Activity::new(deadline);
        self
    }

    /// Attempts made so far.
    pub(crate) fn made(&self) -> u32 {
        self.made.load(Ordering::Relaxed)
    }

    /// Records that a byte moved.
    pub(crate) fn touch(&self) {
        self.activity.touch();
    }

    /// Runs one attempt under the watchdog: it ends with [`Failure::Stalled`]
    /// after the read timeout without a byte, or [`Failure::Deadline`] at
    /// the operation's deadline. Dropping the attempt closes its connection.
    pub(crate) async fn run<T>(
        &self,
        attempt: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        self.made.fetch_add(1, Ordering::Relaxed);
        self.activity.touch();
        tokio::select! {
            biased;
            result = attempt => result,
            failure = self.activity.watch(self.settings.read_timeout) => Err(failure),
        }
    }

    /// After a failed attempt: waits and says to retry, or gives up with
    /// the error for the caller.
    pub(crate) async fn after(&self, failure: Failure) -> Result<Next, RegistryError> {
        let made = self.made();
        let limit = self.settings.attempts;
        // Cached credentials refused mid-operation (an expired token):
        // negotiate again, once, without back-off.
        if matches!(failure, Failure::Status { status: 401, .. })
            && made < limit
            && !self.reauthenticated.swap(true, Ordering::Relaxed)
        {
            return Ok(Next::Reauthenticate);
        }
        if !failure.retryable() || made >= limit {
            return Err(self.give_up(failure));
        }
        let (delay, asked) = match &failure {
            Failure::Status {
                retry_after: Some(after),
                ..
            } => ((*after).min(MAX_RETRY_AFTER), Some(*after)),
            _ => (backoff(made), None),
        };
        if delay >= self.activity.remaining() {
            // Waiting would run into the deadline: give up now, and say why.
            let failure = match (failure, asked) {
                (
                    Failure::Status {
                        status,
                        retry_after,
                        detail,
                        transient,
                    },
                    Some(asked),
                ) => Failure::Status {
                    status,
                    retry_after,
                    transient,
                    detail: format!(
                        "{detail}; it asked to retry after {} (Retry-After), past the operation deadline of {}",
                        show(asked),
                        show(self.activity.deadline())
                    ),
                },
                (failure, _) => failure,
            };
            return Err(self.give_up(failure));
        }
        if matches!(failure, Failure::Stalled)
            && delay.saturating_add(self.settings.read_timeout) > self.activity.remaining()
        {
            // After a stall, an attempt that cannot get a whole read
            // timeout before the deadline would most likely stall into the
            // deadline too: end now, with the stall as the reason, so a
            // silent registry costs attempts x read timeout at most, and
            // never more than the deadline.
            return Err(self.give_up(failure));
        }
        self.progress.note(&format!(
            "{} of {}: {}; retrying in {} (attempt {} of {limit})",
            self.operation,
            self.reference,
            self.summary(&failure),
            show(delay),
            made + 1
        ));
        tokio::time::sleep(delay).await;
        Ok(Next::Retry)
    }

    fn summary(&self, failure: &Failure) -> String {
        match failure {
            Failure::Status { status, detail, .. } => format!("HTTP {status}: {detail}"),
            Failure::Transport { reason, .. } => reason.clone(),
            Failure::Stalled => {
                format!(
                    "stalled, no progress for {}",
                    show(self.settings.read_timeout)
                )
            }
            Failure::Denied => "credentials refused".to_string(),
            Failure::Deadline => "deadline passed".to_string(),
            Failure::Fatal(error) => error.to_string(),
        }
    }

    /// The error for the caller, after the last attempt.
    pub(crate) fn give_up(&self, failure: Failure) -> RegistryError {
        let attempts = self.made();
        let registry = self.registry.clone();
        let reference = self.reference.clone();
        let operation = self.operation.clone();
        match failure {
            Failure::Fatal(error) => *error,
            Failure::Denied
            | Failure::Status {
                status: 401 | 403, ..
            } => RegistryError::Unauthorized {
                registry,
                reference,
                credentials: self.credentials.clone(),
                operation,
            },
            Failure::Status {
                status: 404,
                detail,
                ..
            } => RegistryError::NotFound {
                registry,
                reference,
                detail: format!("HTTP 404: {detail}"),
                operation,
            },
            Failure::Status { status, detail, .. } => RegistryError::Status {
                registry,
                reference,
                operation,
                status,
                detail,
                attempts,
            },
            Failure::Transport {
                reason,
                connect: true,
                ..
            } => RegistryError::Unreachable {
                registry,
                reference,
                hint: tls_hint(&reason).to_string(),
                reason,
                operation,
                attempts,
            },
            Failure::Transport { reason, .. } => RegistryError::Interrupted {
                registry,
                reference,
                operation,
                reason,
                attempts,
            },
            Failure::Stalled => RegistryError::Stalled {
                registry,
                reference,
                operation,
                idle: self.settings.read_timeout,
                attempts,
            },
            Failure::Deadline => RegistryError::TimedOut {
                registry,
                reference,
                operation,
                deadline: self.activity.deadline(),
                attempts,
            },
        }
    }

    /// A refusal in this operation's words (`Other`, naming the operation).
    pub(crate) fn other(&self, detail: impl std::fmt::Display) -> Failure {
        Failure::fatal(RegistryError::Other {
            registry: self.registry.clone(),
            reference: self.reference.clone(),
            detail: format!("{}: {detail}", self.operation),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses_are_retried_and_client_errors_are_not() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 405, 413, 501, 505] {
            assert!(!retryable_status(status), "{status}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for _ in 0..100 {
            let first = backoff(1);
            assert!(first >= Duration::from_millis(125) && first <= Duration::from_millis(250));
            let third = backoff(3);
            assert!(third >= Duration::from_millis(500) && third <= Duration::from_secs(1));
            assert!(backoff(30) <= MAX_BACKOFF);
            assert!(backoff(30) >= MAX_BACKOFF / 2);
        }
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let waited = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(waited > Duration::from_secs(100) && waited <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
    }

    /// Attempts of `operation` with a 2 s read timeout and `deadline`.
    fn test_attempts(operation: &str, deadline: Duration) -> Attempts {
        Attempts::new(
            operation.into(),
            "registry.example".into(),
            "registry.example/sup:1".into(),
            "no credentials".into(),
            NetworkSettings {
                read_timeout: Duration::from_secs(2),
                ..Default::default()
            },
            deadline,
            Arc::new(Progress::new(false, String::new(), None)),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_ends_a_silent_attempt_at_the_read_timeout() {
        let attempts = test_attempts("pull manifest", Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        let result: Result<(), Failure> = attempts.run(std::future::pending()).await;
        assert!(matches!(result, Err(Failure::Stalled)), "{result:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_is_not_retried_without_a_whole_read_timeout_left() {
        // 2 s read timeout, 5 s deadline: the first attempt stalls at 2 s;
        // a second (after at most 250 ms) would have 3 s left, and one
        // more after it could not get its 2 s, so the verdict is a stall
        // after two attempts, before the deadline.
        let attempts = test_attempts("pull manifest", Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        let error = loop {
            let result: Result<(), Failure> = attempts.run(std::future::pending()).await;
            let Err(failure) = result else {
                unreachable!("a pending attempt cannot succeed")
            };
            match attempts.after(failure).await {
                Ok(_) => continue,
                Err(error) => break error,
            }
        };
        assert!(
            matches!(error, RegistryError::Stalled { attempts: 2, .. }),
            "{error:?}"
        );
        assert!(started.elapsed() <= Duration::from_millis(4250));
        assert!(started.elapsed() >= Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_grace_after_a_whole_blob_delays_the_stall_verdict() {
        let attempts = test_attempts("push blob", Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        let sent_then_wait = async {
            attempts.activity.touch_with_grace(Duration::from_secs(5));
            std::future::pending::<Result<(), Failure>>().await
        };
        let result = attempts.run(sent_then_wait).await;
        assert!(matches!(result, Err(Failure::Stalled)), "{result:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn activity_keeps_an_attempt_alive_until_the_deadline() {
        let attempts = test_attempts("pull blob", Duration::from_secs(10));
        let started = tokio::time::Instant::now();
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                attempts.touch();
            }
        };
        let result: Result<(), Failure> = attempts.run(trickle).await;
        assert!(matches!(result, Err(Failure::Deadline)), "{result:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        let error = attempts.give_up(Failure::Deadline).to_string();
        assert!(error.contains("within 10s"), "{error}");
    }
}
