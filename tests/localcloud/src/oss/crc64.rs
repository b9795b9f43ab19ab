//! CRC-64 as OSS computes it for `x-oss-hash-crc64ecma`.
//!
//! The algorithm is CRC-64/XZ (also catalogued as CRC-64/GO-ECMA): the ECMA-182
//! polynomial, reflected input and output, initial value and final XOR all ones.
//! The check value for `"123456789"` is `0x995DC9BBDF1939FA`; the CRC of nothing is 0.
//!
//! [`combine`] gives the CRC of `A‖B` from `crc(A)`, `crc(B)` and `len(B)`: this is
//! how OSS builds a multipart object's CRC from its parts. [`update`] continues a
//! CRC over more bytes: this is how an appendable object's CRC evolves.
//!
//! All three come from the `crc-fast` crate (carry-less multiplication where the CPU
//! has it); the table-driven and matrix forms below, kept for the tests, hold it to the
//! definition.

use crc_fast::CrcAlgorithm::Crc64Xz;

/// The CRC of `data`.
pub fn checksum(data: &[u8]) -> u64 {
    crc_fast::checksum(Crc64Xz, data)
}

/// Continues `crc` (the final CRC of some bytes `A`) over `data`: the result is the
/// CRC of `A‖data`.
pub fn update(crc: u64, data: &[u8]) -> u64 {
    combine(crc, checksum(data), data.len() as u64)
}

/// The CRC of `A‖B` given `crc_a = crc(A)`, `crc_b = crc(B)` and `len_b = len(B)`.
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    crc_fast::checksum_combine(Crc64Xz, crc_a, crc_b, len_b)
}

/// The ECMA-182 polynomial, bit-reversed (the reflected form).
#[cfg(test)]
const POLY_REFLECTED: u64 = 0xC96C_5795_D787_0F42;

#[cfg(test)]
const TABLE: [u64; 256] = build_table();

#[cfg(test)]
const fn build_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// The definition, a byte at a time: continues `crc` (the final CRC of some bytes `A`)
/// over `data`, giving the CRC of `A‖data`. The inversion on entry undoes the final
/// inversion of `crc`.
#[cfg(test)]
fn table_update(crc: u64, data: &[u8]) -> u64 {
    let mut register = !crc;
    for &byte in data {
        register = TABLE[((register ^ u64::from(byte)) & 0xFF) as usize] ^ (register >> 8);
    }
    !register
}

/// [`combine`] by the definition: `Z(crc_a, len_b) XOR crc_b`, where `Z` feeds `len_b`
/// zero bytes through the bare register. That identity holds because the initial value equals the final
/// XOR. `Z` is computed with GF(2) 64×64 matrix squaring (zlib's `crc32_combine`
/// technique), in O(log len_b) matrix products.
#[cfg(test)]
fn matrix_combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    // `odd` starts as the operator for one zero bit.
    let mut odd = [0u64; 64];
    odd[0] = POLY_REFLECTED;
    let mut row = 1u64;
    for entry in odd.iter_mut().skip(1) {
        *entry = row;
        row <<= 1;
    }
    let mut even = [0u64; 64];
    square_into(&mut even, &odd); // two zero bits
    square_into(&mut odd, &even); // four zero bits

    let mut crc = crc_a;
    let mut remaining = len_b;
    loop {
        // Each squaring doubles the number of zero bits: the first pass gives one byte.
        square_into(&mut even, &odd);
        if remaining & 1 == 1 {
            crc = times(&even, crc);
        }
        remaining >>= 1;
        if remaining == 0 {
            break;
        }
        square_into(&mut odd, &even);
        if remaining & 1 == 1 {
            crc = times(&odd, crc);
        }
        remaining >>= 1;
        if remaining == 0 {
            break;
        }
    }
    crc ^ crc_b
}

#[cfg(test)]
fn times(matrix: &[u64; 64], mut vector: u64) -> u64 {
    let mut sum = 0;
    let mut index = 0;
    while vector != 0 {
        if vector & 1 == 1 {
            sum ^= matrix[index];
        }
        vector >>= 1;
        index += 1;
    }
    sum
}

#[cfg(test)]
fn square_into(square: &mut [u64; 64], matrix: &[u64; 64]) {
    for (row, &column) in square.iter_mut().zip(matrix.iter()) {
        *row = times(matrix, column);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A plain bit-by-bit CRC-64/XZ, independent of the table.
    fn bitwise(data: &[u8]) -> u64 {
        let mut crc = u64::MAX;
        for &byte in data {
            crc ^= u64::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLY_REFLECTED
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn check_value_and_empty_input() {
        assert_eq!(checksum(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(checksum(b""), 0);
    }

    #[test]
    fn table_agrees_with_bitwise() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        assert_eq!(checksum(&data), bitwise(&data));
    }

    #[test]
    fn combine_equals_crc_of_concatenation() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 3) as u8).collect();
        for split in [0, 1, 7, 8, 255, 256, 4096, 4999, 5000] {
            let (a, b) = data.split_at(split);
            assert_eq!(
                combine(checksum(a), checksum(b), b.len() as u64),
                checksum(&data),
                "split at {split}"
            );
        }
    }

    #[test]
    fn update_chains() {
        assert_eq!(
            update(checksum(b"hello "), b"world"),
            checksum(b"hello world")
        );
    }

    proptest! {
        /// The fast CRC, its update and its combine equal the table-driven and matrix
        /// forms for any bytes, split anywhere.
        #[test]
        fn fast_forms_equal_the_definition(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            split in any::<proptest::sample::Index>(),
            seed in any::<u64>(),
        ) {
            let (a, b) = data.split_at(split.index(data.len() + 1));
            prop_assert_eq!(checksum(&data), table_update(0, &data));
            prop_assert_eq!(update(seed, b), table_update(seed, b));
            prop_assert_eq!(
                combine(seed, checksum(b), b.len() as u64),
                matrix_combine(seed, table_update(0, b), b.len() as u64)
            );
            prop_assert_eq!(combine(checksum(a), checksum(b), b.len() as u64), checksum(&data));
        }
    }
}
