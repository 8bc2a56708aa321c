//! An NRI plugin that prints every request it gets, with the time since it started, and changes
//! nothing: `cargo run -p hookhost-nri --example nri-trace -- [SOCKET]` (default
//! /var/run/nri/nri.sock). To see what a runtime sends, and in which order.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hookhost_nri::api::{
    ConfigureRequest, Container, ContainerUpdate, CreateContainerResponse, Event, Events,
    LinuxResources, PodSandbox, StopContainerResponse, UpdateContainerResponse,
};
use hookhost_nri::{Config, Handler, Plugin, Refusal};

struct Trace(Instant);

impl Trace {
    /// `what`, after the wall-clock time of day (UTC, to line up with the runtime's log) and
    /// the time since the plugin started.
    fn print(&self, what: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let day = now.as_secs_f64() % 86400.0;
        let (h, m, s) = (day as u64 / 3600, day as u64 / 60 % 60, day % 60.0);
        let since = self.0.elapsed().as_secs_f64() * 1000.0;
        println!("{h:02}:{m:02}:{s:06.3} {since:>9.1} ms  {what}");
    }
}

fn pod(pod: &PodSandbox) -> String {
    format!("pod {}/{} ({})", pod.namespace, pod.name, short(&pod.id))
}

fn ctr(ctr: &Container) -> String {
    format!(
        "container {} ({}, {:?})",
        ctr.name,
        short(&ctr.id),
        ctr.state.enum_value_or_default()
    )
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

impl Handler for Trace {
    fn configure(&self, req: &ConfigureRequest) -> Result<Events, Refusal> {
        self.print(&format!("Configure {req:?}"));
        Ok(Events::KNOWN)
    }

    fn synchronize(
        &self,
        pods: &[PodSandbox],
        containers: &[Container],
    ) -> Result<Vec<ContainerUpdate>, Refusal> {
        self.print(&format!(
            "Synchronize {} pods, {} containers",
            pods.len(),
            containers.len()
        ));
        Ok(Vec::new())
    }

    fn create_container(
        &self,
        p: &PodSandbox,
        c: &Container,
    ) -> Result<CreateContainerResponse, Refusal> {
        self.print(&format!(
            "CreateContainer {} {}\n  pod: {p:?}\n  container: {c:?}",
            pod(p),
            ctr(c)
        ));
        Ok(CreateContainerResponse::new())
    }

    fn update_container(
        &self,
        p: &PodSandbox,
        c: &Container,
        resources: Option<&LinuxResources>,
    ) -> Result<UpdateContainerResponse, Refusal> {
        self.print(&format!(
            "UpdateContainer {} {} to {resources:?}",
            pod(p),
            ctr(c)
        ));
        Ok(UpdateContainerResponse::new())
    }

    fn stop_container(
        &self,
        p: &PodSandbox,
        c: &Container,
    ) -> Result<StopContainerResponse, Refusal> {
        self.print(&format!("StopContainer {} {}", pod(p), ctr(c)));
        Ok(StopContainerResponse::new())
    }

    fn state_change(
        &self,
        event: Event,
        p: &PodSandbox,
        c: Option<&Container>,
    ) -> Result<(), Refusal> {
        self.print(&format!(
            "{event:?} {} {}",
            pod(p),
            c.map(ctr).unwrap_or_default()
        ));
        Ok(())
    }

    fn shutdown(&self) {
        self.print("Shutdown");
    }
}

fn main() -> Result<(), hookhost_nri::PluginError> {
    let mut config = Config::new("trace", "90");
    if let Some(socket) = std::env::args_os().nth(1) {
        config.socket = socket.into();
    }
    Plugin::new(config)?.run(Arc::new(Trace(Instant::now())))
}
