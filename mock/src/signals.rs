//! SIGTERM and SIGINT. As PID 1 in a container they would be ignored without a handler. Until
//! the mock serves, the handler ends the process at once; once it serves, the handler writes a
//! byte to a pipe so that the main thread can print the MeterUsage totals, then exit 0.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The pipe's write end, or -1 while nothing waits for it.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Installs the handler; call first thing in `main`.
pub fn install() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only touches lock-free atomics and calls write and _exit, all
        // async-signal-safe.
        unsafe {
            libc::signal(
                signal,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    // A second signal, or one before anything waits, ends the process at once.
    if fd < 0 || SIGNALLED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(0) }
    }
    let byte = 1u8;
    // SAFETY: one byte from a live local to the pipe's write end, which is never closed.
    let written = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    if written != 1 {
        // SAFETY: as above.
        unsafe { libc::_exit(0) }
    }
}

/// The read end of the signal pipe, once armed.
pub struct Shutdown {
    read_fd: Option<libc::c_int>,
}

/// From now on a signal is reported to [`Shutdown::wait`] instead of ending the process. If no
/// pipe can be made, signals keep ending the process at once.
pub fn arm() -> Shutdown {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Shutdown { read_fd: None };
    }
    for fd in fds {
        // SAFETY: fd was just opened by pipe; FD_CLOEXEC keeps it out of any child.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    PIPE_WRITE.store(fds[1], Ordering::SeqCst);
    Shutdown {
        read_fd: Some(fds[0]),
    }
}

impl Shutdown {
    /// Blocks until SIGTERM or SIGINT arrives.
    pub fn wait(&self) {
        if let Some(fd) = self.read_fd {
            let mut byte = 0u8;
            loop {
                // SAFETY: reads one byte into a live local from the pipe's read end.
                let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
                if n == 1 {
                    return;
                }
                if n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                break;
            }
        }
        // The pipe is unusable: let the handler end the process by itself.
        PIPE_WRITE.store(-1, Ordering::SeqCst);
        loop {
            std::thread::park();
        }
    }
}
