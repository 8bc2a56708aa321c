//! NRI's socket multiplexer on the wire, as pure functions: one unix socket carries several
//! logical connections, each frame an 8-byte header (big-endian u32 connection id, big-endian
//! u32 payload length) and then the payload. A logical connection is a byte stream; frame
//! boundaries carry no meaning.

/// The length of a frame header.
pub const HEADER_LEN: usize = 8;

/// The largest payload a frame may carry: one whole ttrpc message (its 10-byte header and at
/// most 4 MiB), as NRI's multiplexer allows.
pub const MAX_PAYLOAD: usize = 10 + (4 << 20);

/// Connection 0 is reserved and never carries data.
pub const RESERVED_CONN: u32 = 0;
/// The connection on which the runtime calls the plugin (the plugin serves NRI's Plugin service).
pub const PLUGIN_CONN: u32 = 1;
/// The connection on which the plugin calls the runtime (RegisterPlugin, UpdateContainers).
pub const RUNTIME_CONN: u32 = 2;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The logical connection the payload belongs to.
    pub conn: u32,
    /// The payload's length.
    pub len: u32,
}

/// A frame that cannot be part of NRI's multiplexed stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A length no NRI peer sends: the stream is corrupt or not NRI's.
    #[error(
        "NRI frame for connection {conn} announces {len} bytes, over the multiplexer's limit of \
         {MAX_PAYLOAD}: the peer does not speak NRI's multiplexed protocol (is the socket NRI's?) \
         or the stream is corrupt"
    )]
    Oversized {
        /// The connection named in the header.
        conn: u32,
        /// The announced length.
        len: u32,
    },
}

impl Header {
    /// Decodes a header, refusing a length over [`MAX_PAYLOAD`].
    pub fn decode(bytes: [u8; HEADER_LEN]) -> Result<Header, FrameError> {
        let [c0, c1, c2, c3, l0, l1, l2, l3] = bytes;
        let header = Header {
            conn: u32::from_be_bytes([c0, c1, c2, c3]),
            len: u32::from_be_bytes([l0, l1, l2, l3]),
        };
        match header.len as usize > MAX_PAYLOAD {
            true => Err(FrameError::Oversized {
                conn: header.conn,
                len: header.len,
            }),
            false => Ok(header),
        }
    }

    /// The header's wire form.
    pub fn encode(self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[..4].copy_from_slice(&self.conn.to_be_bytes());
        bytes[4..].copy_from_slice(&self.len.to_be_bytes());
        bytes
    }
}

/// One frame: a connection id and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The logical connection.
    pub conn: u32,
    /// The bytes for that connection.
    pub payload: Vec<u8>,
}

/// The wire form of `payload` for `conn`, split into as many frames as its length needs (none
/// for an empty payload).
pub fn encode(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + HEADER_LEN);
    for chunk in payload.chunks(MAX_PAYLOAD) {
        let len = chunk.len() as u32; // at most MAX_PAYLOAD
        out.extend_from_slice(&Header { conn, len }.encode());
        out.extend_from_slice(chunk);
    }
    out
}

/// Splits a byte stream into frames: bytes are pushed as they arrive, whole frames come out.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `None` until one has arrived, or the error that ends the stream
    /// (nothing after a bad header can be trusted to be a frame boundary).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(head) = self.buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let header = Header::decode(*head)?;
        let end = HEADER_LEN + header.len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        let payload = self.buf[HEADER_LEN..end].to_vec();
        self.buf.drain(..end);
        Ok(Some(Frame {
            conn: header.conn,
            payload,
        }))
    }

    /// Bytes received that do not make a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_big_endian_conn_then_length() {
        let header = Header { conn: 2, len: 258 };
        assert_eq!(header.encode(), [0, 0, 0, 2, 0, 0, 1, 2]);
        assert_eq!(Header::decode(header.encode()), Ok(header));
    }

    #[test]
    fn an_oversized_length_is_refused_the_limit_is_not() {
        let at = Header {
            conn: 1,
            len: MAX_PAYLOAD as u32,
        };
        assert_eq!(Header::decode(at.encode()), Ok(at));
        let over = Header {
            conn: 1,
            len: MAX_PAYLOAD as u32 + 1,
        };
        let err = Header::decode(over.encode()).unwrap_err();
        assert!(
            err.to_string().contains("over the multiplexer's limit"),
            "{err}"
        );
    }

    #[test]
    fn frames_come_out_whole_however_the_bytes_arrive() {
        let mut wire = encode(1, b"hello");
        wire.extend(Header { conn: 2, len: 0 }.encode()); // encode() never makes empty frames
        wire.extend(encode(2, b"world"));
        let mut decoder = Decoder::new();
        let mut frames = Vec::new();
        for byte in &wire {
            decoder.push(&[*byte]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        let got: Vec<(u32, &[u8])> = frames
            .iter()
            .map(|f| (f.conn, f.payload.as_slice()))
            .collect();
        assert_eq!(got, [(1, &b"hello"[..]), (2, b""), (2, b"world")]);
        assert_eq!(decoder.pending(), 0);
    }

    #[test]
    fn a_long_payload_is_split_at_the_limit() {
        let payload = vec![7u8; MAX_PAYLOAD + 3];
        let mut decoder = Decoder::new();
        decoder.push(&encode(1, &payload));
        let first = decoder.next_frame().unwrap().unwrap();
        let second = decoder.next_frame().unwrap().unwrap();
        assert_eq!(
            (first.payload.len(), second.payload.len()),
            (MAX_PAYLOAD, 3)
        );
    }
}
