//! One binary, three names: `hookhost`, `hookhost-runtime` (the runc wrapper) and `docker-hook`
//! (the Docker CLI plugin).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    cli::main(argv)
}
