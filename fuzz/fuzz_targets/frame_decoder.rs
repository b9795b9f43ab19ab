//! Fuzzes everything that decodes untrusted bytes from a peer: the frame decoder (fed
//! in pieces whose sizes come from the input), message decoding, record decoding (also
//! in place, over a batch already in use, and lent with its text unchecked) and JSON
//! lines. Any panic or hang is a bug; errors are expected. The lazy record decoder,
//! its text then checked, must lend what the eager one lends and refuse what it refuses.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use protocol::frame::{batch_parts, decode_message, FrameDecoder, PREAMBLE};
use protocol::message::Message;
use protocol::records::{
    decode_records_into, encode_records, visit_records, visit_records_lazy, RecordDecodeError,
};

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
    let mut eager = Vec::new();
    let eager_result = visit_records(rest, |r| {
        eager.push(r.iter().map(|v| v.to_value()).collect::<Vec<_>>());
        Ok::<_, RecordDecodeError>(())
    });
    let mut lazy = Vec::new();
    let lazy_result = visit_records_lazy(rest, |r| {
        let record = r.iter().map(|v| v.check().map(|v| v.to_value()));
        lazy.push(record.collect::<Result<Vec<_>, _>>()?);
        Ok::<_, RecordDecodeError>(())
    });
    // Compared encoded (a NaN is not equal to itself).
    let (mut eager_bytes, mut lazy_bytes) = (Vec::new(), Vec::new());
    encode_records(&eager, &mut eager_bytes);
    encode_records(&lazy, &mut lazy_bytes);
    assert_eq!(eager_bytes, lazy_bytes);
    assert_eq!(eager_result.ok(), lazy_result.ok());
    let _ = protocol::jsonl::line_to_record(&String::from_utf8_lossy(rest));
});
