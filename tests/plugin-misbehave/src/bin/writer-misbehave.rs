//! A writer that misbehaves on command; see the crate docs.

fn main() {
    plugin_misbehave::main(protocol::Role::Writer)
}
