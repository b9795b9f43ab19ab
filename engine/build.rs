//! Links this crate's executables as position-dependent (see `protocol/build-support/link.rs`).

include!("../protocol/build-support/link.rs");

fn main() {
    link_position_dependent();
}
