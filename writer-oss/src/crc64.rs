//! CRC-64 as OSS computes it for `x-oss-hash-crc64ecma`: CRC-64/XZ (ECMA-182 polynomial,
//! reflected, init and xorout all ones), from the `crc` crate, plus [`combine`], which
//! OSS uses to build a multipart object's CRC from its parts' CRCs.

use crc::{Crc, Table, CRC_64_XZ};

const CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_XZ);

/// The reflected polynomial.
const POLY_REFLECTED: u64 = 0xC96C_5795_D787_0F42;

/// The CRC-64 of `bytes`.
pub fn checksum(bytes: &[u8]) -> u64 {
    CRC64.checksum(bytes)
}

fn gf2_times(matrix: &[u64; 64], mut vector: u64) -> u64 {
    let mut sum = 0;
    let mut row = 0;
    while vector != 0 {
        if vector & 1 != 0 {
            sum ^= matrix[row];
        }
        vector >>= 1;
        row += 1;
    }
    sum
}

fn gf2_square(square: &mut [u64; 64], matrix: &[u64; 64]) {
    for (n, slot) in square.iter_mut().enumerate() {
        *slot = gf2_times(matrix, matrix[n]);
    }
}

/// The CRC of `A‖B` from `crc(A)`, `crc(B)` and `len(B)`: `crc(A)` shifted through
/// `len_b` zero bytes (by GF(2) matrix squaring, as zlib's `crc32_combine`), XOR
/// `crc(B)`. Valid because init equals xorout.
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    let mut even = [0u64; 64];
    let mut odd = [0u64; 64];
    // The operator for one zero bit.
    odd[0] = POLY_REFLECTED;
    let mut row = 1u64;
    for slot in odd.iter_mut().skip(1) {
        *slot = row;
        row <<= 1;
    }
    gf2_square(&mut even, &odd); // two zero bits
    gf2_square(&mut odd, &even); // four zero bits
    let mut crc = crc_a;
    let mut len = len_b;
    loop {
        gf2_square(&mut even, &odd); // one zero byte, then 4, 16, …
        if len & 1 != 0 {
            crc = gf2_times(&even, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
        gf2_square(&mut odd, &even);
        if len & 1 != 0 {
            crc = gf2_times(&odd, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
    }
    crc ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

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
}
