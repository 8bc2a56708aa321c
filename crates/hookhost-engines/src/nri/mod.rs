//! hookhost as an NRI plugin: each container NRI describes goes through the same container
//! pipeline as a bundle (`hookhost_core::pipeline`): selection (global hooks, annotations of the
//! pod and the container, hooks.d), the precreate chain with its grants and conflicts, and the
//! plan of the OCI stages. What comes out becomes the NRI adjustment: the precreate edits NRI
//! can carry, and hookhost's own OCI hook entries (the plan file lives in the state directory,
//! keyed by container id, since NRI gives no bundle). An edit NRI cannot carry refuses the
//! container, naming the hook and the field — never a silent drop.

mod adjust;
pub mod guard;
mod view;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookhost_core::bundle::{BundleConfig, SelfCall};
use hookhost_core::pipeline::{self, Container as Described, PrepareError, Trail};
use hookhost_core::select::{CommandLine, Sources};
use hookhost_hooks::config::Config;
use hookhost_hooks::registry::{EntryCache, Registry};
use hookhost_nri::api::{
    ConfigureRequest, Container, CreateContainerResponse, Event, Events, PodSandbox,
};
use hookhost_nri::{Handler, Refusal};

pub use adjust::Uncarried;

/// hookhost's NRI handler: each CreateContainer is prepared by one long-lived worker thread
/// (which keeps the WASM executor and the loaded modules of its earlier runs), within the
/// plugin's budget.
#[derive(Debug)]
pub struct NriHooks {
    settings: Arc<Settings>,
    /// How long the pipeline may take for one container, in ms, before the plugin refuses it
    /// itself: the config's share of the runtime's request timeout.
    budget_ms: AtomicU64,
    jobs: mpsc::Sender<Job>,
    /// The runtime's name and version (NRI's Configure), for what its NRI applies.
    runtime: Mutex<(String, String)>,
}

/// The events the plugin asks the runtime for: those it acts on. The runtime waits for every
/// subscribed plugin's answer to every event of every container (a round trip each: measured
/// here, subscribing to all of them costs a CRI create+start ~3.5 ms), so nothing else.
const SUBSCRIBED: [Event; 2] = [
    // Select and run the container's hooks, and answer with their adjustment.
    Event::CREATE_CONTAINER,
    // Remove the container's plan directory.
    Event::REMOVE_CONTAINER,
];

/// What the worker needs to prepare a container.
#[derive(Debug)]
struct Settings {
    config: Config,
    /// The registry root (hooks, modules, the audit trail, NRI plans under `nri/`).
    root: PathBuf,
    /// hookhost's own executable, written into the OCI hook entries.
    self_exe: PathBuf,
    /// The plugin's name (the prepared marker carries it).
    name: String,
    /// The registry entries read for earlier containers, read again only when changed.
    entries: Arc<EntryCache>,
}

/// One container to prepare, and where its answer goes.
struct Job {
    pod: PodSandbox,
    container: Container,
    /// When its precreate hooks must be done.
    hooks_until: Instant,
    reply: mpsc::Sender<Result<CreateContainerResponse, String>>,
}

impl NriHooks {
    /// The plugin's handler. The plugin is long-lived: from here on, WASM modules stay loaded
    /// and pre-linked after their first run ([`hookhost_exec::wasm::keep_loaded`]).
    pub fn new(config: Config, root: PathBuf, self_exe: PathBuf, name: String) -> NriHooks {
        hookhost_exec::wasm::keep_loaded();
        // The worker tears each container's runs down after answering (see `work`).
        hookhost_exec::wasm::defer_teardown();
        // The audit trail and replay records are appended for every hooked container.
        hookhost_core::events::keep_files_open();
        let budget = config.nri.budget_for(config.nri.request_timeout_ms());
        let settings = Arc::new(Settings {
            config,
            root,
            self_exe,
            name,
            entries: Arc::default(),
        });
        let (jobs, queue) = mpsc::channel();
        let worker = settings.clone();
        std::thread::Builder::new()
            .name("hookhost-nri-worker".into())
            .spawn(move || work(&worker, queue))
            .expect("a thread can be started at the plugin's start");
        NriHooks {
            settings,
            budget_ms: AtomicU64::new(budget.as_millis() as u64),
            jobs,
            runtime: Mutex::default(),
        }
    }

    fn budget(&self) -> Duration {
        Duration::from_millis(self.budget_ms.load(Ordering::Relaxed))
    }

    /// `response`, unless it has CDI devices the runtime may not apply.
    fn cdi_carried(
        &self,
        name: &str,
        response: CreateContainerResponse,
    ) -> Result<CreateContainerResponse, Refusal> {
        let devices = response.adjust.as_ref().map_or(&[][..], |a| &a.CDI_devices);
        let runtime = self.runtime.lock().unwrap_or_else(|e| e.into_inner());
        if devices.is_empty() || adjust::applies_cdi_devices(&runtime.0, &runtime.1) {
            return Ok(response);
        }
        let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
        Err(Refusal::new(format!(
            "hookhost: container {name} refused: its precreate hooks requested CDI devices \
             ({}), which hookhost passes through NRI only to runtimes known to apply them \
             (containerd >= 2), not to {} {}; give this container hookhost's runtime wrapper \
             (RuntimeClass), which resolves them itself",
            names.join(", "),
            runtime.0,
            runtime.1
        )))
    }
}

/// The worker: prepares each container in turn. One whose turn comes after its hooks' time is
/// up (an earlier container's hooks still ran) is refused unprepared; a panic is a refusal.
/// What a preparation leaves to tear down is torn down after its answer is sent.
fn work(settings: &Settings, queue: mpsc::Receiver<Job>) {
    for job in queue {
        let result = match Instant::now() < job.hooks_until {
            true => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                settings.prepare(&job.pod, &job.container, job.hooks_until)
            }))
            .unwrap_or_else(|_| Err("hookhost's preparation failed unexpectedly (a bug)".into())),
            false => Err(
                "its turn came after its time was up (earlier containers' hooks \
                 were still running)"
                    .into(),
            ),
        };
        let _ = job.reply.send(result);
        // The runtime has its answer: now the container's WASM runs are torn down (with the
        // pool, their slots decommitted), which took most of a trivial run's time.
        hookhost_exec::wasm::teardown_retired();
    }
}

impl Settings {
    /// Where the plan of container `id` is kept.
    fn plan_dir(&self, id: &str) -> PathBuf {
        self.root.join("nri").join(id)
    }

    /// Runs the pipeline for one container; the adjustment, or the refusal's message.
    fn prepare(
        &self,
        pod: &PodSandbox,
        container: &Container,
        deadline: Instant,
    ) -> Result<CreateContainerResponse, String> {
        let doc = view::config(pod, container);
        let dir = self.plan_dir(&container.id);
        let mut config = BundleConfig::from_doc(dir.join("config.json"), doc.clone())
            .map_err(|e| hookhost_hooks::error_chain(&e))?;
        let registry = match self.root.join("hooks").is_dir() {
            true => Some(
                Registry::open(&self.root)
                    .map_err(|e| hookhost_hooks::error_chain(&e))?
                    .with_entry_cache(self.entries.clone()),
            ),
            false => None,
        };
        let sources = Sources::configured(registry.as_ref(), &self.root, &self.config);
        let trail = Trail {
            root: &self.root,
            events_max_size: self.config.events_max_size(),
            replay: self.config.replay_settings(),
        };
        let described = Described {
            id: Some(&container.id),
            bundle: None,
            deadline: Some(deadline),
        };
        let planned = pipeline::plan(
            &mut config,
            &sources,
            &CommandLine::default(),
            trail,
            described,
        )
        .map_err(|e| refusal_text(&e))?;
        if !planned.plan.is_empty() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let call = SelfCall {
                exe: self.self_exe.clone(),
                root: self.root.clone(),
                events_max_size: self.config.events_max_size(),
                replay: self.config.replay_settings(),
                runtime_log: None,
                at_start: false,
                absolute_plan: true,
                check_exe: false,
            };
            config
                .inject(&planned.plan, &call)
                .map_err(|e| hookhost_hooks::error_chain(&e))?;
        }
        let mut adjustment =
            adjust::adjustment(&doc, &config.doc, &planned.adjusted).map_err(|e| e.to_string())?;
        adjustment
            .annotations
            .insert(guard::prepared_annotation(&self.name), "true".into());
        Ok(adjustment.into())
    }
}

fn refusal_text(error: &PrepareError) -> String {
    hookhost_hooks::error_chain(error)
}

impl Handler for NriHooks {
    fn configure(&self, request: &ConfigureRequest) -> Result<Events, Refusal> {
        let timeout = u64::try_from(request.request_timeout)
            .ok()
            .filter(|t| *t > 0)
            .unwrap_or(self.settings.config.nri.request_timeout_ms());
        let budget = self.settings.config.nri.budget_for(timeout).as_millis() as u64;
        self.budget_ms.store(budget, Ordering::Relaxed);
        *self.runtime.lock().unwrap_or_else(|e| e.into_inner()) = (
            request.runtime_name.clone(),
            request.runtime_version.clone(),
        );
        tracing::info!(
            runtime = %request.runtime_name,
            version = %request.runtime_version,
            request_timeout_ms = timeout,
            budget_ms = budget,
            "configured"
        );
        Ok(Events::of(&SUBSCRIBED))
    }

    fn create_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<CreateContainerResponse, Refusal> {
        let started = Instant::now();
        let (reply, answer) = mpsc::channel();
        let name = format!("{}/{} {}", pod.namespace, pod.name, container.name);
        let budget = self.budget();
        // The hooks are cut at the budget less a tenth (what follows them — the plan, the
        // adjustment — must fit too); the budget itself is the backstop.
        let hooks_until = started + budget * 9 / 10;
        let job = Job {
            pod: pod.clone(),
            container: container.clone(),
            hooks_until,
            reply,
        };
        if self.jobs.send(job).is_err() {
            return Err(Refusal::new(format!(
                "hookhost: container {name} refused: the plugin's worker is gone (a bug: \
                 restart the plugin)"
            )));
        }
        let over = |what: &str| {
            format!(
                "hookhost: container {name} refused: {what} within {} ms, the part of NRI's \
                 request timeout hookhost may use; give its precreate hooks shorter timeouts, or \
                 raise the runtime's NRI request_timeout (and hookhost's \"nri\": \
                 {{\"requestTimeout\"}} with it)",
                budget.as_millis()
            )
        };
        match await_answer(&answer, started + budget) {
            Ok(Ok(response)) => self.cdi_carried(&name, response),
            Ok(Err(message)) if Instant::now() >= hooks_until => Err(Refusal::new(format!(
                "{}: {message}",
                over("its hooks did not finish")
            ))),
            Ok(Err(message)) => Err(Refusal::new(format!("hookhost: {message}"))),
            Err(_) => Err(Refusal::new(over("its preparation did not finish"))),
        }
    }

    fn state_change(
        &self,
        event: Event,
        _pod: &PodSandbox,
        container: Option<&Container>,
    ) -> Result<(), Refusal> {
        if let (Event::REMOVE_CONTAINER, Some(container)) = (event, container) {
            remove_plan(&self.settings.plan_dir(&container.id));
        }
        Ok(())
    }
}

/// How long a request's thread polls for the worker's answer before it sleeps: most
/// preparations (a trivial WASM precreate hook: ~0.1 ms) end within it, and a thread that never
/// slept is not woken — on a virtual machine, waking a CPU that went idle is a round trip
/// through the hypervisor, measured here at ~65 µs per container. Past it, the thread sleeps
/// until the answer or the deadline.
const POLL_BEFORE_SLEEP: Duration = Duration::from_micros(250);

/// The worker's answer, or `RecvTimeoutError` once `deadline` has passed without one (or the
/// worker is gone).
fn await_answer<T>(
    answer: &mpsc::Receiver<T>,
    deadline: Instant,
) -> Result<T, mpsc::RecvTimeoutError> {
    let polled = Instant::now();
    loop {
        match answer.try_recv() {
            Ok(value) => return Ok(value),
            Err(mpsc::TryRecvError::Disconnected) => {
                return Err(mpsc::RecvTimeoutError::Disconnected);
            }
            Err(mpsc::TryRecvError::Empty) if polled.elapsed() < POLL_BEFORE_SLEEP => {
                // Leaves the CPU to the worker when both share it.
                std::thread::yield_now();
            }
            Err(mpsc::TryRecvError::Empty) => break,
        }
    }
    answer.recv_timeout(deadline.saturating_duration_since(Instant::now()))
}

fn remove_plan(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove {}: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request's thread gets the worker's answer whether it comes while the thread polls
    /// or after it went to sleep; it gives up at the deadline, not before, and at once when
    /// the worker is gone.
    #[test]
    fn the_answer_is_awaited_polling_then_sleeping_until_the_deadline() {
        let far = || Instant::now() + Duration::from_secs(30);
        let (reply, answer) = mpsc::channel();
        reply.send(1).unwrap();
        assert_eq!(await_answer(&answer, far()), Ok(1));

        let late = std::thread::spawn(move || {
            std::thread::sleep(POLL_BEFORE_SLEEP * 20);
            reply.send(2).unwrap();
            reply
        });
        assert_eq!(await_answer(&answer, far()), Ok(2));
        let reply = late.join().unwrap();

        let deadline = Instant::now() + POLL_BEFORE_SLEEP * 8;
        assert_eq!(
            await_answer(&answer, deadline),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        assert!(Instant::now() >= deadline, "gave up before the deadline");

        drop(reply);
        assert_eq!(
            await_answer(&answer, far()),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
    }

    /// Every subscribed event holds each container's creation up by a round trip: the plugin
    /// asks for what it acts on, not [`Events::KNOWN`].
    #[test]
    fn the_plugin_subscribes_only_to_the_events_it_acts_on() {
        let root = tempfile::tempdir().unwrap();
        let nri = NriHooks::new(
            Config::default(),
            root.path().to_path_buf(),
            PathBuf::from("/usr/local/bin/hookhost"),
            "hookhost".into(),
        );
        let events = nri.configure(&ConfigureRequest::default()).unwrap();
        assert_eq!(
            events,
            Events::of(&[Event::CREATE_CONTAINER, Event::REMOVE_CONTAINER]),
            "subscribed: {:#x}",
            events.bits()
        );
    }
}
