//! Reading a runc command line as Docker, containerd, Podman and CRI-O pass it (DESIGN.md §3):
//! `<rt> [global flags] <command> [flags] <id> [args]`.
//!
//! runc parses with urfave/cli v1 on top of Go's `flag` package, so every flag may be written
//! `-name` or `--name`, with its value as `-name=V` or `-name V`; `--` ends the flags; command
//! flags may also follow the container id (urfave reorders them), except for `exec`, whose
//! arguments after the id belong to the process. Nothing here fails: the wrapper passes the
//! original argv through unchanged, so an unknown flag is read best-effort (as a boolean unless
//! written `--name=value`) and only what the wrapper needs is extracted.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What the wrapper needs to know about one runtime invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuncCall {
    /// `--root`: where the runtime keeps container state.
    pub root: Option<PathBuf>,
    /// `--log`: where errors must be written for containerd/Docker to show them.
    pub log: Option<PathBuf>,
    /// `--log-format`: `text` (runc's default) or `json`.
    pub log_format: Option<String>,
    /// The subcommand (`create`, `run`, `start`, `state`, `features`, …); `None` for `--version`.
    pub command: Option<String>,
    /// For the [`CREATING_COMMANDS`] only: the bundle directory, resolved against the working
    /// directory (absent or empty flag = the working directory, as runc does).
    pub bundle: Option<PathBuf>,
    /// The container id: the first positional argument after the subcommand.
    pub id: Option<String>,
    /// `-h`/`--help` was given (globally or to the subcommand), or the command is `help`:
    /// the runtime will only print help.
    pub help: bool,
    /// How many arguments precede the subcommand (the global flags), to call the runtime
    /// again with the same ones.
    pub globals: usize,
}

/// The runc commands that create a container from a bundle's config.json, and so run its
/// prestart/createRuntime/createContainer hooks (runc 1.1 `--help`): `restore` creates the
/// container it restores from the bundle, as `create` and `run` do.
pub const CREATING_COMMANDS: &[&str] = &["create", "run", "restore"];

/// Global flags that take a value (runc 1.1, plus crun's `--cgroup-manager` and `--log-level`).
const GLOBAL_VALUE_FLAGS: &[&str] = &[
    "root",
    "log",
    "log-format",
    "criu",
    "rootless",
    "cgroup-manager",
    "log-level",
];

/// Command flags that take a value, per command (runc 1.1 `<command> --help`; crun's
/// `create --config/-f` too). Everything else is read as a boolean.
fn value_flags(command: &str) -> &'static [&'static str] {
    match command {
        "create" | "run" => &[
            "bundle",
            "b",
            "console-socket",
            "pid-file",
            "preserve-fds",
            "config",
            "f",
        ],
        "exec" => &[
            "console-socket",
            "cwd",
            "env",
            "e",
            "user",
            "u",
            "additional-gids",
            "g",
            "process",
            "p",
            "pid-file",
            "process-label",
            "apparmor",
            "cap",
            "c",
            "preserve-fds",
            "cgroup",
        ],
        // runc 1.1 `restore --help`; its other flags (--tcp-established, --ext-unix-sk,
        // --shell-job, --file-locks, --detach/-d, --no-subreaper, --no-pivot, --auto-dedup,
        // --lazy-pages) are booleans. crun's restore takes the same value flags.
        "restore" => &[
            "bundle",
            "b",
            "console-socket",
            "pid-file",
            "image-path",
            "work-path",
            "manage-cgroups-mode",
            "empty-ns",
            "lsm-profile",
            "lsm-mount-context",
        ],
        "checkpoint" => &[
            "image-path",
            "work-path",
            "parent-path",
            "page-server",
            "manage-cgroups-mode",
            "empty-ns",
            "status-fd",
        ],
        "update" => &[
            "resources",
            "r",
            "blkio-weight",
            "cpu-period",
            "cpu-quota",
            "cpu-share",
            "cpu-rt-period",
            "cpu-rt-runtime",
            "cpuset-cpus",
            "cpuset-mems",
            "kernel-memory",
            "kernel-memory-tcp",
            "memory",
            "memory-reservation",
            "memory-swap",
            "pids-limit",
            "l3-cache-schema",
            "mem-bw-schema",
            "cpu-idle",
        ],
        "events" => &["interval"],
        "ps" | "list" => &["format", "f"],
        "spec" => &["bundle", "b"],
        _ => &[],
    }
}

enum Token<'a> {
    /// `-name`, `--name`, `-name=value`, `--name=value`. `name` is `None` when not UTF-8.
    Flag {
        name: Option<&'a str>,
        inline: Option<&'a OsStr>,
    },
    /// `--`: everything after it is positional.
    EndOfFlags,
    Positional(&'a OsStr),
}

fn classify(arg: &OsStr) -> Token<'_> {
    let bytes = arg.as_bytes();
    if bytes == b"--" {
        return Token::EndOfFlags;
    }
    if bytes.len() < 2 || bytes[0] != b'-' {
        return Token::Positional(arg);
    }
    let body = bytes.strip_prefix(b"--").unwrap_or(&bytes[1..]);
    let (name, inline) = match body.iter().position(|b| *b == b'=') {
        Some(eq) => (&body[..eq], Some(OsStr::from_bytes(&body[eq + 1..]))),
        None => (body, None),
    };
    Token::Flag {
        name: std::str::from_utf8(name).ok(),
        inline,
    }
}

fn is_help(name: Option<&str>) -> bool {
    matches!(name, Some("h" | "help"))
}

impl RuncCall {
    /// Parses the arguments after argv[0]. `cwd` resolves the bundle.
    pub fn parse<S: AsRef<OsStr>>(args: &[S], cwd: &Path) -> RuncCall {
        let args: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
        let mut call = RuncCall::default();
        let rest = call.parse_globals(&args);
        call.globals = args.len() - rest.len();
        let Some((command, rest)) = rest.split_first() else {
            return call;
        };
        let command = command.to_string_lossy().into_owned();
        let bundle = call.parse_command(&command, rest);
        if CREATING_COMMANDS.contains(&command.as_str()) {
            call.bundle = Some(resolve_bundle(bundle, cwd));
        }
        call.help |= command == "help" || command == "h";
        call.command = Some(command);
        call
    }

    /// Whether this call creates a container, so that hooks must be injected first.
    pub fn creates_container(&self) -> bool {
        self.command
            .as_deref()
            .is_some_and(|c| CREATING_COMMANDS.contains(&c))
            && !self.help
    }

    /// Reads global flags up to the subcommand; returns the subcommand and what follows it.
    fn parse_globals<'a>(&mut self, args: &'a [&'a OsStr]) -> &'a [&'a OsStr] {
        let mut i = 0;
        while let Some(arg) = args.get(i) {
            i += 1;
            let (name, inline) = match classify(arg) {
                Token::EndOfFlags => break,
                Token::Positional(_) => return &args[i - 1..],
                Token::Flag { name, inline } => (name, inline),
            };
            self.help |= is_help(name);
            let Some(name) = name.filter(|n| GLOBAL_VALUE_FLAGS.contains(n)) else {
                continue;
            };
            let value = inline.or_else(|| {
                i += 1;
                args.get(i - 1).copied()
            });
            if let Some(value) = value {
                self.set_global(name, value);
            }
        }
        &args[i.min(args.len())..]
    }

    fn set_global(&mut self, name: &str, value: &OsStr) {
        match name {
            "root" => self.root = Some(value.into()),
            "log" => self.log = Some(value.into()),
            "log-format" => self.log_format = Some(value.to_string_lossy().into_owned()),
            _ => {}
        }
    }

    /// Reads the subcommand's flags and the container id; returns the raw bundle flag value.
    fn parse_command(&mut self, command: &str, args: &[&OsStr]) -> Option<OsString> {
        let values = value_flags(command);
        let mut bundle = None;
        let mut flags_done = false;
        let mut i = 0;
        while let Some(arg) = args.get(i) {
            i += 1;
            let token = if flags_done {
                Token::Positional(arg)
            } else {
                classify(arg)
            };
            match token {
                Token::EndOfFlags => flags_done = true,
                Token::Positional(p) => {
                    if self.id.is_none() {
                        self.id = Some(p.to_string_lossy().into_owned());
                        // exec: the rest is the process's command line, not runc flags.
                        flags_done |= command == "exec";
                    }
                }
                Token::Flag { name, inline } => {
                    self.help |= is_help(name) && !flags_done;
                    let Some(name) = name.filter(|n| values.contains(n)) else {
                        continue;
                    };
                    let value = inline.or_else(|| {
                        i += 1;
                        args.get(i - 1).copied()
                    });
                    if name == "bundle" || name == "b" {
                        bundle = value.map(OsStr::to_os_string);
                    }
                }
            }
        }
        bundle
    }
}

/// runc changes into the bundle when the flag is non-empty and reads `config.json` there.
fn resolve_bundle(bundle: Option<OsString>, cwd: &Path) -> PathBuf {
    match bundle {
        Some(b) if !b.is_empty() => cwd.join(b),
        _ => cwd.to_path_buf(),
    }
}

/// The container ids runc accepts, in words, for the message that refuses another.
pub const ID_RULE: &str = "runc accepts only ASCII letters, digits, '_', '+', '-' and '.', \
    and neither \".\" nor \"..\"";

/// Whether runc accepts `id` as a container id (libcontainer's `validateID`, runc ≥ 1.2: one
/// or more ASCII letters, digits, `_`, `+`, `-` and `.`, and not a name that cleans to another
/// path: `.` or `..`; runc 1.1's regex also let `,` through). The wrapper checks it before any
/// hook runs: a hook's run is recorded under the id, and runc would refuse it only after.
pub fn is_valid_id(id: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.');
    !id.is_empty() && id != "." && id != ".." && id.bytes().all(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CWD: &str = "/work/here";

    #[test]
    fn container_ids_follow_runcs_rule() {
        for ok in ["a", "abc123", "A_b+c-d.e", "...", ".a", "a..b", "0"] {
            assert!(is_valid_id(ok), "{ok:?}");
        }
        let long = "x".repeat(1024);
        assert!(is_valid_id(&long));
        for bad in [
            "", ".", "..", "a/b", "../x", "a b", "a\nb", "x\x1b[2J", "é", "a,b", "a:b", "\u{fffd}",
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }

    fn parse(line: &str) -> RuncCall {
        let args: Vec<&str> = line.split_whitespace().collect();
        RuncCall::parse(&args, Path::new(CWD))
    }

    fn bundle(line: &str) -> PathBuf {
        parse(line).bundle.expect("bundle for create/run/restore")
    }

    #[test]
    fn docker_create_start_delete() {
        let g = "--root /var/run/docker/runtime-runc/moby --log /b/log.json --log-format json";
        let c = parse(&format!(
            "{g} create --bundle /b --pid-file /b/init.pid abc123"
        ));
        assert_eq!(
            c.root.as_deref(),
            Some(Path::new("/var/run/docker/runtime-runc/moby"))
        );
        assert_eq!(c.log.as_deref(), Some(Path::new("/b/log.json")));
        assert_eq!(c.log_format.as_deref(), Some("json"));
        assert_eq!(c.command.as_deref(), Some("create"));
        assert_eq!(c.bundle.as_deref(), Some(Path::new("/b")));
        assert_eq!(c.id.as_deref(), Some("abc123"));
        assert!(c.creates_container());

        let s = parse(&format!("{g} start abc123"));
        assert_eq!(
            (s.command.as_deref(), s.id.as_deref()),
            (Some("start"), Some("abc123"))
        );
        assert_eq!(s.bundle, None);
        assert!(!s.creates_container());
        assert_eq!(s.log.as_deref(), Some(Path::new("/b/log.json")));

        let d = parse(&format!("{g} delete --force abc123"));
        assert_eq!(
            (d.command.as_deref(), d.id.as_deref()),
            (Some("delete"), Some("abc123"))
        );
    }

    #[test]
    fn bundle_in_every_form() {
        for form in [
            "--bundle /b",
            "--bundle=/b",
            "-b /b",
            "-b=/b",
            "-bundle /b",
            "--b /b",
        ] {
            assert_eq!(
                bundle(&format!("create {form} id")),
                Path::new("/b"),
                "{form}"
            );
            assert_eq!(
                parse(&format!("create {form} id")).id.as_deref(),
                Some("id"),
                "{form}"
            );
        }
        // Flags may follow the id (urfave/cli reorders them).
        assert_eq!(bundle("create id --bundle /b"), Path::new("/b"));
        assert_eq!(parse("create id -b /b").id.as_deref(), Some("id"));
    }

    #[test]
    fn bundle_defaults_to_and_resolves_against_the_working_directory() {
        assert_eq!(bundle("create id"), Path::new(CWD));
        assert_eq!(bundle("run id"), Path::new(CWD));
        assert_eq!(bundle("create --bundle= id"), Path::new(CWD));
        assert_eq!(
            bundle("create -b rel/dir id"),
            Path::new("/work/here/rel/dir")
        );
    }

    #[test]
    fn restore_creates_a_container_from_its_bundle() {
        for form in ["--bundle /b", "--bundle=/b", "-b /b", "-b=/b", "-bundle=/b"] {
            let c = parse(&format!("--root /r restore --image-path /img {form} id"));
            assert_eq!(c.command.as_deref(), Some("restore"), "{form}");
            assert_eq!(c.bundle.as_deref(), Some(Path::new("/b")), "{form}");
            assert_eq!(c.id.as_deref(), Some("id"), "{form}");
            assert!(c.creates_container(), "{form}");
        }
        assert_eq!(bundle("restore id"), Path::new(CWD));
        assert_eq!(bundle("restore -b rel id"), Path::new("/work/here/rel"));
        assert_eq!(bundle("restore id --bundle /b"), Path::new("/b"));
        assert!(parse("restore --help").help);
        assert!(!parse("restore -h id").creates_container());
        // checkpoint runs no creation hooks.
        assert!(!parse("checkpoint --image-path /img id").creates_container());
    }

    #[test]
    fn restore_option_values_are_never_the_id() {
        // Every value-taking flag of runc 1.1's restore, each in both spellings.
        let flags = [
            "console-socket",
            "image-path",
            "work-path",
            "manage-cgroups-mode",
            "pid-file",
            "empty-ns",
            "lsm-profile",
            "lsm-mount-context",
        ];
        for flag in flags {
            for line in [
                format!("restore --{flag} VALUE -b /b ctr"),
                format!("restore -{flag}=VALUE --bundle=/b ctr"),
                format!("restore -b /b ctr --{flag} VALUE"),
            ] {
                let c = parse(&line);
                assert_eq!(c.id.as_deref(), Some("ctr"), "{line}");
                assert_eq!(c.bundle.as_deref(), Some(Path::new("/b")), "{line}");
            }
        }
        // The boolean flags take no value: what follows them is the id.
        let c = parse(
            "restore --tcp-established --ext-unix-sk --shell-job --file-locks -d --detach              --no-subreaper --no-pivot --auto-dedup --lazy-pages ctr",
        );
        assert_eq!(
            (c.id.as_deref(), c.bundle.as_deref()),
            (Some("ctr"), Some(Path::new(CWD)))
        );
        // As containerd's runc shim calls it.
        let c = parse(
            "--root /run/containerd/runc/default --log /b/log.json --log-format json restore              --detach --work-path /b/work --image-path /b/image --bundle /b              --pid-file /b/init.pid --manage-cgroups-mode soft --console-socket /t.sock c1",
        );
        assert_eq!(c.bundle.as_deref(), Some(Path::new("/b")));
        assert_eq!(c.id.as_deref(), Some("c1"));
        assert!(c.creates_container());
    }

    #[test]
    fn global_flags_in_both_forms() {
        let c =
            parse("--root=/r --log=/l.json --log-format=text --debug --systemd-cgroup create id");
        assert_eq!(c.root.as_deref(), Some(Path::new("/r")));
        assert_eq!(c.log.as_deref(), Some(Path::new("/l.json")));
        assert_eq!(c.log_format.as_deref(), Some("text"));
        assert_eq!(c.command.as_deref(), Some("create"));
        // Value-taking globals consume their value, which must not be read as the command.
        let c = parse("--criu /usr/sbin/criu --rootless true -root /r run -d id");
        assert_eq!(c.command.as_deref(), Some("run"));
        assert_eq!(c.root.as_deref(), Some(Path::new("/r")));
        assert_eq!(c.id.as_deref(), Some("id"));
        // crun's extra globals.
        let c = parse("--cgroup-manager systemd --log-level debug create --bundle /b id");
        assert_eq!(
            (c.command.as_deref(), c.bundle.as_deref()),
            (Some("create"), Some(Path::new("/b")))
        );
    }

    #[test]
    fn create_and_run_flags_with_and_without_values() {
        let c = parse(
            "create --console-socket /s.sock --pid-file /p --preserve-fds 2 --no-pivot \
             --no-new-keyring -b /b id",
        );
        assert_eq!(
            (c.bundle.as_deref(), c.id.as_deref()),
            (Some(Path::new("/b")), Some("id"))
        );
        let r = parse("run -d --detach --keep --no-subreaper --pid-file=/p --bundle /b id");
        assert_eq!(
            (r.bundle.as_deref(), r.id.as_deref()),
            (Some(Path::new("/b")), Some("id"))
        );
        let r = parse("run --detach=false --bundle /b id");
        assert_eq!(r.id.as_deref(), Some("id"));
    }

    #[test]
    fn engine_command_lines() {
        let podman = parse(
            "--root /run/runc --systemd-cgroup --log-format=json --log=/x/oci-log create \
             --bundle /x/userdata --pid-file /x/pidfile --no-new-keyring ctr1",
        );
        assert_eq!(podman.bundle.as_deref(), Some(Path::new("/x/userdata")));
        assert_eq!(podman.id.as_deref(), Some("ctr1"));
        assert_eq!(podman.log.as_deref(), Some(Path::new("/x/oci-log")));
        let containerd = parse(
            "--root /run/containerd/runc/k8s.io --log /b/log.json --log-format json \
             --systemd-cgroup create --bundle /b --pid-file /b/init.pid --console-socket /t.sock c1",
        );
        assert_eq!(containerd.bundle.as_deref(), Some(Path::new("/b")));
        assert_eq!(containerd.id.as_deref(), Some("c1"));
    }

    #[test]
    fn version_features_state_kill_exec() {
        for v in ["--version", "-v"] {
            let c = parse(v);
            assert_eq!((c.command, c.id, c.bundle), (None, None, None), "{v}");
        }
        let f = parse("features");
        assert_eq!(
            (f.command.as_deref(), f.id, f.bundle),
            (Some("features"), None, None)
        );
        let s = parse("--root /r state abc");
        assert_eq!(
            (s.command.as_deref(), s.id.as_deref()),
            (Some("state"), Some("abc"))
        );
        let k = parse("kill --all abc 9");
        assert_eq!(
            (k.command.as_deref(), k.id.as_deref()),
            (Some("kill"), Some("abc"))
        );
        let e = parse("exec --process /p.json -e A=B --cwd / abc sh --bundle /x");
        assert_eq!(
            (e.command.as_deref(), e.id.as_deref()),
            (Some("exec"), Some("abc"))
        );
        assert_eq!(e.bundle, None);
        assert!(
            !parse("exec abc sh --help").help,
            "--help after the id belongs to the process"
        );
        assert_eq!(parse("update --memory 100M abc").id.as_deref(), Some("abc"));
    }

    #[test]
    fn unknown_flags_never_fail() {
        let c = parse("--made-up create --weird --also=x --bundle /b id");
        assert_eq!(c.command.as_deref(), Some("create"));
        assert_eq!(
            (c.bundle.as_deref(), c.id.as_deref()),
            (Some(Path::new("/b")), Some("id"))
        );
        let c = parse("--made-up=value run id");
        assert_eq!(c.command.as_deref(), Some("run"));
        assert_eq!(parse(""), RuncCall::default());
        assert_eq!(parse("create").id, None);
        // A value flag at the very end simply has no value.
        assert_eq!(bundle("create id --bundle"), Path::new(CWD));
    }

    #[test]
    fn end_of_flags_and_help() {
        let c = parse("create --bundle /b -- -id-with-dash");
        assert_eq!(c.id.as_deref(), Some("-id-with-dash"));
        for line in [
            "create --help",
            "create -h id",
            "--help create",
            "help create",
            "-h",
        ] {
            assert!(parse(line).help, "{line}");
            assert!(!parse(line).creates_container(), "{line}");
        }
    }

    #[test]
    fn non_utf8_paths_are_kept_exactly() {
        let raw = OsStr::from_bytes(b"/bundles/\xff\xfe");
        let args = [
            OsStr::new("create"),
            OsStr::new("-b"),
            raw,
            OsStr::new("id"),
        ];
        let c = RuncCall::parse(&args, Path::new(CWD));
        assert_eq!(c.bundle.unwrap().as_os_str(), raw);
        let mut eq = b"--bundle=".to_vec();
        eq.extend_from_slice(raw.as_bytes());
        let args = [
            OsStr::new("create"),
            OsStr::from_bytes(&eq),
            OsStr::new("id"),
        ];
        assert_eq!(
            RuncCall::parse(&args, Path::new(CWD))
                .bundle
                .unwrap()
                .as_os_str(),
            raw
        );
    }
}
