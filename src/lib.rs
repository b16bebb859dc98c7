//! StreamGate facade.
#[doc(inline)]
pub use streamgate_core as core;
