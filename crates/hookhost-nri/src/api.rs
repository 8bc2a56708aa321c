//! The NRI 0.8 API (what containerd 2.1 speaks): its messages, generated from NRI's api.proto
//! ([`generated`], Apache-2.0, see its header), the names of its two services, the event set a
//! plugin subscribes to, and the decoding of the requests a plugin serves.

#[allow(missing_docs, clippy::all)]
#[rustfmt::skip]
mod generated;

pub use generated::*;
use protobuf::Message;

/// The service the runtime serves on connection 2 (the plugin calls it).
pub const RUNTIME_SERVICE: &str = "nri.pkg.api.v1alpha1.Runtime";
/// The service the plugin serves on connection 1 (the runtime calls it).
pub const PLUGIN_SERVICE: &str = "nri.pkg.api.v1alpha1.Plugin";
/// The runtime's registration call.
pub const REGISTER_PLUGIN: &str = "RegisterPlugin";

/// A set of NRI events, as the bit mask a plugin's Configure reply carries (`1 << (event - 1)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events(i32);

impl Events {
    /// No event.
    pub const NONE: Events = Events(0);
    /// Every event NRI 0.8 defines, RunPodSandbox to RemoveContainer: what every runtime from
    /// containerd 2.1 on knows. A runtime refuses a plugin that subscribes to a bit it does not
    /// know, so a plugin never asks for more than this.
    pub const KNOWN: Events = Events((1 << (Event::LAST as i32 - 1)) - 1);

    /// The set of `events`.
    pub fn of(events: &[Event]) -> Events {
        events.iter().fold(Events::NONE, |set, &e| set.with(e))
    }

    /// This set and `event`.
    pub fn with(self, event: Event) -> Events {
        Events(self.0 | Self::bit(event))
    }

    /// Whether `event` is in the set.
    pub fn contains(self, event: Event) -> bool {
        self.0 & Self::bit(event) != 0
    }

    /// The events of both sets.
    pub fn intersection(self, other: Events) -> Events {
        Events(self.0 & other.0)
    }

    /// The wire form.
    pub fn bits(self) -> i32 {
        self.0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn bit(event: Event) -> i32 {
        match event as i32 {
            n @ 1..=31 => 1 << (n - 1),
            _ => 0,
        }
    }
}

/// A request the runtime sends to the plugin, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginRequest {
    /// `Configure`: the runtime's name, version, timeouts and the plugin's configuration.
    Configure(ConfigureRequest),
    /// `Synchronize`: the pods and containers that exist (maybe one part of several).
    Synchronize(SynchronizeRequest),
    /// `Shutdown`: the runtime is going down.
    Shutdown(Empty),
    /// `CreateContainer`: a container about to be created, and its pod.
    CreateContainer(CreateContainerRequest),
    /// `UpdateContainer`: a container's resources about to change.
    UpdateContainer(UpdateContainerRequest),
    /// `StopContainer`: a container about to stop.
    StopContainer(StopContainerRequest),
    /// `StateChange`: every other pod or container event.
    StateChange(StateChangeEvent),
}

/// Why a request's payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A method the plugin service of NRI 0.8 does not have.
    #[error("unknown NRI plugin method {0:?}")]
    UnknownMethod(String),
    /// The payload is not the method's message.
    #[error("NRI {method} request is not a valid {method}Request message")]
    Message {
        /// The method called.
        method: &'static str,
        /// What the protobuf decoder found.
        #[source]
        source: protobuf::Error,
    },
}

/// The plugin service's methods in NRI 0.8.
pub const PLUGIN_METHODS: [&str; 7] = [
    "Configure",
    "Synchronize",
    "Shutdown",
    "CreateContainer",
    "UpdateContainer",
    "StopContainer",
    "StateChange",
];

impl PluginRequest {
    /// Decodes the payload of a call to `method` of the plugin service.
    pub fn decode(method: &str, payload: &[u8]) -> Result<PluginRequest, DecodeError> {
        let name = PLUGIN_METHODS
            .into_iter()
            .find(|m| *m == method)
            .ok_or_else(|| DecodeError::UnknownMethod(method.to_string()))?;
        let wrap = |source| DecodeError::Message {
            method: name,
            source,
        };
        Ok(match name {
            "Configure" => Self::Configure(parse(payload).map_err(wrap)?),
            "Synchronize" => Self::Synchronize(parse(payload).map_err(wrap)?),
            "Shutdown" => Self::Shutdown(parse(payload).map_err(wrap)?),
            "CreateContainer" => Self::CreateContainer(parse(payload).map_err(wrap)?),
            "UpdateContainer" => Self::UpdateContainer(parse(payload).map_err(wrap)?),
            "StopContainer" => Self::StopContainer(parse(payload).map_err(wrap)?),
            _ => Self::StateChange(parse(payload).map_err(wrap)?),
        })
    }

    /// The request's message, encoded again.
    pub fn encode(&self) -> Result<Vec<u8>, protobuf::Error> {
        match self {
            Self::Configure(m) => m.write_to_bytes(),
            Self::Synchronize(m) => m.write_to_bytes(),
            Self::Shutdown(m) => m.write_to_bytes(),
            Self::CreateContainer(m) => m.write_to_bytes(),
            Self::UpdateContainer(m) => m.write_to_bytes(),
            Self::StopContainer(m) => m.write_to_bytes(),
            Self::StateChange(m) => m.write_to_bytes(),
        }
    }
}

fn parse<M: Message>(payload: &[u8]) -> Result<M, protobuf::Error> {
    M::parse_from_bytes(payload)
}

impl From<ContainerAdjustment> for CreateContainerResponse {
    fn from(adjust: ContainerAdjustment) -> Self {
        CreateContainerResponse {
            adjust: Some(adjust).into(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_one_bit_each_and_known_stops_before_last() {
        assert_eq!(Events::of(&[Event::RUN_POD_SANDBOX]).bits(), 1);
        assert_eq!(Events::of(&[Event::CREATE_CONTAINER]).bits(), 1 << 3);
        assert_eq!(Events::KNOWN.bits(), 0x7ff);
        assert!(Events::KNOWN.contains(Event::REMOVE_CONTAINER));
        assert!(!Events::KNOWN.contains(Event::LAST));
        assert!(!Events::KNOWN.contains(Event::UNKNOWN));
    }

    #[test]
    fn a_request_decodes_by_method_and_encodes_back() {
        let mut request = CreateContainerRequest::new();
        request.container.mut_or_insert_default().name = "app".into();
        let bytes = request.write_to_bytes().unwrap();
        let decoded = PluginRequest::decode("CreateContainer", &bytes).unwrap();
        assert_eq!(decoded, PluginRequest::CreateContainer(request));
        assert_eq!(decoded.encode().unwrap(), bytes);
    }

    #[test]
    fn unknown_methods_and_bad_payloads_are_errors() {
        let err = PluginRequest::decode("RunPodSandbox", b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown NRI plugin method \"RunPodSandbox\""
        );
        let err = PluginRequest::decode("Configure", &[0xff, 0xff]).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Message {
                    method: "Configure",
                    ..
                }
            ),
            "{err}"
        );
    }
}
