//! Conversion rules, each checked against what DataX writes.

use super::*;

fn conv() -> Conversions {
    Conversions::new(
        false,
        Zone::parse("Asia/Shanghai").unwrap(),
        Zone::parse("Asia/Shanghai").unwrap(),
        OverLengthRule::KeepOn,
        8,
        4,
    )
    .unwrap()
}

#[test]
fn integers_refuse_what_does_not_fit() {
    let c = conv();
    assert_eq!(
        c.convert(&Value::String("1.9".into()), &OdpsType::Bigint),
        Ok(Cell::Int(1))
    );
    let e = c
        .convert(&Value::String("abc".into()), &OdpsType::Bigint)
        .unwrap_err();
    assert!(e.contains("not a decimal number"), "{e}");
    assert!(c
        .convert(&Value::Long(i64::MIN), &OdpsType::Bigint)
        .is_err());
    assert!(c.convert(&Value::Long(128), &OdpsType::Tinyint).is_err());
    assert!(c
        .convert(&Value::Long(40_000), &OdpsType::Smallint)
        .is_err());
    assert!(c.convert(&Value::Long(1 << 31), &OdpsType::Int).is_err());
    assert_eq!(
        c.convert(&Value::Bool(true), &OdpsType::Int),
        Ok(Cell::Int(1))
    );
    assert!(c
        .convert(&Value::Bytes(vec![1]), &OdpsType::Bigint)
        .is_err());
}

#[test]
fn dates_and_times() {
    let c = conv();
    // 2024-01-02 00:00:00 in Shanghai is 2024-01-01T16:00:00Z.
    let ms = 1_704_124_800_000;
    assert_eq!(
        c.convert(
            &Value::String("2024-01-02 00:00:00".into()),
            &OdpsType::Datetime
        ),
        Ok(Cell::Datetime(ms))
    );
    assert_eq!(
        c.convert(&Value::String("20240102".into()), &OdpsType::Datetime),
        Ok(Cell::Datetime(ms))
    );
    assert_eq!(
        c.convert(&Value::Date(ms), &OdpsType::Date),
        Ok(Cell::Date(19724))
    );
    assert_eq!(
        c.convert(&Value::Date(-1), &OdpsType::Timestamp),
        Ok(Cell::Timestamp {
            seconds: -1,
            nanos: 999_000_000
        })
    );
    assert!(c
        .convert(&Value::String("soon".into()), &OdpsType::Datetime)
        .is_err());
    assert!(c.convert(&Value::Double(1.0), &OdpsType::Datetime).is_err());
    assert!(c
        .convert(&Value::Date(DATETIME_MAX_MS + 1), &OdpsType::Datetime)
        .is_err());
    assert_eq!(
        c.convert(&Value::Date(ms), &OdpsType::Varchar(30)),
        Ok(Cell::Bytes(Cow::Owned(b"2024-01-02 00:00:00".to_vec())))
    );
}

#[test]
fn strings_and_lengths() {
    let mut c = conv();
    assert!(c
        .convert(&Value::String("héllo".into()), &OdpsType::Varchar(5))
        .is_ok());
    assert!(c
        .convert(&Value::String("héllo!".into()), &OdpsType::Char(5))
        .is_err());
    assert!(c
        .convert(&Value::String("123456789".into()), &OdpsType::String)
        .is_err());
    c.over_length_rule = OverLengthRule::SetNull;
    assert_eq!(
        c.convert(&Value::String("123456789".into()), &OdpsType::String),
        Ok(Cell::Null)
    );
    c.over_length_rule = OverLengthRule::Truncate;
    // maxFieldLength 4 − 6: nothing is kept.
    assert_eq!(
        c.convert(&Value::String("ééééé".into()), &OdpsType::String),
        Ok(Cell::Bytes(Cow::Owned(Vec::new())))
    );
    assert!(c.convert(&Value::Long(1), &OdpsType::Binary).is_err());
    assert_eq!(
        c.convert(&Value::Bytes(vec![0xff]), &OdpsType::String),
        Ok(Cell::Bytes(Cow::Owned(vec![0xff])))
    );
    c.empty_as_null = true;
    assert_eq!(
        c.convert(&Value::String(String::new()), &OdpsType::Bigint),
        Ok(Cell::Null)
    );
}

#[test]
fn decimals() {
    assert_eq!(decimal_text("123.45", 54, 18).unwrap(), "123.45");
    // Text already plain is lent back; text that changes is rendered anew.
    assert!(matches!(
        decimal_text("-0.5", 10, 2),
        Ok(std::borrow::Cow::Borrowed("-0.5"))
    ));
    assert!(matches!(
        decimal_text("0", 10, 2),
        Ok(std::borrow::Cow::Borrowed("0"))
    ));
    for (text, plain) in [
        ("+1", "1"),
        ("007", "7"),
        ("1.", "1"),
        (".5", "0.5"),
        ("+.5", "0.5"),
        ("-0.00", "0.00"),
    ] {
        let got = decimal_text(text, 10, 2).unwrap();
        assert!(matches!(got, std::borrow::Cow::Owned(_)), "{text}");
        assert_eq!(got, plain, "{text}");
    }
    assert_eq!(decimal_text("1.2345", 10, 2).unwrap(), "1.23");
    assert_eq!(decimal_text("1.235", 10, 2).unwrap(), "1.24");
    assert_eq!(decimal_text("-9.995", 10, 2).unwrap(), "-10.00");
    assert_eq!(decimal_text("1e3", 10, 2).unwrap(), "1000");
    assert_eq!(decimal_text("1.5E-3", 10, 4).unwrap(), "0.0015");
    assert_eq!(decimal_text("-0.001", 54, 18).unwrap(), "-0.001");
    assert_eq!(decimal_text("-0.001", 10, 2).unwrap(), "0.00");
    assert!(decimal_text("123456789", 10, 2).is_err());
    assert!(decimal_text("abc", 10, 2).is_err());
    assert!(decimal_text("", 10, 2).is_err());
    let c = conv();
    assert!(c
        .convert(
            &Value::Double(f64::NAN),
            &OdpsType::Decimal {
                precision: 10,
                scale: 2
            }
        )
        .is_err());
}

fn bytes(text: &str) -> Result<Cell<'static>, String> {
    Ok(Cell::Bytes(Cow::Owned(text.as_bytes().to_vec())))
}

const DECIMAL: OdpsType = OdpsType::Decimal {
    precision: 54,
    scale: 18,
};

#[test]
fn impossible_calendar_dates_are_dirty_not_1970() {
    let c = conv();
    for text in ["2024-02-30", "20240230", "2023-02-29 12:00:00"] {
        for ty in [OdpsType::Datetime, OdpsType::Date, OdpsType::Timestamp] {
            let e = c.convert(&Value::String(text.into()), &ty).unwrap_err();
            assert!(e.contains("cannot parse"), "{text} into {ty:?}: {e}");
        }
    }
}

/// DataX writes a double as `new BigDecimal(String.valueOf(d)).toPlainString()`
/// (texts observed with Java 17).
#[test]
fn doubles_into_text_columns_are_datax_plain_text() {
    let mut c = conv();
    c.max_odps_field_length = 100;
    let d = |v: f64| Value::Double(v);
    assert_eq!(
        c.convert(&d(1e20), &OdpsType::String),
        bytes("100000000000000000000")
    );
    assert_eq!(
        c.convert(&d(1e-7), &OdpsType::Varchar(10)),
        bytes("0.00000010")
    );
    assert_eq!(c.convert(&d(-0.0), &OdpsType::Char(3)), bytes("0.0"));
}

#[test]
fn negative_zero_is_written_as_zero() {
    let c = conv();
    for ty in [OdpsType::Double, OdpsType::Float] {
        match c.convert(&Value::Double(-0.0), &ty) {
            Ok(Cell::Double(v)) => assert!(v.is_sign_positive()),
            Ok(Cell::Float(v)) => assert!(v.is_sign_positive()),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn decimal_into_binary_is_dirty() {
    let e = conv()
        .convert(&Value::Decimal("1.5".into()), &OdpsType::Binary)
        .unwrap_err();
    assert!(e.contains("decimal"), "{e}");
}

#[test]
fn bool_into_decimal_is_one_or_zero() {
    let c = conv();
    assert_eq!(c.convert(&Value::Bool(true), &DECIMAL), bytes("1"));
    assert_eq!(c.convert(&Value::Bool(false), &DECIMAL), bytes("0"));
}

#[test]
fn more_than_36_integer_digits_into_decimal_are_dirty() {
    let c = conv();
    let wide = OdpsType::Decimal {
        precision: 38,
        scale: 0,
    };
    let digits36 = "9".repeat(36);
    assert_eq!(
        c.convert(&Value::String(digits36.clone()), &wide),
        bytes(&digits36)
    );
    for text in [
        "1".repeat(37),
        format!("-{}.5", "1".repeat(37)),
        "1e37".into(),
    ] {
        let e = c.convert(&Value::String(text.clone()), &wide).unwrap_err();
        assert!(e.contains("at most 36"), "{text}: {e}");
    }
}

#[test]
fn underflowing_text_into_double_is_dirty() {
    let c = conv();
    for ty in [OdpsType::Double, OdpsType::Float] {
        assert!(c.convert(&Value::String("1e-400".into()), &ty).is_err());
    }
}

#[test]
fn truncate_keeps_max_field_length_minus_6_of_strings() {
    let mut c = conv();
    c.over_length_rule = OverLengthRule::Truncate;
    c.max_field_length = 10;
    assert_eq!(
        c.convert(&Value::String("abcdefghij".into()), &OdpsType::String),
        bytes("abcd")
    );
    assert_eq!(
        c.convert(&Value::String("ééééé".into()), &OdpsType::String),
        bytes("éé")
    );
    assert_eq!(
        c.convert(&Value::Bytes(b"abcdefghijk".to_vec()), &OdpsType::Binary),
        bytes("abcdefghij")
    );
    c.max_field_length = 100;
    assert_eq!(
        c.convert(&Value::String("abcdefghijk".into()), &OdpsType::String),
        bytes("abcdefghijk")
    );
}

#[test]
fn varchar_and_char_count_utf16_units() {
    let c = conv();
    // "a😀" is 2 characters but 3 UTF-16 units (Java's String.length()).
    for ty in [OdpsType::Varchar(2), OdpsType::Char(2)] {
        let e = c.convert(&Value::String("a😀".into()), &ty).unwrap_err();
        assert!(e.contains("3 UTF-16 units"), "{e}");
    }
    assert_eq!(
        c.convert(&Value::String("a😀".into()), &OdpsType::Varchar(3)),
        bytes("a😀")
    );
}

#[test]
fn year_10000_dates_render_as_java() {
    // 10000-01-01T00:00:00Z; Java's "yyyy-MM-dd HH:mm:ss" prints 10000, no sign.
    assert_eq!(
        conv().convert(&Value::Date(253_402_300_800_000), &OdpsType::Varchar(30)),
        bytes("10000-01-01 08:00:00")
    );
}

proptest::proptest! {
    /// The plain-notation fast path of `decimal_text` gives what the general form
    /// gives, for decimal-looking text of every shape (signs, leading zeros, empty
    /// parts, exponents, too many digits, stray characters).
    #[test]
    fn plain_decimals_equal_the_general_form(
        text in "[-+]?0{0,3}[0-9]{0,25}(\\.[0-9]{0,25})?([eE][-+]?[0-9]{1,2})?|[-+.0-9a ]{0,12}",
        precision in 1u32..60,
        scale in 0u32..20,
    ) {
        let scale = scale.min(precision);
        proptest::prop_assert_eq!(
            decimal_text(&text, precision, scale).map(std::borrow::Cow::into_owned),
            decimal_text_general(&text, precision, scale),
            "{:?} as DECIMAL({}, {})", text, precision, scale
        );
    }
}

fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), any::<i64>(), -5i64..5].prop_map(Value::Long),
        prop_oneof![
            Just(-0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            any::<f64>()
        ]
        .prop_map(Value::Double),
        // Inside and outside the DATETIME range.
        prop_oneof![
            any::<i64>(),
            -62_167_305_600_001i64..=-62_167_305_599_999,
            253_402_387_199_999i64..=253_402_387_200_001
        ]
        .prop_map(Value::Date),
        // Around the field limit of `settings` (8 bytes), empty, text of dates and numbers.
        "(|[a-z]{1,3}|[a-z]{7,10}|é{3,5}|2024-01-0[1-9]|-?[0-9]{1,4}(\\.[0-9]{1,3})?|true|false)"
            .prop_map(Value::String),
        "-?[0-9]{1,4}\\.[0-9]{0,3}".prop_map(Value::Decimal),
        // Around DataX's 36 integer digits, for the DECIMAL(38, x) columns below.
        "-?[0-9]{35,38}(\\.[0-9]{0,2})?".prop_map(Value::Decimal),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bytes),
    ]
}

fn any_type() -> impl proptest::strategy::Strategy<Value = OdpsType> {
    use proptest::prelude::*;
    prop_oneof![
        Just(OdpsType::Bigint),
        Just(OdpsType::Int),
        Just(OdpsType::Smallint),
        Just(OdpsType::Tinyint),
        Just(OdpsType::Double),
        Just(OdpsType::Float),
        Just(OdpsType::Boolean),
        Just(OdpsType::Datetime),
        Just(OdpsType::Date),
        Just(OdpsType::Timestamp),
        Just(OdpsType::String),
        (0u32..6).prop_map(OdpsType::Varchar),
        (0u32..6).prop_map(OdpsType::Char),
        Just(OdpsType::Binary),
        Just(OdpsType::Decimal {
            precision: 6,
            scale: 2
        }),
        Just(OdpsType::Decimal {
            precision: 38,
            scale: 0
        }),
        Just(OdpsType::Decimal {
            precision: 38,
            scale: 2
        }),
        Just(OdpsType::Other("map<string,string>".into())),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

    /// `encode_ref` (the common pairs straight to the encoder) appends exactly what
    /// `convert_ref` then `encode_field` append, and refuses exactly what
    /// `convert_ref` refuses, with the same reason, for values of every kind into
    /// columns of every type, under every setting the fast arms look at.
    #[test]
    fn encode_ref_equals_convert_then_encode(
        fields in proptest::collection::vec((any_value(), any_type()), 1..12),
        empty_as_null in proptest::prelude::any::<bool>(),
        rule in proptest::prop_oneof![
            proptest::strategy::Just(OverLengthRule::KeepOn),
            proptest::strategy::Just(OverLengthRule::SetNull),
            proptest::strategy::Just(OverLengthRule::Truncate),
        ],
    ) {
        let zone = Zone::parse("Asia/Shanghai").unwrap();
        let settings = Conversions::new(empty_as_null, zone, zone, rule, 8, 4).unwrap();
        let (mut fast, mut general) = (BlockEncoder::new(), BlockEncoder::new());
        let (mut fast_out, mut general_out) = (Vec::new(), Vec::new());
        fast.start_record();
        general.start_record();
        for (index, (value, ty)) in fields.iter().enumerate() {
            let value = value.as_value_ref();
            let got = settings.encode_ref(index, value, ty, &mut fast, &mut fast_out);
            let want = settings
                .convert_ref(value, ty)
                .map(|cell| general.encode_field(index, &cell, &mut general_out));
            proptest::prop_assert_eq!(&got, &want, "{:?} into {:?}", value, ty);
            proptest::prop_assert_eq!(&fast_out, &general_out, "{:?} into {:?}", value, ty);
        }
        fast.end_record(&mut fast_out);
        general.end_record(&mut general_out);
        proptest::prop_assert_eq!(fast_out, general_out);
    }

    /// `encode_lazy` (a string into STRING copied, then checked as UTF-8) appends
    /// exactly what `encode_ref` appends for the checked value and gives the same
    /// reasons; a text that is not UTF-8 is the eager decoder's error, into a column of
    /// any type.
    #[test]
    fn encode_lazy_equals_encode_ref(
        fields in proptest::collection::vec((any_value(), any_type()), 1..12),
        bad in proptest::collection::vec(
            proptest::prop_oneof![0x20u8..0x7f, proptest::num::u8::ANY, 0x80u8..0xc0],
            0..40,
        ),
        bad_is_decimal in proptest::prelude::any::<bool>(),
        empty_as_null in proptest::prelude::any::<bool>(),
    ) {
        use protocol::records::{visit_records, visit_records_lazy, RecordDecodeError, EXT_DECIMAL};
        let zone = Zone::parse("Asia/Shanghai").unwrap();
        let settings =
            Conversions::new(empty_as_null, zone, zone, OverLengthRule::Truncate, 8, 4).unwrap();
        let (mut lazy, mut eager) = (BlockEncoder::new(), BlockEncoder::new());
        let (mut lazy_out, mut eager_out) = (Vec::new(), Vec::new());
        lazy.start_record();
        eager.start_record();
        for (index, (value, ty)) in fields.iter().enumerate() {
            let value = value.as_value_ref();
            let got = settings.encode_lazy(index, value.into(), ty, &mut lazy, &mut lazy_out);
            let want = settings.encode_ref(index, value, ty, &mut eager, &mut eager_out);
            proptest::prop_assert_eq!(&got, &Ok(want), "{:?} into {:?}", value, ty);
            proptest::prop_assert_eq!(&lazy_out, &eager_out, "{:?} into {:?}", value, ty);
        }
        lazy.end_record(&mut lazy_out);
        eager.end_record(&mut eager_out);
        proptest::prop_assert_eq!(lazy_out, eager_out);

        // One text of any bytes, as a string or a decimal, into each column type.
        let mut batch = vec![0x91, 0x91, if bad_is_decimal { 0xc9 } else { 0xdb }];
        batch.extend_from_slice(&(bad.len() as u32).to_be_bytes());
        if bad_is_decimal {
            batch.push(EXT_DECIMAL as u8);
        }
        batch.extend_from_slice(&bad);
        let checked = visit_records(&batch, |_| Ok::<_, RecordDecodeError>(()));
        for (_, ty) in &fields {
            let (mut lazy, mut eager) = (BlockEncoder::new(), BlockEncoder::new());
            let (mut lazy_out, mut eager_out) = (Vec::new(), Vec::new());
            let mut got = None;
            visit_records_lazy(&batch, |record| {
                got = Some(settings.encode_lazy(0, record[0], ty, &mut lazy, &mut lazy_out));
                Ok::<_, RecordDecodeError>(())
            })
            .unwrap();
            let got = got.unwrap();
            match &checked {
                Err(e) => proptest::prop_assert_eq!(&got, &Err(e.clone()), "{:?} into {:?}", bad, ty),
                Ok(_) => {
                    let mut want = None;
                    visit_records(&batch, |record| {
                        want = Some(settings.encode_ref(0, record[0], ty, &mut eager, &mut eager_out));
                        Ok::<_, RecordDecodeError>(())
                    })
                    .unwrap();
                    proptest::prop_assert_eq!(&got, &Ok(want.unwrap()), "{:?} into {:?}", bad, ty);
                    proptest::prop_assert_eq!(&lazy_out, &eager_out, "{:?} into {:?}", bad, ty);
                }
            }
        }
    }
}
