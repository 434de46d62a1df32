//! `i386_win32`: STUB, to be written.

use crate::abi::{Abi, AbiSpec};
use crate::layout::Layout;
use crate::plan::CallPlan;
use crate::types::{Convention, Scalar, Signature};
use crate::AbiError;

/// STUB
pub struct I386Win32;

impl AbiSpec for I386Win32 {
    fn abi(&self) -> Abi {
        Abi::I386Win32
    }

    fn scalar_layout(&self, s: Scalar) -> Option<(u32, u32)> {
        crate::x86_64_sysv::lp64_scalar_layout(s)
    }

    fn int_arg_reg_name(&self, _i: u8, _conv: Convention) -> &'static str {
        "?"
    }

    fn int_ret_reg_name(&self, _i: u8) -> &'static str {
        "?"
    }

    fn float_reg_name(&self, _i: u8) -> &'static str {
        "?"
    }

    fn plan(
        &self,
        _sig: &Signature,
        _args: &[Layout],
        _ret: &Layout,
    ) -> Result<CallPlan, AbiError> {
        Err(AbiError::unsupported(self.abi(), "everything (stub)"))
    }
}
