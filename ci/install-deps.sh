#!/usr/bin/env bash
# Installs what backcall's suites need beyond a Rust toolchain, and only what is missing:
#
#   apt:    clang lld (the distribution's clang: the compiler oracle, every --target),
#           the newest clang-N the distribution offers (clang-22 on Debian 12; clang >= 19 is
#           i386-win32's authority) and clang-16 when offered (the compiler matrix), cmake (keystone's LLVM build), qemu-user (AArch64 binaries
#           on an x86-64 host), gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-i686-linux-gnu
#           libc6-dev-i386 lib32gcc-12-dev (the GCC authorities of the Linux ABIs; linking the
#           native i686/aarch64 runs), gcc-mingw-w64-i686 gcc-mingw-w64-x86-64 (GCC for the
#           Windows ABIs; x86-64's also links the native Win64 suites), wine64 (runs them),
#           pkg-config, libffi-dev (the native benches' libffi peer),
#           libsqlite3-dev zlib1g-dev libexpat1-dev (the examples' C libraries; with
#           libuv1-dev, the real headers `backcall verify --header` is tested on)
#   rustup: targets i686-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-pc-windows-gnu (the
#           native suites on those hosts), aarch64-apple-darwin x86_64-apple-darwin
#           i686-pc-windows-gnu (build checks of the runtime, std only); components rustfmt clippy
#
# Idempotent: on a machine that has everything it changes nothing and touches no network.
# Runs `apt-get update` at most once. Uses sudo only when not root.
#
# Never install gcc-multilib: on Debian 12 it conflicts with gcc-aarch64-linux-gnu (apt removes
# one for the other). `gcc -m32` works with libc6-dev-i386 + lib32gcc-12-dev instead.
set -euo pipefail

APT_PACKAGES=(
    clang lld cmake qemu-user
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    gcc-i686-linux-gnu libc6-dev-i386 lib32gcc-12-dev
    gcc-mingw-w64-i686 gcc-mingw-w64-x86-64 wine64
    pkg-config libffi-dev
    libsqlite3-dev zlib1g-dev libexpat1-dev libuv1-dev
)
RUST_TARGETS=(
    i686-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-pc-windows-gnu
    aarch64-apple-darwin x86_64-apple-darwin i686-pc-windows-gnu
)
RUST_COMPONENTS=(rustfmt clippy)

log() { printf 'install-deps: %s\n' "$*"; }
die() {
    printf 'install-deps: error: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "not root and no sudo: cannot run: $*"
    fi
}

apt_installed() {
    # grep reads everything (no -q): an early exit would SIGPIPE the writer, which pipefail
    # turns into a false "no".
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep 'install ok installed' >/dev/null
}

APT_UPDATED=0
apt_update_once() {
    [ "$APT_UPDATED" -eq 1 ] && return
    log "running apt-get update (once)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
        die "apt-get update failed"
    APT_UPDATED=1
}

# Whether apt offers package $1 (a candidate version).
apt_offers() {
    apt-cache policy "$1" 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null
}

# The versioned clangs of the compiler matrix: the newest clang-N the distribution offers
# (N >= 19, i386-win32's authority) and clang-16 (a clang between the fastcall changes of
# clang 16 and 19). Installed ones are kept; otherwise the package lists decide.
extra_clangs() {
    local n newest=""
    for n in $(seq 30 -1 19); do
        if apt_installed "clang-$n"; then
            newest="clang-$n"
            break
        fi
    done
    if [ -z "$newest" ]; then
        # Fresh package lists: stale ones may offer an older clang-N than the distribution has.
        apt_update_once
        for n in $(seq 30 -1 19); do
            if apt_offers "clang-$n"; then
                newest="clang-$n"
                break
            fi
        done
    fi
    [ -n "$newest" ] || die "no clang >= 19 is offered by apt: i386-win32's authority is missing"
    EXTRA_CLANGS=("$newest")
    if apt_installed clang-16 || apt_offers clang-16; then
        EXTRA_CLANGS+=(clang-16)
    fi
}

install_apt_packages() {
    command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian/Ubuntu only"
    extra_clangs
    local missing=() p
    for p in "${APT_PACKAGES[@]}" "${EXTRA_CLANGS[@]}"; do
        apt_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "apt packages: all present (${APT_PACKAGES[*]} ${EXTRA_CLANGS[*]})"
        return
    fi
    log "apt packages missing: ${missing[*]}"
    apt_update_once
    log "installing: ${missing[*]}"
    # With recommends: gcc-i686-linux-gnu's libc6-dev-i386-cross, clang's compiler-rt.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" ||
        die "apt-get install failed for: ${missing[*]}"
    for p in "${missing[@]}"; do
        apt_installed "$p" || die "$p is still not installed after apt-get install"
    done
}

install_rust_parts() {
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain (rustup) first"
    if ! command -v rustup >/dev/null 2>&1; then
        log "no rustup: cannot check or add targets (${RUST_TARGETS[*]}) and components (${RUST_COMPONENTS[*]}); skipping"
        return
    fi
    local installed missing=() t c
    installed="$(rustup target list --installed)"
    for t in "${RUST_TARGETS[@]}"; do
        grep -qx "$t" <<<"$installed" || missing+=("$t")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "rust targets: all present (${RUST_TARGETS[*]})"
    else
        log "adding rust targets: ${missing[*]}"
        rustup target add "${missing[@]}" ||
            die "rustup target add ${missing[*]} failed (rustup downloads from the Rust distribution server)"
    fi
    missing=()
    for c in "${RUST_COMPONENTS[@]}"; do
        case "$c" in
            rustfmt) cargo fmt --version >/dev/null 2>&1 || missing+=("$c") ;;
            clippy) cargo clippy --version >/dev/null 2>&1 || missing+=("$c") ;;
            *) missing+=("$c") ;;
        esac
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "rust components: all present (${RUST_COMPONENTS[*]})"
    else
        log "adding rust components: ${missing[*]}"
        rustup component add "${missing[@]}" ||
            die "rustup component add ${missing[*]} failed"
    fi
}

install_apt_packages
install_rust_parts
for tool in clang "${EXTRA_CLANGS[@]}" i686-linux-gnu-gcc aarch64-linux-gnu-gcc \
    i686-w64-mingw32-gcc x86_64-w64-mingw32-gcc; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is still not on PATH"
done
command -v wine >/dev/null 2>&1 || command -v wine64 >/dev/null 2>&1 || [ -x /usr/lib/wine/wine64 ] ||
    die "wine64 is installed, but neither wine nor wine64 runs"
log "done"
