//! Reading Docker CLI command lines: the global flags (which `hookhost run` and the plugin pass
//! on to `docker`), and where `docker run`'s options end and IMAGE begins.

/// Docker CLI global flags that take a value, normalised to their long names.
const GLOBAL_VALUE: &[(&str, &str)] = &[
    ("--config", "--config"),
    ("-c", "--context"),
    ("--context", "--context"),
    ("-H", "--host"),
    ("--host", "--host"),
    ("-l", "--log-level"),
    ("--log-level", "--log-level"),
    ("--tlscacert", "--tlscacert"),
    ("--tlscert", "--tlscert"),
    ("--tlskey", "--tlskey"),
];

/// Docker CLI global boolean flags.
const GLOBAL_BOOL: &[(&str, &str)] = &[
    ("-D", "--debug"),
    ("--debug", "--debug"),
    ("--tls", "--tls"),
    ("--tlsverify", "--tlsverify"),
];

/// Global flags that `docker run` cannot mean otherwise (`-c` and `-l` are run flags there).
const GLOBAL_IN_RUN: &[&str] = &[
    "--config",
    "--context",
    "-H",
    "--host",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
    "-D",
    "--debug",
    "--tls",
    "--tlsverify",
];

/// `docker run` boolean flags; every other flag takes a value.
const RUN_BOOL_LONG: &[&str] = &[
    "--detach",
    "--interactive",
    "--tty",
    "--rm",
    "--privileged",
    "--init",
    "--publish-all",
    "--read-only",
    "--no-healthcheck",
    "--oom-kill-disable",
    "--disable-content-trust",
    "--quiet",
    "--help",
    "--sig-proxy",
    "--use-api-socket",
];
const RUN_BOOL_SHORT: &str = "ditPq";

/// If `arg` is a global flag, its normalised long name and whether it takes a value.
fn global(arg: &str) -> Option<(&'static str, bool)> {
    let name = arg.split_once('=').map_or(arg, |(n, _)| n);
    let inline = arg.contains('=');
    if let Some((_, long)) = GLOBAL_VALUE.iter().find(|(n, _)| *n == name) {
        return Some((long, !inline));
    }
    GLOBAL_BOOL
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, long)| (*long, false))
}

/// Splits `[globals…] REST…`: the leading Docker global flags (normalised to long names, with
/// their values) and what follows them.
pub fn split_globals(args: &[String]) -> (Vec<String>, &[String]) {
    let mut globals = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let Some((long, takes_value)) = global(arg) else {
            break;
        };
        let inline = arg.split_once('=').map(|(_, v)| v);
        match inline {
            Some(value) => globals.push(format!("{long}={value}")),
            None => globals.push(long.to_string()),
        }
        if takes_value && let Some(value) = args.get(i + 1) {
            globals.push(value.clone());
            i += 1;
        }
        i += 1;
    }
    (globals, &args[i..])
}

/// A `docker run` command line taken apart.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RunLine {
    /// Docker global flags found among the options (`-H`, `--context`, …).
    pub globals: Vec<String>,
    /// Values of the flags asked for by the caller (e.g. `--add-hook`), in order.
    pub taken: Vec<(String, String)>,
    /// `docker run` options, then IMAGE and the command, in order.
    pub run_args: Vec<String>,
    /// Index of IMAGE in `run_args`, if there is one.
    pub image_at: Option<usize>,
}

/// Reads `docker run` options up to IMAGE, taking out the flags named in `take` (each with a
/// value, `--flag V` or `--flag=V`) and Docker's global flags. Everything from IMAGE on is
/// left as it is.
pub fn split_run(args: &[String], take: &[&str]) -> Result<RunLine, String> {
    let mut line = RunLine::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let name = arg.split_once('=').map_or(arg.as_str(), |(n, _)| n);
        let inline = arg.split_once('=').map(|(_, v)| v.to_string());
        if arg == "--" || !arg.starts_with('-') || arg == "-" {
            let from = if arg == "--" { 1 } else { 0 };
            let rest: Vec<String> = std::iter::once(arg.clone()).chain(iter.cloned()).collect();
            line.image_at = (rest.len() > from).then_some(line.run_args.len() + from);
            line.run_args.extend(rest);
            break;
        }
        if let Some(flag) = take.iter().find(|t| **t == name) {
            let value = match inline {
                Some(v) => v,
                None => iter
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))?,
            };
            line.taken.push((flag.to_string(), value));
            continue;
        }
        if GLOBAL_IN_RUN.contains(&name) {
            let (long, takes_value) = global(arg).expect("a global flag");
            line.globals.push(match &inline {
                Some(v) => format!("{long}={v}"),
                None => long.to_string(),
            });
            if takes_value {
                let value = iter.next().ok_or_else(|| format!("{name} needs a value"))?;
                line.globals.push(value.clone());
            }
            continue;
        }
        line.run_args.push(arg.clone());
        if inline.is_none() && run_flag_takes_value(arg) {
            let value = iter.next().ok_or_else(|| format!("{arg} needs a value"))?;
            line.run_args.push(value.clone());
        }
    }
    Ok(line)
}

/// Whether a `docker run` flag written without `=` consumes the next argument.
fn run_flag_takes_value(arg: &str) -> bool {
    if let Some(long) = arg.strip_prefix("--") {
        return !RUN_BOOL_LONG.contains(&format!("--{long}").as_str());
    }
    // A short cluster (`-it`, `-dp`, `-e`): the first value flag takes the rest of the cluster,
    // or the next argument when it is last.
    let cluster = &arg[1..];
    match cluster
        .char_indices()
        .find(|(_, c)| !RUN_BOOL_SHORT.contains(*c))
    {
        Some((at, c)) => at + c.len_utf8() == cluster.len(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn globals_before_the_plugin_name() {
        let args = v(&["-H", "unix:///s", "--debug", "-c=ctx", "hook", "ls"]);
        let (globals, rest) = split_globals(&args);
        assert_eq!(
            globals,
            v(&["--host", "unix:///s", "--debug", "--context=ctx"])
        );
        assert_eq!(rest, v(&["hook", "ls"]));
    }

    #[test]
    fn run_options_image_and_command() {
        let args = v(&[
            "-d",
            "--add-hook",
            "a:[\"x\"]",
            "-e",
            "A=1",
            "-it",
            "--name=n",
            "-H",
            "unix:///s",
            "--add-hook=b",
            "-v",
            "/h:/c",
            "--rm",
            "busybox",
            "top",
            "--add-hook",
            "c",
        ]);
        let line = split_run(&args, &["--add-hook", "--hook-spec"]).unwrap();
        assert_eq!(
            line.taken,
            vec![
                ("--add-hook".into(), "a:[\"x\"]".into()),
                ("--add-hook".into(), "b".into())
            ]
        );
        assert_eq!(line.globals, v(&["--host", "unix:///s"]));
        assert_eq!(
            line.run_args,
            v(&[
                "-d",
                "-e",
                "A=1",
                "-it",
                "--name=n",
                "-v",
                "/h:/c",
                "--rm",
                "busybox",
                "top",
                "--add-hook",
                "c"
            ])
        );
        assert_eq!(line.image_at, Some(8));
    }

    #[test]
    fn short_clusters_and_missing_values() {
        assert!(run_flag_takes_value("-e"));
        assert!(!run_flag_takes_value("-eA=1"));
        assert!(!run_flag_takes_value("-dit"));
        assert!(run_flag_takes_value("-itp"));
        assert!(!run_flag_takes_value("--rm"));
        assert!(run_flag_takes_value("--network"));
        let err = split_run(&v(&["--add-hook"]), &["--add-hook"]).unwrap_err();
        assert!(err.contains("--add-hook needs a value"), "{err}");
        let line = split_run(&v(&["--rm"]), &[]).unwrap();
        assert_eq!(line.image_at, None);
    }
}
