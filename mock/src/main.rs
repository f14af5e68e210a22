use std::process::ExitCode;

use entitle_mock::cli::{self, Command, USAGE};
use entitle_mock::server;

fn main() -> ExitCode {
    exit_on_signals();
    let opts = match cli::parse(lexopt::Parser::from_env()) {
        Ok(Command::Run(opts)) => opts,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("entitle-mock {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("entitle-mock: {e} (see --help)");
            return ExitCode::from(64);
        }
    };
    match server::run(*opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => {
            eprintln!("entitle-mock: {}", fatal.message);
            ExitCode::from(fatal.code)
        }
    }
}

/// As PID 1 in a container, TERM and INT would be ignored without a handler.
fn exit_on_signals() {
    extern "C" fn on_signal(_: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(0) }
    }
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: installs a handler that only calls an async-signal-safe function.
        unsafe {
            libc::signal(
                signal,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}
