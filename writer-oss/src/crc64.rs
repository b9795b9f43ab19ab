//! CRC-64 as OSS computes it for `x-oss-hash-crc64ecma`: CRC-64/XZ (ECMA-182 polynomial,
//! reflected, init and xorout all ones; the CRC of nothing is 0), plus [`combine`], which
//! OSS uses to build a multipart object's CRC from its parts' CRCs. The checksum comes
//! from the `crc-fast` crate (carry-less multiplication where the CPU has it, a table
//! otherwise); `combine` multiplies by `x^(8·len)` modulo the polynomial, as zlib's
//! `crc32_combine` does, instead of `crc-fast`'s zeros operator (64×64 bit matrices
//! squared about 27 times for a 10 MiB part, a third of a millisecond). The tests hold
//! them to the `crc` crate's table-driven CRC-64/XZ, to `crc-fast`'s combine and to
//! OSS's vectors.

use crc_fast::CrcAlgorithm::Crc64Xz;

/// The CRC-64 of `bytes`.
pub fn checksum(bytes: &[u8]) -> u64 {
    crc_fast::checksum(Crc64Xz, bytes)
}

/// The CRC of `A‖B` from `crc(A)`, `crc(B)` and `len(B)`: `crc(A)·x^(8·len(B)) + crc(B)`
/// (init and xorout cancel, being equal).
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    multiply_mod_poly(x_to_the_8n(len_b), crc_a) ^ crc_b
}

/// ECMA-182, reflected: bit 63 is the coefficient of `x^0`.
const POLY_REFLECTED: u64 = 0xC96C_5795_D787_0F42;

/// `a·b` modulo the polynomial, both reflected.
const fn multiply_mod_poly(a: u64, mut b: u64) -> u64 {
    let mut m = 1u64 << 63;
    let mut product = 0;
    loop {
        if a & m != 0 {
            product ^= b;
            if a & (m - 1) == 0 {
                return product;
            }
        }
        m >>= 1;
        b = if b & 1 != 0 {
            (b >> 1) ^ POLY_REFLECTED
        } else {
            b >> 1
        };
    }
}

/// `x^(2^k)` modulo the polynomial for k in 0..67 (`x^(8·n)` for any u64 n needs
/// k up to 3 + 63).
const X_TO_THE_2_TO_THE: [u64; 67] = {
    let mut table = [0u64; 67];
    let mut p = 1u64 << 62; // x^1
    let mut k = 0;
    while k < table.len() {
        table[k] = p;
        p = multiply_mod_poly(p, p);
        k += 1;
    }
    table
};

/// `x^(8·n)` modulo the polynomial: the product of `x^(2^(k+3))` over n's set bits k.
fn x_to_the_8n(mut n: u64) -> u64 {
    let mut p = 1u64 << 63; // x^0
    let mut k = 3;
    while n != 0 {
        if n & 1 != 0 {
            p = multiply_mod_poly(X_TO_THE_2_TO_THE[k], p);
        }
        n >>= 1;
        k += 1;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use proptest::prelude::*;

    /// The general implementation this module used before: the `crc` crate's
    /// table-driven CRC-64/XZ.
    fn reference(bytes: &[u8]) -> u64 {
        crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_XZ).checksum(bytes)
    }

    fn body(item: &serde_json::Value) -> Vec<u8> {
        if let Some(text) = item["body_utf8"].as_str() {
            text.as_bytes().to_vec()
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(item["body_base64"].as_str().unwrap())
                .unwrap()
        }
    }

    fn vectors() -> serde_json::Value {
        serde_json::from_str(include_str!("../testdata/crc64.json")).unwrap()
    }

    #[test]
    fn single_values_match_the_vectors() {
        let v = vectors();
        let singles = v["single"].as_array().unwrap();
        assert!(singles.len() >= 5);
        for item in singles {
            let expected: u64 = item["crc64_decimal"].as_str().unwrap().parse().unwrap();
            assert_eq!(checksum(&body(item)), expected, "{item}");
        }
    }

    #[test]
    fn combined_part_crcs_match_the_vectors() {
        let v = vectors();
        let cases = v["combine"].as_array().unwrap();
        assert!(!cases.is_empty());
        for case in cases {
            let mut crc = 0u64;
            let mut all = Vec::new();
            for part in case["parts"].as_array().unwrap() {
                let part_crc: u64 = part["part_crc64_decimal"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let len = part["part_length"].as_u64().unwrap();
                assert_eq!(checksum(&body(part)), part_crc);
                all.extend(body(part));
                crc = combine(crc, part_crc, len);
            }
            let expected: u64 = case["combined_crc64_decimal"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(crc, expected);
            assert_eq!(checksum(&all), expected);
        }
    }

    #[test]
    fn combine_equals_the_crc_of_the_concatenation_for_long_parts() {
        let a: Vec<u8> = (0..100_003u32).map(|i| (i * 7 % 251) as u8).collect();
        let b: Vec<u8> = (0..65_537u32).map(|i| (i * 13 % 253) as u8).collect();
        let mut ab = a.clone();
        ab.extend(&b);
        assert_eq!(
            combine(checksum(&a), checksum(&b), b.len() as u64),
            checksum(&ab)
        );
        assert_eq!(combine(checksum(&a), 0, 0), checksum(&a));
        assert_eq!(combine(0, checksum(&b), b.len() as u64), checksum(&b));
    }

    #[test]
    fn check_value_and_empty_input() {
        assert_eq!(checksum(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(checksum(b""), 0);
    }

    proptest! {
        /// Every length from 0 to past a SIMD block boundary and every alignment: the
        /// fast CRC equals the table-driven one byte for byte.
        #[test]
        fn checksum_equals_the_table_driven_crc(
            bytes in proptest::collection::vec(any::<u8>(), 0..2100),
            skip in 0usize..16,
        ) {
            let bytes = &bytes[skip.min(bytes.len())..];
            prop_assert_eq!(checksum(bytes), reference(bytes));
        }

        /// The polynomial combine equals `crc-fast`'s zeros-operator combine (the
        /// general form it replaces) for any CRCs and lengths up to 2^40 bytes.
        #[test]
        fn combine_equals_crc_fast_combine(
            crc_a in any::<u64>(),
            crc_b in any::<u64>(),
            len_b in prop_oneof![0u64..5000, 0u64..(1 << 40), Just(10 << 20)],
        ) {
            let general = if len_b == 0 {
                crc_a
            } else {
                crc_fast::checksum_combine(Crc64Xz, crc_a, crc_b, len_b)
            };
            prop_assert_eq!(combine(crc_a, crc_b, len_b), general);
        }

        /// Combining the CRCs of any split equals the CRC of the whole (as OSS builds a
        /// multipart object's CRC), starting from 0 as the writer does.
        #[test]
        fn combine_equals_the_crc_of_the_whole(
            bytes in proptest::collection::vec(any::<u8>(), 0..5000),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            cuts.push(0);
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let mut crc = 0;
            for pair in cuts.windows(2) {
                let part = &bytes[pair[0]..pair[1]];
                crc = combine(crc, checksum(part), part.len() as u64);
            }
            prop_assert_eq!(crc, reference(&bytes));
        }
    }

    #[test]
    fn large_parts_equal_the_table_driven_crc() {
        // Part-sized input (several MiB) through every code path of the fast CRC.
        let bytes: Vec<u8> = (0..(3 << 20) + 13u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(checksum(&bytes), reference(&bytes));
        let (a, b) = bytes.split_at(1 << 20);
        assert_eq!(
            combine(checksum(a), checksum(b), b.len() as u64),
            reference(&bytes)
        );
    }
}
