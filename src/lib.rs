//! # backcall: FFI callbacks
//!
//! A *callback* turns a C signature plus a handler into a plain C function pointer.
//!
//! Layering, bottom up:
//! 1. [`abi`] (the `backcall-abi` crate): C types, per-ABI layouts, call plans, context layout
//!    and the encoded thunk/thunkEntry code.
//! 2. [`signature`]: the C declarator parser (`int (*)(const void *, const void *)`).
//! 3. [`memory`] and [`marshal`]: reading arguments and writing results by a plan, over the
//!    memory of either machine (this process, or an emulated guest).
//! 4. The native runtime: the W^X thunk pool, the slot registry, the dispatcher thunkEntry calls,
//!    and the public API: [`Callback`] (dynamic) and [`typed`] (`extern "C" fn` closures).
//! 5. [`corpus`]: the built-in signature corpus every tool and test shares.
//!
//! A handler may borrow from the stack and need not be `Send`: inside [`scope`], every
//! callback is released (its handler dropped) before the scope returns, and only the thread
//! that made it may call it.
//!
//! ```
//! use std::ffi::c_void;
//!
//! extern "C" {
//!     fn qsort(base: *mut c_void, n: usize, size: usize,
//!              cmp: extern "C" fn(*const c_void, *const c_void) -> i32);
//! }
//!
//! let mut words = vec!["pear", "fig", "apple"];
//! let calls = std::cell::Cell::new(0); // borrowed by the handler, and not `Sync`
//! backcall::scope(|s| {
//!     let cmp = s
//!         .callback("int (*)(const void *, const void *)", |args| {
//!             calls.set(calls.get() + 1);
//!             let (a, b) = unsafe { (&*args.ptr::<&str>(0), &*args.ptr::<&str>(1)) };
//!             a.len().cmp(&b.len()) as i32
//!         })
//!         .unwrap();
//!     let size = std::mem::size_of::<&str>();
//!     unsafe { qsort(words.as_mut_ptr().cast(), words.len(), size, cmp.as_fn()) };
//! });
//! assert_eq!(words, ["fig", "pear", "apple"]);
//! assert!(calls.get() > 0);
//! ```
//!
//! A [`Callback`] owns a `'static` handler; [`typed::TypedCallback`] takes a closure of an
//! `extern "C" fn` type:
//!
//! ```
//! use backcall::Callback;
//!
//! let cmp = Callback::new("int (*)(const void *, const void *)", |args| {
//!     let (a, b) = unsafe { (*args.ptr::<i32>(0), *args.ptr::<i32>(1)) };
//!     a.cmp(&b) as i32
//! })
//! .unwrap();
//! let f: extern "C" fn(*const i32, *const i32) -> i32 = unsafe { cmp.as_fn() };
//! assert_eq!(f(&1, &2), -1);
//! ```

pub use backcall_abi as abi;
pub use backcall_abi::{ReturnCode, Signature, Type};

mod callback;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod context;
#[doc(hidden)]
pub mod corpus;
mod dispatch;
mod error;
mod hazard;
#[cfg(feature = "header")]
#[doc(hidden)]
pub mod header;
mod local;
#[doc(hidden)]
pub mod marshal;
#[doc(hidden)]
pub mod memory;
mod native;
#[doc(hidden)]
pub mod plan_table;
mod pool;
mod pool_lock;
mod registry;
pub mod signature;
pub mod typed;

/// What the test harness (`backcall-emu-tests`, `backcall-native-tests`) shares with the
/// runtime, and a runtime user does not need: the memory interface both machines implement
/// ([`harness::memory`]), reading arguments and writing results by a plan over it
/// ([`harness::marshal`]), the native context's layout ([`harness::context`]), the built-in
/// signature corpus ([`harness::corpus`]), the side-by-side plan table of `backcall plan`
/// ([`harness::plan_table`]) and, with feature `header`, the callback types of a C header
/// (`harness::header`), and with feature `cli` what the command lines share (`harness::cli`).
pub mod harness {
    #[cfg(feature = "cli")]
    pub use crate::cli;
    #[cfg(feature = "header")]
    pub use crate::header;
    pub use crate::{context, corpus, marshal, memory, plan_table};
}

pub use callback::{host_abi, Args, Callback, OwnedVaList, Prototype, VaArgs, PROTOTYPE_CACHE};
pub use context::CallbackContext;
pub use dispatch::{current_context, return_from_context};
pub use error::{set_error_hook, CallbackError, Error};
pub use local::{scope, LocalCallback, Scope, ScopedCallback};
pub use marshal::Value;
pub use registry::{SerialGroup, ThreadPolicy};
pub use signature::{parse_signature, ParseError};

/// Caps the thunk pool at `pages` pages (default: 65,536). Creating a callback beyond the cap
/// fails with [`Error::PoolExhausted`]; meant for tests and for bounding a process.
pub fn set_pool_page_limit(pages: usize) {
    registry::registry().set_page_limit(pages);
}

/// Pages the thunk pool has mapped.
pub fn pool_pages() -> usize {
    registry::registry().pages()
}

/// Sets how many other callbacks must be released before a released callback's thunk is
/// reused (default 256): a stale C function pointer keeps returning zeros, reported as
/// [`CallbackError::Stale`], at least that long. Reuse also prefers callbacks with the same
/// return protocol, so a later stale call still returns the way its caller expects; only a
/// full pool ([`set_pool_page_limit`]) reuses sooner or across protocols. A typed callback's
/// thunk is only ever reused by a typed callback of the same closure type (a full pool then
/// answers [`Error::PoolExhausted`](crate::Error::PoolExhausted) rather than hand it to
/// another).
///
/// ```
/// // A host that hands out many short-lived callbacks and wants stale pointers caught longer:
/// backcall::set_reuse_quarantine(4096);
/// ```
pub fn set_reuse_quarantine(releases: u64) {
    registry::registry().set_quarantine(releases);
}
