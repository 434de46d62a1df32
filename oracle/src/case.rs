//! Oracle cases: a signature the C caller is compiled for, and what an ABI makes of it.

use backcall_abi::{Abi, CallPlan, Convention, Layout, Signature, Type};

use crate::graffiti::result_graffiti;
use crate::report::{Failure, Report, Skip};

/// One oracle case: what the C caller is compiled for, and (for tests of the oracle itself)
/// ways to make the callback side deliberately wrong.
#[derive(Clone, Debug)]
pub struct Case {
    /// the signature the C caller calls through
    pub signature: Signature,
    /// for a variadic signature: the types of the unnamed arguments the caller passes after
    /// the named ones (already promoted: [`Type::promoted`])
    pub unnamed: Vec<Type>,
    /// the signature the callback is created with; `None`: the same (only tests that check the
    /// oracle can fail set a different one)
    pub callee: Option<Signature>,
    /// a byte of the result the handler flips (XOR 1) before returning it; `None` normally
    pub flip_result_byte: Option<usize>,
}

impl Case {
    /// A case whose callback has the caller's signature and returns the right value.
    pub fn new(signature: Signature) -> Case {
        Case { signature, unnamed: Vec::new(), callee: None, flip_result_byte: None }
    }

    /// A case whose caller passes `unnamed` after the named arguments of `signature`.
    pub fn call(signature: Signature, unnamed: Vec<Type>) -> Case {
        Case { unnamed, ..Case::new(signature) }
    }

    /// A case as a user writes it (a corpus line, `--sig`, a header's type): `signature` and
    /// the unnamed arguments named with it; a variadic signature named without any is called
    /// with [`default_unnamed`].
    pub fn written(signature: Signature, unnamed: Vec<Type>) -> Case {
        let unnamed =
            if unnamed.is_empty() && signature.variadic { default_unnamed() } else { unnamed };
        Case::call(signature, unnamed)
    }

    /// The type of every argument the caller passes: the named ones, then the unnamed ones.
    pub fn arg_types(&self) -> impl Iterator<Item = &Type> {
        self.signature.args.iter().chain(&self.unnamed)
    }

    /// The type of argument `i` the caller passes (named or unnamed).
    pub fn arg_type(&self, i: usize) -> Option<&Type> {
        self.arg_types().nth(i)
    }

    /// The plan of the call the caller makes on `abi`, its unnamed arguments included.
    pub fn call_plan(&self, abi: Abi) -> Result<CallPlan, backcall_abi::AbiError> {
        abi.plan_call(&self.signature, &self.unnamed)
    }

    /// The signature the callback is created with.
    pub fn callee(&self) -> &Signature {
        self.callee.as_ref().unwrap_or(&self.signature)
    }

    /// The bytes the case's handler returns for a result of `layout` on `abi`: the result
    /// graffiti, with [`Case::flip_result_byte`] flipped.
    pub fn returned_bytes(&self, abi: Abi, layout: &Layout) -> Vec<u8> {
        let mut returned = result_graffiti(abi, layout);
        if let Some(b) = self.flip_result_byte.and_then(|k| returned.get_mut(k)) {
            *b ^= 1;
        }
        returned
    }
}

/// The unnamed arguments a variadic signature's caller passes when nothing says which (a
/// header's or `--sig`'s signature): one of each kind of register and stack slot they use.
pub fn default_unnamed() -> Vec<Type> {
    use backcall_abi::Scalar::{Double, Int, LongLong, Pointer};
    [Int, Double, Pointer, LongLong, Double].into_iter().map(Type::Scalar).collect()
}

/// A call as `backcall verify --sig` and corpus lines write it: `signature | T, U` (the
/// signature alone without unnamed arguments).
pub fn call_text(signature: &Signature, unnamed: &[Type]) -> String {
    let types: Vec<String> = unnamed.iter().map(ToString::to_string).collect();
    if types.is_empty() {
        signature.to_string()
    } else {
        format!("{signature} | {}", types.join(", "))
    }
}

/// [`call_text`]: the signature, with its unnamed arguments when it is variadic.
impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&call_text(&self.signature, &self.unnamed))
    }
}

/// A case the ABI can lay out, with its layouts (what the C text and the checks need).
#[derive(Clone, Debug)]
pub struct Prepared {
    /// index of the case in the batch given to [`Oracle::run`]
    pub index: usize,
    /// the case
    pub case: Case,
    /// layouts of the arguments the caller passes
    pub args: Vec<Layout>,
    /// layout of the caller's result
    pub ret: Layout,
    /// for the typed route's proof: the convention of a compiled C target
    /// `R bc_target_N(void *env, args…)` written beside the caller (see
    /// [`crate::callers::target_name`]); `None` normally
    pub target: Option<Convention>,
}

impl Prepared {
    /// Lays out `case` for `abi`, or says why the ABI refuses it (or why C11, the callers'
    /// language, cannot call it).
    pub fn new(abi: Abi, index: usize, case: &Case) -> Result<Prepared, String> {
        if case.signature.variadic && case.signature.args.is_empty() {
            return Err("a variadic function without a named parameter is C23; the callers are \
                        C11"
            .into());
        }
        let text = |e: backcall_abi::AbiError| e.to_string();
        case.call_plan(abi).map_err(text)?;
        let args =
            case.arg_types().map(|t| abi.layout(t)).collect::<Result<_, _>>().map_err(text)?;
        let ret = abi.layout(&case.signature.ret).map_err(text)?;
        Ok(Prepared { index, case: case.clone(), args, ret, target: None })
    }

    /// Lays out every case of a batch for `abi`; a case the ABI refuses is skipped in `report`.
    pub fn batch(abi: Abi, cases: &[Case], report: &mut Report) -> Vec<Prepared> {
        let mut prepared = Vec::new();
        for (index, case) in cases.iter().enumerate() {
            match Prepared::new(abi, index, case) {
                Ok(p) => prepared.push(p),
                Err(reason) => {
                    report.skipped.push(Skip { index, signature: case.signature.clone(), reason })
                }
            }
        }
        prepared
    }

    /// The failure of this case when it could not run, for the reason `why`.
    pub fn could_not(&self, why: String, plan: Option<&CallPlan>) -> Failure {
        Failure {
            index: self.index,
            signature: self.case.signature.clone(),
            unnamed: self.case.unnamed.clone(),
            problems: vec![why],
            mismatches: Vec::new(),
            plan: plan.map(|pl| pl.to_string()),
        }
    }
}
