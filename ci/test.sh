#!/usr/bin/env bash
# The whole test suite: dependencies, formatting, lints, every crate's tests and doc tests.
# Exits non-zero on the first failing step. PROPTEST_CASES sets the random cases per property
# (default 256).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# No incremental caches: CI builds each crate once, and the caches would double the disk it needs.
export CARGO_INCREMENTAL=0

section() { printf '\n==== %s ====\n' "$*"; }

install_deps() {
    section "install dependencies (ci/install-deps.sh)"
    ci/install-deps.sh
}

check_format() {
    section "cargo fmt --all --check"
    cargo fmt --all --check
}

check_lints() {
    section "cargo clippy --workspace --all-targets --all-features -- -D warnings"
    cargo clippy --workspace --all-targets --all-features -- -D warnings
    # The Windows code paths (pool, barrier, thread identity, DLL loading, the Wine bridge).
    section "cargo clippy --target x86_64-pc-windows-gnu (runtime, oracle, native suites)"
    cargo clippy --target x86_64-pc-windows-gnu -p backcall -p backcall-oracle \
        -p backcall-native-tests --lib --tests --bins -- -D warnings
}

run_tests() {
    if cargo nextest --version >/dev/null 2>&1; then
        section "cargo nextest run --workspace --all-features"
        cargo nextest run --workspace --all-features --no-fail-fast
        section "cargo test --doc --workspace"
        cargo test --doc --workspace --all-features
    else
        section "cargo test --workspace --all-features"
        cargo test --workspace --all-features --no-fail-fast
    fi
}

# The runtime's symmetric-fence fallback (no membarrier: old kernels, seccomp) under the suites
# that create, call and release callbacks across threads.
run_fallback_fences() {
    section "native runtime suites with BACKCALL_NO_MEMBARRIER=1 (fallback fences)"
    BACKCALL_NO_MEMBARRIER=1 cargo test -p backcall --lib --no-fail-fast
    BACKCALL_NO_MEMBARRIER=1 cargo test -p backcall-native-tests --no-fail-fast \
        --test runtime --test churn --test faults
}

# The write-then-protect fallback of the thunk pool (no memfd) under the suites that create,
# call and release callbacks.
run_no_memfd() {
    section "native runtime suites with BACKCALL_NO_MEMFD=1 (anonymous code pages)"
    BACKCALL_NO_MEMFD=1 cargo test -p backcall-native-tests --no-fail-fast \
        --test runtime --test churn --test stale --test code_bytes
}

# The examples: libc qsort, and real C libraries calling callbacks (sqlite3, zlib, expat, from
# the -dev packages ci/install-deps.sh installs). Each checks its own results.
run_examples() {
    local example
    for example in qsort sqlite zlib expat; do
        section "cargo run --example $example"
        cargo run -q --example "$example"
    done
}

# The signature parser and planner against arbitrary input for a bounded time: no panic, no
# input over 250 ms of CPU time or 64 MiB (src/bin/fuzz-signatures.rs; FUZZ_SECONDS, default 60).
run_fuzz() {
    section "fuzz the signature parser and planner for ${FUZZ_SECONDS:-60} s"
    cargo run --release -q -p backcall-native-tests --bin fuzz-signatures -- \
        --seconds "${FUZZ_SECONDS:-60}"
}

# The compiler oracle suites again with every other clang installed as the default clang
# (BACKCALL_CLANG): the suites must hold whichever clang a runner has, its known deviations
# from an ABI's authority reported as such, never as backcall's failures.
run_every_clang() {
    local default n clang
    default="$(clang --version | head -1)"
    for n in $(seq 40 -1 10); do
        clang="clang-$n"
        command -v "$clang" >/dev/null 2>&1 || continue
        [ "$("$clang" --version | head -1)" = "$default" ] && continue
        section "compiler oracle suites with BACKCALL_CLANG=$clang"
        # The workspace's feature set of run_tests, so that nothing is built a second time.
        BACKCALL_CLANG="$clang" cargo test -q --workspace --all-features \
            --test oracle --test layout_oracle
    done
}

# --- native runs on the other host ABIs ------------------------------------------------------
# The runtime and the native suites built for i686-unknown-linux-gnu run natively on this x86-64
# host (i386-sysv, with the stdcall/fastcall/thiscall conventions).
run_native_i686() {
    section "native suites on i686-unknown-linux-gnu (i386-sysv)"
    native_suites i686-unknown-linux-gnu
    drop_target i686-unknown-linux-gnu
}

# A cross target's build is not used again: its disk goes back before the next one is built.
drop_target() {
    rm -rf "target/$1"
}

# The runtime's unit and doc tests and every native suite, built for target $1 (the parser's
# properties are target-independent).
native_suites() {
    cargo test --target "$1" -p backcall --lib --no-fail-fast
    cargo test --target "$1" -p backcall --doc --no-fail-fast
    cargo test --target "$1" -p backcall-native-tests --no-fail-fast
}

# The same suites built for aarch64-unknown-linux-gnu, run under qemu-user (aarch64-aapcs64):
# the runner and linker come from .cargo/config.toml, the oracle's C compiler is
# aarch64-linux-gnu-gcc (a second compiler beside the emulated harness's clang).
run_native_aarch64() {
    section "native suites on aarch64-unknown-linux-gnu under qemu-aarch64 (aarch64-aapcs64)"
    # The runtime's unit tests and every native suite (the parser's properties are target-independent).
    cargo test --target aarch64-unknown-linux-gnu -p backcall --lib --no-fail-fast
    # qemu-user refuses prctl(PR_SET_MDWE): the MDWE tests run natively (x86-64, i686) only.
    echo "not run here: native-tests mdwe_* (qemu-user has no PR_SET_MDWE)"
    # The probe binaries some suites spawn are AArch64 too: they run through the same runner.
    BACKCALL_CHILD_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
        cargo test --target aarch64-unknown-linux-gnu -p backcall-native-tests --no-fail-fast \
        -- --skip mdwe_
    drop_target aarch64-unknown-linux-gnu
}

# The same suites built for x86_64-pc-windows-gnu (x86_64-win64), linked by mingw-w64 GCC and
# run under Wine (ci/wine-run.sh, the runner in .cargo/config.toml); the oracle's callers are
# compiled by mingw-w64 GCC and by clang (its objects linked by GCC) and loaded as DLLs.
run_native_win64() {
    section "native suites on x86_64-pc-windows-gnu under Wine (x86_64-win64)"
    native_suites x86_64-pc-windows-gnu
    drop_target x86_64-pc-windows-gnu
}

# The runtime keeps compiling for the hosts users have that this machine cannot run: Apple
# (arm64 and x86-64) and 32-bit Windows (std only, nothing linked).
run_build_checks() {
    local target
    for target in aarch64-apple-darwin x86_64-apple-darwin i686-pc-windows-gnu; do
        section "cargo check -p backcall --target $target"
        cargo check -p backcall --target "$target"
    done
}

install_deps
check_format
check_lints
run_tests
run_every_clang
run_fallback_fences
run_no_memfd
run_examples
run_fuzz
run_native_i686
run_native_aarch64
run_native_win64
run_build_checks
section "all steps passed (build directory: $(du -sh target | cut -f1))"
