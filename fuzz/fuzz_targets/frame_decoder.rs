//! Fuzzes everything that decodes untrusted bytes from a peer: the frame decoder (fed
//! in pieces whose sizes come from the input), message decoding, record decoding (also
//! in place, over a batch already in use) and JSON lines. Any panic or hang is a bug; errors are expected.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use protocol::frame::{batch_parts, decode_message, FrameDecoder, PREAMBLE};
use protocol::records::decode_records_into;
use protocol::message::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    // Half the inputs get a valid preamble so the fuzzer reaches the frames quickly.
    let mut stream = Vec::with_capacity(rest.len() + PREAMBLE.len());
    if split & 1 == 0 {
        stream.extend_from_slice(PREAMBLE);
    }
    stream.extend_from_slice(rest);
    let step = usize::from(split >> 1).max(1);
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut reused = Vec::new();
    for piece in stream.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode_frame(&mut buf) {
                Ok(Some(body)) => {
                    if let Ok(Message::Batch(batch)) = decode_message(&body) {
                        let _ = batch.decode();
                    }
                    // The in-place path writers take, over a batch already in use.
                    if let Some(parts) = batch_parts(&body) {
                        let _ = decode_records_into(parts.records, &mut reused);
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = decoder.decode_frame_eof(&mut buf);
    let _ = protocol::records::decode_records(rest);
    let _ = protocol::jsonl::line_to_record(&String::from_utf8_lossy(rest));
});
