//! emu-tests

pub mod asm;
pub mod guest;
pub mod loader;
pub mod machine;
pub mod oracle;
pub mod verify;
