#!/usr/bin/env bash
# The main job: cross-ABI verification of the built-in signature corpus plus random signatures
# on all six ABIs, at -O0 and -O2, against clang (`backcall verify`). Extra arguments go to
# `backcall verify` (e.g. `ci/main.sh --abi x86_64-win64 --random 500 --json`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ci/install-deps.sh
cargo build --release -q -p backcall --features cli -p backcall-emu-tests
exec target/release/backcall verify "$@"
