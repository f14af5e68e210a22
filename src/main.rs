//! `entitle`: parse the command line, set up logging, run the command, exit with its code.

use entitle::cli::{self, Command};
use entitle::config;
use entitle::exit::Failure;
use entitle::{check, install, logging, meter, seal, supervise, usage, verify};
use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = match cli::parse(args, &|name| std::env::var_os(name)) {
        Ok(command) => execute(command),
        Err(failure) => {
            eprintln!("entitle: {failure}");
            failure.exit_code()
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn execute(command: Command) -> i32 {
    let log_settings = match &command {
        Command::Help(text) => return print_and_succeed(text),
        Command::Version => {
            let version = format!(
                "entitle {} ({})\n",
                env!("CARGO_PKG_VERSION"),
                seal::status()
            );
            return print_and_succeed(&version);
        }
        Command::Check(options)
        | Command::Verify(options)
        | Command::Run(options, _)
        | Command::Meter(options) => options.log.clone(),
        Command::Seal(_)
        | Command::Inspect
        | Command::Install(_)
        | Command::Usage(_)
        | Command::Health(_) => Default::default(),
    };
    if let Err(failure) = logging::init(&log_settings) {
        eprintln!("entitle: {failure}");
        return failure.exit_code();
    }
    let visitor = matches!(command, Command::Usage(_) | Command::Health(_));
    match dispatch(command) {
        Ok(code) => code,
        Err(failure) => {
            logging::report(&failure, !visitor);
            failure.exit_code()
        }
    }
}

fn dispatch(command: Command) -> Result<i32, Failure> {
    let sealed = seal::own_seal()?;
    let seal = sealed.as_ref();
    let read_file = |path: &std::path::Path| std::fs::read_to_string(path);
    match command {
        Command::Check(options) => {
            let settings = config::check_settings(&options, &read_file, seal)?;
            supervise::interruptible(Box::new(move || check::check(&settings).map(|_| 0)))
        }
        Command::Meter(options) => {
            meter::sidecar(config::check_settings(&options, &read_file, seal)?)
        }
        Command::Usage(report) => usage::report(&report).map(|()| 0),
        Command::Health(url) => usage::health(&url).map(|()| 0),
        // Reading the token may wait on standard input: interruptible too.
        Command::Verify(options) => supervise::interruptible(Box::new(move || {
            let settings = config::verify_settings(&options, &read_file, sealed.as_ref())?;
            verify::offline(&settings.product, &settings.token, &settings.nonce).map(|_| 0)
        })),
        Command::Run(options, run) => {
            meter::run(config::check_settings(&options, &read_file, seal)?, run)
        }
        Command::Seal(request) => seal::seal_copy(&request, seal).map(|_| 0),
        Command::Inspect => seal::inspect(seal).map(|_| 0),
        Command::Install(folder) => install::install(&folder).map(|_| 0),
        Command::Help(_) | Command::Version => Ok(0),
    }
}

fn print_and_succeed(text: &str) -> i32 {
    print!("{text}");
    0
}
