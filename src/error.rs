//! Errors: those returned to the creator of a callback ([`Error`]) and those reported when a
//! call cannot be served as asked ([`CallbackError`], delivered to the error hook).

use std::fmt;
use std::sync::RwLock;

/// An error creating or using a callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// the signature does not parse
    Parse(crate::ParseError),
    /// the signature has no plan on the host ABI
    Abi(backcall_abi::AbiError),
    /// backcall has no runtime for the ABI this process runs on
    UnsupportedHost,
    /// no executable memory could be obtained: the page limit, or the system's memory
    PoolExhausted(String),
    /// the system refuses executable memory to this process (a policy: `PR_SET_MDWE`,
    /// systemd's `MemoryDenyWriteExecute=`, SELinux)
    ExecDenied(String),
    /// every thread key is taken (2^32 threads made callbacks): this thread cannot own a
    /// single-threaded callback
    ThreadKeys,
    /// a value does not fit the signature's result type
    BadValue(String),
    /// the thunk code could not be laid out
    Code(String),
    /// `return_from_context` was asked to return a context that is not the most recent one
    OutOfOrderReturn,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parse(e) => write!(f, "bad signature: {e}"),
            Error::Abi(e) => e.fmt(f),
            Error::UnsupportedHost => f.write_str("backcall has no callback runtime for this host"),
            Error::PoolExhausted(why) => write!(f, "the thunk pool cannot grow: {why}"),
            Error::ExecDenied(why) => write!(f, "executable memory denied by policy: {why}"),
            Error::ThreadKeys => f.write_str(
                "no thread key left: more than 2^32 threads created callbacks, so this thread \
                 cannot own a single-threaded one (use ThreadPolicy::Serialized)",
            ),
            Error::BadValue(why) => write!(f, "bad result value: {why}"),
            Error::Code(why) => write!(f, "thunk code: {why}"),
            Error::OutOfOrderReturn => f.write_str(
                "return_from_context: only the most recent callback context can be returned from",
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::ParseError> for Error {
    fn from(e: crate::ParseError) -> Error {
        Error::Parse(e)
    }
}

impl From<backcall_abi::AbiError> for Error {
    fn from(e: backcall_abi::AbiError) -> Error {
        Error::Abi(e)
    }
}

/// Something that went wrong *during* a call from C. The call still returns a defined value
/// (zero, or -1 for a refused thread) and the error goes to the error hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackError {
    /// the thunk was called after its callback was released
    Stale {
        /// the thunk's address
        thunk: usize,
    },
    /// a single-threaded callback was called from a thread other than its owner's
    WrongThread {
        /// the thunk's address
        thunk: usize,
    },
    /// the handler panicked; the panic was stopped at the C boundary
    Panicked {
        /// the thunk's address
        thunk: usize,
        /// the panic message
        message: String,
    },
    /// the handler's result does not fit the signature's result type
    BadResult {
        /// the thunk's address
        thunk: usize,
        /// what was wrong
        message: String,
    },
    /// dropping a released callback's handler (its captures) panicked; the panic was stopped
    /// there (what it had not freed yet may be leaked). No call's result is affected.
    DropPanicked {
        /// the thunk's address
        thunk: usize,
        /// the panic message
        message: String,
    },
}

impl CallbackError {
    /// The thunk address the error concerns.
    pub fn thunk(&self) -> usize {
        match self {
            CallbackError::Stale { thunk }
            | CallbackError::WrongThread { thunk }
            | CallbackError::Panicked { thunk, .. }
            | CallbackError::BadResult { thunk, .. }
            | CallbackError::DropPanicked { thunk, .. } => *thunk,
        }
    }
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackError::Stale { thunk } => {
                write!(f, "call through released callback {thunk:#x}; returned zero")
            }
            CallbackError::WrongThread { thunk } => write!(
                f,
                "single-threaded callback {thunk:#x} called from a foreign thread; returned -1"
            ),
            CallbackError::Panicked { thunk, message } => {
                write!(f, "callback {thunk:#x} panicked ({message}); returned zero")
            }
            CallbackError::BadResult { thunk, message } => {
                write!(f, "callback {thunk:#x}: {message}; returned zero")
            }
            CallbackError::DropPanicked { thunk, message } => {
                write!(f, "dropping released callback {thunk:#x}'s handler panicked ({message})")
            }
        }
    }
}

type Hook = Box<dyn Fn(&CallbackError) + Send + Sync>;

static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Installs the function that receives every [`CallbackError`] (the default prints to stderr).
///
/// ```
/// backcall::set_error_hook(|e| eprintln!("callback trouble: {e}"));
/// ```
pub fn set_error_hook(hook: impl Fn(&CallbackError) + Send + Sync + 'static) {
    *HOOK.write().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
}

/// Keeps Rust's panic hook quiet about the panics backcall contains (a handler's, while a
/// callback call is running on the thread): they reach the error hook instead, as one
/// [`CallbackError::Panicked`] (the default hook prints one line). Other panics go to the hook
/// that was installed before. Installed once, when the first callback is made.
pub(crate) fn quiet_contained_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !crate::hazard::in_callback() {
                previous(info);
            }
        }));
    });
}

/// Delivers `e` to the hook. Never unwinds: a panicking hook is stopped here (its payload is
/// leaked, since dropping it could panic again), because `report` runs in the middle of the
/// dispatcher's bookkeeping, where an unwind would leave a call announced forever.
pub(crate) fn report(e: CallbackError) {
    let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let hook = HOOK.read().unwrap_or_else(|p| p.into_inner());
        match hook.as_ref() {
            Some(h) => h(&e),
            None => eprintln!("backcall: {e}"),
        }
    }));
    if let Err(payload) = delivered {
        std::mem::forget(payload);
        eprintln!("backcall: the error hook panicked while reporting: {e}");
    }
}

/// Runs `drop` (user code: a released handler's destructor), reporting a panic instead of
/// unwinding (with the thunk `thunk` answers, asked only then).
pub(crate) fn contain_drop(thunk: impl FnOnce() -> usize, drop: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(drop)) {
        let message = panic_message(&*payload);
        std::mem::forget(payload);
        report(CallbackError::DropPanicked { thunk: thunk(), message });
    }
}

/// The message of a panic payload (`&str` or `String`), for reports.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a non-string panic payload".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Each kind's message opens with its own cause; the pairs are what a user reads.
    fn errors(detail: &str) -> Vec<(Error, &'static str)> {
        let parse = crate::ParseError { offset: 3, expected: detail.into(), found: "x".into() };
        vec![
            (Error::Parse(parse), "bad signature"),
            (
                Error::Abi(backcall_abi::AbiError::unsupported(
                    backcall_abi::Abi::X86_64Sysv,
                    detail,
                )),
                "x86_64-sysv",
            ),
            (Error::UnsupportedHost, "no callback runtime for this host"),
            (Error::PoolExhausted(detail.into()), "the thunk pool cannot grow"),
            (Error::ExecDenied(detail.into()), "executable memory denied by policy"),
            (Error::ThreadKeys, "no thread key left"),
            (Error::BadValue(detail.into()), "bad result value"),
            (Error::Code(detail.into()), "thunk code"),
            (Error::OutOfOrderReturn, "only the most recent callback context"),
        ]
    }

    fn callback_errors(message: &str) -> Vec<(CallbackError, &'static str)> {
        let thunk = 0x1234;
        vec![
            (CallbackError::Stale { thunk }, "released callback"),
            (CallbackError::WrongThread { thunk }, "foreign thread"),
            (CallbackError::Panicked { thunk, message: message.into() }, "panicked"),
            (CallbackError::BadResult { thunk, message: message.into() }, "returned zero"),
            (CallbackError::DropPanicked { thunk, message: message.into() }, "dropping released"),
        ]
    }

    proptest! {
        /// Every error names its cause, carries its detail, and no message could be mistaken
        /// for another kind's (a policy refusal is not "exhausted", a bad value not "code").
        #[test]
        fn every_error_names_its_cause_and_no_other(detail in "[a-z ]{0,30}") {
            let all = errors(&detail);
            for (e, cause) in &all {
                let text = e.to_string();
                prop_assert!(text.contains(cause), "{text:?} lacks {cause:?}");
                if !matches!(e, Error::UnsupportedHost | Error::ThreadKeys | Error::OutOfOrderReturn) {
                    prop_assert!(text.contains(detail.as_str()), "{text:?} lacks {detail:?}");
                }
                for (other, other_cause) in &all {
                    if std::mem::discriminant(other) != std::mem::discriminant(e) && !detail.contains(other_cause) {
                        prop_assert!(!text.contains(other_cause), "{text:?} reads as {other_cause:?}");
                    }
                }
            }
            for (e, cause) in callback_errors(&detail) {
                let text = e.to_string();
                prop_assert!(text.contains(cause) && text.contains("0x1234"), "{text:?}");
            }
        }
    }
}
