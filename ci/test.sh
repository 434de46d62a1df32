#!/usr/bin/env bash
# The whole test suite: dependencies, formatting, lints, every crate's tests and doc tests.
# Exits non-zero on the first failing step. PROPTEST_CASES sets the random cases per property
# (default 256).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

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
    section "cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
}

run_tests() {
    if cargo nextest --version >/dev/null 2>&1; then
        section "cargo nextest run --workspace"
        cargo nextest run --workspace --no-fail-fast
        section "cargo test --doc --workspace"
        cargo test --doc --workspace
    else
        section "cargo test --workspace"
        cargo test --workspace --no-fail-fast
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

# --- native runs on the other host ABIs ------------------------------------------------------
# The runtime and the native suites built for i686-unknown-linux-gnu run natively on this x86-64
# host (i386-sysv, with the stdcall/fastcall/thiscall conventions).
run_native_i686() {
    section "native suites on i686-unknown-linux-gnu (i386-sysv)"
    # The runtime's unit tests and every native suite (the parser's properties are target-independent).
    cargo test --target i686-unknown-linux-gnu -p backcall --lib --no-fail-fast
    cargo test --target i686-unknown-linux-gnu -p backcall-native-tests --no-fail-fast
}

# The same suites built for aarch64-unknown-linux-gnu, run under qemu-user (aarch64-aapcs64):
# the runner and linker come from .cargo/config.toml, the oracle's C compiler is
# aarch64-linux-gnu-gcc (a second compiler beside the emulated harness's clang).
run_native_aarch64() {
    section "native suites on aarch64-unknown-linux-gnu under qemu-aarch64 (aarch64-aapcs64)"
    # The runtime's unit tests and every native suite (the parser's properties are target-independent).
    cargo test --target aarch64-unknown-linux-gnu -p backcall --lib --no-fail-fast
    cargo test --target aarch64-unknown-linux-gnu -p backcall-native-tests --no-fail-fast
}

install_deps
check_format
check_lints
run_tests
run_fallback_fences
run_native_i686
run_native_aarch64
section "all steps passed"
