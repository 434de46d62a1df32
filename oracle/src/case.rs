//! Oracle cases: a signature the C caller is compiled for, and what an ABI makes of it.

use backcall_abi::{Abi, CallPlan, Convention, Layout, Signature};

use crate::graffiti::result_graffiti;
use crate::report::{Failure, Report, Skip};

/// One oracle case: what the C caller is compiled for, and (for tests of the oracle itself)
/// ways to make the callback side deliberately wrong.
#[derive(Clone, Debug)]
pub struct Case {
    /// the signature the C caller calls through
    pub signature: Signature,
    /// the signature the callback is created with; `None`: the same (only tests that check the
    /// oracle can fail set a different one)
    pub callee: Option<Signature>,
    /// a byte of the result the handler flips (XOR 1) before returning it; `None` normally
    pub flip_result_byte: Option<usize>,
}

impl Case {
    /// A case whose callback has the caller's signature and returns the right value.
    pub fn new(signature: Signature) -> Case {
        Case { signature, callee: None, flip_result_byte: None }
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
    /// Lays out `case` for `abi`, or says why the ABI refuses it.
    pub fn new(abi: Abi, index: usize, case: &Case) -> Result<Prepared, backcall_abi::AbiError> {
        abi.plan(&case.signature)?;
        let args = case.signature.args.iter().map(|t| abi.layout(t)).collect::<Result<_, _>>()?;
        let ret = abi.layout(&case.signature.ret)?;
        Ok(Prepared { index, case: case.clone(), args, ret, target: None })
    }

    /// Lays out every case of a batch for `abi`; a case the ABI refuses is skipped in `report`.
    pub fn batch(abi: Abi, cases: &[Case], report: &mut Report) -> Vec<Prepared> {
        let mut prepared = Vec::new();
        for (index, case) in cases.iter().enumerate() {
            match Prepared::new(abi, index, case) {
                Ok(p) => prepared.push(p),
                Err(e) => report.skipped.push(Skip {
                    index,
                    signature: case.signature.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        prepared
    }

    /// The failure of this case when it could not run, for the reason `why`.
    pub fn could_not(&self, why: String, plan: Option<&CallPlan>) -> Failure {
        Failure {
            index: self.index,
            signature: self.case.signature.clone(),
            problems: vec![why],
            mismatches: Vec::new(),
            plan: plan.map(|pl| pl.to_string()),
        }
    }
}
