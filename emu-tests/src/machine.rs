//! The emulated machine (ARCHITECTURE.md §1): Unicorn runs the byte-identical thunk and thunkEntry code
//! of an ABI, and compiled C around it; the runtime's own marshalling ([`Frame`]) serves the
//! calls, reached through a code hook at the dispatcher's address.
//!
//! Layering:
//! * [`GuestMemory`]: `backcall::harness::memory::Memory` over guest memory, so [`Frame`] reads arguments
//!   and writes results exactly as it does natively.
//! * [`Machine`]: one Unicorn engine per ABI with a fixed memory map (below), a [`CodePage`] built
//!   by the same [`CodePage::build`] the native pool uses, callbacks (slot id → plan + handler),
//!   an object loader ([`crate::loader`]) and [`Machine::call`], which calls guest code by the
//!   ABI's convention with canaries in every callee-saved register.
//! * [`Guest`]: what a handler gets to call back into the guest (nested emulation).
//!
//! The dispatch hook plays the native dispatcher's part: it reads the context pointer from the
//! ABI's first argument location, runs the handler of the context's slot over a [`Frame`], puts
//! the [`ReturnCode`] in the result register, poisons every caller-saved register (so thunkEntry
//! cannot rely on one surviving the call) and returns as `ret` would.
//!
//! Invariants (ARCHITECTURE.md §6) are collected as [`Violation`]s, never panicked on inside a hook:
//! callee-saved registers (canaries) and stack balance after every [`Machine::call`], and
//! stack alignment at every dispatch (all dispatches are recorded as [`DispatchRecord`]s).
//! Which registers a call preserves or clobbers, and the alignment, are the ABI's own facts
//! ([`RegisterFile`], from `abi.spec().registers()`); this module only maps their names to
//! Unicorn's ids ([`reg_id`]).
//!
//! Memory map (all below 2 GiB, so `-fno-pic` x86-64 code with 32-bit absolute addresses works):
//!
//! | range | what |
//! | --- | --- |
//! | [`STOP_BASE`] | return addresses of [`Machine::call`], one per nesting depth |
//! | [`CODE_BASE`] | the code page: the shared code, then thunks (read + execute) |
//! | [`DATA_BASE`] | its data page: the dispatcher's address, the thunks' records (read + write) |
//! | [`DISPATCH_ADDR`] | the dispatcher (hooked; its bytes never run) |
//! | [`LOAD_BASE`] | loaded objects |
//! | [`HEAP_BASE`] | [`Machine::alloc`] |
//! | [`STACK_BASE`] | the stack, with an unmapped guard gap below it |

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::time::Duration;

use backcall::harness::marshal::Frame;
use backcall::harness::memory::Memory;
use backcall_abi::context::ContextLayout;
use backcall_abi::thunks::{CodePage, PageError};
use backcall_abi::{
    Abi, AbiError, ArgPass, CallPlan, Convention, Loc, Reg, RegClass, RegisterFile, ReturnCode,
    Scalar, Signature, Type,
};
use backcall_oracle::Compiler;
use unicorn_engine::{HookType, MemType, Prot, RegisterARM64, RegisterX86, Unicorn};

pub use unicorn_engine::uc_error;

use crate::asm::ArchTools;
use crate::guest::{self, CompileError, Opt};
use crate::loader::{self, Image, LoadError};

/// Stop addresses: [`Machine::call`] at nesting depth `d` returns to `STOP_BASE + 16 * d`.
pub const STOP_BASE: u64 = 0x0010_0000;
/// The code page (the shared code and thunks).
pub const CODE_BASE: u64 = 0x0020_0000;
/// Bytes of the code page and of its data page (the native pool's page size on the common
/// hosts).
pub const CODE_PAGE_SIZE: u32 = 0x1000;
/// The data page right after the code page.
pub const DATA_BASE: u64 = CODE_BASE + CODE_PAGE_SIZE as u64;
/// The dispatcher the entries call; a code hook stands in for it.
pub const DISPATCH_ADDR: u64 = 0x0030_0000;
/// Where objects are loaded.
pub const LOAD_BASE: u64 = 0x0100_0000;
/// Bytes of the load region.
pub const LOAD_SIZE: u64 = 0x0100_0000;
/// Scratch memory handed out by [`Machine::alloc`].
pub const HEAP_BASE: u64 = 0x0400_0000;
/// Bytes of the heap.
pub const HEAP_SIZE: u64 = 0x0010_0000;
/// Lowest stack address; the 64 KiB below it are left unmapped (a guard gap).
pub const STACK_BASE: u64 = 0x0701_0000;
/// Bytes of stack.
pub const STACK_SIZE: u64 = 0x0010_0000;
/// One past the highest stack address (nothing is mapped above it).
pub const STACK_TOP: u64 = STACK_BASE + STACK_SIZE;

/// Bytes left free below the interrupted frame's stack pointer before a nested call's frame.
const NESTED_GAP: u64 = 512;
/// How [`MachineError::NotReturned`] reads: an emulation that ended without a fault.
pub const STOPPED_EARLY: &str = "before the call returned";
/// How a fault reads whose instruction is the dispatcher's fill at [`DISPATCH_ADDR`]: the code
/// hook there did not run (a call into it never executes its bytes otherwise).
pub const HOOK_SKIPPED: &str = "the dispatcher's hook did not run";

/// Deepest nesting of [`Guest::call`] (Unicorn allows 64 nested `emu_start`s).
const MAX_DEPTH: u32 = 32;
const MAP_PAGE: u64 = 0x1000;

/// A callback's handler: reads arguments and writes the result through the [`Frame`], and may
/// call back into the guest through the [`Guest`].
pub type Handler = dyn Fn(&mut Guest<'_>, &Frame<'_>) -> ReturnCode;

/// Guest memory as the runtime's [`Memory`]. Reads and writes of unmapped memory panic with
/// the address (the dispatch hook turns such a panic into a failed call, never an abort).
pub struct GuestMemory {
    uc: RefCell<Unicorn<'static, ()>>,
}

impl GuestMemory {
    /// A view of `uc`'s memory (usable while `uc` runs, from inside hooks).
    pub fn new(uc: &Unicorn<'static, ()>) -> GuestMemory {
        GuestMemory { uc: RefCell::new(uc.clone()) }
    }

    /// Copies `out.len()` bytes at `addr`, or says why not.
    pub fn try_read(&self, addr: u64, out: &mut [u8]) -> Result<(), uc_error> {
        self.uc.borrow().mem_read(addr, out)
    }

    /// Copies `bytes` to `addr`, or says why not.
    pub fn try_write(&self, addr: u64, bytes: &[u8]) -> Result<(), uc_error> {
        self.uc.borrow_mut().mem_write(addr, bytes)
    }

    /// `len` bytes at `addr`.
    pub fn read_vec(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.read(addr, &mut v);
        v
    }
}

impl Memory for GuestMemory {
    fn read(&self, addr: u64, out: &mut [u8]) {
        if let Err(e) = self.try_read(addr, out) {
            guest_fault(format!("reading {} bytes at {addr:#x} failed: {e:?}", out.len()));
        }
    }

    fn write(&self, addr: u64, bytes: &[u8]) {
        if let Err(e) = self.try_write(addr, bytes) {
            guest_fault(format!("writing {} bytes at {addr:#x} failed: {e:?}", bytes.len()));
        }
    }
}

/// A guest pointer that leads nowhere: what a caller that deviates from the plan hands the
/// runtime (a result pointer in another register, say). It unwinds to [`catch_panic`] without
/// the panic hook, because it is the case's failure, not the harness's bug.
struct GuestFault(String);

fn guest_fault(what: String) -> ! {
    std::panic::resume_unwind(Box::new(GuestFault(format!("guest memory: {what}"))))
}

impl fmt::Debug for GuestMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GuestMemory")
    }
}

/// A broken invariant, observed during emulation (ARCHITECTURE.md §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// a callee-saved register did not survive a call
    CalleeSaved {
        /// the function [`Machine::call`] called
        function: u64,
        /// the register
        register: Reg,
        /// the canary put in before the call
        expected: u128,
        /// what it held after
        found: u128,
    },
    /// the stack pointer after a call is not where the convention puts it
    StackBalance {
        /// the function called
        function: u64,
        /// where it should be (the caller's stack pointer plus what the callee pops)
        expected: u64,
        /// where it was
        found: u64,
    },
    /// the stack was misaligned when the dispatcher was called
    Alignment {
        /// the callback's slot id
        slot: u64,
        /// the stack pointer at the call instruction (before the return address was pushed)
        sp_at_call: u64,
        /// the alignment the ABI requires at a call
        required: u64,
    },
    /// the context named a slot no callback has
    UnknownSlot {
        /// the slot id read from the context
        slot: u64,
        /// the context's address
        ctx: u64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::CalleeSaved { function, register, expected, found } => write!(
                f,
                "callee-saved register {register} clobbered by the call of {function:#x}: \
                 canary {expected:#x}, found {found:#x}"
            ),
            Violation::StackBalance { function, expected, found } => write!(
                f,
                "stack unbalanced by the call of {function:#x}: sp should be {expected:#x} \
                 after return, is {found:#x} ({:+} bytes)",
                *found as i64 - *expected as i64
            ),
            Violation::Alignment { slot, sp_at_call, required } => write!(
                f,
                "dispatch of slot {slot}: sp at the call was {sp_at_call:#x}, {} mod {required} \
                 (the ABI requires {required}-byte alignment at a call)",
                sp_at_call % required
            ),
            Violation::UnknownSlot { slot, ctx } => {
                write!(f, "dispatch: context {ctx:#x} names slot {slot}, which has no callback")
            }
        }
    }
}

/// One dispatch, as the hook saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchRecord {
    /// the slot id in the context
    pub slot: u64,
    /// the context's address
    pub ctx: u64,
    /// the stack pointer at the call of the dispatcher (before the return address on x86)
    pub sp_at_call: u64,
    /// `sp_at_call % 16`
    pub sp_mod16: u64,
    /// nesting depth of [`Machine::call`] when it happened (1 = a top-level call)
    pub depth: u32,
    /// the code the handler answered
    pub code: u32,
}

/// Why the machine could not do what was asked.
#[derive(Clone, Debug, PartialEq)]
pub enum MachineError {
    /// Unicorn refused an operation
    Unicorn {
        /// which
        what: &'static str,
        /// Unicorn's error
        error: uc_error,
    },
    /// emulation stopped with an error (unmapped access, invalid instruction, ...)
    Fault {
        /// Unicorn's error
        error: uc_error,
        /// where the program counter was
        pc: u64,
        /// what the memory/interrupt hooks saw, if anything
        detail: Option<String>,
    },
    /// emulation ended (timeout) without reaching the return address
    NotReturned {
        /// where the program counter was
        pc: u64,
    },
    /// a handler panicked (a failed assertion in a test's handler, usually)
    HandlerPanicked {
        /// the callback's slot id
        slot: u64,
        /// the panic message
        message: String,
    },
    /// no plan for the call's signature on this ABI
    Plan(AbiError),
    /// the code page could not be built (no blob for this ABI yet)
    Page(PageError),
    /// every thunk of the code page is taken
    TooManyCallbacks {
        /// thunks the page holds
        capacity: u32,
    },
    /// a plan for another ABI was given
    WrongAbi {
        /// the plan's ABI
        plan: Abi,
        /// the machine's
        machine: Abi,
    },
    /// the object could not be linked
    Load(LoadError),
    /// the C could not be compiled
    Compile(CompileError),
    /// a region is full
    OutOfMemory {
        /// which region
        region: &'static str,
        /// bytes asked for
        asked: u64,
    },
    /// [`Guest::call`] nested too deeply
    TooDeep,
}

impl fmt::Display for MachineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MachineError::Unicorn { what, error } => write!(f, "unicorn: {what}: {error:?}"),
            MachineError::Fault { error, pc, detail } => {
                write!(f, "emulation fault {error:?} at pc {pc:#x}")?;
                match detail {
                    Some(d) => write!(f, ": {d}"),
                    None => Ok(()),
                }
            }
            MachineError::NotReturned { pc } => {
                write!(f, "emulation stopped at pc {pc:#x} {STOPPED_EARLY} (timeout?)")
            }
            MachineError::HandlerPanicked { slot, message } => {
                write!(f, "the handler of slot {slot} panicked: {message}")
            }
            MachineError::Plan(e) => write!(f, "{e}"),
            MachineError::Page(e) => write!(f, "{e}"),
            MachineError::TooManyCallbacks { capacity } => {
                write!(f, "the code page holds {capacity} thunks, all taken")
            }
            MachineError::WrongAbi { plan, machine } => {
                write!(f, "a plan for {plan} given to a {machine} machine")
            }
            MachineError::Load(e) => write!(f, "{e}"),
            MachineError::Compile(e) => write!(f, "{e}"),
            MachineError::OutOfMemory { region, asked } => {
                write!(f, "the {region} region cannot hold {asked} more bytes")
            }
            MachineError::TooDeep => write!(f, "guest calls nested deeper than {MAX_DEPTH}"),
        }
    }
}

impl std::error::Error for MachineError {}

impl From<LoadError> for MachineError {
    fn from(e: LoadError) -> MachineError {
        MachineError::Load(e)
    }
}

impl From<CompileError> for MachineError {
    fn from(e: CompileError) -> MachineError {
        MachineError::Compile(e)
    }
}

impl From<AbiError> for MachineError {
    fn from(e: AbiError) -> MachineError {
        MachineError::Plan(e)
    }
}

fn uc_err(what: &'static str) -> impl Fn(uc_error) -> MachineError {
    move |error| MachineError::Unicorn { what, error }
}

// ---------------------------------------------------------------------------------------------
// Registers: the ABI's own facts (`AbiSpec::registers`, abi/src/<abi>.rs), by Unicorn id

/// Unicorn's id of `reg` (every register of [`Reg`] has one).
pub fn reg_id(reg: impl Borrow<Reg>) -> i32 {
    use RegisterARM64 as A;
    use RegisterX86 as X;
    const GPR32: [X; 8] = [X::EAX, X::ECX, X::EDX, X::EBX, X::ESP, X::EBP, X::ESI, X::EDI];
    const GPR64: [X; 16] = [
        X::RAX,
        X::RCX,
        X::RDX,
        X::RBX,
        X::RSP,
        X::RBP,
        X::RSI,
        X::RDI,
        X::R8,
        X::R9,
        X::R10,
        X::R11,
        X::R12,
        X::R13,
        X::R14,
        X::R15,
    ];
    let reg = *reg.borrow();
    let n = usize::from(reg.number());
    match reg.class() {
        RegClass::Gpr32 => GPR32[n] as i32,
        RegClass::Gpr64 => GPR64[n] as i32,
        RegClass::Xmm => X::XMM0 as i32 + n as i32,
        // (x29 and x30 are ids of their own, after x0..x28)
        RegClass::X if n == 29 => A::X29 as i32,
        RegClass::X if n == 30 => A::X30 as i32,
        RegClass::X => A::X0 as i32 + n as i32,
        RegClass::Sp => A::SP as i32,
        RegClass::V => A::Q0 as i32 + n as i32,
        RegClass::D => A::D0 as i32 + n as i32,
    }
}

/// The id of the whole 128-bit register that vector register `reg` (`xmm6`, `v8`) is, or is
/// the low part of (AArch64 `d8`).
fn whole_vector_id(reg: Reg) -> i32 {
    match reg.class() {
        RegClass::D => RegisterARM64::Q0 as i32 + i32::from(reg.number()),
        _ => reg_id(reg),
    }
}

/// Writes all 128 bits of vector register `reg`, or of the register `reg` is the low part
/// of (`xmm6`, `v8`, `d8`).
pub fn write_vector(
    uc: &mut Unicorn<'_, ()>,
    reg: impl Borrow<Reg>,
    value: u128,
) -> Result<(), uc_error> {
    uc.reg_write_long(whole_vector_id(*reg.borrow()), &value.to_le_bytes())
}

/// Reads all 128 bits of vector register `reg`, or of the register `reg` is the low part
/// of (`xmm6`, `v8`, `d8`).
pub fn read_vector(uc: &Unicorn<'_, ()>, reg: impl Borrow<Reg>) -> Result<u128, uc_error> {
    let long = uc.reg_read_long(whole_vector_id(*reg.borrow()))?;
    let mut b = [0u8; 16];
    let n = long.len().min(16);
    b[..n].copy_from_slice(&long[..n]);
    Ok(u128::from_le_bytes(b))
}

/// The low `bytes` bytes of `value` (what [`RegisterFile::callee_saved_float_bytes`] keeps).
pub fn low_bytes(value: u128, bytes: u32) -> u128 {
    if bytes >= 16 {
        value
    } else {
        value & ((1u128 << (bytes * 8)) - 1)
    }
}

// ---------------------------------------------------------------------------------------------
// The machine

struct Slot {
    plan: Rc<CallPlan>,
    handler: Rc<Handler>,
}

#[derive(Default)]
struct State {
    slots: Vec<Slot>,
    violations: Vec<Violation>,
    dispatches: Vec<DispatchRecord>,
    depth: u32,
    /// the first handler panic since the top-level call began
    panic: Option<(u64, String)>,
    /// what the fault hooks saw last
    fault: Option<String>,
    heap_next: u64,
    load_next: u64,
    exports: BTreeMap<String, u64>,
    runtime_loaded: bool,
}

/// What the hooks share with the machine.
struct Core {
    abi: Abi,
    layout: ContextLayout,
    page: Option<CodePage>,
    mem: GuestMemory,
    /// the ABI's register contract
    regs: RegisterFile,
    /// the stack pointer's id
    sp: i32,
    /// where the dispatcher's context argument arrives
    dispatch_arg: Loc,
    /// the result register
    ret_reg: i32,
    timeout: std::cell::Cell<Duration>,
    state: RefCell<State>,
}

/// One ABI's emulated machine. See the module documentation.
pub struct Machine {
    uc: Unicorn<'static, ()>,
    core: Rc<Core>,
}

impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine").field("abi", &self.core.abi).finish_non_exhaustive()
    }
}

impl Machine {
    /// A machine for `abi`: engine, memory map, code page and hooks. Without a blob for `abi`
    /// the machine has no code page ([`Machine::code_page`] is `None`, [`Machine::add_callback`]
    /// fails) but loads and calls code all the same.
    pub fn new(abi: Abi) -> Result<Machine, MachineError> {
        let (arch, mode) = abi.arch().unicorn();
        let mut uc = Unicorn::new(arch, mode).map_err(uc_err("open"))?;
        let fill = abi.arch().fill(); // int3 / udf
        let page = match CodePage::template(abi, CODE_PAGE_SIZE) {
            Ok(page) => Some(page),
            Err(PageError::NoBlobs(_)) => None,
            Err(e) => return Err(MachineError::Page(e)),
        };
        let map = |uc: &mut Unicorn<'static, ()>, base: u64, size: u64, prot: Prot| {
            uc.mem_map(base, size.div_ceil(MAP_PAGE) * MAP_PAGE, prot).map_err(uc_err("map memory"))
        };
        map(&mut uc, STOP_BASE, MAP_PAGE, Prot::READ | Prot::EXEC)?;
        map(&mut uc, CODE_BASE, u64::from(CODE_PAGE_SIZE), Prot::READ | Prot::EXEC)?;
        map(&mut uc, DATA_BASE, u64::from(CODE_PAGE_SIZE), Prot::READ | Prot::WRITE)?;
        map(&mut uc, DISPATCH_ADDR, MAP_PAGE, Prot::READ | Prot::EXEC)?;
        map(&mut uc, LOAD_BASE, LOAD_SIZE, Prot::ALL)?;
        map(&mut uc, HEAP_BASE, HEAP_SIZE, Prot::READ | Prot::WRITE)?;
        map(&mut uc, STACK_BASE, STACK_SIZE, Prot::READ | Prot::WRITE)?;
        let code = match &page {
            Some(p) => p.bytes.clone(),
            None => vec![fill; CODE_PAGE_SIZE as usize],
        };
        uc.mem_write(CODE_BASE, &code).map_err(uc_err("write the code page"))?;
        if let Some(page) = &page {
            // Thunk i names slot i and starts at the full entry, as the native pool's.
            let mut data = vec![0u8; CODE_PAGE_SIZE as usize];
            page.init_data(&mut data, DISPATCH_ADDR);
            let entry = CODE_BASE + u64::from(page.context_entry(true));
            for i in 0..page.thunks {
                page.write_record(&mut data, i, u64::from(i), entry, 0);
            }
            uc.mem_write(DATA_BASE, &data).map_err(uc_err("write the data page"))?;
        }
        uc.mem_write(DISPATCH_ADDR, &vec![fill; MAP_PAGE as usize])
            .map_err(uc_err("write the dispatch page"))?;
        uc.mem_write(STOP_BASE, &vec![fill; MAP_PAGE as usize])
            .map_err(uc_err("write the stop page"))?;
        if arch == unicorn_engine::Arch::ARM64 {
            // CPACR_EL1.FPEN = 0b11: no trap on FP/SIMD (clang uses q registers for copies).
            uc.reg_write(RegisterARM64::CPACR_EL1, 3 << 20).map_err(uc_err("enable FP/SIMD"))?;
        }

        // The dispatcher is `ReturnCode (*)(CallbackContext *)` in the ABI's default convention.
        let dispatch_sig =
            Signature::new(Type::scalar(Scalar::UInt), vec![Type::scalar(Scalar::Pointer)]);
        let dispatch_plan = abi.plan(&dispatch_sig)?;
        let dispatch_arg = dispatch_plan.args[0].pass.first_loc();
        let spec = abi.spec();
        let core = Rc::new(Core {
            abi,
            layout: ContextLayout::for_word(abi.word_size()),
            page,
            mem: GuestMemory::new(&uc),
            regs: spec.registers(),
            sp: reg_id(spec.registers().stack_pointer),
            dispatch_arg,
            ret_reg: reg_id(spec.int_ret_reg(0).expect("every ABI returns in a register")),
            timeout: std::cell::Cell::new(Duration::from_secs(30)),
            state: RefCell::new(State {
                heap_next: HEAP_BASE,
                load_next: LOAD_BASE,
                ..State::default()
            }),
        });

        let weak: Weak<Core> = Rc::downgrade(&core);
        uc.add_code_hook(DISPATCH_ADDR, DISPATCH_ADDR, move |uc, _, _| {
            if let Some(core) = weak.upgrade() {
                dispatch_hook(uc, &core);
            }
        })
        .map_err(uc_err("add the dispatch hook"))?;
        let weak: Weak<Core> = Rc::downgrade(&core);
        uc.add_mem_hook(HookType::MEM_INVALID, 1, 0, move |uc, kind, addr, size, _| {
            if let Some(core) = weak.upgrade() {
                let pc = uc.pc_read().unwrap_or(0);
                let what = match kind {
                    MemType::READ_UNMAPPED | MemType::READ_PROT => "read",
                    MemType::WRITE_UNMAPPED | MemType::WRITE_PROT => "write",
                    _ => "fetch",
                };
                core.state.borrow_mut().fault =
                    Some(format!("invalid {what} of {size} bytes at {addr:#x} (pc {pc:#x})"));
            }
            false
        })
        .map_err(uc_err("add the fault hook"))?;
        let weak: Weak<Core> = Rc::downgrade(&core);
        uc.add_intr_hook(move |uc, number| {
            let pc = uc.pc_read().unwrap_or(0);
            if let Some(core) = weak.upgrade() {
                // (x86 reports the pc after its `int3`, AArch64 that of its `udf`)
                let skipped = (DISPATCH_ADDR..=DISPATCH_ADDR + 1).contains(&pc);
                let why = if skipped { format!(": {HOOK_SKIPPED}") } else { String::new() };
                core.state.borrow_mut().fault =
                    Some(format!("interrupt {number} at pc {pc:#x}{why}"));
            }
            let _ = uc.emu_stop();
        })
        .map_err(uc_err("add the interrupt hook"))?;
        Ok(Machine { uc, core })
    }

    /// The machine's ABI.
    pub fn abi(&self) -> Abi {
        self.core.abi
    }

    /// The code page at [`CODE_BASE`]: the same bytes the native pool maps (for the same base
    /// and dispatcher address), or `None` when the ABI has no blob yet.
    pub fn code_page(&self) -> Option<&CodePage> {
        self.core.page.as_ref()
    }

    /// The guest's memory.
    pub fn mem(&self) -> &GuestMemory {
        &self.core.mem
    }

    /// The Unicorn engine itself (for inspection; do not remove the machine's hooks).
    pub fn unicorn(&mut self) -> &mut Unicorn<'static, ()> {
        &mut self.uc
    }

    /// The longest a top-level [`Machine::call`] may run (default 30 s).
    pub fn set_timeout(&self, timeout: Duration) {
        self.core.timeout.set(timeout);
    }

    /// Registers `handler` for calls with `plan` under the next slot id (0, 1, 2, ...) without a
    /// thunk; answers the slot id. (A context naming this slot reaches the handler, whoever
    /// built it.)
    pub fn add_slot(
        &mut self,
        plan: CallPlan,
        handler: impl Fn(&mut Guest<'_>, &Frame<'_>) -> ReturnCode + 'static,
    ) -> Result<u32, MachineError> {
        if plan.abi != self.core.abi {
            return Err(MachineError::WrongAbi { plan: plan.abi, machine: self.core.abi });
        }
        let mut state = self.core.state.borrow_mut();
        state.slots.push(Slot { plan: Rc::new(plan), handler: Rc::new(handler) });
        Ok(state.slots.len() as u32 - 1)
    }

    /// A callback: `handler` runs for every call of the answered thunk address, with
    /// arguments and result placed by `plan`.
    pub fn add_callback(
        &mut self,
        plan: CallPlan,
        handler: impl Fn(&Frame<'_>) -> ReturnCode + 'static,
    ) -> Result<u64, MachineError> {
        self.add_nested_callback(plan, move |_, frame| handler(frame))
    }

    /// A callback whose handler may call back into the guest (through its [`Guest`]).
    pub fn add_nested_callback(
        &mut self,
        plan: CallPlan,
        handler: impl Fn(&mut Guest<'_>, &Frame<'_>) -> ReturnCode + 'static,
    ) -> Result<u64, MachineError> {
        let abi = self.core.abi;
        let page = self.core.page.as_ref().ok_or(MachineError::Page(PageError::NoBlobs(abi)))?;
        let next = self.core.state.borrow().slots.len() as u32;
        if next >= page.thunks {
            return Err(MachineError::TooManyCallbacks { capacity: page.thunks });
        }
        let entry = page.context_entry(plan.uses_float_registers());
        let slot = self.add_slot(plan, handler)?;
        debug_assert_eq!(slot, next);
        self.set_record(slot, u64::from(slot), entry, 0)
    }

    /// A thunk on the typed route: its record's slot word is `slot_word` (the stub passes it as
    /// a new first argument and jumps to the address stored at it) and its target is `stub`.
    /// The thunk's slot in the machine is reserved with `plan`; a dispatch through it (the
    /// stub never dispatches) is a [`Violation::UnknownSlot`]-like failure of the handler.
    pub fn add_typed_route(
        &mut self,
        plan: CallPlan,
        slot_word: u64,
        stub: backcall_abi::stubs::Stub,
    ) -> Result<u64, MachineError> {
        let abi = self.core.abi;
        let page = self.core.page.as_ref().ok_or(MachineError::Page(PageError::NoBlobs(abi)))?;
        let name = stub.symbol();
        let target = page.symbol(&name).ok_or(MachineError::Page(PageError::NoBlobs(abi)))?;
        let next = self.core.state.borrow().slots.len() as u32;
        if next >= page.thunks {
            return Err(MachineError::TooManyCallbacks { capacity: page.thunks });
        }
        let slot =
            self.add_slot(plan, move |_, _| panic!("the typed route through {name} dispatched"))?;
        self.set_record(slot, slot_word, target, stub.stack_bytes())
    }

    /// Points thunk `i`'s record at `target` (a code page offset: an entry or a typed stub),
    /// with `slot` as its slot word (the machine's slot id, or any word a typed stub passes
    /// on) and `stack_bytes` for `bc_stub_copy`; answers the thunk's address.
    pub fn set_record(
        &mut self,
        i: u32,
        slot: u64,
        target: u32,
        stack_bytes: u32,
    ) -> Result<u64, MachineError> {
        let abi = self.core.abi;
        let page = self.core.page.as_ref().ok_or(MachineError::Page(PageError::NoBlobs(abi)))?;
        if i >= page.thunks {
            return Err(MachineError::TooManyCallbacks { capacity: page.thunks });
        }
        let mut data = vec![0u8; CODE_PAGE_SIZE as usize];
        page.write_record(&mut data, i, slot, CODE_BASE + u64::from(target), stack_bytes);
        let at = page.thunk_offset(i) as usize;
        let record = &data[at..at + backcall_abi::thunks::THUNK_STRIDE as usize];
        self.core.mem.write(DATA_BASE + at as u64, record);
        Ok(CODE_BASE + at as u64)
    }

    /// The guest address of thunk `i`'s record.
    pub fn record_address(&self, i: u32) -> Option<u64> {
        let page = self.core.page.as_ref()?;
        (i < page.thunks).then(|| DATA_BASE + u64::from(page.thunk_offset(i)))
    }

    /// `size` bytes of zeroed scratch memory at `align`.
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<u64, MachineError> {
        let mut state = self.core.state.borrow_mut();
        let at = state.heap_next.div_ceil(align.max(1)) * align.max(1);
        if at + size > HEAP_BASE + HEAP_SIZE {
            return Err(MachineError::OutOfMemory { region: "heap", asked: size });
        }
        state.heap_next = at + size;
        drop(state);
        self.core.mem.write(at, &vec![0; size as usize]);
        Ok(at)
    }

    /// Links `object` (ELF, COFF or Mach-O for this machine's architecture) into the load
    /// region. Undefined symbols resolve to the global symbols of objects loaded before (see
    /// [`Machine::load_runtime`]); this object's globals are offered to later ones.
    pub fn load(&mut self, object: &[u8]) -> Result<Image, MachineError> {
        self.load_with(object, &|_| None)
    }

    /// [`Machine::load`], with `imports` asked first for undefined symbols.
    pub fn load_with(
        &mut self,
        object: &[u8],
        imports: &dyn Fn(&str) -> Option<u64>,
    ) -> Result<Image, MachineError> {
        let base = {
            let state = self.core.state.borrow();
            state.load_next.div_ceil(MAP_PAGE) * MAP_PAGE
        };
        let image = {
            let state = self.core.state.borrow();
            let resolve = |name: &str| imports(name).or_else(|| state.exports.get(name).copied());
            loader::link(object, base, &resolve)?
        };
        let expected = loader::architecture_of(self.core.abi);
        if image.arch != expected {
            return Err(LoadError::Architecture { expected, found: image.arch }.into());
        }
        if image.end() > LOAD_BASE + LOAD_SIZE {
            return Err(MachineError::OutOfMemory {
                region: "load",
                asked: image.bytes.len() as u64,
            });
        }
        self.uc.mem_write(base, &image.bytes).map_err(uc_err("write a loaded object"))?;
        let mut state = self.core.state.borrow_mut();
        state.load_next = image.end();
        for (name, &address) in &image.exports {
            state.exports.entry(name.clone()).or_insert(address);
        }
        Ok(image)
    }

    /// Loads [`guest::RUNTIME_C`] (`memcpy`, `memmove`, `memset`, `memcmp`, `_fltused`)
    /// compiled by the default clang, once.
    pub fn load_runtime(&mut self) -> Result<(), MachineError> {
        let compiler = guest::default_compiler(self.core.abi)?;
        self.load_runtime_of(&compiler)
    }

    /// Loads [`guest::RUNTIME_C`] compiled by `compiler` (whose objects will import it), once.
    pub fn load_runtime_of(&mut self, compiler: &Compiler) -> Result<(), MachineError> {
        if self.core.state.borrow().runtime_loaded {
            return Ok(());
        }
        let object = guest::runtime_object(compiler)?;
        self.load(&object)?;
        self.core.state.borrow_mut().runtime_loaded = true;
        Ok(())
    }

    /// Compiles C `source` for this machine's ABI at `opt` with the default clang and loads it
    /// (after the runtime).
    pub fn load_c(&mut self, source: &str, opt: Opt) -> Result<Image, MachineError> {
        self.load_runtime()?;
        let object = guest::compile_c(self.core.abi, source, opt)?;
        self.load(&object)
    }

    /// The global symbols of every object loaded so far.
    pub fn exports(&self) -> BTreeMap<String, u64> {
        self.core.state.borrow().exports.clone()
    }

    /// The address of C function or variable `name` among the loaded objects' globals,
    /// whatever the platform's decoration (see [`Image::lookup`]).
    pub fn symbol(&self, name: &str) -> Option<u64> {
        loader::lookup_decorated(&self.core.state.borrow().exports, name)
    }

    /// Calls guest function `func` with word-sized integer/pointer `args` by the ABI's default
    /// convention; answers the integer result register (`eax`, `rax`, `x0`).
    ///
    /// Callee-saved registers hold canaries during the call and the stack pointer must come back
    /// balanced; broken invariants are recorded (see [`Machine::violations`]), a fault or a
    /// panicking handler is an error.
    pub fn call(&mut self, func: u64, args: &[u64]) -> Result<u64, MachineError> {
        self.call_conv(func, args, Convention::Default)
    }

    /// [`Machine::call`] with an i386 convention keyword: `__stdcall`/`__fastcall`/
    /// `__thiscall` place and pop arguments as the plan of that convention says, and the stack
    /// balance check expects the callee to pop them.
    pub fn call_conv(
        &mut self,
        func: u64,
        args: &[u64],
        conv: Convention,
    ) -> Result<u64, MachineError> {
        let core = self.core.clone();
        call_in(&mut self.uc, &core, func, args, conv)
    }

    /// Every invariant violation seen so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.core.state.borrow().violations.clone()
    }

    /// Takes the violations seen so far.
    pub fn take_violations(&mut self) -> Vec<Violation> {
        std::mem::take(&mut self.core.state.borrow_mut().violations)
    }

    /// Every dispatch seen so far.
    pub fn dispatches(&self) -> Vec<DispatchRecord> {
        self.core.state.borrow().dispatches.clone()
    }

    /// Panics with every violation seen, one per line, if there is any.
    #[track_caller]
    pub fn assert_invariants(&self) {
        let v = self.violations();
        if !v.is_empty() {
            let lines: Vec<String> = v.iter().map(|v| format!("  {v}")).collect();
            panic!("{} invariant violation(s) on {}:\n{}", v.len(), self.abi(), lines.join("\n"));
        }
    }
}

/// What a handler gets: the machine, interrupted in the middle of a dispatch.
pub struct Guest<'a> {
    core: &'a Rc<Core>,
}

impl Guest<'_> {
    /// The machine's ABI.
    pub fn abi(&self) -> Abi {
        self.core.abi
    }

    /// The guest's memory.
    pub fn mem(&self) -> &GuestMemory {
        &self.core.mem
    }

    /// Calls guest code from inside a handler (a nested `emu_start`), exactly like
    /// [`Machine::call`]; the interrupted CPU state is saved and restored around it, and the
    /// nested frame lives below the interrupted stack pointer.
    pub fn call(&mut self, func: u64, args: &[u64]) -> Result<u64, MachineError> {
        self.call_conv(func, args, Convention::Default)
    }

    /// [`Guest::call`] with an i386 convention keyword.
    pub fn call_conv(
        &mut self,
        func: u64,
        args: &[u64],
        conv: Convention,
    ) -> Result<u64, MachineError> {
        // Another handle on the same engine (what Unicorn's own hook proxies make, too).
        let mut uc = self.core.mem.uc.borrow().clone();
        call_in(&mut uc, self.core, func, args, conv)
    }
}

// ---------------------------------------------------------------------------------------------
// Calling into the guest

/// The canary [`Machine::call`] puts in callee-saved general register `i` at nesting depth
/// `depth` (word-sized).
pub fn canary(word: u32, depth: u32, i: usize) -> u64 {
    let v = 0xCA11_5AFE_0000_0000u64 | u64::from(depth) << 12 | (i as u64 + 1);
    if word == 4 {
        0xCA50_0000 | u64::from(depth) << 12 | (i as u64 + 1)
    } else {
        v
    }
}

/// The canary [`Machine::call`] puts in callee-saved vector register `i` at nesting depth
/// `depth` (all 128 bits; only the ABI's preserved low bytes are checked).
pub fn vec_canary(depth: u32, i: usize) -> u128 {
    0x5AFE_F00D_0000_0000_C0DE_0000_0000_0000u128 | u128::from(depth) << 72 | (i as u128 + 1) << 8
}

fn call_in(
    uc: &mut Unicorn<'_, ()>,
    core: &Rc<Core>,
    func: u64,
    args: &[u64],
    conv: Convention,
) -> Result<u64, MachineError> {
    let abi = core.abi;
    let spec = abi.spec();
    let word = abi.word_size();
    let w = u64::from(word);
    let regs = core.regs;
    let depth = core.state.borrow().depth;
    if depth >= MAX_DEPTH {
        return Err(MachineError::TooDeep);
    }
    let sig = Signature {
        ret: Type::scalar(Scalar::UIntPtr),
        args: vec![Type::scalar(Scalar::UIntPtr); args.len()],
        conv,
        variadic: false,
    };
    let plan = abi.plan(&sig)?;

    // A nested call saves the interrupted CPU state and builds its frame below it.
    let saved =
        if depth > 0 { Some(uc.context_init().map_err(uc_err("save context"))?) } else { None };
    let top = if depth > 0 {
        (uc.reg_read(core.sp).map_err(uc_err("read sp"))? - NESTED_GAP) & !15
    } else {
        STACK_TOP - 64
    };
    let area = u64::from(plan.stack_bytes).div_ceil(16) * 16;
    let sp_call = top - area; // 16-aligned at the call, as every ABI here wants at least
    let stop = STOP_BASE + 16 * u64::from(depth);
    let mask = if word == 4 { 0xffff_ffff } else { u64::MAX };

    for (plan_arg, &value) in plan.args.iter().zip(args) {
        let ArgPass::Direct(pieces) = &plan_arg.pass else {
            unreachable!("a word-sized integer is passed directly")
        };
        match pieces[0].loc {
            Loc::Int(i) => {
                let reg = spec.int_arg_reg(i, conv).expect("the plan's argument register");
                uc.reg_write(reg_id(reg), value & mask)
                    .map_err(uc_err("write an argument register"))?
            }
            Loc::Stack(off) => {
                core.mem.write_word(sp_call + u64::from(off), word, value & mask);
            }
            other => unreachable!("an integer argument in {other:?}"),
        }
    }
    // The return address: pushed by x86's `call`, in the link register on AArch64.
    let (sp_entry, expected_sp) = match regs.link_register {
        None => {
            core.mem.write_word(sp_call - w, word, stop);
            (sp_call - w, sp_call + u64::from(plan.callee_pop))
        }
        Some(lr) => {
            uc.reg_write(reg_id(lr), stop).map_err(uc_err("write lr"))?;
            (sp_call, sp_call)
        }
    };
    uc.reg_write(core.sp, sp_entry).map_err(uc_err("write sp"))?;

    // Canaries in every callee-saved register.
    for (i, name) in regs.callee_saved.iter().enumerate() {
        uc.reg_write(reg_id(name), canary(word, depth, i)).map_err(uc_err("write a canary"))?;
    }
    for (i, name) in regs.callee_saved_float.iter().enumerate() {
        write_vector(uc, name, vec_canary(depth, i)).map_err(uc_err("write a vector canary"))?;
    }

    core.state.borrow_mut().depth += 1;
    let timeout = if depth == 0 { core.timeout.get().as_micros() as u64 } else { 0 };
    let run = uc.emu_start(func, stop, timeout, 0);
    {
        let mut state = core.state.borrow_mut();
        state.depth -= 1;
    }
    let pc = uc.pc_read().unwrap_or(0);
    let fault = core.state.borrow_mut().fault.take();
    let outcome = match run {
        Err(error) => Err(MachineError::Fault { error, pc, detail: fault }),
        Ok(()) if pc != stop => Err(match fault {
            Some(detail) => {
                MachineError::Fault { error: uc_error::EXCEPTION, pc, detail: Some(detail) }
            }
            None => MachineError::NotReturned { pc },
        }),
        Ok(()) => Ok(uc.reg_read(core.ret_reg).map_err(uc_err("read the result"))? & mask),
    };

    if outcome.is_ok() {
        let mut found = Vec::new();
        for (i, name) in regs.callee_saved.iter().enumerate() {
            let expected = canary(word, depth, i);
            let value = uc.reg_read(reg_id(name)).map_err(uc_err("read a canary"))? & mask;
            if value != expected {
                found.push(Violation::CalleeSaved {
                    function: func,
                    register: *name,
                    expected: u128::from(expected),
                    found: u128::from(value),
                });
            }
        }
        let keep = regs.callee_saved_float_bytes;
        for (i, name) in regs.callee_saved_float.iter().enumerate() {
            let value = read_vector(uc, name).map_err(uc_err("read a vector canary"))?;
            let (value, expected) = (low_bytes(value, keep), low_bytes(vec_canary(depth, i), keep));
            if value != expected {
                found.push(Violation::CalleeSaved {
                    function: func,
                    register: *name,
                    expected,
                    found: value,
                });
            }
        }
        let sp = uc.reg_read(core.sp).map_err(uc_err("read sp"))?;
        if sp != expected_sp {
            found.push(Violation::StackBalance {
                function: func,
                expected: expected_sp,
                found: sp,
            });
        }
        core.state.borrow_mut().violations.extend(found);
    }

    if let Some(saved) = saved {
        uc.context_restore(&saved).map_err(uc_err("restore context"))?;
    }
    if depth == 0 {
        if let Some((slot, message)) = core.state.borrow_mut().panic.take() {
            return Err(MachineError::HandlerPanicked { slot, message });
        }
    }
    outcome
}

// ---------------------------------------------------------------------------------------------
// The dispatcher

/// The code hook at [`DISPATCH_ADDR`]: the emulated dispatcher.
fn dispatch_hook(uc: &mut Unicorn<'_, ()>, core: &Rc<Core>) {
    if let Err(message) = catch_panic(|| dispatch(uc, core)) {
        // A bug in the machine itself (or unreadable guest memory): stop, never unwind into C.
        let mut state = core.state.borrow_mut();
        state.fault = Some(format!("the dispatch hook failed: {message}"));
        drop(state);
        let _ = uc.emu_stop();
    }
}

fn dispatch(uc: &mut Unicorn<'_, ()>, core: &Rc<Core>) {
    let abi = core.abi;
    let word = abi.word_size();
    let w = u64::from(word);
    let regs = core.regs;
    let sp = uc.reg_read(core.sp).expect("read sp");
    // On x86 the call pushed the return address: the caller's sp was one word higher.
    let sp_at_call = if regs.link_register.is_none() { sp + w } else { sp };
    let ctx = match core.dispatch_arg {
        Loc::Int(i) => {
            let reg = abi.spec().int_arg_reg(i, Convention::Default);
            uc.reg_read(reg_id(reg.expect("the dispatcher's register"))).expect("read it")
        }
        Loc::Stack(off) => core.mem.read_word(sp_at_call + u64::from(off), word),
        other => unreachable!("the dispatcher's argument in {other:?}"),
    };
    let layout = core.layout;
    let record = core.mem.read_word(ctx + u64::from(layout.record), word);
    let slot = core.mem.read_word(record, word);
    let required = u64::from(regs.call_alignment);
    let depth = core.state.borrow().depth;
    if sp_at_call % required != 0 {
        core.state.borrow_mut().violations.push(Violation::Alignment {
            slot,
            sp_at_call,
            required,
        });
    }

    let entry = {
        let state = core.state.borrow();
        state.slots.get(slot as usize).map(|s| (s.plan.clone(), s.handler.clone()))
    };
    let code = match entry {
        None => {
            core.state.borrow_mut().violations.push(Violation::UnknownSlot { slot, ctx });
            ReturnCode::Void
        }
        Some((plan, handler)) => {
            // The thunk is a page before its record (a record outside the data page is a
            // test's hand-made context: no thunk).
            if (DATA_BASE..DATA_BASE + u64::from(CODE_PAGE_SIZE)).contains(&record) {
                let thunk = record - u64::from(CODE_PAGE_SIZE);
                core.mem.write_word(ctx + u64::from(layout.thunk), word, thunk);
            }
            let frame = Frame { mem: &core.mem, layout, ctx, plan: &plan };
            let mut guest = Guest { core };
            match catch_panic(|| handler(&mut guest, &frame)) {
                Ok(code) => code,
                Err(message) => {
                    let mut state = core.state.borrow_mut();
                    if state.panic.is_none() {
                        state.panic = Some((slot, message));
                    }
                    drop(state);
                    frame.write_zero_result()
                }
            }
        }
    };
    core.state.borrow_mut().dispatches.push(DispatchRecord {
        slot,
        ctx,
        sp_at_call,
        sp_mod16: sp_at_call % 16,
        depth,
        code: code as u32,
    });

    // A real dispatcher may leave anything in the caller-saved registers: poison them (the
    // result register gets the return code below).
    for (i, name) in regs.caller_saved.iter().enumerate() {
        let poison = if word == 4 {
            0xDEAD_0000 | (i as u64) << 8
        } else {
            0xDEAD_BEEF_0000_0000 | (i as u64) << 8
        };
        uc.reg_write(reg_id(name), poison).expect("poison a register");
    }
    for (i, name) in regs.caller_saved_float.iter().enumerate() {
        let poison = 0xDEAD_BEEF_DEAD_BEEF_0000_0000_0000_0000u128 | (i as u128) << 8;
        write_vector(uc, name, poison).expect("poison a vector register");
    }
    // Only the low bytes of the callee-saved vector registers survive a call (AArch64: the
    // low 64 bits of v8–v15): the rest is fair game.
    let keep = regs.callee_saved_float_bytes;
    if keep < 16 {
        for name in regs.callee_saved_float {
            let old = read_vector(uc, name).expect("read a vector register");
            let poison = 0xDEAD_BEEF_BAAD_F00D_0000_0000_0000_0000u128;
            let value = low_bytes(old, keep) | (poison & !low_bytes(u128::MAX, keep));
            write_vector(uc, name, value).expect("poison a vector register");
        }
    }

    uc.reg_write(core.ret_reg, code as u32 as u64).expect("write the return code");
    // Return as `ret` would.
    match regs.link_register {
        None => {
            let ret = core.mem.read_word(sp, word);
            uc.reg_write(core.sp, sp + w).expect("write sp");
            uc.set_pc(ret).expect("write pc");
        }
        Some(lr) => {
            let lr = uc.reg_read(reg_id(lr)).expect("read lr");
            uc.set_pc(lr).expect("write pc");
        }
    }
}

/// Runs `body`; a panic is caught and answered as its message (what runs inside a Unicorn hook
/// must never unwind into the emulator or the guest).
pub fn catch_panic<T>(body: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|panic| panic_message(&*panic))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(GuestFault(s)) = panic.downcast_ref::<GuestFault>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}
