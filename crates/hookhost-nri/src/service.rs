//! NRI's Plugin service on one connection: each call decoded ([`PluginRequest::decode`]), handed
//! to the [`Handler`] on a blocking thread, and its answer (or refusal) encoded as the ttrpc
//! reply. Bad requests are answered with an error and logged; the service keeps serving.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use protobuf::{Message, MessageField};
use tokio::sync::watch;
use ttrpc::r#async::{MethodHandler, Service, TtrpcContext};
use ttrpc::proto::{Code, Request, Response, Status};

use crate::api::{
    ConfigureRequest, ConfigureResponse, Container, CreateContainerRequest, Empty, Event, Events,
    PLUGIN_METHODS, PLUGIN_SERVICE, PluginRequest, PodSandbox, StateChangeEvent,
    SynchronizeRequest, SynchronizeResponse,
};
use crate::chain;
use crate::handler::{Handler, Refusal};

/// How far one connection got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Connected, not yet synchronized.
    Connecting,
    /// Configured and synchronized: the runtime sends events.
    Ready,
    /// The runtime said it is shutting down.
    ShuttingDown,
}

/// The Plugin service of one connection.
pub(crate) struct PluginService {
    handler: Arc<dyn Handler>,
    /// Parts of a synchronization split over several requests.
    sync: Mutex<SynchronizeRequest>,
    progress: watch::Sender<Progress>,
}

type Reply = Result<Vec<u8>, Status>;

impl PluginService {
    pub(crate) fn new(handler: Arc<dyn Handler>) -> (Arc<Self>, watch::Receiver<Progress>) {
        let (progress, watch) = watch::channel(Progress::Connecting);
        let service = PluginService {
            handler,
            sync: Mutex::new(SynchronizeRequest::new()),
            progress,
        };
        (Arc::new(service), watch)
    }

    /// The ttrpc service table: every NRI 0.8 plugin method. A method of a newer NRI is
    /// answered Unimplemented by ttrpc, on which newer runtimes fall back to StateChange.
    pub(crate) fn table(self: &Arc<Self>) -> HashMap<String, Service> {
        let methods = PLUGIN_METHODS
            .into_iter()
            .map(|name| {
                let method = Method {
                    name,
                    service: self.clone(),
                };
                let method: Box<dyn MethodHandler + Send + Sync> = Box::new(method);
                (name.to_string(), method)
            })
            .collect();
        let service = Service {
            methods,
            streams: HashMap::new(),
        };
        HashMap::from([(PLUGIN_SERVICE.to_string(), service)])
    }

    /// Answers one call of `method` with `payload`.
    async fn call(&self, method: &str, payload: &[u8]) -> Reply {
        let request = PluginRequest::decode(method, payload).map_err(|err| {
            tracing::error!("bad NRI request from the runtime: {}", chain(&err));
            status(Code::INVALID_ARGUMENT, chain(&err))
        })?;
        match request {
            PluginRequest::Configure(req) => self.configure(req).await,
            PluginRequest::Synchronize(req) => self.synchronize(req).await,
            PluginRequest::Shutdown(_) => self.shutdown().await,
            PluginRequest::CreateContainer(req) => self.create(req).await,
            PluginRequest::UpdateContainer(req) => {
                let (pod, ctr) = described("UpdateContainer", &req.pod, &req.container)?;
                let resources = req.linux_resources.into_option();
                self.blocking(move |h| h.update_container(&pod, &ctr, resources.as_ref()))
                    .await
            }
            PluginRequest::StopContainer(req) => {
                let (pod, ctr) = described("StopContainer", &req.pod, &req.container)?;
                self.blocking(move |h| h.stop_container(&pod, &ctr)).await
            }
            PluginRequest::StateChange(req) => self.state_change(req).await,
        }
    }

    async fn configure(&self, req: ConfigureRequest) -> Reply {
        tracing::info!(
            "configured by {} {} (registration timeout {} ms, request timeout {} ms)",
            req.runtime_name,
            req.runtime_version,
            req.registration_timeout,
            req.request_timeout
        );
        let wanted = self.run(move |h| h.configure(&req)).await?;
        let events = wanted.intersection(Events::KNOWN);
        if events != wanted {
            tracing::warn!(
                "the handler asked for NRI events {:#x} that NRI 0.8 does not define: not \
                 subscribed",
                wanted.bits() & !Events::KNOWN.bits()
            );
        }
        if events.is_empty() {
            // 0 on the wire would mean "every event".
            let why = "the plugin's handler subscribes to no NRI event";
            return Err(status(Code::INVALID_ARGUMENT, why));
        }
        encode(&ConfigureResponse {
            events: events.bits(),
            ..Default::default()
        })
    }

    async fn synchronize(&self, req: SynchronizeRequest) -> Reply {
        let whole = {
            let mut parts = self.sync.lock().unwrap_or_else(|e| e.into_inner());
            parts.pods.extend(req.pods);
            parts.containers.extend(req.containers);
            if req.more {
                return encode(&SynchronizeResponse {
                    more: true,
                    ..Default::default()
                });
            }
            std::mem::take(&mut *parts)
        };
        tracing::info!(
            "synchronizing: {} pods, {} containers",
            whole.pods.len(),
            whole.containers.len()
        );
        let update = self
            .run(move |h| h.synchronize(&whole.pods, &whole.containers))
            .await?;
        self.progress.send_replace(Progress::Ready);
        encode(&SynchronizeResponse {
            update,
            ..Default::default()
        })
    }

    async fn shutdown(&self) -> Reply {
        tracing::info!("the runtime is shutting down");
        self.progress.send_replace(Progress::ShuttingDown);
        self.run(|h| {
            h.shutdown();
            Ok(())
        })
        .await?;
        encode(&Empty::new())
    }

    async fn create(&self, req: CreateContainerRequest) -> Reply {
        let (pod, ctr) = described("CreateContainer", &req.pod, &req.container)?;
        self.blocking(move |h| h.create_container(&pod, &ctr)).await
    }

    async fn state_change(&self, req: StateChangeEvent) -> Reply {
        let event = match req.event.enum_value() {
            Ok(event) if event != Event::UNKNOWN && event != Event::LAST => event,
            _ => {
                let n = req.event.value();
                tracing::warn!("NRI StateChange with unknown event {n} ignored");
                return encode(&Empty::new());
            }
        };
        let pod = req
            .pod
            .into_option()
            .ok_or_else(|| missing("StateChange", "pod"))?;
        let container = req.container.into_option();
        self.run(move |h| h.state_change(event, &pod, container.as_ref()))
            .await?;
        encode(&Empty::new())
    }

    /// Runs `f` on the handler on a blocking thread; its answer encoded.
    async fn blocking<M, F>(&self, f: F) -> Reply
    where
        M: Message,
        F: FnOnce(&dyn Handler) -> Result<M, Refusal> + Send + 'static,
    {
        encode(&self.run(f).await?)
    }

    /// Runs `f` on the handler on a blocking thread: a refusal or a panic becomes the call's
    /// error status.
    async fn run<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Handler) -> Result<T, Refusal> + Send + 'static,
    {
        let handler = self.handler.clone();
        match tokio::task::spawn_blocking(move || f(handler.as_ref())).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(refusal)) => Err(status(Code::FAILED_PRECONDITION, refusal.message())),
            Err(join) => {
                let why = format!("the NRI handler failed unexpectedly ({join}); see its log");
                tracing::error!("{why}");
                Err(status(Code::INTERNAL, why))
            }
        }
    }
}

/// The pod and container of a request, or the refusal naming the missing one: a container is
/// never let through undescribed.
fn described(
    method: &str,
    pod: &MessageField<PodSandbox>,
    container: &MessageField<Container>,
) -> Result<(PodSandbox, Container), Status> {
    let pod = pod.as_ref().ok_or_else(|| missing(method, "pod"))?;
    let container = container
        .as_ref()
        .ok_or_else(|| missing(method, "container"))?;
    Ok((pod.clone(), container.clone()))
}

fn missing(method: &str, what: &str) -> Status {
    let why = format!("NRI {method} request without its {what}: refused (runtime bug?)");
    tracing::error!("{why}");
    status(Code::INVALID_ARGUMENT, why)
}

fn encode<M: Message>(message: &M) -> Reply {
    message.write_to_bytes().map_err(|err| {
        let why = format!("cannot encode the NRI reply: {err}");
        tracing::error!("{why}");
        status(Code::INTERNAL, why)
    })
}

fn status(code: Code, message: impl Into<String>) -> Status {
    Status {
        code: code.into(),
        message: message.into(),
        ..Default::default()
    }
}

/// One method of the service, as ttrpc calls it.
struct Method {
    name: &'static str,
    service: Arc<PluginService>,
}

#[async_trait::async_trait]
impl MethodHandler for Method {
    async fn handler(&self, _ctx: TtrpcContext, req: Request) -> ttrpc::Result<Response> {
        let (status, payload) = match self.service.call(self.name, &req.payload).await {
            Ok(payload) => (status(Code::OK, ""), payload),
            Err(status) => (status, Vec::new()),
        };
        Ok(Response {
            status: MessageField::some(status),
            payload,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ContainerAdjustment, CreateContainerResponse, KeyValue};

    /// Refuses containers named "no", panics for "boom", adds an env var otherwise; records
    /// what it was synchronized with.
    #[derive(Default)]
    struct Test {
        synchronized: Mutex<Vec<(usize, usize)>>,
        events: Option<Events>,
    }

    impl Handler for Test {
        fn configure(&self, _: &ConfigureRequest) -> Result<Events, Refusal> {
            Ok(self.events.unwrap_or(Events::KNOWN))
        }

        fn synchronize(
            &self,
            pods: &[PodSandbox],
            containers: &[Container],
        ) -> Result<Vec<crate::api::ContainerUpdate>, Refusal> {
            let seen = (pods.len(), containers.len());
            self.synchronized.lock().unwrap().push(seen);
            Ok(Vec::new())
        }

        fn create_container(
            &self,
            _: &PodSandbox,
            ctr: &Container,
        ) -> Result<CreateContainerResponse, Refusal> {
            match ctr.name.as_str() {
                "no" => Err(Refusal::new("not this one: rename it")),
                "boom" => panic!("handler bug"),
                _ => {
                    let mut adjust = ContainerAdjustment::new();
                    adjust.env.push(KeyValue {
                        key: "A".into(),
                        value: "1".into(),
                        ..Default::default()
                    });
                    Ok(adjust.into())
                }
            }
        }
    }

    fn service(handler: Test) -> Arc<PluginService> {
        PluginService::new(Arc::new(handler)).0
    }

    fn create(name: &str, with_pod: bool) -> Vec<u8> {
        let mut req = CreateContainerRequest::new();
        req.container.mut_or_insert_default().name = name.into();
        if with_pod {
            req.pod.mut_or_insert_default().name = "pod".into();
        }
        req.write_to_bytes().unwrap()
    }

    fn code(status: &Status) -> Code {
        status.code.enum_value_or_default()
    }

    #[tokio::test]
    async fn configure_subscribes_to_known_events_only_and_never_to_none() {
        let all = Events::KNOWN.with(Event::LAST);
        let reply = service(Test {
            events: Some(all),
            ..Default::default()
        })
        .call("Configure", &[])
        .await
        .unwrap();
        let reply = ConfigureResponse::parse_from_bytes(&reply).unwrap();
        assert_eq!(reply.events, Events::KNOWN.bits());
        let none = Test {
            events: Some(Events::NONE),
            ..Default::default()
        };
        let err = service(none).call("Configure", &[]).await.unwrap_err();
        assert_eq!(code(&err), Code::INVALID_ARGUMENT, "{}", err.message);
    }

    #[tokio::test]
    async fn a_split_synchronization_reaches_the_handler_once_whole() {
        let handler = Arc::new(Test::default());
        let (service, progress) = PluginService::new(handler.clone());
        let part = |pods: usize, more: bool| {
            let mut req = SynchronizeRequest::new();
            req.pods = vec![PodSandbox::new(); pods];
            req.containers = vec![Container::new()];
            req.more = more;
            req.write_to_bytes().unwrap()
        };
        let first = service.call("Synchronize", &part(2, true)).await.unwrap();
        assert!(SynchronizeResponse::parse_from_bytes(&first).unwrap().more);
        assert_eq!(*progress.borrow(), Progress::Connecting);
        let last = service.call("Synchronize", &part(1, false)).await.unwrap();
        assert!(!SynchronizeResponse::parse_from_bytes(&last).unwrap().more);
        assert_eq!(*handler.synchronized.lock().unwrap(), [(3, 2)]);
        assert_eq!(*progress.borrow(), Progress::Ready);
    }

    #[tokio::test]
    async fn create_answers_the_adjustment_or_the_refusal_and_survives_a_panic() {
        let service = service(Test::default());
        let reply = service
            .call("CreateContainer", &create("app", true))
            .await
            .unwrap();
        let reply = CreateContainerResponse::parse_from_bytes(&reply).unwrap();
        assert_eq!(reply.adjust.env[0].key, "A");

        let refused = service
            .call("CreateContainer", &create("no", true))
            .await
            .unwrap_err();
        assert_eq!(
            (code(&refused), refused.message.as_str()),
            (Code::FAILED_PRECONDITION, "not this one: rename it")
        );

        let panicked = service
            .call("CreateContainer", &create("boom", true))
            .await
            .unwrap_err();
        assert_eq!(code(&panicked), Code::INTERNAL, "{}", panicked.message);
        let again = service.call("CreateContainer", &create("app", true)).await;
        assert!(
            again.is_ok(),
            "the service keeps serving after a handler panic"
        );
    }

    #[tokio::test]
    async fn bad_or_incomplete_requests_are_refused_with_the_reason() {
        let service = service(Test::default());
        let no_pod = service
            .call("CreateContainer", &create("app", false))
            .await
            .unwrap_err();
        assert_eq!(code(&no_pod), Code::INVALID_ARGUMENT);
        assert!(
            no_pod.message.contains("without its pod"),
            "{}",
            no_pod.message
        );
        let garbage = service
            .call("CreateContainer", &[0xff, 0xff, 0xff])
            .await
            .unwrap_err();
        assert_eq!(code(&garbage), Code::INVALID_ARGUMENT);
        assert!(
            garbage
                .message
                .contains("not a valid CreateContainerRequest"),
            "{}",
            garbage.message
        );
        let mut unknown = StateChangeEvent::new();
        unknown.event = protobuf::EnumOrUnknown::from_i32(77);
        let ignored = service
            .call("StateChange", &unknown.write_to_bytes().unwrap())
            .await;
        assert!(ignored.is_ok(), "an unknown event is logged and ignored");
    }
}
