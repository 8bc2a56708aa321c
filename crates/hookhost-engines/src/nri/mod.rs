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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use hookhost_core::bundle::{BundleConfig, SelfCall};
use hookhost_core::pipeline::{self, Container as Described, PrepareError, Trail};
use hookhost_core::select::{CommandLine, Sources};
use hookhost_hooks::config::Config;
use hookhost_hooks::registry::Registry;
use hookhost_nri::api::{
    ConfigureRequest, Container, CreateContainerResponse, Event, Events, PodSandbox,
};
use hookhost_nri::{Handler, Refusal};

pub use adjust::Uncarried;

/// NRI's default request timeout, until the runtime's `Configure` says.
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 2000;

/// The plugin's settings.
#[derive(Debug, Clone)]
pub struct NriHooks {
    pub config: Config,
    /// The registry root (hooks, modules, the audit trail, NRI plans under `nri/`).
    pub root: PathBuf,
    /// hookhost's own executable, written into the OCI hook entries.
    pub self_exe: PathBuf,
    /// The plugin's name (the prepared marker carries it).
    pub name: String,
    /// How long the pipeline may take for one container, in ms, before the plugin refuses it
    /// itself: the config's share of the runtime's request timeout.
    budget_ms: Arc<AtomicU64>,
}

impl NriHooks {
    pub fn new(config: Config, root: PathBuf, self_exe: PathBuf, name: String) -> NriHooks {
        let budget = budget_ms(&config, DEFAULT_REQUEST_TIMEOUT_MS);
        NriHooks {
            config,
            root,
            self_exe,
            name,
            budget_ms: Arc::new(AtomicU64::new(budget)),
        }
    }

    fn budget(&self) -> Duration {
        Duration::from_millis(self.budget_ms.load(Ordering::Relaxed))
    }

    /// Where the plan of container `id` is kept.
    pub fn plan_dir(&self, id: &str) -> PathBuf {
        self.root.join("nri").join(id)
    }

    /// Runs the pipeline for one container; the adjustment, or the refusal's message.
    fn prepare(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<CreateContainerResponse, String> {
        let doc = view::config(pod, container);
        let dir = self.plan_dir(&container.id);
        let mut config = BundleConfig::from_doc(dir.join("config.json"), doc.clone())
            .map_err(|e| hookhost_hooks::error_chain(&e))?;
        let registry = match self.root.join("hooks").is_dir() {
            true => Some(Registry::open(&self.root).map_err(|e| hookhost_hooks::error_chain(&e))?),
            false => None,
        };
        let sources = Sources::configured(registry.as_ref(), &self.root, &self.config);
        let trail = Trail {
            root: &self.root,
            events_max_size: self.config.events_max_size(),
        };
        let described = Described {
            id: Some(&container.id),
            bundle: None,
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
                runtime_log: None,
                at_start: false,
                absolute_plan: true,
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

/// The config's share of the runtime's request timeout.
fn budget_ms(config: &Config, request_timeout_ms: u64) -> u64 {
    request_timeout_ms * u64::from(config.nri.budget_percent()) / 100
}

fn refusal_text(error: &PrepareError) -> String {
    hookhost_hooks::error_chain(error)
}

impl Handler for NriHooks {
    fn configure(&self, request: &ConfigureRequest) -> Result<Events, Refusal> {
        let timeout = u64::try_from(request.request_timeout)
            .ok()
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
        let budget = budget_ms(&self.config, timeout);
        self.budget_ms.store(budget, Ordering::Relaxed);
        tracing::info!(
            runtime = %request.runtime_name,
            version = %request.runtime_version,
            request_timeout_ms = timeout,
            budget_ms = budget,
            "configured"
        );
        Ok(Events::KNOWN)
    }

    fn create_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<CreateContainerResponse, Refusal> {
        let (tx, rx) = mpsc::channel();
        let this = self.clone();
        let (pod, container) = (pod.clone(), container.clone());
        let name = format!("{}/{} {}", pod.namespace, pod.name, container.name);
        std::thread::spawn(move || {
            let _ = tx.send(this.prepare(&pod, &container));
        });
        let budget = self.budget();
        match rx.recv_timeout(budget) {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(message)) => Err(Refusal::new(format!("hookhost: {message}"))),
            Err(_) => Err(Refusal::new(format!(
                "hookhost: container {name} refused: its hooks did not finish within {} ms, \
                 the part of NRI's request timeout hookhost may use; give its precreate hooks \
                 shorter timeouts, or raise the runtime's NRI request_timeout",
                budget.as_millis()
            ))),
        }
    }

    fn state_change(
        &self,
        event: Event,
        _pod: &PodSandbox,
        container: Option<&Container>,
    ) -> Result<(), Refusal> {
        if let (Event::REMOVE_CONTAINER, Some(container)) = (event, container) {
            remove_plan(&self.plan_dir(&container.id));
        }
        Ok(())
    }
}

fn remove_plan(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove {}: {e}", dir.display());
    }
}
