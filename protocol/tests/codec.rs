//! Round trips of every message and column type, and the decoder's failure modes.

#![allow(clippy::unwrap_used)] // tests unwrap freely

use bytes::BytesMut;
use proptest::prelude::*;
use protocol::frame::{
    batch_parts, check_hello, decode_message, encode_frame, encode_message, FrameDecoder,
    FrameError, FrameReader, FrameWriter, StreamPart, PREAMBLE,
};
use protocol::jsonl::{line_to_record, record_to_line};
use protocol::message::*;
use protocol::records::{decode_records, decode_records_into, encode_records};
use protocol::runtime::{PluginError, RecordSource};
use protocol::Value;

/// Equality that treats NaN as equal to itself (bit patterns aside).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => (x.is_nan() && y.is_nan()) || x == y,
        _ => a == b,
    }
}

fn same_record(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y))
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Long),
        any::<f64>().prop_map(Value::Double),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0)
        ]
        .prop_map(Value::Double),
        "-?[0-9]{1,30}(\\.[0-9]{1,12})?".prop_map(Value::Decimal),
        any::<String>().prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Value::Bytes),
        any::<i64>().prop_map(Value::Date),
    ]
}

fn record() -> impl Strategy<Value = Vec<Value>> {
    proptest::collection::vec(value(), 0..12)
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z0-9 ]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn error_kind() -> impl Strategy<Value = ErrorKind> {
    prop_oneof![
        Just(ErrorKind::Config),
        Just(ErrorKind::Auth),
        Just(ErrorKind::Service),
        Just(ErrorKind::Io),
        Just(ErrorKind::Data),
        Just(ErrorKind::Protocol),
        Just(ErrorKind::Cancelled),
        Just(ErrorKind::Internal),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            "[a-z-]{1,20}",
            "[0-9.]{1,8}",
            prop_oneof![Just(Role::Engine), Just(Role::Reader), Just(Role::Writer)],
            any::<u32>()
        )
            .prop_map(|(name, v, role, max)| Message::Hello(Hello {
                max_frame_bytes: max,
                ..Hello::new(role, &name, &v)
            })),
        (
            json_value(),
            "[a-z0-9]{0,10}",
            "[0-9a-f]{32}",
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(task, job_id, fingerprint, i, n)| {
                Message::Configure(Configure {
                    task,
                    context: JobContext {
                        job_id,
                        fingerprint,
                        time_zone: "Asia/Shanghai".into(),
                        task_index: i,
                        task_count: n,
                    },
                })
            }),
        proptest::collection::vec(record(), 0..8)
            .prop_map(|rs| Message::Batch(Batch::from_records(&rs))),
        (record(), any::<String>()).prop_map(|(r, why)| Message::Dirty(Dirty::new(&r, why))),
        json_value().prop_map(|state| Message::Checkpoint(Checkpoint { state })),
        (
            any::<u64>(),
            any::<u64>(),
            proptest::option::of(any::<u64>())
        )
            .prop_map(
                |(records, bytes, total_records)| Message::Progress(Progress {
                    records,
                    bytes,
                    total_records
                })
            ),
        ("[a-z]{1,5}", any::<String>())
            .prop_map(|(level, message)| Message::Log(Log { level, message })),
        proptest::collection::vec(any::<u8>(), 0..100)
            .prop_map(|data| Message::Output(Output { data })),
        (any::<u64>(), any::<u64>())
            .prop_map(|(records, bytes)| Message::Eos(Eos { records, bytes })),
        (any::<u64>(), any::<u64>(), any::<u64>(), json_value()).prop_map(
            |(records, written, dirty, report)| Message::Done(Done {
                records,
                written,
                dirty,
                report
            })
        ),
        any::<String>().prop_map(|reason| Message::Cancel(Cancel { reason })),
        (error_kind(), any::<bool>(), any::<String>()).prop_map(|(kind, retryable, message)| {
            Message::Error(ErrorMessage {
                kind,
                retryable,
                message,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn records_round_trip_through_msgpack(records in proptest::collection::vec(record(), 0..16)) {
        let mut bytes = Vec::new();
        encode_records(&records, &mut bytes);
        let back = decode_records(&bytes).unwrap();
        prop_assert_eq!(back.len(), records.len());
        for (a, b) in records.iter().zip(&back) {
            prop_assert!(same_record(a, b), "{:?} != {:?}", a, b);
        }
    }

    #[test]
    fn decoding_over_a_used_batch_equals_a_fresh_decode(
        first in proptest::collection::vec(record(), 0..12),
        second in proptest::collection::vec(record(), 0..12),
    ) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_records(&first, &mut a);
        encode_records(&second, &mut b);
        let mut reused = Vec::new();
        decode_records_into(&a, &mut reused).unwrap();
        decode_records_into(&b, &mut reused).unwrap();
        let fresh = decode_records(&b).unwrap();
        prop_assert_eq!(reused.len(), fresh.len());
        for (x, y) in reused.iter().zip(&fresh) {
            prop_assert!(same_record(x, y), "{:?} != {:?}", x, y);
        }
    }

    #[test]
    fn lent_batches_equal_owned_batches(batches in proptest::collection::vec(proptest::collection::vec(record(), 0..8), 1..6)) {
        let mut stream = PREAMBLE.to_vec();
        let hello = Message::Hello(Hello::new(Role::Reader, "test", "0"));
        encode_frame(&encode_message(&hello).unwrap(), &mut stream);
        let mut total = 0;
        for batch in &batches {
            total += batch.len() as u64;
            encode_frame(&encode_message(&Message::Batch(Batch::from_records(batch))).unwrap(), &mut stream);
        }
        encode_frame(&encode_message(&Message::Eos(Eos { records: total, bytes: 0 })).unwrap(), &mut stream);
        let mut lent = RecordSource::from_frame_bytes(stream.clone());
        let mut each = RecordSource::from_frame_bytes(stream.clone());
        let mut owned = RecordSource::from_frame_bytes(stream);
        for batch in &batches {
            let want = owned.next_batch().unwrap().unwrap();
            let got = lent.next_batch_ref().unwrap().unwrap();
            let mut visited = Vec::new();
            let count = each.next_batch_each(|record| {
                visited.push(record.iter().map(|v| v.to_value()).collect::<Vec<_>>());
                Ok(())
            }).unwrap();
            prop_assert_eq!(count, Some(batch.len()));
            prop_assert_eq!(got.len(), batch.len());
            prop_assert_eq!(want.len(), batch.len());
            prop_assert_eq!(visited.len(), batch.len());
            for (((g, w), v), b) in got.iter().zip(&want).zip(&visited).zip(batch) {
                prop_assert!(same_record(g, b) && same_record(w, b) && same_record(v, b),
                    "{:?} / {:?} / {:?} != {:?}", g, w, v, b);
            }
        }
        prop_assert!(lent.next_batch_ref().unwrap().is_none());
        prop_assert!(owned.next_batch().unwrap().is_none());
        prop_assert_eq!(each.next_batch_each(|_| Ok(())).unwrap(), None);
        prop_assert_eq!(lent.records(), total);
        prop_assert_eq!(each.records(), total);
    }

    #[test]
    fn records_round_trip_through_json_lines(r in record()) {
        let line = record_to_line(&r);
        prop_assert!(!line.contains('\n'));
        let back = line_to_record(&line).unwrap();
        prop_assert!(same_record(&r, &back), "{} gave {:?}", line, back);
    }

    #[test]
    fn messages_round_trip_through_frames(messages in proptest::collection::vec(message(), 1..6)) {
        let mut stream = PREAMBLE.to_vec();
        for m in &messages {
            encode_frame(&encode_message(m).unwrap(), &mut stream);
        }
        let mut reader = FrameReader::new(stream.as_slice());
        for m in &messages {
            prop_assert_eq!(&reader.next_message().unwrap().unwrap(), m);
        }
        prop_assert!(reader.next_message().unwrap().is_none());
    }

    #[test]
    fn frames_survive_arriving_one_byte_at_a_time(messages in proptest::collection::vec(message(), 1..4)) {
        let mut stream = PREAMBLE.to_vec();
        for m in &messages {
            encode_frame(&encode_message(m).unwrap(), &mut stream);
        }
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in stream {
            buf.extend_from_slice(&[b]);
            while let Some(body) = decoder.decode_frame(&mut buf).unwrap() {
                got.push(decode_message(&body).unwrap());
            }
        }
        prop_assert!(decoder.decode_frame_eof(&mut buf).unwrap().is_none());
        prop_assert_eq!(got, messages);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), with_preamble in any::<bool>()) {
        let mut stream = if with_preamble { PREAMBLE.to_vec() } else { Vec::new() };
        stream.extend_from_slice(&bytes);
        let mut reader = FrameReader::new(stream.as_slice());
        // Any outcome but a panic is fine; stop at the first error or the end.
        while let Ok(Some(_)) = reader.next_message() {}
        let _ = decode_records(&bytes);
        let _ = line_to_record(&String::from_utf8_lossy(&bytes));
    }
}

fn one_frame(message: &Message) -> Vec<u8> {
    let mut stream = PREAMBLE.to_vec();
    encode_frame(&encode_message(message).unwrap(), &mut stream);
    stream
}

fn sample() -> Message {
    Message::Batch(Batch::from_records(&[vec![
        Value::Long(1),
        Value::String("x".into()),
    ]]))
}

fn read_all(bytes: &[u8]) -> Result<Vec<Message>, FrameError> {
    let mut reader = FrameReader::new(bytes);
    let mut out = Vec::new();
    while let Some(m) = reader.next_message()? {
        out.push(m);
    }
    Ok(out)
}

#[test]
fn eof_inside_the_header_is_its_own_error() {
    let stream = one_frame(&sample());
    let cut = &stream[..PREAMBLE.len() + 2];
    match read_all(cut) {
        Err(FrameError::UnexpectedEof {
            part: StreamPart::Header,
            have: 2,
            need: 4,
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn eof_inside_the_body_is_its_own_error() {
    let stream = one_frame(&sample());
    let cut = &stream[..PREAMBLE.len() + 4 + 3];
    match read_all(cut) {
        Err(FrameError::UnexpectedEof {
            part: StreamPart::Body,
            have: 3,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let cut = &stream[..stream.len() - 1];
    assert!(matches!(
        read_all(cut),
        Err(FrameError::UnexpectedEof {
            part: StreamPart::Checksum,
            have: 3,
            need: 4
        })
    ));
    assert!(matches!(
        read_all(&PREAMBLE[..5]),
        Err(FrameError::UnexpectedEof {
            part: StreamPart::Preamble,
            ..
        })
    ));
}

#[test]
fn every_flipped_bit_is_caught() {
    let stream = one_frame(&sample());
    for byte in PREAMBLE.len() + 4..stream.len() {
        for bit in 0..8 {
            let mut bad = stream.clone();
            bad[byte] ^= 1 << bit;
            assert!(
                matches!(read_all(&bad), Err(FrameError::Checksum { .. })),
                "byte {byte} bit {bit}"
            );
        }
    }
}

#[test]
fn oversize_length_is_refused_before_reading_the_body() {
    let mut stream = PREAMBLE.to_vec();
    stream.extend_from_slice(&u32::MAX.to_be_bytes());
    match read_all(&stream) {
        Err(FrameError::TooLarge { len, max }) => {
            assert_eq!(len, u32::MAX as usize);
            assert_eq!(max, protocol::frame::DEFAULT_MAX_FRAME_BYTES);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn printed_text_is_reported_as_not_our_protocol_with_its_first_bytes() {
    let err = read_all(b"Starting plugin v1.2...\n").unwrap_err();
    assert_eq!(err.to_string(), "not a streamport protocol stream: it starts with \"Starting plugin v1.2...\\n\" (24 bytes shown)");
}

#[test]
fn a_clean_end_is_distinct_from_a_required_message() {
    let mut reader = FrameReader::new(&PREAMBLE[..]);
    assert!(reader.next_message().unwrap().is_none());
    let mut reader = FrameReader::new(&PREAMBLE[..]);
    assert!(matches!(reader.expect_message(), Err(FrameError::Closed)));
}

#[test]
fn malformed_body_with_a_good_checksum() {
    let mut stream = PREAMBLE.to_vec();
    encode_frame(b"\x81\xa4type\xa5bogus", &mut stream);
    assert!(matches!(read_all(&stream), Err(FrameError::Malformed(_))));
}

#[test]
fn hello_versions() {
    let mut hello = Hello::new(Role::Reader, "reader-x", "0.1.0");
    assert!(check_hello(&hello).is_ok());
    hello.version = "1.7.2".into();
    assert!(check_hello(&hello).is_ok());
    hello.version = "2.0.0".into();
    let err = check_hello(&hello).unwrap_err();
    assert_eq!(err.to_string(), "incompatible protocol: peer reader-x speaks streamport 2.0.0, this program speaks streamport 1.0.0");
    hello.version = "1.0.0".into();
    hello.protocol = "other".into();
    assert!(matches!(
        check_hello(&hello),
        Err(FrameError::Incompatible { .. })
    ));
}

/// A batch whose fields come in another order is not read in place, but still decodes.
#[test]
fn batches_in_another_layout_take_the_general_path() {
    let records = vec![vec![Value::Long(1), Value::String("x".into())]];
    let canonical = encode_message(&Message::Batch(Batch::from_records(&records))).unwrap();
    let parts = batch_parts(&canonical).unwrap();
    assert_eq!((parts.count, parts.bytes), (1, 9));
    let mut encoded = Vec::new();
    encode_records(&records, &mut encoded);
    assert_eq!(parts.records, encoded.as_slice());

    let mut reordered = Vec::new();
    rmp::encode::write_map_len(&mut reordered, 4).unwrap();
    rmp::encode::write_str(&mut reordered, "type").unwrap();
    rmp::encode::write_str(&mut reordered, "batch").unwrap();
    rmp::encode::write_str(&mut reordered, "records").unwrap();
    rmp::encode::write_bin(&mut reordered, &encoded).unwrap();
    rmp::encode::write_str(&mut reordered, "bytes").unwrap();
    rmp::encode::write_uint(&mut reordered, 9).unwrap();
    rmp::encode::write_str(&mut reordered, "count").unwrap();
    rmp::encode::write_uint(&mut reordered, 1).unwrap();
    assert!(batch_parts(&reordered).is_none());
    assert_eq!(
        decode_message(&reordered).unwrap(),
        Message::Batch(Batch::from_records(&records))
    );
    // Not a batch, or a batch with bytes after its records: not read in place.
    let eos = encode_message(&Message::Eos(Eos {
        records: 1,
        bytes: 9,
    }))
    .unwrap();
    assert!(batch_parts(&eos).is_none());
    let mut longer = canonical.clone();
    longer.push(0xc0);
    assert!(batch_parts(&longer).is_none());
}

/// A lent batch whose count disagrees with its records is refused, as an owned one is.
#[test]
fn a_lent_batch_with_a_wrong_count_is_an_error() {
    let records = vec![vec![Value::Long(1)], vec![Value::Long(2)]];
    let mut batch = Batch::from_records(&records);
    batch.count = 3;
    let mut stream = PREAMBLE.to_vec();
    let hello = Message::Hello(Hello::new(Role::Reader, "test", "0"));
    encode_frame(&encode_message(&hello).unwrap(), &mut stream);
    encode_frame(
        &encode_message(&Message::Batch(batch)).unwrap(),
        &mut stream,
    );
    let e = RecordSource::from_frame_bytes(stream.clone())
        .next_batch_ref()
        .unwrap_err();
    assert!(
        e.to_string().contains("batch says 3 records but holds 2"),
        "{e}"
    );
    let e = RecordSource::from_frame_bytes(stream.clone())
        .next_batch()
        .unwrap_err();
    assert!(
        e.to_string().contains("batch says 3 records but holds 2"),
        "{e}"
    );
    let e = RecordSource::from_frame_bytes(stream)
        .next_batch_each(|_| Ok(()))
        .unwrap_err();
    assert!(
        e.to_string().contains("batch says 3 records but holds 2"),
        "{e}"
    );
}

#[test]
fn visiting_a_batch_reports_a_malformed_record_and_a_writers_error_as_they_are() {
    let good = vec![vec![Value::Long(2)], vec![Value::String("a".into())]];
    let mut batch = Batch::from_records(&good);
    let mut stream = PREAMBLE.to_vec();
    let hello = Message::Hello(Hello::new(Role::Reader, "test", "0"));
    encode_frame(&encode_message(&hello).unwrap(), &mut stream);
    let clean = stream.clone();
    encode_frame(
        &encode_message(&Message::Batch(batch.clone())).unwrap(),
        &mut stream,
    );
    // The writer's own error ends the batch unchanged.
    let e = RecordSource::from_frame_bytes(stream)
        .next_batch_each(|_| Err(PluginError::data("no room")))
        .unwrap_err();
    assert_eq!(e.to_string(), PluginError::data("no room").to_string());
    // A string that is not UTF-8 in the second record: the first was visited.
    let at = batch.records.iter().position(|&b| b == b'a').unwrap();
    batch.records[at] = 0xff;
    let mut stream = clean;
    encode_frame(
        &encode_message(&Message::Batch(batch)).unwrap(),
        &mut stream,
    );
    let mut visited = 0;
    let e = RecordSource::from_frame_bytes(stream)
        .next_batch_each(|_| {
            visited += 1;
            Ok(())
        })
        .unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");
    assert_eq!(visited, 1);
}

#[test]
fn a_body_framed_in_place_is_the_frame_of_that_body() {
    let mut w = FrameWriter::without_preamble(Vec::new());
    let mut short = vec![0, 0, 1, 2];
    assert!(
        w.write_body_in_place(&mut short, 3).is_err(),
        "no room for the header"
    );
    assert!(
        w.write_body_in_place(&mut short, 9).is_err(),
        "a body beyond the buffer"
    );
    let mut buf = vec![7, 9, 9, 9, 9, 1, 2, 3];
    w.write_body_in_place(&mut buf, 5).unwrap();
    let mut want = Vec::new();
    encode_frame(&[1, 2, 3], &mut want);
    assert_eq!(w.into_inner(), want);
    assert_eq!(buf[1..], want[..], "the buffer holds the frame");
}

/// A reader that hands out a stream in pieces of the given sizes (cycled), failing
/// with `Interrupted` before every piece whose size is odd, and with a hard error once
/// `fail_at` bytes are out, if set.
struct Pieces<'a> {
    rest: &'a [u8],
    sizes: Vec<usize>,
    next: usize,
    interrupted: bool,
    given: usize,
    fail_at: Option<usize>,
}

impl<'a> Pieces<'a> {
    fn new(stream: &'a [u8], sizes: Vec<usize>) -> Self {
        Self {
            rest: stream,
            sizes,
            next: 0,
            interrupted: false,
            given: 0,
            fail_at: None,
        }
    }
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.fail_at.is_some_and(|at| self.given >= at) {
            return Err(std::io::Error::other("the pipe broke"));
        }
        let size = self.sizes[self.next % self.sizes.len()];
        if size % 2 == 1 && !self.interrupted {
            self.interrupted = true;
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        self.interrupted = false;
        self.next += 1;
        let mut n = size.min(buf.len()).min(self.rest.len());
        if let Some(at) = self.fail_at {
            n = n.min(at - self.given);
        }
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        self.given += n;
        Ok(n)
    }
}

/// A batch message whose frame is about `bytes` long.
fn batch_of(bytes: usize, seed: usize) -> Message {
    let records: Vec<Vec<Value>> = (0..bytes / 1000 + 1)
        .map(|i| {
            vec![
                Value::Long((seed * 100_000 + i) as i64),
                Value::String(format!("{seed}-{i}-{}", "v".repeat(980))),
            ]
        })
        .collect();
    Message::Batch(Batch::from_records(&records))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Frames larger than a read (read whole, into room not zeroed first) and small
    /// ones, in any order, arrive equal whatever pieces the stream comes in, and a
    /// read interrupted by a signal is not the end of the stream.
    #[test]
    fn large_and_small_frames_arrive_whole_in_any_pieces(
        sizes in proptest::collection::vec(prop_oneof![1usize..16, 1usize..70_000, 60_000usize..300_000], 1..6),
        frames in proptest::collection::vec(prop_oneof![Just(10usize), Just(60_000), Just(70_000), Just(250_000)], 1..6),
    ) {
        let messages: Vec<Message> = frames.iter().enumerate().map(|(i, &b)| batch_of(b, i)).collect();
        let mut stream = PREAMBLE.to_vec();
        for m in &messages {
            encode_frame(&encode_message(m).unwrap(), &mut stream);
        }
        let mut reader = FrameReader::new(Pieces::new(&stream, sizes));
        for m in &messages {
            prop_assert_eq!(&reader.next_message().unwrap().unwrap(), m);
        }
        prop_assert!(reader.next_message().unwrap().is_none());
    }
}

#[test]
fn eof_inside_a_large_body_is_its_own_error() {
    let big = batch_of(300_000, 1);
    let mut stream = one_frame(&sample());
    let whole = stream.len();
    encode_frame(&encode_message(&big).unwrap(), &mut stream);
    let body = stream.len() - whole - 8;
    for cut in [whole + 4 + 100, whole + 4 + 70_000, stream.len() - 5] {
        let mut reader = FrameReader::new(Pieces::new(&stream[..cut], vec![4096, 65_536]));
        assert_eq!(reader.next_message().unwrap().unwrap(), sample());
        match reader.next_message() {
            Err(FrameError::UnexpectedEof {
                part: StreamPart::Body,
                have,
                need,
            }) => assert_eq!((have, need), (cut - whole - 4, body), "cut at {cut}"),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let mut reader = FrameReader::new(Pieces::new(&stream[..stream.len() - 2], vec![65_536]));
    assert_eq!(reader.next_message().unwrap().unwrap(), sample());
    assert!(matches!(
        reader.next_message(),
        Err(FrameError::UnexpectedEof {
            part: StreamPart::Checksum,
            have: 2,
            need: 4
        })
    ));
}

#[test]
fn a_read_error_inside_a_large_frame_is_reported() {
    let mut stream = PREAMBLE.to_vec();
    encode_frame(&encode_message(&batch_of(300_000, 2)).unwrap(), &mut stream);
    for fail_at in [PREAMBLE.len() + 2, PREAMBLE.len() + 100_000] {
        let mut pieces = Pieces::new(&stream, vec![8192]);
        pieces.fail_at = Some(fail_at);
        let mut reader = FrameReader::new(pieces);
        match reader.next_message() {
            Err(FrameError::Io(e)) => assert_eq!(e.to_string(), "the pipe broke"),
            other => panic!("failing at {fail_at}: {other:?}"),
        }
    }
}
