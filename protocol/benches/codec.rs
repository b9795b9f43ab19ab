//! Encode and decode throughput of batches of ~100-byte records.
//!
//! `cargo bench -p protocol --bench codec` prints records/s and MB/s (MB = 10^6 bytes of
//! encoded frames) for: encoding through `RecordSink` (records → batch frames) and
//! decoding through `RecordSource` (frames → records), best of 5 runs of 2,000,000
//! records each.

#![allow(clippy::unwrap_used)] // a benchmark binary may unwrap

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::frame::{encode_frame, encode_message, PREAMBLE};
use protocol::message::{Eos, Hello, Message, Role};

use protocol::runtime::{RecordSink, RecordSource};
use protocol::Value;

const RECORDS: usize = 2_000_000;
const RUNS: usize = 5;

/// A record whose MessagePack encoding is 100 bytes: a long, an 80-character string,
/// a double, a date and a bool.
fn record(i: usize) -> Vec<Value> {
    vec![
        Value::Long(i as i64 * 7919),
        Value::String(format!("{:0>80}", i)),
        Value::Double(i as f64 * 0.25),
        Value::Date(1_705_307_400_000 + i as i64),
    ]
}

fn best<F: FnMut() -> usize>(mut f: F) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut size = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        size = f();
        best = best.min(start.elapsed());
    }
    (best, size)
}

/// A benchmark reports on stdout (it is not a plugin: stdout is not a protocol here).
fn report_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn report(what: &str, elapsed: Duration, bytes: usize) {
    let secs = elapsed.as_secs_f64();
    report_line(format_args!(
        "{what:<8} {:>12.0} records/s  {:>8.1} MB/s  ({RECORDS} records, {bytes} bytes, {:.3} s)",
        RECORDS as f64 / secs,
        bytes as f64 / secs / 1e6,
        secs
    ));
}

fn main() {
    let records: Vec<Vec<Value>> = (0..1024).map(record).collect();
    let mut one = Vec::new();
    protocol::records::encode_record(&records[0], &mut one);
    report_line(format_args!("record size: {} bytes encoded", one.len()));

    let mut frames = Vec::new();
    let (elapsed, bytes) = best(|| {
        let (mut sink, buffer) = RecordSink::in_memory();
        for i in 0..RECORDS {
            sink.push(&records[i % records.len()]).unwrap();
        }
        sink.flush_batch().unwrap();
        frames = buffer.take();
        frames.len()
    });
    report("encode", elapsed, bytes);

    // The stream a standalone reader writes: preamble, hello, batches, eos.
    let mut stream = PREAMBLE.to_vec();
    let hello = Message::Hello(Hello::new(Role::Reader, "bench", "0"));
    encode_frame(&encode_message(&hello).unwrap(), &mut stream);
    stream.extend_from_slice(&frames[PREAMBLE.len()..]);
    let eos = Message::Eos(Eos {
        records: RECORDS as u64,
        bytes: 0,
    });
    encode_frame(&encode_message(&eos).unwrap(), &mut stream);
    let stream: Arc<[u8]> = stream.into();
    let (elapsed, bytes) = best(|| {
        let mut source = RecordSource::from_frame_bytes(stream.clone());
        let mut n = 0;
        while let Some(batch) = source.next_batch_ref().unwrap() {
            n += batch.len();
        }
        assert_eq!(n, RECORDS);
        frames.len()
    });
    report("decode", elapsed, bytes);
}
