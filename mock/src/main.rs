use std::process::ExitCode;

use entitle_mock::cli::{self, Command, USAGE};
use entitle_mock::{server, signals};

fn main() -> ExitCode {
    signals::install();
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
