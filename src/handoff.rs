//! Handing control to the workload: its environment, a clean signal state, and `spawn` or `exec`.
//!
//! Rust's `Command` passes the parent's blocked signal mask to the child, and ours blocks
//! everything; the `pre_exec` hook below restores an empty mask and default dispositions.
//! Everything `entitle` opens itself is close-on-exec (Rust's default), so the workload gets only
//! the descriptors `entitle` inherited.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::exit::Failure;
use entitle_verify::Entitlement;

/// The variables the workload gets (gate and exec modes) so it can re-verify in-process.
pub const ENV_TOKEN: &str = "ENTITLE_TOKEN";
pub const ENV_NONCE: &str = "ENTITLE_NONCE";
pub const ENV_PRODUCT_CODE: &str = "ENTITLE_PRODUCT_CODE";

/// Exit code when the command does not exist (the shell's).
pub const NOT_FOUND: i32 = 127;
/// Exit code when the command exists but cannot be executed (the shell's).
pub const NOT_EXECUTABLE: i32 = 126;

/// The outcome of starting the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Running(libc::pid_t),
    /// Exec failed: 127 or 126, already logged.
    Failed(i32),
}

/// Start the workload as a child in its own process group (foreground of the terminal when stdin
/// is one). `entitlement` is `None` in concurrent mode (and for a product that is only metered): then inherited `ENTITLE_TOKEN` and
/// `ENTITLE_NONCE` are removed (an inherited `ENTITLE_PRODUCT_CODE` is configuration and stays).
pub fn spawn(
    command: &[OsString],
    env: &[(OsString, OsString)],
    entitlement: Option<&Entitlement>,
) -> Result<Started, Failure> {
    let mut child = build(command, env, entitlement)?;
    let reset = SignalReset::new();
    let hand_over_terminal = in_terminal_foreground();
    child.process_group(0);
    // SAFETY: the hook runs in the forked child before exec and only makes async-signal-safe
    // calls (getpgrp, tcsetpgrp, rt_sigaction, pthread_sigmask) on values prepared here; it
    // allocates nothing.
    unsafe {
        child.pre_exec(move || {
            if hand_over_terminal {
                take_terminal_foreground();
            }
            reset.apply()
        });
    }
    match child.spawn() {
        Ok(child) => {
            let pid = libc::pid_t::try_from(child.id())
                .map_err(|_| Failure::Internal("child pid out of range".into()))?;
            tracing::info!(pid, program = %display_program(command), "started the workload");
            Ok(Started::Running(pid))
        }
        Err(error) => Ok(Started::Failed(exec_failure(command, &error))),
    }
}

/// Replace `entitle` with the workload (same pid). Returns only if `execve` failed: 127 or 126,
/// already logged.
pub fn exec(
    command: &[OsString],
    env: &[(OsString, OsString)],
    entitlement: Option<&Entitlement>,
) -> i32 {
    let mut replacement = match build(command, env, entitlement) {
        Ok(replacement) => replacement,
        Err(failure) => {
            tracing::error!(%failure, "cannot exec the command");
            return NOT_EXECUTABLE;
        }
    };
    let reset = SignalReset::new();
    // SAFETY: the hook runs in this process right before execve, with only this thread left
    // (the registration worker has been joined); it only calls rt_sigaction and pthread_sigmask.
    unsafe {
        replacement.pre_exec(move || reset.apply());
    }
    tracing::info!(program = %display_program(command), "entitled; replacing entitle with the workload");
    let error = replacement.exec();
    // The hook has already cleared the mask: block again so nothing kills us before we report.
    let _ = block_all_signals();
    exec_failure(command, &error)
}

fn build(
    command: &[OsString],
    env: &[(OsString, OsString)],
    entitlement: Option<&Entitlement>,
) -> Result<Command, Failure> {
    let Some((program, args)) = command.split_first() else {
        return Err(Failure::Usage("no command to run".into()));
    };
    let mut built = Command::new(program);
    built.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    match entitlement {
        Some(entitlement) => {
            built
                .env(ENV_TOKEN, &entitlement.token)
                .env(ENV_NONCE, &entitlement.nonce)
                .env(ENV_PRODUCT_CODE, &entitlement.product_code);
        }
        None => {
            built.env_remove(ENV_TOKEN).env_remove(ENV_NONCE);
        }
    }
    Ok(built)
}

/// Map an exec error to 127 (not found) or 126 (cannot execute) and say which.
fn exec_failure(command: &[OsString], error: &io::Error) -> i32 {
    let program = display_program(command);
    if error.raw_os_error() != Some(libc::ENOENT) {
        tracing::error!(%program, %error, "cannot execute the command (exit 126)");
        return NOT_EXECUTABLE;
    }
    let has_slash = command
        .first()
        .is_some_and(|p| p.as_encoded_bytes().contains(&b'/'));
    if has_slash && command.first().is_some_and(|p| Path::new(p).exists()) {
        tracing::error!(%program, "cannot execute the command: its interpreter or loader was not found (exit 126)");
        return NOT_EXECUTABLE;
    }
    tracing::error!(%program, "command not found (exit 127)");
    NOT_FOUND
}

fn display_program(command: &[OsString]) -> String {
    command
        .first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Block every signal in this thread (and so in threads created after this).
pub fn block_all_signals() -> io::Result<()> {
    let all = full_signal_set();
    // SAFETY: `all` is an initialised sigset_t; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut()) };
    match rc {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Every signal (the C library leaves out the few it reserves for itself).
pub fn full_signal_set() -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises the whole set behind a valid pointer; it cannot fail then.
    unsafe {
        libc::sigfillset(set.as_mut_ptr());
        set.assume_init()
    }
}

/// Whether stdin is a terminal whose foreground process group is ours (`docker run -it`, or
/// `entitle` run in the foreground of an interactive shell). Only then does the workload's new
/// group take the foreground: never steal the terminal from a shell that put us in the background.
fn in_terminal_foreground() -> bool {
    // SAFETY: isatty, tcgetpgrp and getpgrp take plain integers.
    unsafe {
        libc::isatty(libc::STDIN_FILENO) == 1
            && libc::tcgetpgrp(libc::STDIN_FILENO) == libc::getpgrp()
    }
}

/// In the child, in its new process group and still with every signal blocked (the kernel treats
/// a blocked SIGTTOU like an ignored one, so `tcsetpgrp` from a background group cannot stop us):
/// make the group the terminal's foreground, so the workload can read the terminal and Ctrl-C /
/// Ctrl-Z reach it directly (once: `entitle` is no longer in the foreground group). Errors are
/// ignored, like tini does.
fn take_terminal_foreground() {
    // SAFETY: getpgrp and tcsetpgrp take plain integers and are async-signal-safe.
    unsafe {
        libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp());
    }
}

/// The kernel's `struct sigaction` for SIG_DFL: handler, flags, restorer and mask all zero. It is
/// at most four words on every Linux architecture, so four zero words cover each layout.
const KERNEL_DEFAULT_ACTION: [u64; 4] = [0; 4];
/// The kernel's sigset size (`_NSIG / 8`; 64 signals on x86_64 and aarch64).
const KERNEL_SIGSET_BYTES: libc::c_long = 8;

/// Default dispositions and an empty mask, prepared before fork so that applying it in the child
/// allocates nothing.
#[derive(Clone, Copy)]
struct SignalReset {
    empty: libc::sigset_t,
    last_signal: libc::c_int,
}

impl SignalReset {
    fn new() -> Self {
        let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole set behind a valid pointer.
        let empty = unsafe {
            libc::sigemptyset(empty.as_mut_ptr());
            empty.assume_init()
        };
        Self {
            empty,
            last_signal: libc::SIGRTMAX(),
        }
    }

    /// Every signal back to SIG_DFL, then an empty mask: dispositions first, so nothing pending
    /// meets an old one. The raw system call also resets the signals the C library keeps for
    /// itself (32 and 33, which its `sigaction` refuses), so an ignored one inherited from our own
    /// parent does not reach the workload; SIGKILL and SIGSTOP refuse, which is fine.
    fn apply(&self) -> io::Result<()> {
        for signal in 1..=self.last_signal {
            // SAFETY: rt_sigaction reads a kernel sigaction from a valid pointer (all zero: SIG_DFL)
            // and writes nothing (null old action); the size is the kernel's sigset size.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    libc::c_long::from(signal),
                    KERNEL_DEFAULT_ACTION.as_ptr(),
                    std::ptr::null_mut::<libc::c_void>(),
                    KERNEL_SIGSET_BYTES,
                )
            };
        }
        // SAFETY: `empty` is an initialised sigset_t; a null old-set pointer is allowed.
        let rc =
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.empty, std::ptr::null_mut()) };
        match rc {
            0 => Ok(()),
            errno => Err(io::Error::from_raw_os_error(errno)),
        }
    }
}
