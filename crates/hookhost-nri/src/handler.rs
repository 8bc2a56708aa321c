//! What the plugin decides: the [`Handler`] the plugin runtime calls for each NRI request, with
//! the API's own types. Everything NRI-protocol (framing, ttrpc, registration, chunked
//! synchronization, reconnection) stays in this crate; a handler sees whole requests.

use crate::api::{
    ConfigureRequest, Container, ContainerUpdate, CreateContainerResponse, Event, Events,
    LinuxResources, PodSandbox, StopContainerResponse, UpdateContainerResponse,
};

/// A handler's refusal: the runtime fails the request (for CreateContainer, the container is
/// not created and the CRI caller sees `message`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    message: String,
}

impl Refusal {
    /// A refusal the runtime reports with `message`: name the problem and the fix.
    pub fn new(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
        }
    }

    /// What the runtime reports.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The plugin's decisions, one method per NRI request. Called from a blocking thread pool,
/// concurrently for concurrent requests: a method may block (run hooks, read files) but must
/// answer within the runtime's request timeout (`ConfigureRequest::request_timeout`, 2 s by
/// default), or the runtime drops the plugin and goes on without it.
pub trait Handler: Send + Sync + 'static {
    /// The runtime introduced itself (name, version, timeouts, this plugin's configuration);
    /// returns the events to subscribe to. Only [`Events::KNOWN`] ones are asked for.
    fn configure(&self, _request: &ConfigureRequest) -> Result<Events, Refusal> {
        Ok(Events::KNOWN)
    }

    /// The pods and containers that already exist (at every registration, so also after a
    /// reconnection); returns updates to them.
    fn synchronize(
        &self,
        _pods: &[PodSandbox],
        _containers: &[Container],
    ) -> Result<Vec<ContainerUpdate>, Refusal> {
        Ok(Vec::new())
    }

    /// A container is about to be created: adjust it (annotations, env, mounts, OCI hooks,
    /// rlimits, devices, resources...), or refuse it.
    fn create_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<CreateContainerResponse, Refusal>;

    /// A container's resources are about to be updated to `resources`.
    fn update_container(
        &self,
        _pod: &PodSandbox,
        _container: &Container,
        _resources: Option<&LinuxResources>,
    ) -> Result<UpdateContainerResponse, Refusal> {
        Ok(UpdateContainerResponse::new())
    }

    /// A container is about to be stopped.
    fn stop_container(
        &self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> Result<StopContainerResponse, Refusal> {
        Ok(StopContainerResponse::new())
    }

    /// Any other pod or container event (RunPodSandbox, StartContainer, RemoveContainer...);
    /// `container` is `None` for pod events.
    fn state_change(
        &self,
        _event: Event,
        _pod: &PodSandbox,
        _container: Option<&Container>,
    ) -> Result<(), Refusal> {
        Ok(())
    }

    /// The runtime is shutting down (it will close the connection).
    fn shutdown(&self) {}
}
