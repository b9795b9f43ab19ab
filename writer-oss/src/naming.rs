//! Object names (spec oss.md §8.4), with the 32 hex digits derived from the job's window
//! instead of a random UUID: `<object>__<24 hex of the job><8 hex task index>[_k][.suffix]`.
//! A re-run of the same window writes the same names; every name of one job shares the
//! prefix `<object>__<24 hex>`, which is how `abort` and `post` find its leftovers.

use sha2::{Digest, Sha256};

/// 24 hex digits identifying the job's window (from the engine's fingerprint, or the
/// job id when there is none).
pub fn job_hex(fingerprint: &str, job_id: &str) -> String {
    let seed = if fingerprint.is_empty() {
        job_id
    } else {
        fingerprint
    };
    let digest = Sha256::digest(format!("writer-oss\0{seed}").as_bytes());
    hex::encode(digest)[..24].to_owned()
}

/// The prefix every object and upload of the job starts with.
pub fn job_prefix(object: &str, job_hex: &str) -> String {
    format!("{object}__{job_hex}")
}

/// A task's base name: `<object>__<32 hex>`.
pub fn task_base(object: &str, job_hex: &str, task_index: u32) -> String {
    format!("{object}__{job_hex}{task_index:08x}")
}

/// The k-th object of a task: `_k` from the second on, then the suffix.
pub fn object_name(task_base: &str, k: u32, suffix: &str) -> String {
    if k == 0 {
        format!("{task_base}{suffix}")
    } else {
        format!("{task_base}_{k}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_datax_shape_and_depend_only_on_the_window() {
        let hex = job_hex("0123456789abcdef0123456789abcdef", "run-1");
        assert_eq!(hex, job_hex("0123456789abcdef0123456789abcdef", "run-2"));
        assert_ne!(hex, job_hex("fedcba9876543210fedcba9876543210", "run-1"));
        let base = task_base("cdo/datax", &hex, 3);
        let tail = base.strip_prefix("cdo/datax__").unwrap();
        assert_eq!(tail.len(), 32);
        assert!(tail
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert!(tail.ends_with("00000003"));
        assert!(base.starts_with(&job_prefix("cdo/datax", &hex)));
        assert_eq!(object_name(&base, 0, ".csv"), format!("{base}.csv"));
        assert_eq!(object_name(&base, 2, ""), format!("{base}_2"));
    }
}
