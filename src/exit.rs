//! The one place where failures become exit codes (sysexits.h, see README "Exit codes").

use std::fmt;

/// Why `entitle` stopped without an entitlement (or could not do its job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Unknown flag or unparseable value on the command line (EX_USAGE).
    Usage(String),
    /// Missing or invalid product code, key, key version, region, credentials or IAM permission (EX_CONFIG).
    Config(String),
    /// AWS Marketplace says the customer is not subscribed (EX_NOPERM).
    NotEntitled(String),
    /// The answer cannot be trusted: bad signature, wrong alg, claim mismatch, malformed answer (EX_PROTOCOL).
    Untrusted(String),
    /// Only transient failures until the time budget ran out (EX_TEMPFAIL).
    Transient(String),
    /// Stopped by a terminating signal before the workload started (128 + signal).
    Interrupted(i32),
    /// A bug or an operating-system failure we cannot attribute to the user (EX_SOFTWARE).
    Internal(String),
}

impl Failure {
    /// The process exit code for this failure. Stable: documented in the README.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) => 64,
            Failure::Config(_) => 78,
            Failure::NotEntitled(_) => 77,
            Failure::Untrusted(_) => 76,
            Failure::Transient(_) => 75,
            Failure::Interrupted(signal) => 128 + signal,
            Failure::Internal(_) => 70,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) => write!(f, "usage error: {m}"),
            Failure::Config(m) => write!(f, "configuration error: {m}"),
            Failure::NotEntitled(m) => write!(f, "not entitled: {m}"),
            Failure::Untrusted(m) => write!(f, "untrusted answer: {m}"),
            Failure::Transient(m) => write!(f, "gave up after transient failures: {m}"),
            Failure::Interrupted(s) => write!(
                f,
                "stopped by {} (signal {s}) before the entitlement check finished; nothing was started",
                signal_name(*s)
            ),
            Failure::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Failure {}

/// `SIGTERM` for 15; real-time signals as `SIGRT40`.
pub fn signal_name(signal: i32) -> String {
    const NAMES: [&str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match usize::try_from(signal).ok().and_then(|i| NAMES.get(i)) {
        Some(name) => (*name).to_string(),
        None => format!("SIGRT{signal}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(Failure::Usage(String::new()).exit_code(), 64);
        assert_eq!(Failure::Config(String::new()).exit_code(), 78);
        assert_eq!(Failure::NotEntitled(String::new()).exit_code(), 77);
        assert_eq!(Failure::Untrusted(String::new()).exit_code(), 76);
        assert_eq!(Failure::Transient(String::new()).exit_code(), 75);
        assert_eq!(Failure::Interrupted(15).exit_code(), 143);
        assert_eq!(Failure::Internal(String::new()).exit_code(), 70);
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(libc::SIGSYS), "SIGSYS");
        assert_eq!(signal_name(40), "SIGRT40");
    }
}
