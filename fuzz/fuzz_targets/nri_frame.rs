//! NRI's socket multiplexer and the plugin requests it carries: the first byte picks how the
//! rest is split into reads and which plugin method its payloads are for. The frame decoder
//! never panics whatever the bytes and however they arrive; the frames it yields are exactly
//! the bytes it consumed; after an error nothing more is read. Every payload decodes (or not)
//! as the picked method's request without panicking, and what decodes encodes and decodes
//! equal.
#![no_main]

use hookhost_nri::api::{PLUGIN_METHODS, PluginRequest};
use hookhost_nri::frame::{Decoder, Frame, Header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, wire)) = data.split_first() else {
        return;
    };
    let (frames, consumed) = decode(wire, usize::from(pick % 16) + 1);
    let again: Vec<u8> = frames
        .iter()
        .flat_map(|f| {
            let len = f.payload.len() as u32;
            let head = Header { conn: f.conn, len }.encode();
            head.into_iter().chain(f.payload.iter().copied())
        })
        .collect();
    assert_eq!(again, wire[..consumed]);
    let method = PLUGIN_METHODS[usize::from(pick >> 4) % PLUGIN_METHODS.len()];
    for frame in &frames {
        if let Ok(request) = PluginRequest::decode(method, &frame.payload) {
            let bytes = request.encode().expect("a decoded request encodes");
            let back = PluginRequest::decode(method, &bytes).expect("an encoded request decodes");
            assert_eq!(back, request);
        }
    }
});

/// The frames in `wire` read `step` bytes at a time, and how many bytes they took.
fn decode(wire: &[u8], step: usize) -> (Vec<Frame>, usize) {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    let mut pushed = 0;
    for chunk in wire.chunks(step) {
        decoder.push(chunk);
        pushed += chunk.len();
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => {
                    let taken = frames.iter().map(|f: &Frame| 8 + f.payload.len()).sum();
                    return (frames, taken);
                }
            }
        }
    }
    (frames, pushed - decoder.pending())
}
