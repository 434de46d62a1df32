//! `backcall verify`: the main job. Runs signatures (the built-in corpus, files, `--sig`, random
//! ones) on every requested ABI through the emulated compiler oracle, once per compiler, and
//! judges each case by the ABI's authority ([`backcall_oracle::matrix`]).
//!
//! With `--header FILE`, the signatures are the callback types that header declares
//! ([`backcall::harness::header`]), each named by where it was found; each header gets its own
//! matrix, and the types backcall cannot express are listed with the reason.
//!
//! Exit codes: 0 no case fails (disagreements of non-authority compilers are reported, not
//! failed); 1 some case fails (the authority disagrees with backcall) or a compiler could not
//! run its batch; 2 bad input (unknown ABI, unparseable signature with its line, a compiler
//! asked for but missing, with the install hint).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use backcall::harness::corpus;
use backcall::harness::header::{Extracted, HeaderOptions};
use backcall_abi::Abi;
use backcall_oracle::compiler::{self, Compiler};
use backcall_oracle::matrix::{Column, Matrix, Outcome, Status, Verdict};
use backcall_oracle::{Case, Opt};
use clap::Args;

use crate::oracle::{EmuOracle, Route};

/// `backcall verify`'s command line.
#[derive(Args, Clone, Debug, Default)]
pub struct VerifyArgs {
    /// An ABI id, or `all` (repeatable; default: all)
    #[arg(long = "abi", value_name = "ID|all")]
    pub abis: Vec<String>,
    /// A signature to verify (repeatable)
    #[arg(long = "sig", value_name = "SIGNATURE")]
    pub sigs: Vec<String>,
    /// A corpus file: one signature per line, `#` comments (repeatable)
    #[arg(long = "corpus", value_name = "FILE")]
    pub corpora: Vec<PathBuf>,
    /// Random signatures to add (default: 64 with no signature options, else 0)
    #[arg(long, value_name = "N")]
    pub random: Option<usize>,
    /// Seed of the random signatures
    #[arg(long, value_name = "S", default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Optimisation levels, comma-separated
    #[arg(long, value_name = "0,2")]
    pub opt: Option<String>,
    /// Compilers, comma-separated (repeatable): `all`, `gcc` (each ABI's GCC), or a command on
    /// PATH such as `clang-22` (default: all)
    #[arg(long = "compiler", value_name = "LIST")]
    pub compilers: Vec<String>,
    /// One JSON object per case, ABI and level, then a summary object
    #[arg(long)]
    pub json: bool,
    /// Also write JUnit XML: one test case per signature, ABI, level and compiler
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the matrix as Markdown (for a CI step summary)
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Routes to prove, comma-separated: `context` (thunk, entry, dispatcher, plan), `typed`
    /// (thunk, typed stub, a compiled C target; signatures without a stub are counted as
    /// unsupported there) or `all` (default)
    #[arg(long, value_name = "context,typed")]
    pub route: Option<String>,
    #[command(flatten)]
    pub header: HeaderOptions,
}

/// The default seed of random signatures.
pub const DEFAULT_SEED: u64 = 0xbac4_ca11;

/// What to verify, resolved.
#[derive(Clone, Debug)]
pub struct Request {
    /// ABIs to run on, with the compilers chosen for each
    pub abis: Vec<(Abi, Vec<Compiler>)>,
    /// optimisation levels
    pub opts: Vec<Opt>,
    /// signatures (a variadic one with the unnamed arguments its caller passes), with where
    /// each came from (for messages)
    pub signatures: Vec<(String, Case)>,
    /// the callback types of each `--header`, verified header by header
    pub headers: Vec<Extracted>,
    /// JSON lines instead of the matrix
    pub json: bool,
    /// where to write JUnit XML
    pub junit: Option<PathBuf>,
    /// where to write the Markdown matrix
    pub markdown: Option<PathBuf>,
    /// the routes proven
    pub routes: Vec<Route>,
}

impl VerifyArgs {
    /// Resolves the arguments; `Err` is a message for exit code 2.
    pub fn resolve(&self) -> Result<Request, String> {
        let mut signatures = Vec::new();
        for text in &self.sigs {
            let (sig, unnamed) =
                corpus::parse_call(text).map_err(|e| format!("--sig `{text}`: {e}"))?;
            signatures.push(("--sig".to_string(), Case::written(sig, unnamed)));
        }
        for path in &self.corpora {
            let shown = path.display();
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read corpus {shown}: {e}"))?;
            let entries = corpus::parse(&text).map_err(|e| format!("{shown}: {e}"))?;
            signatures.extend(
                entries.into_iter().map(|e| (format!("{shown}:{}", e.line), entry_case(e))),
            );
        }
        let headers = self.header.extract_all()?;
        let explicit =
            !self.sigs.is_empty() || !self.corpora.is_empty() || !self.header.headers.is_empty();
        if !explicit {
            let builtin = corpus::builtin().into_iter();
            signatures.extend(builtin.map(|e| (format!("corpus:{}", e.line), entry_case(e))));
        }
        let random = self.random.unwrap_or(if explicit { 0 } else { DEFAULT_RANDOM });
        signatures.extend(random_cases(random, self.seed));
        let mut abis: Vec<Abi> = Vec::new();
        for id in &self.abis {
            match id.as_str() {
                "all" => abis.extend(Abi::ALL),
                id => abis.push(id.parse()?),
            }
        }
        if abis.is_empty() {
            abis = Abi::ALL.to_vec();
        }
        abis.dedup();
        let mut with_compilers = Vec::new();
        for abi in abis {
            let chosen = compiler::select(abi, &self.compilers)?;
            if chosen.is_empty() && self.compilers.is_empty() {
                return Err(format!("no compiler for {abi}: {}", compiler::INSTALL_HINT));
            }
            with_compilers.push((abi, chosen));
        }
        if with_compilers.iter().all(|(_, c)| c.is_empty()) {
            return Err(format!(
                "none of the compilers `{}` compiles for the ABIs asked",
                self.compilers.join(",")
            ));
        }
        let opts = match &self.opt {
            Some(text) => parse_opts(text)?,
            None => Opt::ALL.to_vec(),
        };
        let routes = match &self.route {
            Some(text) => parse_routes(text)?,
            None => ALL_ROUTES.to_vec(),
        };
        Ok(Request {
            abis: with_compilers,
            opts,
            signatures,
            headers,
            json: self.json,
            junit: self.junit.clone(),
            markdown: self.markdown.clone(),
            routes,
        })
    }
}

impl Request {
    /// The default job (the built-in corpus plus `random` signatures from `seed`, at -O0 and
    /// -O2) on `abis`, each with its compilers.
    pub fn default_job(abis: Vec<(Abi, Vec<Compiler>)>, random: usize, seed: u64) -> Request {
        let mut signatures: Vec<(String, Case)> = corpus::builtin()
            .into_iter()
            .map(|e| (format!("corpus:{}", e.line), entry_case(e)))
            .collect();
        signatures.extend(random_cases(random, seed));
        Request {
            abis,
            opts: Opt::ALL.to_vec(),
            signatures,
            headers: Vec::new(),
            json: false,
            junit: None,
            markdown: None,
            routes: ALL_ROUTES.to_vec(),
        }
    }
}

/// Both routes, the context route first.
const ALL_ROUTES: [Route; 2] = [Route::Context, Route::Typed];

fn parse_routes(text: &str) -> Result<Vec<Route>, String> {
    let mut routes = Vec::new();
    for word in text.split(',') {
        match word.trim() {
            "all" => routes.extend(ALL_ROUTES),
            "context" => routes.push(Route::Context),
            "typed" => routes.push(Route::Typed),
            other => return Err(format!("--route `{other}`: expected context, typed or all")),
        }
    }
    routes.dedup();
    Ok(routes)
}

/// A route's name in reports.
pub fn route_name(route: Route) -> &'static str {
    match route {
        Route::Context => "context",
        Route::Typed => "typed",
    }
}

/// Random signatures of a run with no signature options.
pub const DEFAULT_RANDOM: usize = 64;

fn parse_opts(text: &str) -> Result<Vec<Opt>, String> {
    text.split(',')
        .map(|o| match o.trim() {
            "0" => Ok(Opt::O0),
            "2" => Ok(Opt::O2),
            other => Err(format!("--opt `{other}`: expected 0 or 2")),
        })
        .collect()
}

/// `n` random cases from `seed` (the same seed always gives the same ones): the suites'
/// generator, conventions and variadic calls included
/// ([`backcall_oracle::suite::any_verified_case`]).
pub fn random_cases(n: usize, seed: u64) -> Vec<(String, Case)> {
    backcall_oracle::suite::seeded_cases(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, case)| (format!("random:{seed}:{i}"), case))
        .collect()
}

/// A corpus line's case ([`Case::written`]).
fn entry_case(e: corpus::Entry) -> Case {
    Case::written(e.signature, e.unnamed)
}

/// One ABI × level × route of the run: every compiler's column, judged.
struct Cell {
    matrix: Matrix,
    route: Route,
    time: Duration,
}

/// Signatures verified together, reported in one matrix: the `--sig`, corpus and random ones,
/// or one header's callback types.
struct Group<'a> {
    /// the header (`None` for the signature options)
    header: Option<&'a Extracted>,
    /// each signature with its origin and, for a header's type, where the header declares it
    signatures: Vec<(String, Option<String>, Case)>,
}

impl<'a> Group<'a> {
    fn all(req: &'a Request) -> Vec<Group<'a>> {
        let mut groups = Vec::new();
        if !req.signatures.is_empty() || req.headers.is_empty() {
            let signatures =
                req.signatures.iter().map(|(o, s)| (o.clone(), None, s.clone())).collect();
            groups.push(Group { header: None, signatures });
        }
        for header in &req.headers {
            let signatures = header
                .callbacks
                .iter()
                .filter_map(|c| {
                    let case = Case::written(c.signature.as_ref().ok()?.clone(), Vec::new());
                    Some((c.name.clone(), Some(c.location.clone()), case))
                })
                .collect();
            groups.push(Group { header: Some(header), signatures });
        }
        groups
    }

    /// The header's types backcall cannot express: (name, location, why).
    fn inexpressible(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        let callbacks = self.header.map_or(&[][..], |h| &h.callbacks[..]);
        callbacks.iter().filter_map(|c| {
            let why = c.signature.as_ref().err()?;
            Some((c.name.as_str(), c.location.as_str(), why.as_str()))
        })
    }

    /// `zlib.h: 8 callback types found, 8 expressible, 0 backcall cannot express`
    fn title(&self) -> Option<String> {
        let h = self.header?;
        let found = h.callbacks.len();
        let inexpressible = found - h.supported();
        Some(format!(
            "{}: {found} callback types found, {} expressible, {inexpressible} backcall cannot \
             express",
            h.header,
            h.supported()
        ))
    }
}

/// A group and its cells.
struct Ran<'a> {
    group: Group<'a>,
    cells: Vec<Cell>,
}

/// Runs the request; prints the matrix (or JSON lines), writes the reports asked for;
/// answers the exit code.
pub fn run(req: &Request, out: &mut dyn Write) -> i32 {
    for (abi, compilers) in &req.abis {
        if compilers.is_empty() {
            eprintln!("backcall verify: no compiler asked for compiles for {abi}: skipped");
        } else if compiler::authority(*abi, compilers).is_none() {
            eprintln!(
                "backcall verify: warning: {abi}'s authority ({}) does not run here, so any \
                 compiler's disagreement counts as a failure ({})",
                authority_wanted(*abi),
                compiler::INSTALL_HINT
            );
        }
    }
    let ran: Vec<Ran<'_>> = Group::all(req)
        .into_iter()
        .map(|group| {
            let cases: Vec<Case> =
                group.signatures.iter().map(|(_, _, case)| case.clone()).collect();
            let cells = if cases.is_empty() { Vec::new() } else { run_cells(req, &cases) };
            Ran { group, cells }
        })
        .collect();
    let code = ran.iter().map(|r| exit_code(&r.cells)).max().unwrap_or(0);
    if req.json {
        write_json(out, req, &ran);
    } else {
        for r in &ran {
            let _ = out.write_all(group_text(r).as_bytes());
        }
    }
    if let Some(path) = &req.junit {
        if let Err(e) = std::fs::write(path, junit_xml(&ran)) {
            eprintln!("backcall verify: cannot write {}: {e}", path.display());
            return 2;
        }
    }
    if let Some(path) = &req.markdown {
        if let Err(e) = std::fs::write(path, markdown(&ran)) {
            eprintln!("backcall verify: cannot write {}: {e}", path.display());
            return 2;
        }
    }
    code
}

/// One group's report: its title, matrix and details, and the types it cannot express.
fn group_text(r: &Ran<'_>) -> String {
    let mut text = String::new();
    if let Some(title) = r.group.title() {
        let _ = writeln!(text, "\n== {title} ==");
    }
    let inexpressible = r.group.inexpressible().count();
    if !r.cells.is_empty() {
        text.push_str(&matrix_text(&r.cells, inexpressible));
        text.push_str(&details_text(&r.cells));
    }
    if inexpressible > 0 {
        text.push_str("\nnot verified (backcall cannot express them yet):\n");
        for (name, location, why) in r.group.inexpressible() {
            let _ = writeln!(text, "  {name} ({location}): {why}");
        }
    }
    text
}

/// What the authority of `abi` is, in words (`gcc`, `clang >= 20`).
pub fn authority_wanted(abi: Abi) -> String {
    match abi.spec().toolchain().authority.judge {
        backcall_abi::Judge::Gcc => "its GCC".to_string(),
        backcall_abi::Judge::Clang { since: 0 } => "clang".to_string(),
        backcall_abi::Judge::Clang { since } => format!("clang >= {since}"),
    }
}

/// 1 when a case fails or a compiler could not run its batch, else 0.
fn exit_code(cells: &[Cell]) -> i32 {
    let bad = cells.iter().any(|c| {
        !c.matrix.run_errors().is_empty()
            || c.matrix.verdicts().iter().any(|v| v.status == Status::Fail)
    });
    i32::from(bad)
}

/// Runs every ABI × level × compiler job on all cores and judges each ABI × level.
fn run_cells(req: &Request, cases: &[Case]) -> Vec<Cell> {
    let mut jobs: Vec<(usize, Compiler, Opt, Route)> = Vec::new();
    let mut cells: Vec<(Abi, Opt, Route)> = Vec::new();
    for (abi, compilers) in &req.abis {
        for &route in &req.routes {
            for &opt in &req.opts {
                if compilers.is_empty() {
                    continue;
                }
                cells.push((*abi, opt, route));
                jobs.extend(compilers.iter().map(|c| (cells.len() - 1, c.clone(), opt, route)));
            }
        }
    }
    let progress = Progress::new(jobs.len(), req.json);
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Column, Duration)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some((cell, compiler, opt, route)) =
                    jobs.get(next.fetch_add(1, Ordering::SeqCst))
                {
                    let started = Instant::now();
                    let oracle = EmuOracle::new(compiler.clone()).on(*route);
                    let report = oracle.run(cases, *opt);
                    let took = started.elapsed();
                    progress.done(compiler, *opt, cases.len(), took);
                    let column = Column { compiler: compiler.clone(), report };
                    done.lock().unwrap_or_else(|p| p.into_inner()).push((*cell, column, took));
                }
            });
        }
    });
    progress.finish();
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    cells
        .iter()
        .enumerate()
        .map(|(k, &(abi, opt, route))| {
            // Columns in the request's compiler order.
            let order = &req.abis.iter().find(|(a, _)| *a == abi).expect("requested").1;
            let mut mine: Vec<(Column, Duration)> = Vec::new();
            let mut rest = Vec::new();
            for (cell, column, took) in done.drain(..) {
                if cell == k {
                    mine.push((column, took));
                } else {
                    rest.push((cell, column, took));
                }
            }
            done = rest;
            mine.sort_by_key(|(c, _)| order.iter().position(|o| *o == c.compiler));
            let time = mine.iter().map(|(_, t)| *t).sum();
            let columns = mine.into_iter().map(|(c, _)| c).collect();
            Cell { matrix: Matrix::new(abi, opt, cases.len(), columns), route, time }
        })
        .collect()
}

/// Progress on a terminal (stderr), plain lines otherwise; nothing in JSON mode.
struct Progress {
    total: usize,
    tty: bool,
    quiet: bool,
    finished: AtomicUsize,
}

impl Progress {
    fn new(total: usize, quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress { total, tty, quiet, finished: AtomicUsize::new(0) }
    }

    /// One job finished.
    fn done(&self, compiler: &Compiler, opt: Opt, cases: usize, took: Duration) {
        let n = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
        if self.quiet {
            return;
        }
        let what =
            format!("{} {} {opt}: {cases} cases in {took:.1?}", compiler.abi, compiler.label());
        if self.tty {
            let filled = n * 30 / self.total.max(1);
            let bar = format!("[{}{}]", "#".repeat(filled), ".".repeat(30 - filled));
            eprint!("\r\x1b[2K{bar} {n}/{} {what}", self.total);
        } else {
            eprintln!("verify {n}/{}: {what}", self.total);
        }
    }

    fn finish(&self) {
        if self.tty && !self.quiet {
            eprintln!();
        }
    }
}

/// Every compiler label of the run, clang versions first (newest last), then GCC.
fn labels(cells: &[Cell]) -> Vec<String> {
    let mut all: Vec<(compiler::Family, u32, String)> = Vec::new();
    for cell in cells {
        for c in &cell.matrix.columns {
            let key = (c.compiler.family, c.compiler.version.major, c.compiler.label());
            if !all.contains(&key) {
                all.push(key);
            }
        }
    }
    all.sort();
    all.into_iter().map(|(_, _, l)| l).collect()
}

/// One compiler's cell: `*` marks the authority; `ok` when it agrees on every case that ran,
/// else how many cases it differs on; `-` when it did not run for this ABI; `error` when its
/// batch could not run.
fn compiler_cell(matrix: &Matrix, label: &str) -> String {
    let Some(k) = matrix.columns.iter().position(|c| c.compiler.label() == label) else {
        return "-".into();
    };
    let star = if matrix.authority == Some(k) { "*" } else { "" };
    match &matrix.columns[k].report {
        Err(_) => format!("{star}error"),
        Ok(r) => {
            let mut cell = match r.failures.len() {
                0 => format!("{star}ok"),
                n => format!("{star}{n} differ"),
            };
            if !r.crashed.is_empty() {
                let _ = write!(cell, ", {} crashed", r.crashed.len());
            }
            cell
        }
    }
}

/// The matrix: a row per ABI and level, the verdict counts (`inexpressible` more unsupported:
/// a header's types backcall cannot express), a column per compiler.
fn matrix_text(cells: &[Cell], inexpressible: usize) -> String {
    let labels = labels(cells);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut head: Vec<String> =
        ["ABI", "route", "opt", "pass", "disagree", "fail", "unsupported", "unjudged"]
            .map(String::from)
            .to_vec();
    head.extend(labels.iter().cloned());
    head.push("time".into());
    rows.push(head);
    for cell in cells {
        let m = &cell.matrix;
        let mut row =
            vec![m.abi.id().to_string(), route_name(cell.route).to_string(), m.opt.to_string()];
        let mut counts = m.counts();
        counts[Status::Unsupported as usize] += inexpressible;
        row.extend(counts.map(|n| n.to_string()));
        row.extend(labels.iter().map(|l| compiler_cell(m, l)));
        row.push(format!("{:.1?}", cell.time));
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (s, w))| if c < 3 { format!("{s:<w$}") } else { format!("{s:>w$}") })
            .collect();
        let _ = writeln!(text, "{}", cells.join("  ").trim_end());
    }
    let _ = writeln!(text, "(* the ABI's authority; `N differ`: cases that compiler disagrees on)");
    text
}

/// Failures and unexplained disagreements in full, per ABI and level; then the known
/// disagreements, one line per ABI, compiler and upstream issue (with the shortest example).
fn details_text(cells: &[Cell]) -> String {
    let mut text = String::new();
    // (abi, upstream) -> (summary, cases per compiler and level, shortest example)
    type Counts = Vec<(String, Opt, usize)>;
    type Known = ((Abi, &'static str), (&'static str, Counts, String));
    let mut known: Vec<Known> = Vec::new();
    for cell in cells {
        let m = &cell.matrix;
        let verdicts = m.verdicts();
        let mut section = String::new();
        for (c, e) in m.run_errors() {
            let _ = writeln!(section, "{} could not run the batch: {e}", c.label());
        }
        for v in verdicts.iter().filter(|v| v.status == Status::Fail) {
            section.push_str(&fail_text(m, v));
        }
        for v in verdicts.iter().filter(|v| v.status == Status::Disagree) {
            for d in &v.dissents {
                let Some(k) = d.known else {
                    let _ = writeln!(
                        section,
                        "DISAGREE (unexplained): {} disagrees with the authority on case {}",
                        d.compiler, v.index
                    );
                    section.push_str(&indent(&failure_text(d.failure)));
                    continue;
                };
                let key = (m.abi, k.upstream);
                let label = d.compiler.label();
                let sig = d.failure.call_text();
                let at = match known.iter().position(|(kk, _)| *kk == key) {
                    Some(at) => at,
                    None => {
                        known.push((key, (k.summary, Vec::new(), sig.clone())));
                        known.len() - 1
                    }
                };
                let entry = &mut known[at].1;
                match entry.1.iter_mut().find(|(l, o, _)| *l == label && *o == m.opt) {
                    Some((_, _, n)) => *n += 1,
                    None => entry.1.push((label, m.opt, 1)),
                }
                if sig.len() < entry.2.len() {
                    entry.2 = sig;
                }
            }
        }
        if !section.is_empty() {
            let route = route_name(cell.route);
            let _ = write!(text, "\n== {} {} ({route} route) ==\n{section}", m.abi, m.opt);
        }
    }
    if !known.is_empty() {
        text.push_str("\nknown compiler disagreements (the authority agrees with backcall):\n");
        for ((abi, upstream), (summary, mut counts, example)) in known {
            counts.sort();
            let counts: Vec<String> =
                counts.iter().map(|(l, o, n)| format!("{l} {o}: {n}")).collect();
            let _ = writeln!(
                text,
                "  {abi} [{upstream}]\n    {summary}\n    cases: {}\n    e.g. {example}",
                counts.join(", ")
            );
        }
    }
    text
}

fn fail_text(m: &Matrix, v: &Verdict<'_>) -> String {
    let mut text = String::new();
    match (v.authority_failure, m.authority_compiler()) {
        (Some(f), Some(judge)) => {
            let _ = writeln!(
                text,
                "FAIL: case {} disagrees with the authority {} at {}",
                v.index, judge, m.opt
            );
            text.push_str(&indent(&failure_text(f)));
        }
        _ => {
            for d in &v.dissents {
                let _ = writeln!(
                    text,
                    "FAIL (no authority ran): case {} disagrees with {} at {}",
                    v.index, d.compiler, m.opt
                );
                text.push_str(&indent(&failure_text(d.failure)));
            }
        }
    }
    text
}

fn failure_text(f: &backcall_oracle::Failure) -> String {
    let mut text = format!("signature: {}\n", f.call_text());
    for p in &f.problems {
        let _ = writeln!(text, "{p}");
    }
    if let Some(plan) = &f.plan {
        let _ = writeln!(text, "backcall's plan:\n{}", indent(plan));
    }
    text
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

fn outcome_json(o: &Outcome<'_>) -> serde_json::Value {
    match o {
        Outcome::Agrees => serde_json::json!({ "status": "agree" }),
        Outcome::Differs(f) => serde_json::json!({
            "status": "differ", "details": f.problems.join("\n"),
        }),
        Outcome::Skipped(s) => serde_json::json!({ "status": "unsupported", "details": s.reason }),
        Outcome::NotRun(e) => serde_json::json!({ "status": "error", "details": e.0 }),
        Outcome::Crashed(c) => serde_json::json!({ "status": "crashed", "details": c.reason }),
    }
}

/// One line per case, ABI, route and level (a header's types carry `name` and `location`, and
/// those backcall cannot express are `unsupported` lines with the reason), then the summary.
fn write_json(out: &mut dyn Write, req: &Request, ran: &[Ran<'_>]) {
    let mut counts = [0usize; 5];
    for r in ran {
        for cell in &r.cells {
            for line in cell_json(&r.group, cell, &mut counts) {
                let _ = writeln!(out, "{line}");
            }
        }
        // A type backcall cannot express is unsupported on every ABI and level asked.
        for (name, location, why) in r.group.inexpressible() {
            for (abi, _) in &req.abis {
                for opt in &req.opts {
                    counts[Status::Unsupported as usize] += 1;
                    let line = serde_json::json!({
                        "abi": abi.id(), "opt": opt.to_string(), "name": name,
                        "location": location, "status": "unsupported", "details": why,
                    });
                    let _ = writeln!(out, "{line}");
                }
            }
        }
    }
    let abis: BTreeSet<&str> = req.abis.iter().map(|(a, _)| a.id()).collect();
    let headers: Vec<serde_json::Value> = ran
        .iter()
        .filter_map(|r| r.group.header)
        .map(|h| {
            serde_json::json!({
                "header": h.header, "found": h.callbacks.len(), "expressible": h.supported(),
            })
        })
        .collect();
    let summary = serde_json::json!({
        "summary": true, "pass": counts[0], "disagree": counts[1], "fail": counts[2],
        "unsupported": counts[3], "unjudged": counts[4], "abis": abis, "headers": headers,
    });
    let _ = writeln!(out, "{summary}");
}

/// The JSON lines of one ABI × route × level: batch errors, then a line per case.
fn cell_json(group: &Group<'_>, cell: &Cell, counts: &mut [usize; 5]) -> Vec<serde_json::Value> {
    let m = &cell.matrix;
    let mut lines = Vec::new();
    for (c, e) in m.run_errors() {
        lines.push(serde_json::json!({
            "abi": m.abi.id(), "route": route_name(cell.route), "opt": m.opt.to_string(),
            "compiler": c.label(), "status": "error", "details": e.0,
        }));
    }
    for v in m.verdicts() {
        let (origin, location, sig) = &group.signatures[v.index];
        let mut compilers = serde_json::Map::new();
        for (column, outcome) in m.columns.iter().zip(&v.outcomes) {
            let mut o = outcome_json(outcome);
            o["version"] = column.compiler.version.to_string().into();
            o["command"] = column.compiler.command().into();
            if let Some(d) = v.dissents.iter().find(|d| *d.compiler == column.compiler) {
                if let Some(k) = d.known {
                    o["known"] =
                        serde_json::json!({ "upstream": k.upstream, "summary": k.summary });
                }
            }
            compilers.insert(column.compiler.label(), o);
        }
        let mut line = serde_json::json!({
            "abi": m.abi.id(), "route": route_name(cell.route), "opt": m.opt.to_string(),
            "signature": sig.to_string(), "origin": origin,
            "status": v.status.word(),
            "authority": m.authority_compiler().map(|c| c.label()),
            "compilers": compilers,
        });
        if let Some(location) = location {
            line["name"] = origin.clone().into();
            line["location"] = location.clone().into();
        }
        if let Some(f) = v.authority_failure {
            line["details"] = f.problems.join("\n").into();
            if let Some(plan) = &f.plan {
                line["plan"] = plan.clone().into();
            }
        }
        counts[v.status as usize] += 1;
        lines.push(line);
    }
    lines
}

/// XML text with `&`, `<`, `>`, `"` escaped, and characters XML 1.0 forbids dropped.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: a test suite per ABI and level, a test case per signature and compiler; the
/// authority's disagreement is a `<failure>`, another compiler's is a test case marked
/// `<skipped>` with the disagreement (CI tools render it without failing the run), a
/// signature backcall does not support is `<skipped>` too.
fn junit_xml(ran: &[Ran<'_>]) -> String {
    let mut suites = String::new();
    let (mut total, mut failures) = (0usize, 0usize);
    for (group, cell) in ran.iter().flat_map(|r| r.cells.iter().map(move |c| (&r.group, c))) {
        let m = &cell.matrix;
        let mut cases = String::new();
        let (mut n, mut failed, mut skipped) = (0usize, 0usize, 0usize);
        for v in m.verdicts() {
            let (origin, location, sig) = &group.signatures[v.index];
            let origin = location.as_ref().map_or(origin.clone(), |l| format!("{origin} ({l})"));
            for (k, (column, outcome)) in m.columns.iter().zip(&v.outcomes).enumerate() {
                n += 1;
                let authority = m.authority == Some(k) || m.authority.is_none();
                let name = xml_escape(&format!("{sig} [{}]", column.compiler.label()));
                let class = format!(
                    "{}.{}.{}",
                    m.abi.id(),
                    route_name(cell.route),
                    m.opt.flag().trim_start_matches('-')
                );
                let _ = write!(
                    cases,
                    "    <testcase classname=\"{class}\" name=\"{name}\" file=\"{}\">",
                    xml_escape(&origin)
                );
                match outcome {
                    Outcome::Agrees => {}
                    Outcome::Skipped(s) => {
                        skipped += 1;
                        let _ = write!(cases, "<skipped message=\"{}\"/>", xml_escape(&s.reason));
                    }
                    Outcome::Differs(f) if authority => {
                        failed += 1;
                        let _ = write!(
                            cases,
                            "<failure message=\"backcall disagrees with {}\">{}</failure>",
                            xml_escape(&column.compiler.to_string()),
                            xml_escape(&failure_text(f))
                        );
                    }
                    Outcome::Differs(f) => {
                        skipped += 1;
                        let known = v
                            .dissents
                            .iter()
                            .find(|d| *d.compiler == column.compiler)
                            .and_then(|d| d.known)
                            .map_or("unexplained".to_string(), |k| k.upstream.to_string());
                        let _ = write!(
                            cases,
                            "<skipped message=\"{} disagrees with the authority ({})\">{}</skipped>",
                            xml_escape(&column.compiler.label()),
                            xml_escape(&known),
                            xml_escape(&failure_text(f))
                        );
                    }
                    Outcome::Crashed(c) => {
                        skipped += 1;
                        let _ = write!(cases, "<skipped message=\"{}\"/>", xml_escape(&c.reason));
                    }
                    Outcome::NotRun(e) => {
                        failed += 1;
                        let _ = write!(
                            cases,
                            "<error message=\"the compiler could not run the batch\">{}</error>",
                            xml_escape(&e.0)
                        );
                    }
                }
                cases.push_str("</testcase>\n");
            }
        }
        total += n;
        failures += failed;
        let _ = write!(
            suites,
            "  <testsuite name=\"{} {} {}\" tests=\"{n}\" failures=\"{failed}\" errors=\"0\" \
             skipped=\"{skipped}\" time=\"{:.3}\">\n{cases}  </testsuite>\n",
            m.abi.id(),
            route_name(cell.route),
            m.opt,
            cell.time.as_secs_f64()
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"backcall verify\" \
         tests=\"{total}\" failures=\"{failures}\">\n{suites}</testsuites>\n"
    )
}

/// The matrix as a Markdown table, and the disagreements by compiler and known issue.
fn markdown(ran: &[Ran<'_>]) -> String {
    let mut text = String::from("### backcall verify\n");
    for r in ran {
        if let Some(title) = r.group.title() {
            let _ = write!(text, "\n#### {title}\n");
        }
        if !r.cells.is_empty() {
            text.push_str(&markdown_table(&r.cells, r.group.inexpressible().count()));
        }
        for (name, location, why) in r.group.inexpressible() {
            let _ = writeln!(text, "* not verified: `{name}` ({location}): {why}");
        }
    }
    text
}

/// One group's matrix as a Markdown table.
fn markdown_table(cells: &[Cell], inexpressible: usize) -> String {
    let labels = labels(cells);
    let mut text =
        String::from("\n| ABI | route | opt | pass | disagree | fail | unsupported | unjudged |");
    for l in &labels {
        let _ = write!(text, " {l} |");
    }
    text.push_str("\n|---|---|---|---:|---:|---:|---:|---:|");
    text.push_str(&"---|".repeat(labels.len()));
    text.push('\n');
    for cell in cells {
        let m = &cell.matrix;
        let [pass, disagree, fail, mut unsupported, unjudged] = m.counts();
        unsupported += inexpressible;
        let _ = write!(
            text,
            "| `{}` | {} | {} | {pass} | {disagree} | {fail} | {unsupported} | {unjudged} |",
            m.abi.id(),
            route_name(cell.route),
            m.opt
        );
        for l in &labels {
            let _ = write!(text, " {} |", compiler_cell(m, l).replace('*', "\\*"));
        }
        text.push('\n');
    }
    text.push_str("\n\\* the ABI's authority\n");
    text
}
