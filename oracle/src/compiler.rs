//! The C compilers an oracle runs: every clang on `PATH` (one binary serves every ABI through
//! `--target=`) and the GCC that targets an ABI's own platform (the host's `gcc`, Debian's
//! cross compilers, mingw-w64), each with its family and version.
//!
//! Which compilers target an ABI and which one is its authority are the ABI's own facts
//! ([`backcall_abi::Toolchain`]); this module finds them on the machine and runs them.
//!
//! Environment: `BACKCALL_CLANG` names the clang that stands for "the distribution's clang"
//! (default `clang`); it is also the clang of the single-compiler runs of the test suites.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use backcall_abi::{Abi, Judge};

/// An optimisation level the callers are compiled at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Opt {
    /// `-O0`: every value goes through memory
    O0,
    /// `-O2`: values are constants folded straight into registers and stack slots
    O2,
}

impl Opt {
    /// Both levels.
    pub const ALL: [Opt; 2] = [Opt::O0, Opt::O2];

    /// The compiler flag.
    pub fn flag(self) -> &'static str {
        match self {
            Opt::O0 => "-O0",
            Opt::O2 => "-O2",
        }
    }
}

impl fmt::Display for Opt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.flag())
    }
}

/// A compiler family: what the command line and the version banner look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// clang: one binary for every target, chosen with `--target=`
    Clang,
    /// GCC: one binary per target (`i686-linux-gnu-gcc`, `x86_64-w64-mingw32-gcc`)
    Gcc,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Clang => "clang",
            Family::Gcc => "gcc",
        })
    }
}

/// A compiler version, `major.minor.patch` (missing parts are 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Version {
    /// major version
    pub major: u32,
    /// minor version
    pub minor: u32,
    /// patch level
    pub patch: u32,
}

impl Version {
    /// The leading `a.b.c` of `text` (`12-win32` is 12.0.0); `None` without a leading digit.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = [0u32; 3];
        let mut found = 0;
        for (k, part) in text.split('.').take(3).enumerate() {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            let Ok(n) = digits.parse() else { break };
            parts[k] = n;
            found += 1;
            if digits.len() != part.len() {
                break;
            }
        }
        (found > 0).then_some(Version { major: parts[0], minor: parts[1], patch: parts[2] })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A C compiler for one ABI: the command, and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Compiler {
    /// the ABI it compiles for
    pub abi: Abi,
    /// the program (`clang-16`, `i686-linux-gnu-gcc`, `cc`)
    pub program: String,
    /// arguments that choose the target (`--target=i686-linux-gnu`, `-m32`), before the rest
    pub args: Vec<String>,
    /// its family
    pub family: Family,
    /// its version
    pub version: Version,
}

/// A compiler that could not be run, or refused the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// the full command line
    pub command: String,
    /// the compiler's messages, or why it did not start
    pub message: String,
    /// the compiler could not be started at all (as opposed to refusing the source)
    pub not_run: bool,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed:\n{}", self.command, self.message)
    }
}

impl std::error::Error for CompileError {}

/// The apt packages that bring the compilers this module looks for (the install hint).
pub const INSTALL_HINT: &str = "run ci/install-deps.sh, which installs clang, the GCC cross \
     compilers (gcc-i686-linux-gnu, gcc-aarch64-linux-gnu) and mingw-w64 \
     (gcc-mingw-w64-i686, gcc-mingw-w64-x86-64)";

impl Compiler {
    /// Asks `program` for its family and version (`--version`, `-dumpfullversion`);
    /// `None` when it does not run or is neither clang nor GCC. Answers are cached per
    /// program.
    pub fn probe(abi: Abi, program: &str, args: &[&str]) -> Option<Compiler> {
        let (family, version) = identify(program)?;
        let args = args.iter().map(|a| a.to_string()).collect();
        Some(Compiler { abi, program: program.to_string(), args, family, version })
    }

    /// clang for `abi` (`<program> --target=<triple>`), if `program` runs and is a clang.
    pub fn clang(abi: Abi, program: &str) -> Option<Compiler> {
        let target = format!("--target={}", abi.clang_target());
        Compiler::probe(abi, program, &[&target]).filter(|c| c.family == Family::Clang)
    }

    /// The compiler's short name, unique among the compilers of one ABI: family and major
    /// version (`clang-16`, `gcc-12`), as matrix columns and `--compiler` show it.
    pub fn label(&self) -> String {
        format!("{}-{}", self.family, self.version.major)
    }

    /// The command line that chooses the target, as a user would type it.
    pub fn command(&self) -> String {
        let mut out = self.program.clone();
        for a in &self.args {
            out.push(' ');
            out.push_str(a);
        }
        out
    }

    /// Whether this compiler may be its ABI's authority ([`Compiler::may_judge`] with the ABI's
    /// own judge).
    pub fn may_judge_its_abi(&self) -> bool {
        self.may_judge(self.abi.spec().toolchain().authority.judge)
    }

    /// Whether this compiler is `abi`'s authority by the judge's rule (family, and for clang
    /// the oldest version that implements the authority's rules).
    pub fn may_judge(&self, judge: Judge) -> bool {
        match judge {
            Judge::Gcc => self.family == Family::Gcc,
            Judge::Clang { since } => self.family == Family::Clang && self.version.major >= since,
        }
    }

    /// Flags every compile shares: freestanding C (no headers but the compiler's own, no
    /// libc), no unwind tables and no stack protector, so that objects hold only what the
    /// emulated machine's loader links.
    fn common_flags(&self, opt: Opt) -> Vec<String> {
        let mut flags: Vec<String> = [
            opt.flag(),
            "-ffreestanding",
            "-fno-asynchronous-unwind-tables",
            "-fno-unwind-tables",
            "-fno-stack-protector",
            "-fno-common",
            "-Werror=implicit-function-declaration",
        ]
        .map(String::from)
        .to_vec();
        if self.abi.is_windows() {
            // Frames over a page would call `__chkstk`, which a freestanding guest lacks.
            flags.push("-mno-stack-arg-probe".into());
        }
        flags
    }

    /// Compiles C `source` at `opt` into a relocatable object (ELF, COFF or Mach-O, as the
    /// target implies), position-dependent unless `extra` says otherwise.
    ///
    /// With `BACKCALL_CC_CACHE=<dir>`, objects are kept in `dir` by a hash of the compiler,
    /// its arguments and the source, and reused: `ci/mutants.sh` compiles the same callers
    /// for every mutant that does not change a layout.
    pub fn compile_object(
        &self,
        source: &str,
        opt: Opt,
        extra: &[&str],
    ) -> Result<Vec<u8>, CompileError> {
        let Some(cache) = std::env::var_os("BACKCALL_CC_CACHE") else {
            return self.compile_object_now(source, opt, extra);
        };
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (self, opt, extra, source).hash(&mut hasher);
        let path = Path::new(&cache).join(format!("{:016x}.o", hasher.finish()));
        if let Ok(object) = std::fs::read(&path) {
            return Ok(object);
        }
        let object = self.compile_object_now(source, opt, extra)?;
        // Written aside and renamed: a parallel reader never sees half an object.
        let _ = std::fs::create_dir_all(&cache);
        let aside = path.with_extension(format!(
            "{}.{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        if std::fs::write(&aside, &object).is_ok() {
            let _ = std::fs::rename(&aside, &path);
        }
        Ok(object)
    }

    fn compile_object_now(
        &self,
        source: &str,
        opt: Opt,
        extra: &[&str],
    ) -> Result<Vec<u8>, CompileError> {
        let dir = tempfile::Builder::new().prefix("backcall-cc-").tempdir().map_err(|e| {
            CompileError { command: self.command(), message: e.to_string(), not_run: true }
        })?;
        let object = dir.path().join("out.o");
        let mut args = self.args.clone();
        args.extend(self.common_flags(opt));
        args.extend(["-c", "-fno-pic"].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["-x", "c", "-", "-o"].map(String::from));
        args.push(object.display().to_string());
        self.run(&args, Some(source))?;
        std::fs::read(&object).map_err(|e| CompileError {
            command: format!("{} {}", self.program, args.join(" ")),
            message: format!("no object written: {e}"),
            not_run: false,
        })
    }

    /// Compiles the C file `c_file` at `opt` into the shared library `lib` (host oracles).
    pub fn compile_shared(&self, c_file: &Path, lib: &Path, opt: Opt) -> Result<(), CompileError> {
        let mut args = self.args.clone();
        args.push("-std=gnu11".into());
        args.push(opt.flag().into());
        let c_file = c_file.display().to_string();
        let lib = lib.display().to_string();
        if !self.abi.is_windows() {
            args.extend(["-shared", "-fPIC", "-nostdlib", "-o"].map(String::from));
            args.extend([lib, c_file]);
            return self.run(&args, None).map(|_| ());
        }
        // A DLL, with the C runtime's startup and helpers (`___chkstk_ms`, `memcpy`). clang
        // compiles for Microsoft's toolchain, whose linker and libraries a mingw-w64 machine
        // lacks: its object is linked by the ABI's GCC, as mingw-w64 GCC's own are.
        let Some(linker) =
            self.abi.spec().toolchain().gcc.first().filter(|_| self.family == Family::Clang)
        else {
            args.extend(["-shared".into(), "-o".into(), lib, c_file]);
            return self.run(&args, None).map(|_| ());
        };
        let object = format!("{lib}.o");
        args.extend(["-c".into(), "-o".into(), object.clone(), c_file]);
        self.run(&args, None)?;
        let mut link = vec!["-shared".into(), "-o".into(), lib, object];
        if self.abi == Abi::X86_64Win64 {
            // MSVC's x64 stack probe is libgcc's `___chkstk_ms` under another name: both probe
            // the pages below rsp for the size in rax and leave rsp alone.
            link.push("-Wl,--defsym,__chkstk=___chkstk_ms".into());
        }
        run_program(linker, &link, None).map(|_| ())
    }

    fn run(&self, args: &[String], stdin: Option<&str>) -> Result<Vec<u8>, CompileError> {
        run_program(&self.program, args, stdin)
    }
}

/// Runs `program` with `args`; its standard output, or its messages when it fails.
fn run_program(
    program: &str,
    args: &[String],
    stdin: Option<&str>,
) -> Result<Vec<u8>, CompileError> {
    let command = format!("{program} {}", args.join(" "));
    let err =
        |message: String, not_run| CompileError { command: command.clone(), message, not_run };
    let output = crate::process::output(program, args, stdin)
        .map_err(|e| err(format!("cannot run {program}: {e} ({INSTALL_HINT})"), true))?;
    if !output.status.success() {
        return Err(err(String::from_utf8_lossy(&output.stderr).trim_end().to_string(), false));
    }
    Ok(output.stdout)
}

impl fmt::Display for Compiler {
    /// `clang 16.0.6 (clang-16 --target=i686-linux-gnu)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.family, self.version, self.command())
    }
}

/// What `--version` said of a program: its family and version, or nothing (not a compiler).
type Identity = Option<(Family, Version)>;

/// Family and version of `program`, cached.
fn identify(program: &str) -> Identity {
    static SEEN: OnceLock<Mutex<HashMap<String, Identity>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(known) = seen.lock().unwrap_or_else(|p| p.into_inner()).get(program) {
        return *known;
    }
    let found = ask_version(program);
    seen.lock().unwrap_or_else(|p| p.into_inner()).insert(program.to_string(), found);
    found
}

fn ask_version(program: &str) -> Identity {
    let out = crate::process::output(program, &["--version".into()], None).ok()?;
    if !out.status.success() {
        return None;
    }
    let banner = String::from_utf8_lossy(&out.stdout);
    let first = banner.lines().next().unwrap_or("");
    // "Debian clang version 14.0.6", "Apple clang version 15.0.0 (clang-1500...)"
    if let Some(at) = first.find("clang version ") {
        let version = Version::parse(&first[at + "clang version ".len()..])?;
        return Some((Family::Clang, version));
    }
    // GCC: "gcc (Debian 12.2.0-14) 12.2.0"; mingw's says only "12-win32": ask it directly.
    let dumped = crate::process::output(program, &["-dumpfullversion".into()], None).ok()?;
    let text = String::from_utf8_lossy(&dumped.stdout);
    (dumped.status.success())
        .then(|| Version::parse(text.trim()))
        .flatten()
        .map(|v| (Family::Gcc, v))
}

/// Whether `program` is an executable file in a `PATH` directory (or a path to one).
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The clang that stands for the distribution's: `BACKCALL_CLANG`, else `clang`.
pub fn default_clang_program() -> String {
    std::env::var("BACKCALL_CLANG").unwrap_or_else(|_| "clang".to_string())
}

/// Every clang program on `PATH`, the default one first: `BACKCALL_CLANG` (or `clang`),
/// then `clang-N` from the newest N down.
fn clang_programs() -> Vec<String> {
    let mut programs = vec![default_clang_program()];
    programs.extend((10..=40).rev().map(|n| format!("clang-{n}")));
    programs.retain(|p| on_path(p));
    programs
}

/// Every compiler on this machine that compiles for `abi`: each distinct clang (two
/// programs of the same version count once, the first found), then the ABI's GCC.
pub fn available(abi: Abi) -> Vec<Compiler> {
    let mut found: Vec<Compiler> = Vec::new();
    for program in clang_programs() {
        if let Some(c) = Compiler::clang(abi, &program) {
            if !found.iter().any(|f| f.label() == c.label()) {
                found.push(c);
            }
        }
    }
    found.extend(gcc(abi));
    found
}

/// The GCC of `abi`'s platform, if one is installed (the first of the ABI's GCC programs
/// that runs).
pub fn gcc(abi: Abi) -> Option<Compiler> {
    abi.spec().toolchain().gcc.iter().find_map(|&program| {
        let c = Compiler::probe(abi, program, &[])?;
        (c.family == Family::Gcc).then_some(c)
    })
}

/// The compilers of the test suites' single-compiler runs on `abi`: the default clang
/// (`BACKCALL_CLANG`), and the ABI's GCC when installed.
pub fn default_pair(abi: Abi) -> Vec<Compiler> {
    let mut out: Vec<Compiler> =
        Compiler::clang(abi, &default_clang_program()).into_iter().collect();
    out.extend(gcc(abi));
    out
}

/// The compilers a selection names for `abi`. Each word of `selection` is `all` (every
/// available compiler), `gcc` (the ABI's GCC), or a program (`clang-22`, `clang`, a path,
/// `i686-linux-gnu-gcc`); an empty selection means `all`. A clang serves every ABI; a GCC
/// program only the ABIs it is the GCC of (others skip it).
///
/// `Err` says what is missing, with the install hint.
pub fn select(abi: Abi, selection: &[String]) -> Result<Vec<Compiler>, String> {
    let words: Vec<&str> = if selection.is_empty() {
        vec!["all"]
    } else {
        selection.iter().flat_map(|s| s.split(',')).map(str::trim).collect()
    };
    let mut out: Vec<Compiler> = Vec::new();
    let add = |c: Compiler, out: &mut Vec<Compiler>| {
        if !out.iter().any(|o| o.label() == c.label()) {
            out.push(c);
        }
    };
    for word in words {
        match word {
            "" => {}
            "all" => available(abi).into_iter().for_each(|c| add(c, &mut out)),
            "gcc" => {
                let programs = abi.spec().toolchain().gcc;
                if programs.is_empty() {
                    continue;
                }
                let c = gcc(abi).ok_or_else(|| {
                    format!("no GCC for {abi} ({} not found): {INSTALL_HINT}", programs.join(", "))
                })?;
                add(c, &mut out);
            }
            program => {
                if !on_path(program) {
                    return Err(format!("compiler `{program}` not found: {INSTALL_HINT}"));
                }
                let (family, _) = identify(program).ok_or_else(|| {
                    format!("`{program}` does not run `--version` as clang or GCC do")
                })?;
                match family {
                    Family::Clang => {
                        let c = Compiler::clang(abi, program).expect("identified as clang");
                        add(c, &mut out);
                    }
                    Family::Gcc => {
                        let base = Path::new(program).file_name().and_then(|n| n.to_str());
                        let own = abi.spec().toolchain().gcc;
                        if base.is_some_and(|b| own.contains(&b)) {
                            add(Compiler::probe(abi, program, &[]).expect("identified"), &mut out);
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The compilers the test suites run on `abi`: the default clang (`BACKCALL_CLANG`), the
/// ABI's GCC, and the ABI's authority when it is neither (the newest clang that may judge).
/// `Err` names what is missing, with the install hint: a suite never runs without two
/// families where an ABI has two, nor without its authority.
pub fn suite(abi: Abi) -> Result<Vec<Compiler>, String> {
    let program = default_clang_program();
    let clang = Compiler::clang(abi, &program).ok_or_else(|| {
        format!("`{program}` does not run or is not a clang: {INSTALL_HINT}, or set BACKCALL_CLANG")
    })?;
    let mut out = vec![clang];
    let gccs = abi.spec().toolchain().gcc;
    if !gccs.is_empty() {
        let found = gcc(abi).ok_or_else(|| {
            format!("no GCC for {abi} ({} not found): {INSTALL_HINT}", gccs.join(", "))
        })?;
        out.push(found);
    }
    if authority(abi, &out).is_none() {
        let all = available(abi);
        let judge = authority(abi, &all).cloned().ok_or_else(|| {
            format!(
                "no compiler here can judge {abi} ({}): {INSTALL_HINT}",
                abi.spec().toolchain().authority.source
            )
        })?;
        out.push(judge);
    }
    Ok(out)
}

/// Of `compilers`, the one that judges `abi`: the first that may judge by the ABI's
/// authority, newest version first.
pub fn authority(abi: Abi, compilers: &[Compiler]) -> Option<&Compiler> {
    let judge = abi.spec().toolchain().authority.judge;
    compilers.iter().filter(|c| c.may_judge(judge)).max_by_key(|c| c.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_banners() {
        let v = |s| Version::parse(s).map(|v| v.to_string());
        assert_eq!(v("14.0.6"), Some("14.0.6".into()));
        assert_eq!(v("12-win32"), Some("12.0.0".into()));
        assert_eq!(v("22.1.8 (1~deb12u1)"), Some("22.1.8".into()));
        assert_eq!(v("15"), Some("15.0.0".into()));
        assert_eq!(v("x"), None);
        let clang = |major| Compiler {
            abi: Abi::I386Win32,
            program: format!("clang-{major}"),
            args: vec![],
            family: Family::Clang,
            version: Version { major, minor: 0, patch: 0 },
        };
        assert!(clang(22).may_judge(Judge::Clang { since: 20 }));
        assert!(!clang(16).may_judge(Judge::Clang { since: 20 }));
        assert!(!clang(22).may_judge(Judge::Gcc));
        assert_eq!(clang(16).label(), "clang-16");
    }
}
