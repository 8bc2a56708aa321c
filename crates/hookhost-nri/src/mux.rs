//! NRI's socket multiplexer over an async byte stream (the "trunk"): connections 1 and 2 as two
//! in-memory byte streams for ttrpc, pumped to and from [`frame`](crate::frame)s on the trunk.

use std::sync::Arc;

use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf,
};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::frame::{self, Decoder, FrameError, PLUGIN_CONN, RUNTIME_CONN};

/// How much of a logical connection's bytes are buffered between the trunk and ttrpc.
const BUFFER: usize = 1 << 20;
/// How much is read from the trunk or a logical connection at once.
const CHUNK: usize = 64 << 10;

/// Why the trunk stopped carrying frames.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    /// The peer closed the socket.
    #[error("the runtime closed the NRI connection")]
    Closed,
    /// Reading or writing the socket failed.
    #[error("the NRI connection failed")]
    Io(#[source] std::io::Error),
    /// The peer sent something that is not NRI's framing.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// The two logical connections of one trunk, and the task that moves their bytes.
pub(crate) struct Connections {
    /// Connection 1: the runtime's calls to the plugin.
    pub plugin: DuplexStream,
    /// Connection 2: the plugin's calls to the runtime.
    pub runtime: DuplexStream,
    /// Ends when the trunk is closed or broken, or both logical connections were closed.
    pub done: JoinHandle<Result<(), MuxError>>,
}

/// Starts multiplexing `trunk`. Must be called inside a tokio runtime.
pub(crate) fn multiplex<T>(trunk: T) -> Connections
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (plugin, plugin_outer) = tokio::io::duplex(BUFFER);
    let (runtime, runtime_outer) = tokio::io::duplex(BUFFER);
    let (trunk_read, trunk_write) = tokio::io::split(trunk);
    let trunk_write = Arc::new(Mutex::new(trunk_write));
    let (plugin_from, plugin_to) = tokio::io::split(plugin_outer);
    let (runtime_from, runtime_to) = tokio::io::split(runtime_outer);
    let done = tokio::spawn(async move {
        let outgoing = async {
            tokio::try_join!(
                send(PLUGIN_CONN, plugin_from, trunk_write.clone()),
                send(RUNTIME_CONN, runtime_from, trunk_write.clone()),
            )
        };
        tokio::select! {
            end = receive(trunk_read, plugin_to, runtime_to) => end,
            end = outgoing => end.map(|_| ()),
        }
    });
    Connections {
        plugin,
        runtime,
        done,
    }
}

/// Moves what ttrpc writes on logical connection `conn` to the trunk, one frame per read.
async fn send<T: AsyncWrite>(
    conn: u32,
    mut from: ReadHalf<DuplexStream>,
    trunk: Arc<Mutex<WriteHalf<T>>>,
) -> Result<(), MuxError> {
    let mut buf = vec![0; CHUNK];
    loop {
        let n = from.read(&mut buf).await.map_err(MuxError::Io)?;
        if n == 0 {
            return Ok(());
        }
        let wire = frame::encode(conn, &buf[..n]);
        let mut trunk = trunk.lock().await;
        trunk.write_all(&wire).await.map_err(MuxError::Io)?;
        trunk.flush().await.map_err(MuxError::Io)?;
    }
}

/// Moves the trunk's frames to their logical connections until the trunk ends.
async fn receive<T: AsyncRead>(
    mut trunk: ReadHalf<T>,
    mut plugin: WriteHalf<DuplexStream>,
    mut runtime: WriteHalf<DuplexStream>,
) -> Result<(), MuxError> {
    let mut decoder = Decoder::new();
    let mut buf = vec![0; CHUNK];
    loop {
        let n = trunk.read(&mut buf).await.map_err(MuxError::Io)?;
        if n == 0 {
            return Err(MuxError::Closed);
        }
        decoder.push(&buf[..n]);
        while let Some(frame) = decoder.next_frame()? {
            let to = match frame.conn {
                PLUGIN_CONN => &mut plugin,
                RUNTIME_CONN => &mut runtime,
                other => {
                    tracing::warn!(
                        "NRI frame for unknown connection {other} ({} bytes) dropped: NRI uses \
                         connections {PLUGIN_CONN} and {RUNTIME_CONN} only",
                        frame.payload.len()
                    );
                    continue;
                }
            };
            if let Err(err) = to.write_all(&frame.payload).await {
                tracing::warn!(
                    "NRI frame for connection {} ({} bytes) dropped: that connection is closed \
                     ({err})",
                    frame.conn,
                    frame.payload.len()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Header;

    #[tokio::test]
    async fn frames_reach_their_connection_and_writes_become_frames() {
        let (ours, mut peer) = tokio::io::duplex(1 << 16);
        let mut conns = multiplex(ours);
        let mut wire = frame::encode(RUNTIME_CONN, b"to-runtime-side");
        wire.extend(frame::encode(7, b"nobody"));
        wire.extend(frame::encode(PLUGIN_CONN, b"to-plugin-side"));
        peer.write_all(&wire).await.unwrap();
        let mut got = [0; 14];
        conns.plugin.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"to-plugin-side");
        let mut got = [0; 15];
        conns.runtime.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"to-runtime-side");

        conns.runtime.write_all(b"reply").await.unwrap();
        let mut head = [0; frame::HEADER_LEN];
        peer.read_exact(&mut head).await.unwrap();
        assert_eq!(
            Header::decode(head).unwrap(),
            Header {
                conn: RUNTIME_CONN,
                len: 5
            }
        );
        drop(peer);
        assert!(matches!(conns.done.await.unwrap(), Err(MuxError::Closed)));
    }

    #[tokio::test]
    async fn an_oversized_frame_ends_the_trunk_with_the_reason() {
        let (ours, mut peer) = tokio::io::duplex(1 << 16);
        let conns = multiplex(ours);
        peer.write_all(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff])
            .await
            .unwrap();
        let end = conns.done.await.unwrap();
        assert!(matches!(end, Err(MuxError::Frame(_))), "{end:?}");
    }
}
