#!/usr/bin/env bash
# The main job: the call plans of the built-in signature corpus on every ABI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ci/install-deps.sh
cargo run --release -q --bin backcall -- plan --abi all --builtin-corpus
