//! `docker-hook`: the Docker CLI plugin. `docker hook create|inspect|ls|rm|run` are hookhost's
//! own commands; Docker's global flags (before `hook`) are kept for `run`.

use std::process::ExitCode;

use hookhost_engines::docker::plugin::{self, PluginCall};

const USAGE: &str = "Usage:  docker hook COMMAND

Manage container lifecycle hooks (hookhost)

Commands:
  create    Register a hook:  docker hook create --type prestart --args ls,/tmp/a myFirstHook /bin/ls
  inspect   Show hooks in detail
  ls        List hooks
  rm        Remove hooks
  run       Run a container with hooks:  docker hook run --add-hook myFirstHook busybox top

Run 'docker hook COMMAND --help' for more information on a command.";

/// Entry point when called as `docker-hook` (argv[0] included).
pub fn main(argv: Vec<String>) -> ExitCode {
    match plugin::parse(&argv[1.min(argv.len())..]) {
        PluginCall::Metadata => {
            println!("{}", plugin::metadata());
            ExitCode::SUCCESS
        }
        PluginCall::Hook { globals, args } => hook(globals, args),
        PluginCall::Unknown(_) => {
            eprintln!("docker-hook is a Docker CLI plugin: run it as `docker hook …`\n\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn hook(globals: Vec<String>, args: Vec<String>) -> ExitCode {
    let Some(command) = args.first() else {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    };
    let mut argv = vec!["docker hook".to_string(), command.clone()];
    match command.as_str() {
        "create" | "inspect" | "ls" | "list" | "rm" | "remove" => {}
        // Docker's global flags go to the docker this runs; after `--`, so that hookhost's
        // own --config and --log-level do not take them.
        "run" if !globals.is_empty() => {
            argv.push("--".into());
            argv.extend(globals);
        }
        "run" => {}
        "--help" | "-h" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("docker hook: unknown command {other:?}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    }
    argv.extend(args[1..].iter().cloned());
    super::main(argv)
}
