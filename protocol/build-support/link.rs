// Shared by the build scripts of the crates with plugin and engine binaries
// (`include!`d): links their executables as position-dependent (`-no-pie`).
//
// A position-independent executable is relocated by the dynamic loader at every
// start: about 40,000 relative relocations in a plugin, read from a megabyte of
// relocation entries and written over another megabyte of pages, 4 ms of CPU and ~450
// page faults before `main`. Linked at a fixed address, a plugin starts in about half
// that (BENCHMARKS.md, "Issue 19, third round"), and a job starts ten plugin processes,
// most one after the other. The code itself is unchanged (still compiled position-
// independent); what is given up is the address randomisation of the executable's own
// image (libraries, stack and heap stay randomised).
//
// `STREAMPORT_PIE=1` at build time keeps the default (a PIE), as does a zig linker
// (`scripts/package`'s glibc-2.17 build), whose handling of the flag is not verified.

fn link_position_dependent() {
    println!("cargo:rerun-if-env-changed=STREAMPORT_PIE");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let keep_pie = std::env::var("STREAMPORT_PIE").is_ok_and(|v| v == "1");
    let zig = std::env::var("RUSTC_LINKER").is_ok_and(|l| l.contains("zig"));
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && !keep_pie && !zig {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
