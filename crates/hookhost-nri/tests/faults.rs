//! The plugin against a runtime that misbehaves, played by this test on a unix socket with
//! NRI's framing and ttrpc written out by hand: a frame for an unknown connection is dropped
//! and the plugin still answers; an oversized frame ends that connection and the plugin
//! connects again by itself and registers again.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookhost_nri::api::{
    ConfigureRequest, ConfigureResponse, Container, CreateContainerResponse, Events,
    PLUGIN_SERVICE, PodSandbox, RegisterPluginRequest,
};
use hookhost_nri::frame::{self, Header, PLUGIN_CONN, RUNTIME_CONN};
use hookhost_nri::{Config, Handler, Plugin, Refusal};
use protobuf::Message;
use ttrpc::proto::{Request, Response};

struct Unchanged;

impl Handler for Unchanged {
    fn create_container(
        &self,
        _: &PodSandbox,
        _: &Container,
    ) -> Result<CreateContainerResponse, Refusal> {
        Ok(CreateContainerResponse::new())
    }
}

/// The next connection to `listener`, waiting at most a minute.
fn accept(listener: &UnixListener) -> UnixStream {
    listener.set_nonblocking(true).unwrap();
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "the plugin never connected"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// The next frame from the plugin.
fn read_frame(stream: &mut UnixStream) -> (u32, Vec<u8>) {
    let mut head = [0; frame::HEADER_LEN];
    stream.read_exact(&mut head).unwrap();
    let header = Header::decode(head).unwrap();
    let mut payload = vec![0; header.len as usize];
    stream.read_exact(&mut payload).unwrap();
    (header.conn, payload)
}

/// The next whole ttrpc message from the plugin (a message may span frames): its connection
/// and its protobuf body.
fn read_message(stream: &mut UnixStream) -> (u32, Vec<u8>) {
    let (conn, mut bytes) = read_frame(stream);
    while bytes.len() < 10
        || bytes.len() < 10 + u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize
    {
        let (more_conn, more) = read_frame(stream);
        assert_eq!(more_conn, conn, "one message at a time in this test");
        bytes.extend(more);
    }
    (conn, bytes.split_off(10))
}

/// A ttrpc message: length, stream id, type, flags, then the message.
fn ttrpc_message(stream_id: u32, kind: u8, message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u32).to_be_bytes().to_vec();
    out.extend(stream_id.to_be_bytes());
    out.extend([kind, 0]);
    out.extend(message);
    out
}

/// The RegisterPlugin request a freshly connected plugin sends, decoded.
fn registration(stream: &mut UnixStream) -> RegisterPluginRequest {
    let (conn, bytes) = read_message(stream);
    assert_eq!(conn, RUNTIME_CONN, "the plugin registers on connection 2");
    let request = Request::parse_from_bytes(&bytes).unwrap();
    assert_eq!(request.method, "RegisterPlugin");
    RegisterPluginRequest::parse_from_bytes(&request.payload).unwrap()
}

#[test]
fn bad_frames_are_dropped_or_end_the_connection_and_the_plugin_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nri.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let mut config = Config::new("faulty", "42");
    config.socket = socket;
    config.retry_min = Duration::from_millis(10);
    let plugin = Plugin::new(config)
        .unwrap()
        .spawn(Arc::new(Unchanged))
        .unwrap();

    let mut first = accept(&listener);
    let registered = registration(&mut first);
    assert_eq!(
        (
            registered.plugin_name.as_str(),
            registered.plugin_idx.as_str()
        ),
        ("faulty", "42")
    );

    // A frame for a connection NRI does not use: dropped, and Configure is still answered.
    first
        .write_all(&frame::encode(9, b"nobody listens here"))
        .unwrap();
    let configure = Request {
        service: PLUGIN_SERVICE.into(),
        method: "Configure".into(),
        payload: ConfigureRequest::new().write_to_bytes().unwrap(),
        ..Default::default()
    };
    let message = ttrpc_message(1, 1, &configure.write_to_bytes().unwrap());
    first
        .write_all(&frame::encode(PLUGIN_CONN, &message))
        .unwrap();
    let (conn, reply) = read_message(&mut first);
    assert_eq!(conn, PLUGIN_CONN);
    let response = Response::parse_from_bytes(&reply).unwrap();
    let configured = ConfigureResponse::parse_from_bytes(&response.payload).unwrap();
    assert_eq!(configured.events, Events::KNOWN.bits());

    // An oversized frame: the connection is dropped, and the plugin connects and registers again.
    first
        .write_all(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    let mut second = accept(&listener);
    assert_eq!(registration(&mut second).plugin_name, "faulty");
    plugin.stop().unwrap();
}
