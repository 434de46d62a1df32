//! The comparison at the heart of every oracle: what the handler received against what the
//! compiled C caller passed, and what the caller received against what the handler returned.

use std::fmt::Write as _;

use backcall_abi::{Abi, ArgPass, CallPlan};

use crate::callers::widened;
use crate::case::Prepared;
use crate::graffiti::{arg_graffiti, result_graffiti, value_mask};

/// Which value of a call a [`Mismatch`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// argument `i`'s bytes, as the handler received them
    Arg(usize),
    /// the result's bytes, as the C caller received them
    Result,
    /// integer argument `i` as the handler's getter converts it to 64 bits, against C's
    /// conversion to `long long`
    ArgValue(usize),
    /// an integer result converted to `long long` straight from the call, against the same
    /// conversion of the stored result: the extension of the result register
    ResultExtension,
}

/// What one call of a case's handler saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// every argument's bytes
    pub bytes: Vec<Vec<u8>>,
    /// per argument: the handler's 64-bit reading of an integer argument
    /// ([`crate::callers::widened`]), `None` for the others
    pub values: Vec<Option<u64>>,
}

/// What the compiled C caller left after the call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// the result's bytes (`bc_ret_N`), if the signature has a result and the caller stored it
    pub result: Option<Vec<u8>>,
    /// C's conversion of every argument to `long long` (`bc_argw_N`), if any is an integer
    pub arg_values: Option<Vec<u64>>,
    /// an integer result converted straight from the call and from memory (`bc_retw_N`)
    pub result_widened: Option<[u64; 2]>,
}

/// The bytes of one value that did not arrive as sent (offsets into the value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// which value
    pub part: Part,
    /// the differing byte offsets, sorted
    pub bytes: Vec<usize>,
}

/// What [`compare`] found: one paragraph per problem, and the byte mismatches among them.
#[derive(Clone, Debug, Default)]
pub struct Compared {
    /// one paragraph per problem (empty: the case agrees)
    pub problems: Vec<String>,
    /// the values whose bytes differ
    pub mismatches: Vec<Mismatch>,
}

impl Compared {
    fn push(&mut self, text: String, mismatch: Option<Mismatch>) {
        self.problems.push(text);
        self.mismatches.extend(mismatch);
    }

    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Drops what is about the result (a caller that faulted never stored one).
    pub fn drop_result(&mut self) {
        self.problems.retain(|t| !t.starts_with(RESULT_PREFIX));
        self.mismatches.retain(|m| !matches!(m.part, Part::Result | Part::ResultExtension));
    }
}

/// How a result problem's paragraph starts.
const RESULT_PREFIX: &str = "result (";

/// Compares what one case's handler received (`calls`: the bytes of every argument, per call)
/// with what the C caller passed, and the result bytes the caller stored (`received_ret`) with
/// what the handler returned.
///
/// `returned` is what the handler actually wrote (it names the source of misplaced bytes).
/// Shared by the host oracle and the emulated one (`backcall-emu-tests`).
pub fn compare(
    abi: Abi,
    p: &Prepared,
    plan: &CallPlan,
    calls: &[Seen],
    received: &Received,
    returned: &[u8],
) -> Compared {
    let mut out = Compared::default();
    let [seen] = calls else {
        let text =
            format!("the handler ran {} times for one call from C (expected once)", calls.len());
        out.push(text, None);
        return out;
    };
    let args = &seen.bytes;
    let passed: Vec<Vec<u8>> =
        p.args.iter().enumerate().map(|(i, l)| arg_graffiti(abi, i, l)).collect();
    for (i, (layout, sent)) in p.args.iter().zip(&passed).enumerate() {
        let ty = p.case.arg_type(i).map_or_else(String::new, ToString::to_string);
        let Some(got) = args.get(i) else {
            let text = format!(
                "argument {i} ({ty}): the handler received no argument {i} (it got {})",
                args.len()
            );
            out.push(text, None);
            continue;
        };
        let mask = value_mask(layout);
        let Some(diff) = differing(&mask, sent, got) else { continue };
        let mut text = format!(
            "argument {i} ({ty}, {} bytes): received bytes differ at {}\n  \
             passed by C: {}\n  received:    {}",
            layout.size,
            ranges(&diff),
            hex_masked(sent, &mask),
            hex_masked(got, &mask),
        );
        if got.len() != sent.len() {
            let _ = write!(text, "\n  (received {} bytes, C passed {})", got.len(), sent.len());
        }
        if let Some(origin) = guess_origin(got, &diff, &passed, returned) {
            let _ = write!(text, "\n  received {origin}");
        }
        if let Some(loc) = arg_location(plan, i, &diff) {
            let _ = write!(text, "\n  the callback's plan: {loc}");
        }
        out.push(text, Some(Mismatch { part: Part::Arg(i), bytes: diff }));
    }
    if args.len() > p.args.len() {
        let text =
            format!("the handler received {} arguments; C passed {}", args.len(), p.args.len());
        out.push(text, None);
    }
    compare_values(p, seen, received, &mut out);
    if let Some(got) = received.result.as_deref() {
        let mask = value_mask(&p.ret);
        let expected = result_graffiti(abi, &p.ret);
        if let Some(diff) = differing(&mask, &expected, got) {
            let flipped = if p.case.flip_result_byte.is_some() {
                " (this case's handler deliberately returns a wrong byte)"
            } else {
                ""
            };
            let mut text = format!(
                "{RESULT_PREFIX}{}, {} bytes): C received bytes that differ at {}{flipped}\n  \
                 handler returned: {}\n  C received:       {}\n  the callback's plan: {}",
                p.case.signature.ret,
                p.ret.size,
                ranges(&diff),
                hex_masked(&expected, &mask),
                hex_masked(got, &mask),
                ret_location(plan)
            );
            if let Some(origin) = guess_origin(got, &diff, &passed, &expected) {
                let _ = write!(text, "\n  received {origin}");
            }
            out.push(text, Some(Mismatch { part: Part::Result, bytes: diff }));
        }
    }
    compare_extension(p, plan, received, &mut out);
    if !out.is_empty() && p.case.callee.is_some() {
        let note = format!("(deliberately) the callback was created for `{}`", p.case.callee());
        out.problems.insert(0, note);
    }
    out
}

/// The handler's 64-bit readings of integer arguments against C's conversions to
/// `long long`, for arguments whose bytes arrived (a value whose bytes differ is reported
/// once, by its bytes).
fn compare_values(p: &Prepared, seen: &Seen, received: &Received, out: &mut Compared) {
    let Some(c_values) = &received.arg_values else { return };
    for (i, layout) in p.args.iter().enumerate() {
        if !widened(layout) || out.mismatches.iter().any(|m| m.part == Part::Arg(i)) {
            continue;
        }
        let (Some(&c), Some(Some(got))) = (c_values.get(i), seen.values.get(i)) else {
            continue;
        };
        if c != *got {
            let ty = p.case.arg_type(i).map_or_else(String::new, ToString::to_string);
            let text = format!(
                "argument {i} ({ty}): the handler's integer reading is {:#x} ({}), C converts \
                 the same value to {:#x} ({}) — a signedness or normalisation the ABI does not \
                 give it",
                got, *got as i64, c, c as i64
            );
            out.push(text, Some(Mismatch { part: Part::ArgValue(i), bytes: Vec::new() }));
        }
    }
}

/// An integer result converted to `long long` straight from the call against the same
/// conversion of the stored result: a caller that relies on the ABI's extension of the result
/// register gets the difference when the callee did not extend.
fn compare_extension(p: &Prepared, plan: &CallPlan, received: &Received, out: &mut Compared) {
    let Some([direct, stored]) = received.result_widened else { return };
    if direct == stored || out.mismatches.iter().any(|m| m.part == Part::Result) {
        return;
    }
    let text = format!(
        "{RESULT_PREFIX}{}, {} bytes): converted to long long straight from the call, C got \
         {direct:#x}; from the stored result, {stored:#x}: the compiler relies on the result \
         register being extended, and it was not\n  the callback's plan: {}",
        p.case.signature.ret,
        p.ret.size,
        ret_location(plan)
    );
    out.push(text, Some(Mismatch { part: Part::ResultExtension, bytes: Vec::new() }));
}

/// Offsets (within `mask`) where `got` differs from `sent` (a missing byte differs).
pub fn differing(mask: &[bool], sent: &[u8], got: &[u8]) -> Option<Vec<usize>> {
    let diff: Vec<usize> =
        (0..mask.len()).filter(|&k| mask[k] && got.get(k) != sent.get(k)).collect();
    (!diff.is_empty()).then_some(diff)
}

/// `0..3, 8, 12..15` for sorted offsets.
pub fn ranges(offsets: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut k = 0;
    while k < offsets.len() {
        let start = offsets[k];
        let mut end = start;
        while k + 1 < offsets.len() && offsets[k + 1] == end + 1 {
            k += 1;
            end += 1;
        }
        out.push(if start == end {
            format!("byte {start}")
        } else {
            format!("bytes {start}..={end}")
        });
        k += 1;
    }
    out.join(", ")
}

/// Hex bytes, `--` for padding (and `..` for missing bytes).
pub fn hex_masked(bytes: &[u8], mask: &[bool]) -> String {
    let len = bytes.len().max(mask.len());
    let items: Vec<String> = (0..len)
        .map(|k| match (bytes.get(k), mask.get(k).copied().unwrap_or(true)) {
            (None, _) => "..".into(),
            (Some(_), false) => "--".into(),
            (Some(b), true) => format!("{b:02x}"),
        })
        .collect();
    items.join(" ")
}

/// Names the value whose graffiti the first run of differing bytes of `got` carries, if any:
/// "bytes 0..=3 are argument 1's bytes 0..=3". Runs shorter than 2 bytes say too little.
fn guess_origin(got: &[u8], diff: &[usize], passed: &[Vec<u8>], result: &[u8]) -> Option<String> {
    let first = *diff.first()?;
    let len = diff.iter().enumerate().take_while(|&(k, &d)| d == first + k).count();
    let len = len.min(got.len().saturating_sub(first));
    if len < 2 {
        return None;
    }
    let needle = &got[first..first + len];
    let sources = passed
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("argument {i}'s"), b.as_slice()))
        .chain(std::iter::once(("the result's".to_string(), result)));
    for (name, hay) in sources {
        if let Some(at) = hay.windows(len).position(|w| w == needle) {
            return Some(format!(
                "bytes {first}..={} are {name} bytes {at}..={}",
                first + len - 1,
                at + len - 1
            ));
        }
    }
    None
}

/// Where argument `i` travels by the plan, and which pieces hold the differing bytes.
fn arg_location(plan: &CallPlan, i: usize, diff: &[usize]) -> Option<String> {
    let arg = plan.args.get(i)?;
    Some(match &arg.pass {
        ArgPass::Direct(pieces) => {
            let parts: Vec<String> = pieces
                .iter()
                .map(|pc| {
                    let range = pc.offset as usize..(pc.offset + pc.size) as usize;
                    let bad =
                        if diff.iter().any(|d| range.contains(d)) { " (differs)" } else { "" };
                    format!(
                        "bytes {}..{} in {}{bad}",
                        range.start,
                        range.end,
                        plan.loc_name(pc.loc, false)
                    )
                })
                .collect();
            parts.join(", ")
        }
        ArgPass::Indirect { pointer } => {
            format!("by reference, the pointer in {}", plan.loc_name(*pointer, false))
        }
    })
}

/// How the plan returns the result, in the Display form's words.
pub fn ret_location(plan: &CallPlan) -> String {
    let text = plan.to_string();
    let line = text.lines().find(|l| l.trim_start().starts_with("ret "));
    let mut out = line.map(|l| l.trim().to_string()).unwrap_or_default();
    let _ = write!(out, "; return code {:?}", plan.code);
    out
}
