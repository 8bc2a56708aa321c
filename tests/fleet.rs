//! A simulated fleet: hook sets published to a real registry (Debian's `docker-registry` on
//! loopback) with `hookhost push --set`, signed with the real cosign, and 5 "nodes" on this
//! machine (each its own registry root and state directory, and the runtime wrapper over real
//! runc), each running `hookhost apply --watch` against one tag. Also: containers created while
//! generations switch, and applies killed at random points.
//! Needs root, runc, docker-registry, oras and cosign (scripts/setup.sh installs them).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::engines::{Setup, wait_for};
use common::oci::{Registry, cosign_sign, key_pair};
use common::{Bundle, Host, Rng, plan_files, succeeded, unique, wat_module};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The watch interval of these tests.
const INTERVAL: &str = "1s";
/// How long a fleet may take to do what a few intervals allow before a test gives up (a bound
/// on waiting, not a measure: the attempts are counted instead).
const PATIENCE: Duration = Duration::from_secs(90);

/// Whoever publishes sets: a hookhost to push with, a cosign key pair, and the files.
struct Publisher {
    host: Host,
    dir: TempDir,
    key: PathBuf,
    public: PathBuf,
    _keys: TempDir,
}

/// How a published set is signed.
#[derive(Clone, Copy, PartialEq)]
enum Signed {
    Yes,
    No,
    /// By a key the nodes do not trust.
    ByAnother,
}

impl Publisher {
    fn new() -> Publisher {
        let (keys, key, public) = key_pair();
        Publisher {
            host: Host::new(),
            dir: tempfile::tempdir().unwrap(),
            key,
            public,
            _keys: keys,
        }
    }

    fn public(&self) -> &str {
        self.public.to_str().unwrap()
    }

    /// Pushes `hooks` as a set of `hooks/REPO` under a tag of its own, and signs it (as a
    /// release pipeline would, before any watched tag names it); returns its manifest digest.
    fn publish(&self, registry: &Registry, repo: &str, hooks: &Value, signed: Signed) -> String {
        let file = self.dir.path().join(format!("{}.json", unique("set")));
        fs::write(&file, serde_json::to_vec_pretty(hooks).unwrap()).unwrap();
        let reference = registry.oci(&format!("{repo}:{}", unique("staged")));
        let out = self
            .host
            .ok(&["push", "--set", file.to_str().unwrap(), &reference]);
        let digest = out.trim().rsplit_once('@').unwrap().1.to_string();
        let target = format!("{}@{digest}", registry.plain(repo));
        match signed {
            Signed::Yes => cosign_sign(&self.key, &target, false),
            Signed::ByAnother => cosign_sign(&key_pair().1, &target, false),
            Signed::No => {}
        }
        digest
    }

    /// A native program the nodes run (they share this machine's files).
    fn script(&self, name: &str, body: &str) -> String {
        self.host.script(name, body).to_str().unwrap().to_string()
    }

    /// Generation `version` of the fleet's set: a global native hook and a global WASM hook,
    /// both at prestart, with `version` in their arguments.
    fn fleet_set(&self, version: u32) -> Value {
        let module = distinct_module(self.dir.path(), &format!("v{version}"));
        let mark = self.script("mark.sh", "exit 0");
        json!([
            {"Name": "mark", "Path": mark, "Type": "prestart", "Args": ["mark", format!("v{version}")],
             "When": {"always": true}},
            {"Name": "sandboxed", "Path": module, "Type": "prestart",
             "Args": ["noop", format!("v{version}")], "When": {"always": true}},
        ])
    }
}

/// One node: a registry root, a runc state root, the wrapper, and its watch loop.
struct Node {
    setup: Setup,
    watcher: Option<Child>,
}

impl Node {
    fn new() -> Node {
        Node {
            setup: Setup::new(),
            watcher: None,
        }
    }

    fn host(&self) -> &Host {
        &self.setup.host
    }

    fn output(&self) -> PathBuf {
        self.host().dir.path().join("watch.out")
    }

    /// Starts `apply --watch REFERENCE --interval 1s --prune --verify-key KEY`.
    fn watch(&mut self, reference: &str, key: &str) {
        let out = fs::File::create(self.output()).unwrap();
        let child = self
            .host()
            .cmd()
            .args([
                "apply",
                "--watch",
                reference,
                "--interval",
                INTERVAL,
                "--prune",
            ])
            .args(["--verify-key", key])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        self.watcher = Some(child);
    }

    /// The watch loop's lines, one per attempt (not its warnings).
    fn attempts(&self) -> Vec<String> {
        common::lines(&self.output())
            .into_iter()
            .filter(|l| {
                [" unchanged: ", " applied: ", " failed ("]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .collect()
    }

    fn status(&self) -> Value {
        let file = self.host().root().join("fleet/status.json");
        fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    /// The id of the generation the registry is on, from `current` (not from the status).
    fn generation(&self) -> Option<String> {
        let record = self.host().root().join("current/generation.json");
        let record: Value = serde_json::from_slice(&fs::read(record).ok()?).unwrap();
        Some(record["Id"].as_str().unwrap().to_string())
    }

    fn events(&self) -> Vec<Value> {
        common::lines(&self.host().root().join("events.jsonl"))
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Runs a container through the wrapper; its id.
    fn run_container(&self) -> String {
        let bundle = Bundle::new("true");
        let id = unique("fleet");
        succeeded(&self.setup.run(&bundle, &id));
        id
    }

    fn metrics(&self) -> String {
        self.host().ok(&["metrics"])
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.watcher.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fleet of `n` nodes watching `reference`.
fn fleet(n: usize, reference: &str, publisher: &Publisher) -> Vec<Node> {
    (0..n)
        .map(|_| {
            let mut node = Node::new();
            node.watch(reference, publisher.public());
            node
        })
        .collect()
}

/// A registry, a publisher, and 5 nodes watching `hooks/fleet:prod`, all on the first signed
/// set (whose digest is returned).
fn a_fleet_on_its_first_set() -> (Registry, Publisher, Vec<Node>, String) {
    let registry = Registry::start();
    let publisher = Publisher::new();
    let first = publisher.publish(&registry, "fleet", &publisher.fleet_set(1), Signed::Yes);
    retag(&registry, "fleet", &first);
    let nodes = fleet(5, &registry.oci("fleet:prod"), &publisher);
    converged(&nodes, &first);
    (registry, publisher, nodes, first)
}

/// Waits until every node's registry is on `digest`; returns how long that took.
fn converged(nodes: &[Node], digest: &str) -> Duration {
    let start = Instant::now();
    wait_for(&format!("every node on {digest}"), PATIENCE, || {
        nodes
            .iter()
            .all(|n| n.generation().as_deref() == Some(digest))
    });
    start.elapsed()
}

/// The attempts a node made after its first `skip` until it applied `digest`.
fn attempts_until_applied(node: &Node, skip: usize, digest: &str) -> usize {
    let lines = node.attempts();
    let after = &lines[skip.min(lines.len())..];
    let at = after
        .iter()
        .position(|l| l.contains("applied") && l.contains(digest))
        .unwrap_or_else(|| panic!("no attempt applied {digest}: {after:?}"));
    at + 1
}

#[test]
fn a_signed_set_reaches_every_node_within_two_intervals_and_later_containers_name_it() {
    let (registry, publisher, nodes, _first) = a_fleet_on_its_first_set();

    let pushed = Instant::now();
    let second = publisher.publish(&registry, "fleet", &publisher.fleet_set(2), Signed::Yes);
    let published = pushed.elapsed();
    let seen: Vec<usize> = nodes.iter().map(|n| n.attempts().len()).collect();
    retag(&registry, "fleet", &second);
    let took = converged(&nodes, &second);
    eprintln!(
        "push --set + cosign sign: {published:?}; from the tag moving to all 5 nodes on the \
         new generation: {took:?} (interval {INTERVAL})"
    );
    for (node, seen) in nodes.iter().zip(seen) {
        // The attempt under way when the push landed may have resolved the old digest: the
        // next one applies it.
        let attempts = attempts_until_applied(node, seen, &second);
        assert!(attempts <= 2, "{attempts} attempts: {:?}", node.attempts());
        let status = node.status();
        assert_eq!(status["Generation"]["Id"], second.as_str(), "{status}");
        assert_eq!(status["ConsecutiveFailures"], 0);
        assert!(status["LastSuccess"].is_string());
    }
    // Containers started now run the new set, and the audit trail names its generation.
    for node in &nodes {
        let id = node.run_container();
        let events: Vec<Value> = node
            .events()
            .into_iter()
            .filter(|e| e["container"] == id.as_str())
            .collect();
        let hooks: BTreeSet<&str> = events.iter().map(|e| e["hook"].as_str().unwrap()).collect();
        assert_eq!(hooks, BTreeSet::from(["mark", "sandboxed"]), "{events:?}");
        assert!(
            events.iter().all(|e| e["generation"] == second.as_str()),
            "{events:?}"
        );
        let inspected: Value =
            serde_json::from_str(&node.host().ok(&["inspect", "sandboxed"])).unwrap();
        assert_eq!(inspected[0]["Generation"]["Id"], second.as_str());
        assert_eq!(inspected[0]["Args"][1], "v2");
        let signer = &inspected[0]["Source"]["Signer"];
        assert_eq!(signer["Format"], "sigstore-bundle", "{inspected}");
        let metrics = node.metrics();
        assert!(
            metrics.contains(&format!("hookhost_generation{{id=\"{second}\"")),
            "{metrics}"
        );
        assert!(
            metrics.contains("hookhost_fleet_consecutive_failures{"),
            "{metrics}"
        );
        common::check_metrics(&metrics);
    }
}

/// Changes one byte of a blob in the registry's storage (its length stays).
fn tamper(registry: &Registry, digest: &str) {
    let file = registry.blob_file(digest);
    let mut bytes = fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&file, bytes).unwrap();
}

/// The manifest `digest` of `hooks/REPO`.
fn manifest(registry: &Registry, repo: &str, digest: &str) -> Value {
    let url = format!(
        "http://{}/v2/hooks/{repo}/manifests/{digest}",
        registry.addr
    );
    let out = common::oci::curl(&[
        "-sf",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &url,
    ]);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The digest of the module layer of the set `digest` (its second layer).
fn module_layer(registry: &Registry, repo: &str, digest: &str) -> String {
    manifest(registry, repo, digest)["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn refused_sets_change_no_node_and_every_node_reports_why() {
    let (registry, publisher, nodes, good) = a_fleet_on_its_first_set();
    let before: Vec<_> = nodes
        .iter()
        .map(|n| n.host().ok(&["inspect", "mark", "sandboxed"]))
        .collect();

    let mut version = 1;
    let mut next = |signed: Signed| {
        version += 1;
        publisher.publish(&registry, "fleet", &publisher.fleet_set(version), signed)
    };
    type Spoil = Box<dyn Fn(&Registry, &str)>;
    let cases: Vec<(&str, String, Spoil, &str, bool)> = vec![
        (
            "unsigned",
            next(Signed::No),
            Box::new(|_, _| {}),
            "it is unsigned",
            true,
        ),
        (
            "signed by another key",
            next(Signed::ByAnother),
            Box::new(|_, _| {}),
            "no signature verifies",
            true,
        ),
        (
            "a tampered module",
            next(Signed::Yes),
            Box::new(|r, d| tamper(r, &module_layer(r, "fleet", d))),
            "was altered",
            true,
        ),
        (
            "a missing blob",
            next(Signed::Yes),
            // The registry refuses to tag a manifest whose blobs are missing: the module is
            // spoiled while the tag moves (so that no node can take it), then removed.
            Box::new(|r, d| tamper(r, &module_layer(r, "fleet", d))),
            "blob unknown",
            false,
        ),
    ];
    // Each case is spoiled where it was staged, then the watched tag moves to it.
    let mut verification_failures = 0;
    for (what, digest, spoil, reason, verification) in &cases {
        spoil(&registry, digest);
        retag(&registry, "fleet", digest);
        if *what == "a missing blob" {
            fs::remove_file(registry.blob_file(&module_layer(&registry, "fleet", digest))).unwrap();
        }
        let outcome = if *verification {
            "unverified"
        } else {
            "failed"
        };
        wait_for(&format!("every node to refuse {what}"), PATIENCE, || {
            nodes.iter().all(|n| {
                let status = n.status();
                status["Target"] == digest.as_str() && status["LastOutcome"] == outcome
            })
        });
        verification_failures += u64::from(*verification);
        for (node, before) in nodes.iter().zip(&before) {
            let status = node.status();
            assert_eq!(node.generation().as_deref(), Some(good.as_str()), "{what}");
            assert_eq!(
                status["Generation"]["Id"],
                good.as_str(),
                "{what}: {status}"
            );
            let error = status["LastError"].as_str().unwrap_or_default();
            assert!(error.contains(reason), "{what}: {error}");
            assert!(
                status["ConsecutiveFailures"].as_u64() >= Some(1),
                "{what}: {status}"
            );
            assert!(
                status["VerificationFailures"].as_u64() >= Some(verification_failures),
                "{what}: {status}"
            );
            assert_eq!(
                &node.host().ok(&["inspect", "mark", "sandboxed"]),
                before,
                "{what}"
            );
            let metrics = node.metrics();
            let failures = metric(&metrics, "hookhost_fleet_consecutive_failures");
            assert!(failures >= 1.0, "{what}: {metrics}");
            let refused = metric(&metrics, "hookhost_fleet_verification_failures_total");
            assert!(refused >= verification_failures as f64, "{what}: {metrics}");
        }
    }
}

/// The value of the first sample of `name`.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Points `hooks/REPO:prod`, the tag the nodes watch, at the manifest `digest` (what `oras
/// tag` does).
fn retag(registry: &Registry, repo: &str, digest: &str) {
    registry.put_manifest(&format!("{repo}:prod"), &manifest(registry, repo, digest));
}

#[test]
fn a_stopped_registry_keeps_every_node_on_its_generation_and_they_recover() {
    let (mut registry, publisher, nodes, first) = a_fleet_on_its_first_set();

    registry.stop();
    wait_for("every node to fail twice", PATIENCE, || {
        nodes
            .iter()
            .all(|n| n.status()["ConsecutiveFailures"].as_u64() >= Some(2))
    });
    for node in &nodes {
        assert_eq!(node.generation().as_deref(), Some(first.as_str()));
        let status = node.status();
        assert_eq!(status["LastOutcome"], "failed", "{status}");
        assert_eq!(status["Generation"]["Id"], first.as_str());
        assert_eq!(status["VerificationFailures"], 0, "{status}");
        // Containers still get the whole generation they are on.
        let id = node.run_container();
        let ran: Vec<Value> = node
            .events()
            .into_iter()
            .filter(|e| e["container"] == id.as_str())
            .collect();
        assert_eq!(ran.len(), 2, "{ran:?}");
        assert!(ran.iter().all(|e| e["generation"] == first.as_str()));
        assert!(metric(&node.metrics(), "hookhost_fleet_consecutive_failures") >= 2.0);
    }
    registry.restart();
    let second = publisher.publish(&registry, "fleet", &publisher.fleet_set(2), Signed::Yes);
    retag(&registry, "fleet", &second);
    converged(&nodes, &second);
    wait_for("every node to report the recovery", PATIENCE, || {
        nodes.iter().all(|n| n.status()["ConsecutiveFailures"] == 0)
    });
}

/// Generation `k` of the churn test: 4 global prestart hooks named after it.
fn churn_set(k: usize) -> Value {
    let hooks: Vec<Value> = (0..4)
        .map(|i| {
            json!({"Name": format!("g{k}-h{i}"), "Path": "/bin/true", "Type": "prestart",
                        "When": {"always": true}})
        })
        .collect();
    Value::Array(hooks)
}

#[test]
fn containers_created_while_20_generations_switch_each_get_exactly_one() {
    const CONTAINERS: usize = 200;
    const WORKERS: usize = 4;
    let node = Node::new();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (1..=20)
        .map(|k| {
            let file = dir.path().join(format!("g{k}.json"));
            fs::write(&file, serde_json::to_vec(&churn_set(k)).unwrap()).unwrap();
            file
        })
        .collect();
    let id_of = |file: &Path| format!("sha256:{}", common::oci::sha256_file(file));
    let sets: Vec<(String, BTreeSet<String>)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let names = (0..4).map(|h| format!("g{}-h{h}", i + 1)).collect();
            (id_of(f), names)
        })
        .collect();
    node.host()
        .ok(&["apply", "-f", files[0].to_str().unwrap(), "--prune"]);

    let done = std::sync::atomic::AtomicBool::new(false);
    let (bundles, applies) = std::thread::scope(|scope| {
        let applier = scope.spawn(|| {
            let mut applies = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || applies < 20 {
                let file = &files[applies % files.len()];
                node.host()
                    .ok(&["apply", "-f", file.to_str().unwrap(), "--prune"]);
                applies += 1;
            }
            applies
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                scope.spawn(|| {
                    (0..CONTAINERS / WORKERS)
                        .map(|_| {
                            let bundle = Bundle::new("true");
                            let id = unique("churn");
                            succeeded(&node.setup.run(&bundle, &id));
                            (id, bundle)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let bundles: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (bundles, applier.join().unwrap())
    });
    eprintln!(
        "{} containers while {applies} applies switched generations",
        bundles.len()
    );
    assert!(applies >= 20);

    let events = node.events();
    let mut generations_seen = BTreeSet::new();
    for (id, bundle) in &bundles {
        let plans = plan_files(bundle.path());
        assert_eq!(plans.len(), 1, "{id}");
        let plan: Value = serde_json::from_slice(&fs::read(&plans[0]).unwrap()).unwrap();
        let generation = plan["generation"]["Id"].as_str().unwrap();
        let (_, names) = sets
            .iter()
            .find(|(g, _)| g == generation)
            .unwrap_or_else(|| panic!("{id}: unknown generation {generation}"));
        let planned: BTreeSet<String> = plan["stages"]["prestart"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["Name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(&planned, names, "{id}: the plan mixes generations");
        let ran: Vec<&Value> = events
            .iter()
            .filter(|e| e["container"] == id.as_str())
            .collect();
        let ran_names: BTreeSet<String> = ran
            .iter()
            .map(|e| e["hook"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(&ran_names, names, "{id}: every run recorded");
        assert_eq!(ran.len(), names.len(), "{id}");
        assert!(ran.iter().all(|e| e["generation"] == generation), "{id}");
        generations_seen.insert(generation.to_string());
    }
    eprintln!(
        "the containers saw {} distinct generations",
        generations_seen.len()
    );
}

/// The registry is on one whole generation: `current` names a complete one, and what the
/// registry lists is exactly one of `sets`.
fn on_a_whole_generation(host: &Host, sets: &[(String, BTreeSet<String>)]) -> usize {
    let record: Value =
        serde_json::from_slice(&fs::read(host.root().join("current/generation.json")).unwrap())
            .unwrap();
    let listed: BTreeSet<String> = host.ok(&["ls", "-q"]).lines().map(String::from).collect();
    sets.iter()
        .position(|(id, names)| record["Id"] == id.as_str() && *names == listed)
        .unwrap_or_else(|| panic!("not a whole generation: {record} with {listed:?}"))
}

#[test]
fn an_apply_killed_at_random_points_leaves_the_node_on_a_whole_generation() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    // Sets of 40 hooks, so that an apply takes long enough to be cut anywhere.
    let files: Vec<PathBuf> = (0..2)
        .map(|k| {
            let hooks: Vec<Value> = (0..40)
                .map(|i| {
                    json!({"Name": format!("s{k}-{i}"), "Path": "/bin/true", "Type": "prestart",
                                "Args": ["true", format!("{k}")]})
                })
                .collect();
            let file = dir.path().join(format!("s{k}.json"));
            fs::write(&file, serde_json::to_vec(&hooks).unwrap()).unwrap();
            file
        })
        .collect();
    let sets: Vec<(String, BTreeSet<String>)> = files
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let id = format!("sha256:{}", common::oci::sha256_file(f));
            (id, (0..40).map(|i| format!("s{k}-{i}")).collect())
        })
        .collect();
    host.ok(&["apply", "-f", files[0].to_str().unwrap(), "--prune"]);
    let started = Instant::now();
    host.ok(&["apply", "-f", files[1].to_str().unwrap(), "--prune"]);
    let one_apply = started.elapsed();
    eprintln!("one apply of 40 hooks: {one_apply:?}");

    let mut rng = Rng::seeded();
    let mut switched = 0;
    // Kill points are drawn up to `bound`, which follows how long applies take now (the
    // machine's load changes it): it grows while no killed apply had switched, shrinks while
    // they had, so that points on both sides of the switch keep being drawn.
    let mut bound = one_apply.as_micros() as u64 * 3 / 2 + 1;
    for _ in 0..100 {
        let before = on_a_whole_generation(&host, &sets);
        let target = 1 - before;
        kill_apply_at(
            &host,
            &files[target],
            Duration::from_micros(rng.below(bound)),
        );
        let after = on_a_whole_generation(&host, &sets);
        switched += usize::from(after != before);
        bound = match after != before {
            true => bound * 9 / 10 + 1,
            false => bound * 11 / 10 + 1,
        };
    }
    eprintln!("100 killed applies: {switched} had switched, the rest had not");
    assert!(
        switched > 0 && switched < 100,
        "kill points on both sides of the switch"
    );
    // The next apply finishes, and leaves no temp directories behind.
    host.ok(&["apply", "-f", files[0].to_str().unwrap(), "--prune"]);
    let leftovers: Vec<_> = fs::read_dir(host.root().join("generations"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(on_a_whole_generation(&host, &sets), 0);
}

/// Starts `apply -f FILE --prune` and kills it with SIGKILL after `delay`.
fn kill_apply_at(host: &Host, file: &Path, delay: Duration) {
    let mut child = host
        .cmd()
        .args(["apply", "-f", file.to_str().unwrap(), "--prune"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
}

/// The first apply to a registry also turns `hooks/` and `global/` into links to `current`:
/// killed anywhere in it, the registry lists its old hooks (no generation yet) or the whole
/// new set, and the next apply completes the change.
#[test]
fn a_first_apply_killed_at_random_points_leaves_the_old_hooks_or_the_whole_new_set() {
    let dir = tempfile::tempdir().unwrap();
    let hooks: Vec<Value> = (0..40)
        .map(|i| json!({"Name": format!("n{i}"), "Path": "/bin/true", "When": {"always": true}}))
        .collect();
    let file = dir.path().join("set.json");
    fs::write(&file, serde_json::to_vec(&hooks).unwrap()).unwrap();
    let new: BTreeSet<String> = (0..40).map(|i| format!("n{i}")).collect();
    let old = BTreeSet::from(["global-old".to_string(), "plain-old".to_string()]);
    let legacy = || {
        let host = Host::new();
        host.ok(&["create", "plain-old", "/bin/true"]);
        host.ok(&["create", "--when-always", "global-old", "/bin/true"]);
        host
    };
    let timed = legacy();
    let started = Instant::now();
    timed.ok(&["apply", "-f", file.to_str().unwrap(), "--prune"]);
    let one_apply = started.elapsed();
    let mut rng = Rng::seeded();
    let mut switched = 0;
    for _ in 0..20 {
        let host = legacy();
        kill_apply_at(
            &host,
            &file,
            Duration::from_micros(rng.below(one_apply.as_micros() as u64 * 3 / 2 + 1)),
        );
        let listed: BTreeSet<String> = host.ok(&["ls", "-q"]).lines().map(String::from).collect();
        let generation = host.root().join("current").exists();
        match generation {
            true => assert_eq!(listed, new),
            false => assert_eq!(listed, old),
        }
        switched += usize::from(generation);
        host.ok(&["apply", "-f", file.to_str().unwrap(), "--prune"]);
        let listed: BTreeSet<String> = host.ok(&["ls", "-q"]).lines().map(String::from).collect();
        assert_eq!(listed, new);
        for name in ["hooks", "global"] {
            let meta = fs::symlink_metadata(host.root().join(name)).unwrap();
            assert!(meta.is_symlink(), "{name}");
        }
        let temps: Vec<_> = fs::read_dir(host.root())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(temps.is_empty(), "{temps:?}");
    }
    eprintln!("20 killed first applies: {switched} had switched");
}

/// A module: `noop` with a custom section naming `tag`, so that each is its own module.
fn distinct_module(dir: &Path, tag: &str) -> PathBuf {
    let mut bytes = fs::read(wat_module(dir, "noop")).unwrap();
    let name = b"hookhost-test";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(tag.as_bytes());
    bytes.push(0);
    bytes.push(section.len() as u8);
    bytes.extend(section);
    let file = dir.join(format!("{tag}.wasm"));
    fs::write(&file, bytes).unwrap();
    file
}

/// What an apply of a set of 100 hooks costs (printed for the README; nothing is asserted on
/// time): 90 native hooks and 10 WASM hooks with modules of their own.
#[test]
fn the_cost_of_applying_a_set_of_100_hooks() {
    let registry = Registry::start();
    let publisher = Publisher::new();
    let set = |version: u32| -> Value {
        let hooks: Vec<Value> = (0..100)
            .map(|i| {
                let path = match i % 10 {
                    0 => distinct_module(publisher.dir.path(), &format!("m{i}"))
                        .display()
                        .to_string(),
                    _ => "/bin/true".into(),
                };
                json!({"Name": format!("h{i}"), "Path": path, "Type": "prestart",
                       "Args": ["x", format!("v{version}")], "When": {"always": true}})
            })
            .collect();
        Value::Array(hooks)
    };
    let host = Host::new();
    let reference = registry.oci("big:prod");
    // Releases set `version` and applies it; how long the apply took.
    let apply = |version: u32, how: &[&str]| {
        let digest = publisher.publish(&registry, "big", &set(version), Signed::Yes);
        retag(&registry, "big", &digest);
        let started = Instant::now();
        let out = host.ok(&[how, &[&reference[..], "--verify-key", publisher.public()]].concat());
        let took = started.elapsed();
        assert_eq!(
            Node::generation_of(&host).as_deref(),
            Some(digest.as_str()),
            "{out}"
        );
        took
    };
    let cold = apply(1, &["apply", "-f"]);
    let warm = apply(2, &["apply", "--prune", "-f"]);
    let started = Instant::now();
    let out = host.ok(&[
        "apply",
        "--watch",
        &reference,
        "--once",
        "--verify-key",
        publisher.public(),
    ]);
    let unchanged = started.elapsed();
    assert!(out.contains("unchanged"), "{out}");
    eprintln!(
        "100-hook set (10 WASM modules): first apply {cold:?} (pull, verify, compile, switch); \
         next generation {warm:?} (every hook's args changed; modules cached); \
         a watch attempt on an unchanged tag {unchanged:?}"
    );
}

impl Node {
    fn generation_of(host: &Host) -> Option<String> {
        let record = host.root().join("current/generation.json");
        let record: Value = serde_json::from_slice(&fs::read(record).ok()?).unwrap();
        Some(record["Id"].as_str().unwrap().to_string())
    }
}
