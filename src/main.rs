//! The `forkpool` binary.
fn main() {}
