//! `backcall verify`: the main job. Runs signatures (the built-in corpus, files, `--sig`, random
//! ones) on every requested ABI through the emulated compiler oracle and prints a matrix.
//!
//! Exit codes: 0 every case agrees with the compiler; 1 some case disagrees; 2 bad input (unknown
//! ABI, unparseable signature with its line, missing clang with the install hint).

use std::io::{IsTerminal, Write};
use std::time::Instant;

use backcall::corpus;
use backcall_abi::{Abi, Signature};
use backcall_native_tests::oracle::{Case, Opt, Report};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// What to verify.
#[derive(Clone, Debug)]
pub struct Request {
    /// ABIs to run on
    pub abis: Vec<Abi>,
    /// optimisation levels
    pub opts: Vec<Opt>,
    /// signatures, with where each came from (for messages)
    pub signatures: Vec<(String, Signature)>,
    /// random signatures to add
    pub random: usize,
    /// seed of the random signatures
    pub seed: u64,
    /// JSON lines instead of the matrix
    pub json: bool,
}

/// Usage text of `backcall verify`.
pub const USAGE: &str = "\
usage: backcall verify [--abi <id|all>]... [--sig '<signature>']... [--corpus FILE]...
                       [--random N] [--seed S] [--opt 0,2] [--json]

With no signature options: the built-in corpus plus 64 random signatures, on all ABIs, at -O0
and -O2. Exit 0 when every case agrees with clang, 1 when any disagrees, 2 for bad input.
";

/// Parses the arguments after `verify`; `Err` is a message for exit code 2.
pub fn parse_args(args: &[String]) -> Result<Request, String> {
    let mut req = Request {
        abis: Vec::new(),
        opts: Vec::new(),
        signatures: Vec::new(),
        random: 0,
        seed: 0xbac4_ca11,
        json: false,
    };
    let (mut random, mut explicit) = (None, false);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--abi" => match value("--abi")?.as_str() {
                "all" => req.abis.extend(Abi::ALL),
                id => req.abis.push(id.parse()?),
            },
            "--sig" => {
                let text = value("--sig")?;
                let sig =
                    backcall::parse_signature(&text).map_err(|e| format!("--sig `{text}`: {e}"))?;
                req.signatures.push(("--sig".into(), sig));
                explicit = true;
            }
            "--corpus" => {
                let path = value("--corpus")?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read corpus {path}: {e}"))?;
                let entries = corpus::parse(&text).map_err(|e| format!("{path}: {e}"))?;
                let named =
                    entries.into_iter().map(|e| (format!("{path}:{}", e.line), e.signature));
                req.signatures.extend(named);
                explicit = true;
            }
            "--random" => {
                let n = value("--random")?;
                random = Some(n.parse().map_err(|_| format!("--random `{n}`: expected a count"))?);
            }
            "--seed" => {
                let s = value("--seed")?;
                req.seed = s.parse().map_err(|_| format!("--seed `{s}`: expected an integer"))?;
            }
            "--opt" => req.opts = parse_opts(&value("--opt")?)?,
            "--json" => req.json = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    if !explicit {
        let builtin = corpus::builtin().into_iter();
        req.signatures.extend(builtin.map(|e| (format!("corpus:{}", e.line), e.signature)));
    }
    req.random = random.unwrap_or(if explicit { 0 } else { 64 });
    if req.abis.is_empty() {
        req.abis = Abi::ALL.to_vec();
    }
    if req.opts.is_empty() {
        req.opts = Opt::ALL.to_vec();
    }
    Ok(req)
}

fn parse_opts(text: &str) -> Result<Vec<Opt>, String> {
    text.split(',')
        .map(|o| match o.trim() {
            "0" => Ok(Opt::O0),
            "2" => Ok(Opt::O2),
            other => Err(format!("--opt `{other}`: expected 0 or 2")),
        })
        .collect()
}

/// `n` random supported signatures from `seed` (the same seed always gives the same ones).
pub fn random_signatures(n: usize, seed: u64) -> Vec<(String, Signature)> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = backcall_abi::arbitrary::any_supported_signature();
    (0..n)
        .map(|i| {
            let tree = strategy.new_tree(&mut runner).expect("the strategy always generates");
            (format!("random:{seed}:{i}"), tree.current())
        })
        .collect()
}

/// One ABI × level cell of the matrix.
struct Cell {
    abi: Abi,
    opt: Opt,
    report: Result<Report, String>,
}

/// Runs the request; prints the matrix (or JSON lines); answers the exit code.
pub fn run(req: &Request, out: &mut dyn Write) -> i32 {
    if let Err(hint) = crate::oracle::require_clang() {
        eprintln!("backcall verify: {hint}");
        return 2;
    }
    let mut signatures = req.signatures.clone();
    signatures.extend(random_signatures(req.random, req.seed));
    let cases: Vec<Case> = signatures.iter().map(|(_, s)| Case::new(s.clone())).collect();
    let jobs: Vec<(Abi, Opt)> =
        req.abis.iter().flat_map(|&abi| req.opts.iter().map(move |&opt| (abi, opt))).collect();
    let progress = Progress::new(jobs.len(), req.json);
    let cells = run_jobs(&jobs, &cases, &progress);
    progress.finish();
    if req.json {
        write_json(out, &signatures, &cells)
    } else {
        write_matrix(out, &cells)
    }
}

/// Runs every ABI × level cell on all cores (each cell is one clang batch and one machine, so
/// cells are independent); answers the cells in `jobs` order.
fn run_jobs(jobs: &[(Abi, Opt)], cases: &[Case], progress: &Progress) -> Vec<Cell> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(&(abi, opt)) = jobs.get(i) else { break };
                let started = Instant::now();
                let report = crate::oracle::run(abi, cases, opt).map_err(|e| e.to_string());
                progress.done(abi, opt, cases.len(), started);
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((i, Cell { abi, opt, report }));
            });
        }
    });
    let mut cells = results.into_inner().unwrap_or_else(|p| p.into_inner());
    cells.sort_by_key(|(i, _)| *i);
    cells.into_iter().map(|(_, c)| c).collect()
}

/// Progress on a terminal (stderr), plain lines otherwise; nothing in JSON mode.
struct Progress {
    total: usize,
    tty: bool,
    quiet: bool,
    finished: std::sync::atomic::AtomicUsize,
}

impl Progress {
    fn new(total: usize, quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress { total, tty, quiet, finished: std::sync::atomic::AtomicUsize::new(0) }
    }

    /// One cell finished.
    fn done(&self, abi: Abi, opt: Opt, cases: usize, started: Instant) {
        let n = self.finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.quiet {
            return;
        }
        let took = started.elapsed();
        if self.tty {
            let filled = n * 30 / self.total.max(1);
            let bar = format!("[{}{}]", "#".repeat(filled), ".".repeat(30 - filled));
            eprint!("\r\x1b[2K{bar} {n}/{} {abi} {opt}: {cases} cases in {took:.1?}", self.total);
        } else {
            eprintln!("verify {n}/{}: {abi} {opt}, {cases} cases in {took:.1?}", self.total);
        }
    }

    fn finish(&self) {
        if self.tty && !self.quiet {
            eprintln!();
        }
    }
}

fn write_matrix(out: &mut dyn Write, cells: &[Cell]) -> i32 {
    let mut code = 0;
    let _ = writeln!(
        out,
        "{:<17} {:<4} {:>7} {:>7} {:>12}  time",
        "ABI", "opt", "passed", "failed", "unsupported"
    );
    for cell in cells {
        match &cell.report {
            Ok(r) => {
                let passed = r.ran - r.failures.len().min(r.ran);
                let _ = writeln!(
                    out,
                    "{:<17} {:<4} {:>7} {:>7} {:>12}  {:.1?}",
                    cell.abi.id(),
                    cell.opt.to_string(),
                    passed,
                    r.failures.len(),
                    r.skipped.len(),
                    r.compile_time + r.call_time
                );
                if !r.failures.is_empty() {
                    code = 1;
                }
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "{:<17} {:<4} could not run: {e}",
                    cell.abi.id(),
                    cell.opt.to_string()
                );
                code = 1;
            }
        }
    }
    for cell in cells {
        if let Ok(r) = &cell.report {
            if !r.failures.is_empty() {
                let _ = writeln!(out, "\n{r}");
            }
        }
    }
    code
}

fn write_json(out: &mut dyn Write, signatures: &[(String, Signature)], cells: &[Cell]) -> i32 {
    let mut code = 0;
    let (mut pass, mut fail, mut unsupported) = (0usize, 0usize, 0usize);
    for cell in cells {
        let report = match &cell.report {
            Ok(r) => r,
            Err(e) => {
                code = 1;
                let line = serde_json::json!({
                    "abi": cell.abi.id(), "opt": cell.opt.to_string(),
                    "status": "error", "details": e,
                });
                let _ = writeln!(out, "{line}");
                continue;
            }
        };
        for (i, (origin, sig)) in signatures.iter().enumerate() {
            let mut line = serde_json::json!({
                "abi": cell.abi.id(), "opt": cell.opt.to_string(),
                "signature": sig.to_string(), "origin": origin,
            });
            if let Some(skip) = report.skipped.iter().find(|s| s.index == i) {
                line["status"] = "unsupported".into();
                line["details"] = skip.reason.clone().into();
                unsupported += 1;
            } else if let Some(failure) = report.failures.iter().find(|f| f.index == i) {
                line["status"] = "fail".into();
                line["details"] = failure.problems.join("\n").into();
                if let Some(plan) = &failure.plan {
                    line["plan"] = plan.clone().into();
                }
                fail += 1;
                code = 1;
            } else {
                line["status"] = "pass".into();
                pass += 1;
            }
            let _ = writeln!(out, "{line}");
        }
    }
    let summary = serde_json::json!({
        "summary": true, "pass": pass, "fail": fail, "unsupported": unsupported,
        "abis": cells.iter().map(|c| c.abi.id()).collect::<std::collections::BTreeSet<_>>(),
    });
    let _ = writeln!(out, "{summary}");
    code
}
