//! backcall: FFI callbacks.
pub use backcall_abi as abi;
