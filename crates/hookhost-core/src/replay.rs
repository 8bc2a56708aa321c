//! Replayable records of WASM hook runs, and `hookhost replay`.
//!
//! Next to each WASM run's audit event, a stage appends a [`Record`] keyed by the event's id
//! to `ROOT/replay/records.jsonl` (directory 0700, file 0600): what the run was given (the
//! stage input, args, the environment's names and sha256 — values only when the config's
//! `replay.keepEnvValues` allows —, the module's digest, its limits), what it read besides
//! (clock values, random bytes, the granted files it opened: [`hookhost_exec::wasm::Tape`]),
//! and what it did (exit or stop, output, fuel). The file is bounded like the audit trail: two
//! generations of half of `replay.maxSize` each, the oldest dropped first.
//!
//! [`replay`] runs a record again in a scratch sandbox: its granted directories rebuilt from
//! the record in a temporary directory (read-only grants read-only; writable ones as scratch
//! copies), clocks and random numbers fed back from the record, the real granted files never
//! touched; it reports whether the run was identical (same exit, same output, same fuel), or
//! how it differed. [`regress`] does so for every recorded run of a hook in a window, with a
//! candidate module.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use hookhost_exec::fs::sha256_hex;
use hookhost_exec::limits::WasmLimits;
use hookhost_exec::wasm::{self, Capture, CompileLimits, Preopen, Tape, WasmError, WasmInvocation};
use hookhost_hooks::config::ReplaySettings;
use hookhost_hooks::hook::Stage;
use hookhost_hooks::paths::Paths;
use hookhost_types::STAGE_ENV;

use crate::events::{self, Event};
use crate::plan::PlannedHook;
use crate::run::{ExecError, WasmRun};

/// The records' directory under the registry root.
const DIR: &str = "replay";

/// The records' file in it.
const FILE: &str = "records.jsonl";

/// The verdict of a run the container went on with.
pub const ALLOWED: &str = "allowed";

/// The version of the record format.
const VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("cannot {action} the replay records {}", file.display())]
    Io {
        action: &'static str,
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "no replay record of event {id} (only WASM runs are recorded, while `replay` is enabled \
         in hookhost's config; the oldest records are dropped past `replay.maxSize`)"
    )]
    Missing { id: String },
    #[error("the replay record of event {id} is corrupt")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot rebuild the granted files of event {id} in a scratch directory")]
    Sandbox {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot run event {id}'s hook again")]
    Run {
        id: String,
        #[source]
        source: WasmError,
    },
    #[error(
        "the replay record of event {id} takes {size} bytes, more than half of replay.maxSize \
         ({max_size} bytes) allows: raise replay.maxSize in hookhost's config file"
    )]
    TooLarge {
        id: String,
        size: u64,
        max_size: u64,
    },
    #[error("cannot read the candidate module {}", path.display())]
    Candidate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot compile the candidate module {}", path.display())]
    Compile {
        path: PathBuf,
        #[source]
        source: WasmError,
    },
}

/// Bytes as a record keeps them: text when they are UTF-8, else hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bytes {
    Text(String),
    Hex { hex: String },
}

impl Bytes {
    pub fn new(bytes: &[u8]) -> Bytes {
        match std::str::from_utf8(bytes) {
            Ok(text) => Bytes::Text(text.to_string()),
            Err(_) => Bytes::Hex {
                hex: hex::encode(bytes),
            },
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Bytes::Text(text) => text.as_bytes().to_vec(),
            Bytes::Hex { hex } => hex::decode(hex).unwrap_or_default(),
        }
    }
}

/// One variable of the hook's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub sha256: String,
    /// The value, when the config allows keeping it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A granted directory of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub guest: String,
    pub writable: bool,
}

/// How a run ended, as a record keeps it and a replay compares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ending {
    /// The exit code, when the guest ended by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// What stopped it (a limit, a trap) or kept it from running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    pub stdout: Bytes,
    pub stderr: Bytes,
    pub fuel_used: u64,
}

impl Ending {
    /// A run stopped by `stop` (a limit, a trap, or what kept it from running).
    fn stopped(stop: String, fuel_used: u64) -> Ending {
        Ending {
            exit: None,
            stop: Some(stop),
            stdout: Bytes::Text(String::new()),
            stderr: Bytes::Text(String::new()),
            fuel_used,
        }
    }

    /// [`ALLOWED`] (exit 0) or `refused` (anything else), as a container sees it.
    pub fn verdict(&self) -> &'static str {
        match (self.exit, &self.stop) {
            (Some(0), None) => ALLOWED,
            _ => events::Verdict::Refused.as_str(),
        }
    }
}

/// A replayable record of one WASM run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The run's event id (first, so that a lookup reads no other field).
    pub id: String,
    pub version: u32,
    pub time: DateTime<Utc>,
    pub container: String,
    pub stage: Stage,
    pub hook: String,
    /// The module's sha256.
    pub module: String,
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
    /// What the hook got on stdin: the OCI state (at precreate: the config.json).
    pub input: Bytes,
    pub grants: Vec<Grant>,
    pub limits: WasmLimits,
    pub timeout_ms: u64,
    /// How much of its stdout and of its stderr was kept (at precreate: a whole config).
    pub output_limit: usize,
    pub ending: Ending,
    /// `refused` when the run exited 0 but what it returned was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<events::Verdict>,
    pub tape: Tape,
    /// What makes the run not exactly replayable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inexact: Vec<String>,
}

impl Record {
    /// The record of the run `event` tells, given `given`, that ended as `result`.
    pub fn new(
        event: &Event,
        input: &[u8],
        given: &WasmRun,
        result: &Result<hookhost_exec::Outcome, ExecError>,
        keep_env_values: bool,
    ) -> Record {
        let env = given
            .env
            .iter()
            .map(|(name, value)| EnvVar {
                name: name.clone(),
                sha256: sha256_hex(value.as_bytes()),
                value: keep_env_values.then(|| value.clone()),
            })
            .collect();
        let ending = match result {
            Ok(out) => Ending {
                exit: match out.exit {
                    hookhost_exec::Exit::Code(code) => Some(code),
                    hookhost_exec::Exit::Signal(_) => None,
                },
                stop: None,
                stdout: Bytes::new(&out.stdout),
                stderr: Bytes::new(&out.stderr),
                fuel_used: out.fuel_used.unwrap_or_default(),
            },
            Err(error) => Ending::stopped(
                match error {
                    ExecError::WasmStopped { stop, .. } => stop.to_string(),
                    other => crate::error_chain(other),
                },
                given.stopped_fuel.unwrap_or_default(),
            ),
        };
        let tape = given.tape.clone().unwrap_or_default();
        let mut inexact = tape.inexact.clone();
        for grant in given.preopens.iter().filter(|p| p.writable) {
            inexact.push(format!(
                "{} is a writable grant: what the run wrote is not kept, and replay starts from \
                 the files as the run first opened them",
                grant.guest
            ));
        }
        Record {
            id: event.id.clone(),
            version: VERSION,
            time: event.time,
            container: event.container.clone(),
            stage: event.stage,
            hook: event.hook.clone(),
            module: given.digest.clone(),
            args: given.args.clone(),
            env,
            input: Bytes::new(input),
            grants: given
                .preopens
                .iter()
                .map(|p| Grant {
                    guest: p.guest.clone(),
                    writable: p.writable,
                })
                .collect(),
            limits: given.limits.clone(),
            timeout_ms: u64::try_from(given.timeout.as_millis()).unwrap_or(u64::MAX),
            output_limit: given.output_limit,
            ending,
            verdict: event.verdict,
            tape,
            inexact,
        }
    }

    /// The verdict as the container saw it: the recorded refusal, else by the ending.
    pub fn verdict(&self) -> &'static str {
        match self.verdict {
            Some(verdict) => verdict.as_str(),
            None => self.ending.verdict(),
        }
    }
}

/// Where a stage appends its records, and how.
#[derive(Debug, Clone)]
pub struct Recording {
    pub file: PathBuf,
    pub settings: ReplaySettings,
}

impl Recording {
    /// The records of the registry at `root`.
    pub fn new(root: &Path, settings: ReplaySettings) -> Recording {
        Recording {
            file: records_file(root),
            settings,
        }
    }

    /// What a WASM run records.
    pub fn capture(&self) -> Capture {
        match self.settings.enabled {
            true => Capture::Record {
                max_file_size: self.settings.max_file_size,
            },
            false => Capture::Off,
        }
    }

    /// Appends `record`, dropping the oldest records past the bound (each of the two
    /// generations holds at most half of it). A record larger than a generation keeps no
    /// file contents (their digests stay) and says so.
    pub fn append(&self, record: &Record) -> Result<(), ReplayError> {
        let io = |action| {
            let file = self.file.clone();
            move |source| ReplayError::Io {
                action,
                file,
                source,
            }
        };
        let half = (self.settings.max_size / 2).max(1);
        let mut line = serde_json::to_vec(record).expect("a record serialises");
        if line.len() as u64 >= half {
            let mut slim = record.clone();
            for file in &mut slim.tape.files {
                file.content = None;
            }
            slim.inexact.push(
                "the record was larger than replay.maxSize allows: no file content kept".into(),
            );
            line = serde_json::to_vec(&slim).expect("a record serialises");
        }
        line.push(b'\n');
        if line.len() as u64 > half {
            return Err(ReplayError::TooLarge {
                id: record.id.clone(),
                size: line.len() as u64,
                max_size: self.settings.max_size,
            });
        }
        // The records' directory is made by the first append (not checked on every one).
        match events::append_line(&self.file, &line, half) {
            Err(("open", e)) if e.kind() == io::ErrorKind::NotFound => {
                let dir = self.file.parent().unwrap_or(Path::new("/"));
                hookhost_exec::fs::create_dir_all(dir, 0o700).map_err(io("create"))?;
                events::append_line(&self.file, &line, half)
            }
            appended => appended,
        }
        .map_err(|(action, e)| io(action)(e))
    }
}

/// The records' file of the registry at `root`.
pub fn records_file(root: &Path) -> PathBuf {
    root.join(DIR).join(FILE)
}

/// Calls `each` with every record line's id and text, the older generation first.
fn scan(file: &Path, mut each: impl FnMut(&str) -> bool) -> Result<(), ReplayError> {
    for path in [events::previous(file), file.to_path_buf()] {
        let handle = match File::open(&path) {
            Ok(handle) => handle,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ReplayError::Io {
                    action: "open",
                    file: path,
                    source,
                });
            }
        };
        for line in BufReader::new(handle).lines() {
            let line = line.map_err(|source| ReplayError::Io {
                action: "read",
                file: path.clone(),
                source,
            })?;
            if !each(&line) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The id a record line starts with.
fn line_id(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("{\"id\":\"")?;
    rest.split_once('"').map(|(id, _)| id)
}

/// The record of event `id` in the registry at `root`.
pub fn find(root: &Path, id: &str) -> Result<Record, ReplayError> {
    let mut found = None;
    scan(&records_file(root), |line| {
        if line_id(line) == Some(id) {
            found = Some(line.to_string());
        }
        true
    })?;
    let line = found.ok_or_else(|| ReplayError::Missing { id: id.into() })?;
    serde_json::from_str(&line).map_err(|source| ReplayError::Corrupt {
        id: id.into(),
        source,
    })
}

/// The records of `hook` since `since`, oldest first; corrupt lines are skipped (and counted).
pub fn list(
    root: &Path,
    hook: &str,
    since: Option<DateTime<Utc>>,
) -> Result<(Vec<Record>, usize), ReplayError> {
    let mut records = Vec::new();
    let mut corrupt = 0;
    scan(&records_file(root), |line| {
        match serde_json::from_str::<Record>(line) {
            Ok(r) if r.hook == hook && since.is_none_or(|s| r.time >= s) => records.push(r),
            Ok(_) => {}
            Err(_) => corrupt += 1,
        }
        true
    })?;
    Ok((records, corrupt))
}

/// The module a replay runs: the recorded one, or a candidate.
#[derive(Debug, Clone)]
pub struct Module {
    pub path: PathBuf,
    pub digest: String,
    /// Its compile cache.
    pub cache_dir: PathBuf,
    /// The scratch cache of a candidate file, removed with the last clone.
    _scratch: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl Module {
    /// The registry's module of digest `digest`.
    pub fn registered(root: &Path, digest: &str) -> Module {
        let paths = Paths::new(root);
        Module {
            path: paths.module_file(digest),
            digest: digest.to_string(),
            cache_dir: paths.cache_dir(),
            _scratch: None,
        }
    }

    /// A module file, compiled (under `limits`) into a scratch cache.
    pub fn file(path: &Path, limits: &CompileLimits) -> Result<Module, ReplayError> {
        let bytes = std::fs::read(path).map_err(|source| ReplayError::Candidate {
            path: path.to_path_buf(),
            source,
        })?;
        Module::bytes(&bytes, path, limits)
    }

    /// A module's bytes (a file's, or pulled from `origin`), kept and compiled (under
    /// `limits`) in a scratch directory.
    pub fn bytes(
        bytes: &[u8],
        origin: &Path,
        limits: &CompileLimits,
    ) -> Result<Module, ReplayError> {
        let candidate = |source| ReplayError::Candidate {
            path: origin.to_path_buf(),
            source,
        };
        let scratch = tempfile::tempdir().map_err(candidate)?;
        let cache_dir = scratch.path().join("cache");
        let path = scratch.path().join("module.wasm");
        std::fs::write(&path, bytes).map_err(candidate)?;
        let digest =
            wasm::precompile(bytes, &cache_dir, limits).map_err(|source| ReplayError::Compile {
                path: origin.to_path_buf(),
                source,
            })?;
        Ok(Module {
            path,
            digest,
            cache_dir,
            _scratch: Some(std::sync::Arc::new(scratch)),
        })
    }
}

/// A record run again.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub record: Record,
    pub ending: Ending,
    /// How the run differed from the record (none: identical).
    pub differences: Vec<String>,
    /// What kept this replay from being exact (with the record's own reasons).
    pub inexact: Vec<String>,
}

impl Replayed {
    pub fn identical(&self) -> bool {
        self.differences.is_empty()
    }

    /// What the run edited (precreate: the config fields its output changed), before and
    /// after.
    pub fn edits(&self) -> (Vec<String>, Vec<String>) {
        let input = self.record.input.to_vec();
        (
            edits(&input, &self.record.ending),
            edits(&input, &self.ending),
        )
    }
}

/// The config fields a precreate run's output changed; none for other stages' runs.
fn edits(input: &[u8], ending: &Ending) -> Vec<String> {
    let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).ok();
    match (parse(input), parse(&ending.stdout.to_vec())) {
        (Some(before), Some(after)) if before.is_object() && after.is_object() => {
            hookhost_hooks::diff::diff(&before, &after)
                .iter()
                .map(|c| c.diff_line(&before, &after))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Runs `record` again with `module` (default: the recorded one) in a scratch sandbox, and
/// compares.
pub fn replay(
    root: &Path,
    record: &Record,
    module: Option<&Module>,
) -> Result<Replayed, ReplayError> {
    let recorded = Module::registered(root, &record.module);
    let module = module.unwrap_or(&recorded);
    let scratch = tempfile::tempdir().map_err(|source| ReplayError::Sandbox {
        id: record.id.clone(),
        source,
    })?;
    let preopens = sandbox(scratch.path(), record).map_err(|source| ReplayError::Sandbox {
        id: record.id.clone(),
        source,
    })?;
    let mut inexact = record.inexact.clone();
    let env = env_values(root, record, &mut inexact);
    let timeout = Duration::from_millis(record.timeout_ms);
    let invocation = WasmInvocation {
        module_path: &module.path,
        digest: &module.digest,
        cache_dir: &module.cache_dir,
        args: &record.args,
        env: &env,
        stdin: &record.input.to_vec(),
        preopens: &preopens,
        limits: &record.limits,
        timeout,
        compile: CompileLimits::default(),
        output_limit: record.output_limit,
    };
    let (result, tape) = wasm::run_captured(&invocation, Capture::Replay(record.tape.clone()));
    inexact.extend(tape.into_iter().flat_map(|t| t.inexact));
    let ending = match result {
        Ok(out) => Ending {
            exit: Some(out.exit_code),
            stop: None,
            stdout: Bytes::new(&out.stdout),
            stderr: Bytes::new(&out.stderr),
            fuel_used: out.fuel_used,
        },
        Err(WasmError::Stopped {
            stop, fuel_used, ..
        }) => Ending::stopped(stop.to_string(), fuel_used),
        Err(source) => {
            return Err(ReplayError::Run {
                id: record.id.clone(),
                source,
            });
        }
    };
    Ok(Replayed {
        differences: differences(&record.ending, &ending),
        record: record.clone(),
        ending,
        inexact,
    })
}

/// How `after` differs from `before`.
fn differences(before: &Ending, after: &Ending) -> Vec<String> {
    let mut found = Vec::new();
    let show = |e: &Ending| match (&e.stop, e.exit) {
        (Some(stop), _) => format!("stopped: {stop}"),
        (None, Some(code)) => format!("exit {code}"),
        (None, None) => "killed".to_string(),
    };
    if (before.exit, &before.stop) != (after.exit, &after.stop) {
        found.push(format!("{} → {}", show(before), show(after)));
    }
    for (name, b, a) in [
        ("stdout", &before.stdout, &after.stdout),
        ("stderr", &before.stderr, &after.stderr),
    ] {
        if b != a {
            found.push(format!(
                "{name} differs ({} → {} bytes)",
                b.to_vec().len(),
                a.to_vec().len()
            ));
        }
    }
    if before.fuel_used != after.fuel_used {
        found.push(format!("fuel {} → {}", before.fuel_used, after.fuel_used));
    }
    found
}

/// Rebuilds the record's granted directories under `scratch`: one directory per grant, with
/// the files the run opened (their recorded content; empty when it was not kept), read-only
/// unless the grant was writable.
fn sandbox(scratch: &Path, record: &Record) -> io::Result<Vec<Preopen>> {
    let mut preopens = Vec::new();
    let mut dirs = BTreeMap::new();
    for (i, grant) in record.grants.iter().enumerate() {
        let host = scratch.join(i.to_string());
        std::fs::create_dir_all(&host)?;
        dirs.insert(grant.guest.as_str(), host.clone());
        preopens.push(Preopen {
            host,
            guest: grant.guest.clone(),
            writable: grant.writable,
        });
    }
    for file in &record.tape.files {
        let Some(base) = dirs.get(file.grant.as_str()) else {
            continue;
        };
        let path = base.join(&file.path);
        if file.dir {
            std::fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, file.bytes().unwrap_or_default())?;
    }
    Ok(preopens)
}

/// The environment of a replay: recorded values, else a value known now whose sha256 is the
/// recorded one (the stage variable, the hook's registered environment, hookhost's own), else
/// empty (noted in `inexact`).
fn env_values(root: &Path, record: &Record, inexact: &mut Vec<String>) -> Vec<(String, String)> {
    let mut known: Vec<(String, String)> = vec![(STAGE_ENV.into(), record.stage.as_str().into())];
    if let Ok(hook) =
        hookhost_hooks::registry::Registry::open(root).and_then(|r| r.get(&record.hook))
    {
        known.extend(
            hook.spec
                .env
                .iter()
                .map(|pair| hookhost_exec::split_env(pair)),
        );
    }
    record
        .env
        .iter()
        .map(|var| {
            let value = var.value.clone().or_else(|| {
                known
                    .iter()
                    .filter(|(name, _)| *name == var.name)
                    .map(|(_, value)| value.clone())
                    .chain(std::env::var(&var.name).ok())
                    .find(|value| sha256_hex(value.as_bytes()) == var.sha256)
            });
            let value = value.unwrap_or_else(|| {
                inexact.push(format!(
                    "the value of {} was not kept (replay.keepEnvValues) and none known now matches its digest",
                    var.name
                ));
                String::new()
            });
            (var.name.clone(), value)
        })
        .collect()
}

/// One recorded run against a candidate.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub replayed: Replayed,
    /// The verdict before (as recorded) and after (the candidate's).
    pub verdicts: (String, String),
    pub edits: (Vec<String>, Vec<String>),
}

impl Comparison {
    /// Whether the candidate decided as the record did: same verdict, same edits.
    pub fn agrees(&self) -> bool {
        self.verdicts.0 == self.verdicts.1 && self.edits.0 == self.edits.1
    }
}

/// Every recorded run of `hook` since `since`, run again with `module`.
#[derive(Debug, Default)]
pub struct Regression {
    pub runs: Vec<Comparison>,
    /// Record lines that could not be read.
    pub corrupt: usize,
}

impl Regression {
    pub fn differing(&self) -> impl Iterator<Item = &Comparison> {
        self.runs.iter().filter(|c| !c.agrees())
    }
}

/// The verdicts before and after a replay. A precreate run's output is checked again against
/// the grants of `registered` (the hook as registered now), as a container's chain checks it;
/// without it (the hook was removed) both verdicts are by exit alone.
fn verdicts(replayed: &Replayed, registered: Option<&PlannedHook>) -> (String, String) {
    let record = &replayed.record;
    let ending = &replayed.ending;
    let Some(hook) = registered.filter(|_| record.stage == Stage::Precreate) else {
        return (record.ending.verdict().into(), ending.verdict().into());
    };
    let before: Option<Value> = serde_json::from_slice(&record.input.to_vec()).ok();
    let out = hookhost_exec::Outcome {
        exit: hookhost_exec::Exit::Code(0),
        stdout: ending.stdout.to_vec(),
        stderr: ending.stderr.to_vec(),
        truncated: false,
        duration: Duration::ZERO,
        fuel_used: Some(ending.fuel_used),
    };
    let refused = ending.verdict() == ALLOWED
        && before.is_none_or(|before| crate::precreate::check_one(hook, &before, &out).is_err());
    let after = match refused {
        true => events::Verdict::Refused.as_str(),
        false => ending.verdict(),
    };
    (record.verdict().into(), after.into())
}

/// Runs every recorded run of `hook` since `since` with `module`.
pub fn regress(
    root: &Path,
    hook: &str,
    since: Option<DateTime<Utc>>,
    module: Option<&Module>,
) -> Result<Regression, ReplayError> {
    let (records, corrupt) = list(root, hook, since)?;
    let registered = hookhost_hooks::registry::Registry::open(root)
        .and_then(|r| r.get(hook))
        .ok()
        .map(|h| PlannedHook::registered(&h, &[]));
    let mut runs = Vec::with_capacity(records.len());
    for record in &records {
        let replayed = replay(root, record, module)?;
        let verdicts = verdicts(&replayed, registered.as_ref());
        let edits = replayed.edits();
        runs.push(Comparison {
            replayed,
            verdicts,
            edits,
        });
    }
    Ok(Regression { runs, corrupt })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, padding: usize) -> Record {
        Record {
            id: id.into(),
            version: VERSION,
            time: Utc::now(),
            container: "c".into(),
            stage: Stage::CreateRuntime,
            hook: "h".into(),
            module: "0".repeat(64),
            args: vec!["h".into()],
            env: vec![],
            input: Bytes::new("x".repeat(padding).as_bytes()),
            grants: vec![],
            limits: WasmLimits::default(),
            timeout_ms: 1000,
            output_limit: 1024,
            ending: Ending {
                exit: Some(0),
                stop: None,
                stdout: Bytes::new(b"\xff\x00binary"),
                stderr: Bytes::new(b"text"),
                fuel_used: 42,
            },
            verdict: None,
            tape: Tape::default(),
            inexact: vec![],
        }
    }

    /// 1,000 runs of ~2 KiB against a 64 KiB bound: both generations together stay within
    /// it, the latest records are found (bytes that are not UTF-8 included), the oldest are
    /// gone with an error naming the event.
    #[test]
    fn records_stay_within_their_bound_under_1000_runs() {
        let dir = tempfile::tempdir().unwrap();
        let settings = ReplaySettings {
            max_size: 64 * 1024,
            ..ReplaySettings::default()
        };
        let recording = Recording::new(dir.path(), settings);
        for i in 0..1000 {
            recording
                .append(&record(&format!("id{i:04}"), 2000))
                .unwrap();
            let total: u64 = [events::previous(&recording.file), recording.file.clone()]
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum();
            assert!(total <= settings.max_size, "after {i}: {total}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&recording.file), 0o600);
        assert_eq!(mode(recording.file.parent().unwrap()), 0o700);
        let latest = find(dir.path(), "id0999").unwrap();
        assert_eq!(latest, record("id0999", 2000).with_time(latest.time));
        assert_eq!(latest.ending.stdout.to_vec(), b"\xff\x00binary");
        let err = find(dir.path(), "id0000").unwrap_err();
        assert!(matches!(err, ReplayError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("event id0000"), "{err}");
        let (listed, corrupt) = list(dir.path(), "h", None).unwrap();
        assert!(listed.len() > 10 && listed.len() < 40, "{}", listed.len());
        assert_eq!(corrupt, 0);
        let err = recording.append(&record("huge", 64 * 1024)).unwrap_err();
        assert!(err.to_string().contains("raise replay.maxSize"), "{err}");
    }

    /// A record line that does not parse is an error naming its event.
    #[test]
    fn a_corrupt_record_is_an_error_naming_the_event() {
        let dir = tempfile::tempdir().unwrap();
        let recording = Recording::new(dir.path(), ReplaySettings::default());
        recording.append(&record("good", 10)).unwrap();
        let line = "{\"id\":\"bad\",\"version\":1,\"time\":\n";
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&recording.file)
            .unwrap();
        std::io::Write::write_all(&mut file, line.as_bytes()).unwrap();
        let err = find(dir.path(), "bad").unwrap_err();
        assert!(matches!(err, ReplayError::Corrupt { .. }), "{err}");
        assert_eq!(err.to_string(), "the replay record of event bad is corrupt");
        assert_eq!(find(dir.path(), "good").unwrap().id, "good");
        assert_eq!(list(dir.path(), "h", None).unwrap().1, 1);
    }

    /// A precreate run's edits are the config fields its output changed, as `try` shows
    /// them; a run whose output is no config (other stages) edits nothing.
    #[test]
    fn edits_are_the_fields_a_precreate_output_changed() {
        let input = br#"{"process":{"env":["A=1"]}}"#;
        let mut ending = record("e", 0).ending;
        ending.stdout = Bytes::new(br#"{"process":{"env":["A=1","GPU=0"]}}"#);
        let changed = edits(input, &ending);
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert!(
            changed[0].starts_with("+ ") && changed[0].contains("GPU"),
            "{changed:?}"
        );
        ending.stdout = Bytes::new(b"not a config");
        assert!(edits(input, &ending).is_empty());
    }

    impl Record {
        fn with_time(mut self, time: DateTime<Utc>) -> Record {
            self.time = time;
            self
        }
    }
}
