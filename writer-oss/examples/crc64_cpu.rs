//! CPU seconds per GB of the checksums a multipart part costs (BENCHMARKS.md,
//! "writer-oss"): the `crc` crate's table-driven CRC-64/XZ (writer-oss before),
//! a byte-at-a-time table (localcloud before), this crate's [`writer_oss::crc64`]
//! (`crc-fast`), and MD5 (localcloud's part ETag). Run with
//! `cargo run --release -p writer-oss --example crc64_cpu`.

#![allow(clippy::print_stdout)] // the report is the program's output

use md5::Digest as _;

const POLY_REFLECTED: u64 = 0xC96C_5795_D787_0F42;

fn byte_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut crc = i as u64;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
        }
        *slot = crc;
    }
    table
}

fn bytewise(table: &[u64; 256], data: &[u8]) -> u64 {
    let mut register = !0u64;
    for &byte in data {
        register = table[((register ^ u64::from(byte)) & 0xFF) as usize] ^ (register >> 8);
    }
    !register
}

/// User + system seconds of this process.
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let part: Vec<u8> = (0..10u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let reps = 100; // 100 parts of 10 MiB: 1.05 GB
    let gb = (reps * part.len()) as f64 / 1e9;
    let table = byte_table();
    let general = crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_XZ);
    let mut results = Vec::new();
    let mut measure = |name: &str, f: &dyn Fn(&[u8]) -> u64| {
        let start = cpu();
        let mut x = 0u64;
        for _ in 0..reps {
            x ^= f(std::hint::black_box(&part));
        }
        results.push((name.to_owned(), (cpu() - start) / gb, x));
    };
    measure("crc crate, Table<16> (writer-oss before)", &|b| {
        general.checksum(b)
    });
    measure("byte-at-a-time table (localcloud before)", &|b| {
        bytewise(&table, b)
    });
    measure("writer_oss::crc64 (crc-fast)", &|b| {
        writer_oss::crc64::checksum(b)
    });
    measure("MD5 (part ETag)", &|b| u64::from(md5::Md5::digest(b)[0]));
    assert!(
        results[..3].iter().all(|r| r.2 == results[0].2),
        "CRCs differ"
    );
    for (name, per_gb, _) in results {
        println!("{name}: {per_gb:.3} s CPU per GB");
    }
}
