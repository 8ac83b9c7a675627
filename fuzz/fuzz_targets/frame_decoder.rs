//! Feeds arbitrary bytes to every decoding path a helper or the hub exposes to its peer:
//! the incremental decoder (in fuzzer-chosen chunk sizes, as a poll loop would see them),
//! the blocking reader, and whole-body decoding of every message type. Any panic, any
//! allocation beyond the frame cap, or a decoded message that does not re-encode to an
//! equal value is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sudohub_protocol::frame::{decode, encode, read_frame, HEADER_LEN};
use sudohub_protocol::pam::{PamAnswer, PamRequest};
use sudohub_protocol::spawner::{ReattachAnswer, ReattachHello, Reply, Request};
use sudohub_protocol::{FrameDecoder, MAX_FRAME_LEN};

fn check<T>(body: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(msg) = decode::<T>(body) {
        let frame = encode(&msg).expect("a decoded message re-encodes");
        let again = decode::<T>(&frame[HEADER_LEN..]).expect("a re-encoded message decodes");
        assert_eq!(msg, again);
    }
}

fn all_types(body: &[u8]) {
    assert!(body.len() <= MAX_FRAME_LEN);
    check::<Request>(body);
    check::<Reply>(body);
    check::<ReattachHello>(body);
    check::<ReattachAnswer>(body);
    check::<PamRequest>(body);
    check::<PamAnswer>(body);
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);

    let mut decoder = FrameDecoder::new();
    'feed: for piece in rest.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_body() {
                Ok(Some(body)) => all_types(&body),
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
        assert!(decoder.buffered() <= HEADER_LEN + MAX_FRAME_LEN + chunk);
    }
    let _ = decoder.eof_error();

    let mut reader = rest;
    while let Ok(Some(body)) = read_frame(&mut reader) {
        all_types(&body);
    }
    all_types(&rest[..rest.len().min(MAX_FRAME_LEN)]);
});
