//! The memory view the runtime marshals through.
//!
//! The dispatcher never touches memory directly: it reads arguments and writes results through a
//! [`Memory`]. Natively that is the process itself ([`NativeMemory`]); under emulation it is the
//! guest's memory. This is what lets one marshalling implementation serve both machines.

/// Byte-addressed memory of the machine a callback runs on.
pub trait Memory {
    /// Copies `out.len()` bytes at `addr` into `out`.
    fn read(&self, addr: u64, out: &mut [u8]);
    /// Copies `bytes` to `addr`.
    fn write(&self, addr: u64, bytes: &[u8]);

    /// Reads a little-endian word of `size` (4 or 8) bytes.
    fn read_word(&self, addr: u64, size: u32) -> u64 {
        let mut b = [0u8; 8];
        self.read(addr, &mut b[..size as usize]);
        u64::from_le_bytes(b)
    }

    /// Writes the low `size` (4 or 8) bytes of `value`, little-endian.
    fn write_word(&self, addr: u64, size: u32, value: u64) {
        self.write(addr, &value.to_le_bytes()[..size as usize]);
    }
}

/// The current process's memory: addresses are pointers.
///
/// Only the dispatcher uses it, with addresses that thunkEntry and the caller's ABI guarantee
/// (the context in thunkEntry's frame, stack arguments, hidden result pointers).
#[derive(Clone, Copy, Debug, Default)]
pub struct NativeMemory;

impl Memory for NativeMemory {
    #[inline]
    fn read(&self, addr: u64, out: &mut [u8]) {
        // SAFETY: callers pass addresses derived from a live CallbackContext and its call plan
        // (see the type's documentation); the ranges never overlap `out`.
        unsafe {
            std::ptr::copy_nonoverlapping(addr as usize as *const u8, out.as_mut_ptr(), out.len())
        }
    }

    #[inline]
    fn write(&self, addr: u64, bytes: &[u8]) {
        // SAFETY: as for `read`: result areas of a live context or a caller's hidden result
        // buffer of the plan's size.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as usize as *mut u8, bytes.len())
        }
    }
}
