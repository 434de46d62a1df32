//! emu-tests
