//! PID 1 supervision for `entitle run`: register, then start (or `execve`) the workload, forward
//! signals to it, reap every child and orphan, and exit with the workload's status.
//!
//! Design (the loop of tini and catatonit):
//! - [`run`] blocks every signal first, before any thread exists, so none is ever dropped (the
//!   kernel never discards a *blocked* signal, even for a namespace's PID 1 with default
//!   handlers). Signals are then read one batch at a time from a `signalfd`.
//! - Registration runs on a worker thread (it owns its tokio runtime); it reports through a pipe
//!   that this thread polls together with the signalfd. Before the workload runs alone, the worker
//!   has been joined: no runtime, no extra thread.
//! - While the workload runs, the supervisor sleeps in `poll` with no timeout (the grace deadline
//!   is the only timeout, and only while the workload is being stopped): zero periodic wakeups.
//! - Every SIGCHLD drains `waitpid(-1, WNOHANG)` until nothing is left, comparing each pid with the
//!   workload's (SIGCHLDs coalesce).
//!
//! The synchronous fault signals (SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT) are blocked too, unlike in
//! tini: the kernel unblocks a *genuine* fault itself (`force_sig_fault`), so a real crash still
//! kills us, while the same signal sent with `kill(2)` is forwarded like any other.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::exit::{signal_name, Failure};
use entitle_verify::Entitlement;

use crate::handoff::{self, block_all_signals, full_signal_set, Started};

/// How long an entitlement-failure stop waits for the workload before SIGKILL, when
/// `--grace-period` is not set.
pub const DEFAULT_FAILURE_GRACE: Duration = Duration::from_secs(10);

/// When the workload starts relative to registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPolicy {
    /// Register and verify first; start the workload only when entitled.
    Gate,
    /// Start the workload at once and register alongside it. The workload starts before the
    /// entitlement is known, so it does **not** get `ENTITLE_TOKEN` or `ENTITLE_NONCE` (inherited
    /// values of those are removed, so it never sees stale or forged ones), and
    /// `ENTITLE_PRODUCT_CODE` only if `entitle` itself was configured through that variable.
    /// If entitlement fails, the workload is stopped: SIGTERM, then SIGKILL after the grace
    /// period (10 s when unset), and `run` returns the failure.
    Concurrent,
}

/// What `entitle run` was asked to do, after option parsing.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub start: StartPolicy,
    /// After a successful registration, `execve` the command in place of `entitle` (same PID, no
    /// supervisor). Only valid with [`StartPolicy::Gate`].
    pub exec: bool,
    /// Forward signals (and the grace-period SIGKILL) to the workload's process group instead of
    /// the workload alone.
    pub kill_process_group: bool,
    /// When the workload is being stopped (a forwarded TERM/INT/QUIT, or an entitlement failure)
    /// and is still alive after this long, SIGKILL it. `None`: entitlement-failure stops use
    /// [`DEFAULT_FAILURE_GRACE`], forwarded signals are only forwarded.
    pub grace_period: Option<Duration>,
    /// Program and arguments; the program is looked up in `PATH` like `execvp`.
    pub command: Vec<OsString>,
    /// Variables added to the workload's environment (in every start mode).
    pub env: Vec<(OsString, OsString)>,
}

/// The registration step handed to [`run`]: builds and drops its own async runtime. Its
/// entitlement (the verified token) is `None` for a product that is only metered.
pub type Register = Box<dyn FnOnce() -> Result<Option<Entitlement>, Failure> + Send>;

/// Run `entitle run`: register, start the workload, supervise it.
///
/// Call this from `main` right after option parsing and logger setup, **before any thread
/// exists** (the signal mask is per thread and inherited by threads created later). Blocks every
/// signal, runs `register` on a worker thread and waits for signals and children on this one.
///
/// Returns the workload's exit code (its status, or 128 + the signal that killed it; 127 when
/// the command was not found, 126 when it could not be executed, each after an error line).
/// Returns `Err` when entitlement failed (gate: the command never started; concurrent: it was
/// stopped first), or with [`Failure::Interrupted`] when HUP/INT/QUIT/TERM arrived while still
/// registering in gate mode (at once; the worker thread is left behind, so `main` must exit
/// promptly with the failure's code rather than wait for threads).
///
/// The workload inherits the environment plus `ENTITLE_TOKEN` (the verified JWT),
/// `ENTITLE_NONCE` and `ENTITLE_PRODUCT_CODE` (gate and exec modes only, see
/// [`StartPolicy::Concurrent`]), the caller's working directory, an empty signal mask and default
/// signal dispositions. It runs in its own process group, which is given the terminal's
/// foreground when stdin is a terminal (so `docker run -it` keeps job control).
pub fn run(options: RunOptions, register: Register) -> Result<i32, Failure> {
    let signals = take_signals()?;
    check_options(&options)?;
    match options.start {
        StartPolicy::Gate => run_gated(&options, &signals, register),
        StartPolicy::Concurrent => run_concurrent(&options, &signals, register),
    }
}

fn check_options(options: &RunOptions) -> Result<(), Failure> {
    if options.command.is_empty() {
        return Err(Failure::Usage(
            "`entitle run` needs a command after `--`".into(),
        ));
    }
    if options.exec && options.start == StartPolicy::Concurrent {
        return Err(Failure::Usage(
            "--exec cannot be combined with --start concurrent".into(),
        ));
    }
    Ok(())
}

/// Gate mode: register first, then exec or start and supervise the workload.
fn run_gated(options: &RunOptions, signals: &SignalFd, register: Register) -> Result<i32, Failure> {
    let registration = Registration::start(register)?;
    let entitlement = await_worker(signals, registration)?;
    if options.exec {
        discard_pending_signals(signals)?;
        return Ok(handoff::exec(
            &options.command,
            &options.env,
            entitlement.as_ref(),
        ));
    }
    become_subreaper();
    match handoff::spawn(&options.command, &options.env, entitlement.as_ref())? {
        Started::Failed(code) => Ok(code),
        Started::Running(pid) => Supervisor::new(options, signals, pid, None).run(),
    }
}

/// Concurrent mode: start the workload, then register while supervising it.
fn run_concurrent(
    options: &RunOptions,
    signals: &SignalFd,
    register: Register,
) -> Result<i32, Failure> {
    become_subreaper();
    let pid = match handoff::spawn(&options.command, &options.env, None)? {
        Started::Failed(code) => return Ok(code),
        Started::Running(pid) => pid,
    };
    let (registration, failure) = match Registration::start(register) {
        Ok(registration) => (Some(registration), None),
        Err(failure) => (None, Some(failure)),
    };
    let mut supervisor = Supervisor::new(options, signals, pid, registration);
    if let Some(failure) = failure {
        supervisor.stop_for(failure);
    }
    supervisor.run()
}

// ---------------------------------------------------------------------------------------------
// Signals

/// Blocks every signal in this thread, and so in every thread started after: call it before
/// starting any thread that must not take signals meant for the supervisor.
pub fn block_signals() -> Result<(), Failure> {
    block_all_signals().map_err(|e| internal("cannot block signals", &e))
}

/// Blocks every signal and receives them all on a signalfd instead: the same for the PID 1
/// loop and the commands that only wait.
fn take_signals() -> Result<SignalFd, Failure> {
    block_signals()?;
    SignalFd::new().map_err(|e| internal("cannot create a signalfd", &e))
}

/// Waits, with every signal blocked, for HUP, INT, QUIT or TERM: the stop of a command that
/// has no workload (`entitle meter`). Other signals are ignored.
pub fn wait_for_stop() -> Result<i32, Failure> {
    let signals = take_signals()?;
    loop {
        wait_for(&signals, None, None)?;
        for received in signals.read_pending()? {
            if is_stop_request(received.signal) {
                return Ok(received.signal);
            }
            tracing::debug!(signal = %signal_name(received.signal), "ignored");
        }
    }
}

/// HUP, INT, QUIT, TERM: a request to stop, while registering in gate mode.
fn is_stop_request(signal: i32) -> bool {
    matches!(
        signal,
        libc::SIGHUP | libc::SIGINT | libc::SIGQUIT | libc::SIGTERM
    )
}

/// TERM, INT, QUIT: forwarding one arms the grace period (when set).
fn arms_grace(signal: i32) -> bool {
    matches!(signal, libc::SIGINT | libc::SIGQUIT | libc::SIGTERM)
}

/// One signal read from the signalfd.
#[derive(Debug, Clone, Copy)]
struct Received {
    signal: i32,
    sender: u32,
}

/// Non-blocking, close-on-exec signalfd for every blocked signal.
struct SignalFd {
    fd: OwnedFd,
    own_pid: u32,
}

impl SignalFd {
    fn new() -> io::Result<Self> {
        let all = full_signal_set();
        // SAFETY: `all` is an initialised sigset_t; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &all, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            fd,
            own_pid: std::process::id(),
        })
    }

    /// Every signal pending now, lowest standard signal first (the kernel's dequeue order),
    /// without the ones we raised ourselves (a SIGPIPE from writing to a closed log pipe, say).
    fn read_pending(&self) -> Result<Vec<Received>, Failure> {
        let mut received = Vec::new();
        while let Some(info) = self
            .read_one()
            .map_err(|e| internal("cannot read signals", &e))?
        {
            let signal = signal_number(&info);
            if info.ssi_pid == self.own_pid && info.ssi_code == libc::SI_USER {
                tracing::debug!(signal = %signal_name(signal), "ignored a signal we raised ourselves");
                continue;
            }
            received.push(Received {
                signal,
                sender: info.ssi_pid,
            });
        }
        Ok(received)
    }

    fn read_one(&self) -> io::Result<Option<libc::signalfd_siginfo>> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: the buffer is valid for `size` bytes and the descriptor is open.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
            if usize::try_from(n).ok() == Some(size) {
                // SAFETY: the kernel filled the whole structure.
                return Ok(Some(unsafe { info.assume_init() }));
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                _ if n >= 0 => return Err(io::Error::other("short read from the signalfd")),
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(error),
            }
        }
    }
}

fn signal_number(info: &libc::signalfd_siginfo) -> i32 {
    i32::try_from(info.ssi_signo).unwrap_or(0)
}

/// Before `execve`: read (and so drop) what arrived meanwhile, because the new program would
/// receive it with default dispositions the moment the mask is cleared. A stop request still wins.
fn discard_pending_signals(signals: &SignalFd) -> Result<(), Failure> {
    for received in signals.read_pending()? {
        if is_stop_request(received.signal) {
            return Err(interrupted(received.signal));
        }
        tracing::debug!(signal = %signal_name(received.signal), "dropped a signal that arrived before exec");
    }
    Ok(())
}

fn interrupted(signal: i32) -> Failure {
    Failure::Interrupted(signal)
}

// ---------------------------------------------------------------------------------------------
// Registration worker

/// Work (the registration) running on its worker thread. The worker closes `done` after
/// sending its result, so `done` becomes readable (EOF) exactly when the result is ready, or
/// when the worker died without one.
struct Worker<T> {
    done: OwnedFd,
    result: mpsc::Receiver<Result<T, Failure>>,
    worker: thread::JoinHandle<()>,
}

type Registration = Worker<Option<Entitlement>>;

impl<T: Send + 'static> Worker<T> {
    fn start(work: Box<dyn FnOnce() -> Result<T, Failure> + Send>) -> Result<Self, Failure> {
        let (done, done_writer) =
            cloexec_pipe().map_err(|e| internal("cannot create a pipe", &e))?;
        let (sender, result) = mpsc::channel();
        let worker = thread::Builder::new()
            .name("register".into())
            .spawn(move || {
                let outcome = work();
                let _ = sender.send(outcome);
                drop(done_writer);
            })
            .map_err(|e| internal("cannot start the registration thread", &e))?;
        Ok(Self {
            done,
            result,
            worker,
        })
    }

    /// Join the worker (its runtime is gone by then) and take its result.
    fn finish(self) -> Result<T, Failure> {
        if self.worker.join().is_err() {
            tracing::error!("the registration thread panicked");
        }
        self.result.try_recv().unwrap_or_else(|_| {
            Err(Failure::Internal(
                "registration ended without a result".into(),
            ))
        })
    }
}

/// Runs `work` (`entitle check`, `verify`) on a worker thread while this thread waits for it or
/// for a stop request: as a container's PID 1 no signal has a default action, so without this
/// SIGTERM would be ignored until the work ends. HUP, INT, QUIT or TERM ends the wait at once
/// with [`Failure::Interrupted`] (the worker is left behind: the caller exits promptly).
pub fn interruptible<T: Send + 'static>(
    work: Box<dyn FnOnce() -> Result<T, Failure> + Send>,
) -> Result<T, Failure> {
    let signals = take_signals()?;
    await_worker(&signals, Worker::start(work)?)
}

fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let [read, write] = fds;
    // SAFETY: pipe2 just returned these two descriptors; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(read), OwnedFd::from_raw_fd(write)) })
}

/// Wait for the worker's result; a stop request ends the wait at once.
fn await_worker<T: Send + 'static>(
    signals: &SignalFd,
    registration: Worker<T>,
) -> Result<T, Failure> {
    loop {
        let ready = wait_for(signals, Some(&registration.done), None)?;
        if ready.signals {
            for received in signals.read_pending()? {
                if is_stop_request(received.signal) {
                    return Err(interrupted(received.signal));
                }
                tracing::debug!(signal = %signal_name(received.signal), "no workload yet; signal not forwarded");
            }
        }
        if ready.registration {
            return registration.finish();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting

#[derive(Debug, Default)]
struct Ready {
    signals: bool,
    registration: bool,
}

/// Sleep in the kernel until a signal arrives, the registration ends, or the deadline passes.
fn wait_for(
    signals: &SignalFd,
    registration: Option<&OwnedFd>,
    deadline: Option<Instant>,
) -> Result<Ready, Failure> {
    let mut fds = [poll_entry(&signals.fd), poll_entry_or_unused(registration)];
    loop {
        let timeout = poll_timeout(deadline);
        // SAFETY: `fds` is a valid array of two pollfd entries (a negative fd is skipped).
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if rc >= 0 {
            let [signal_entry, registration_entry] = fds;
            return Ok(Ready {
                signals: signal_entry.revents != 0,
                registration: registration_entry.revents != 0,
            });
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(internal("poll failed", &error));
        }
    }
}

fn poll_entry(fd: &OwnedFd) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
}

fn poll_entry_or_unused(fd: Option<&OwnedFd>) -> libc::pollfd {
    match fd {
        Some(fd) => poll_entry(fd),
        None => libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        },
    }
}

/// Milliseconds until `deadline`, rounded up (never wake early), or -1 (no timeout).
fn poll_timeout(deadline: Option<Instant>) -> libc::c_int {
    let Some(deadline) = deadline else {
        return -1;
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let millis = left.as_nanos().div_ceil(1_000_000);
    libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX)
}

// ---------------------------------------------------------------------------------------------
// Supervision

/// Become the reaper of orphaned descendants when we are not PID 1 (quietly: a PID 1 does not
/// need it, and a failure only means orphans go to the real init instead).
fn become_subreaper() {
    if std::process::id() == 1 {
        return;
    }
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument; no memory is passed.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "could not become a child subreaper");
    } else {
        tracing::debug!("not PID 1: registered as a child subreaper");
    }
}

/// The event loop while the workload runs.
struct Supervisor<'a> {
    signals: &'a SignalFd,
    /// The workload's pid (and its process-group id: it leads its own group).
    pid: libc::pid_t,
    kill_process_group: bool,
    grace_period: Option<Duration>,
    /// When the workload gets SIGKILL if it is still alive.
    kill_at: Option<Instant>,
    /// The entitlement failure that is ending the run (concurrent mode).
    failure: Option<Failure>,
    registration: Option<Registration>,
}

impl<'a> Supervisor<'a> {
    fn new(
        options: &RunOptions,
        signals: &'a SignalFd,
        pid: libc::pid_t,
        registration: Option<Registration>,
    ) -> Self {
        Self {
            signals,
            pid,
            kill_process_group: options.kill_process_group,
            grace_period: options.grace_period,
            kill_at: None,
            failure: None,
            registration,
        }
    }

    fn run(mut self) -> Result<i32, Failure> {
        loop {
            let done = self.registration.as_ref().map(|r| &r.done);
            let ready = wait_for(self.signals, done, self.kill_at)?;
            if ready.registration {
                self.take_registration_result();
            }
            if ready.signals {
                if let Some(code) = self.handle_signals()? {
                    return self.outcome(code);
                }
            }
            self.kill_if_overdue();
        }
    }

    /// The run's result once the workload has exited with `code`.
    fn outcome(self, code: i32) -> Result<i32, Failure> {
        if let Some(failure) = self.failure {
            tracing::info!(code, "workload stopped after the entitlement failure");
            return Err(failure);
        }
        if self.registration.is_some() {
            tracing::warn!("the workload exited before registration finished");
        }
        tracing::info!(code, "workload exited");
        Ok(code)
    }

    fn take_registration_result(&mut self) {
        let Some(registration) = self.registration.take() else {
            return;
        };
        match registration.finish() {
            Ok(_) => tracing::info!("entitled; the workload keeps running"),
            Err(failure) => self.stop_for(failure),
        }
    }

    /// Entitlement failed: SIGTERM the workload and SIGKILL it after the grace period. The
    /// failure itself is reported once, by the caller, when the run ends.
    fn stop_for(&mut self, failure: Failure) {
        let grace = self.grace_period.unwrap_or(DEFAULT_FAILURE_GRACE);
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "entitlement failed; stopping the workload (SIGTERM, then SIGKILL after the grace period)"
        );
        self.failure = Some(failure);
        self.send(libc::SIGTERM);
        self.arm_kill(grace);
    }

    /// Forward what arrived; on SIGCHLD reap. `Some(code)` once the workload has exited.
    fn handle_signals(&mut self) -> Result<Option<i32>, Failure> {
        for received in self.signals.read_pending()? {
            if received.signal == libc::SIGCHLD {
                if let Some(code) = reap_children(self.pid) {
                    return Ok(Some(code));
                }
                continue;
            }
            tracing::debug!(signal = %signal_name(received.signal), from = received.sender, "forwarding");
            self.send(received.signal);
            if arms_grace(received.signal) {
                if let Some(grace) = self.grace_period {
                    self.arm_kill(grace);
                }
            }
        }
        Ok(None)
    }

    /// Keep the earliest deadline: a second stop request never postpones the SIGKILL.
    fn arm_kill(&mut self, grace: Duration) {
        let at = Instant::now() + grace;
        self.kill_at = Some(self.kill_at.map_or(at, |earlier| earlier.min(at)));
    }

    fn kill_if_overdue(&mut self) {
        if self.kill_at.is_some_and(|at| Instant::now() >= at) {
            tracing::warn!("the workload outlived the grace period; sending SIGKILL");
            self.send(libc::SIGKILL);
            self.kill_at = None;
        }
    }

    /// Send `signal` to the workload, or to its process group in group mode. A workload that is
    /// already gone (ESRCH) is fine; if it left its group, it still gets the signal itself.
    fn send(&self, signal: i32) {
        if self.kill_process_group && send_signal(-self.pid, signal) {
            return;
        }
        send_signal(self.pid, signal);
    }
}

/// `kill(target, signal)`; false when nothing had that pid/pgid.
fn send_signal(target: libc::pid_t, signal: i32) -> bool {
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(target, signal) } == 0 {
        return true;
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::ESRCH) {
        tracing::warn!(target, signal = %signal_name(signal), %error, "could not send a signal");
    }
    false
}

/// Reap every exited child (SIGCHLDs coalesce, so never just one). `Some(code)` if `main` was
/// among them.
fn reap_children(main: libc::pid_t) -> Option<i32> {
    let mut main_code = None;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid out-pointer; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid == main {
            main_code = Some(exit_code(status));
        } else if pid > 0 {
            tracing::debug!(pid, "reaped an orphan");
        } else if pid == 0 {
            return main_code;
        } else {
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::ECHILD) => return main_code,
                _ => {
                    tracing::warn!(%error, "waitpid failed");
                    return main_code;
                }
            }
        }
    }
}

/// The shell convention: the exit status, or 128 + the signal that killed the process.
fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        tracing::warn!(status, "unexpected wait status");
        128
    }
}

fn internal(what: &str, error: &io::Error) -> Failure {
    Failure::Internal(format!("{what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(255 << 8), 255);
        assert_eq!(exit_code(libc::SIGKILL), 137);
        assert_eq!(exit_code(libc::SIGTERM), 143);
    }

    #[test]
    fn poll_timeout_rounds_up_and_never_waits_forever_with_a_deadline() {
        assert_eq!(poll_timeout(None), -1);
        let soon = Instant::now() + Duration::from_micros(10);
        assert!(poll_timeout(Some(soon)) <= 1);
        assert_eq!(poll_timeout(Some(Instant::now())), 0);
    }

    #[test]
    fn options_are_checked() {
        let options = RunOptions {
            start: StartPolicy::Concurrent,
            exec: true,
            kill_process_group: false,
            grace_period: None,
            command: vec!["true".into()],
            env: Vec::new(),
        };
        assert!(matches!(check_options(&options), Err(Failure::Usage(_))));
        let empty = RunOptions {
            command: Vec::new(),
            exec: false,
            ..options
        };
        assert!(matches!(check_options(&empty), Err(Failure::Usage(_))));
    }
}
