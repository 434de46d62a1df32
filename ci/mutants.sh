#!/usr/bin/env bash
# The oracle proves its own power: every ABI rule is mutated (cargo-mutants) and each mutant
# is judged by `backcall verify` on that file's ABIs, with each ABI's authority
# (emu-tests/tests/judge.rs). A mutant that verify does not catch is a rule the oracle cannot
# see — unless it changes nothing observable, which ci/mutants-equivalent.txt says, one line
# and one reason per mutant.
#
#   ci/mutants.sh [abi/src/<file>.rs ...]     (default: every ABI file)
#
# Prints the kill rate per file and the surviving mutants; exits 1 when a file's kill rate
# of the non-equivalent mutants is under 95%. Not part of .ci/run (it takes about half an
# hour on two cores): run it after changing ABI rules, and in a scheduled CI job.
#
# It mutates the source tree in place (cargo-mutants restores each file), builds with the
# `mutants` profile (no debug info), and caches compiled callers in target/mutants-cc-cache
# (BACKCALL_CC_CACHE): a mutant that changes no layout compiles nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ci/install-deps.sh
if ! cargo mutants --version >/dev/null 2>&1; then
    echo "mutants: installing cargo-mutants"
    cargo install --locked cargo-mutants
fi

DEFAULT_FILES=(
    abi/src/i386.rs abi/src/i386_sysv.rs abi/src/i386_win32.rs
    abi/src/x86_64_sysv.rs abi/src/x86_64_win64.rs
    abi/src/aarch64_aapcs64.rs abi/src/aarch64_apple.rs
)
FILES=("$@")
[ "${#FILES[@]}" -gt 0 ] || FILES=("${DEFAULT_FILES[@]}")
EQUIVALENT=ci/mutants-equivalent.txt
THRESHOLD=95

# The ABIs whose plans a file's rules make.
abis_of() {
    case "$1" in
        abi/src/i386.rs) echo i386-sysv,i386-win32 ;;
        abi/src/i386_sysv.rs) echo i386-sysv ;;
        abi/src/i386_win32.rs) echo i386-win32 ;;
        abi/src/x86_64_sysv.rs) echo x86_64-sysv ;;
        abi/src/x86_64_win64.rs) echo x86_64-win64 ;;
        abi/src/aarch64_aapcs64.rs) echo aarch64-aapcs64,aarch64-apple ;;
        abi/src/aarch64_apple.rs) echo aarch64-apple ;;
        *) echo "mutants: no ABI is known for $1" >&2; exit 2 ;;
    esac
}

# A mutant's name without its line and column (`file: description`), as the equivalents
# file names it, so that edits elsewhere in the file do not orphan an entry.
strip_position() {
    sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /'
}

is_equivalent() {
    [ -f "$EQUIVALENT" ] && grep -vE '^\s*(#|$)' "$EQUIVALENT" | sed -E 's/\s+#.*$//' |
        grep -qxF -- "$1"
}

export BACKCALL_CC_CACHE="${BACKCALL_CC_CACHE:-$PWD/target/mutants-cc-cache}"
RESULTS=()
FAILED=0
for file in "${FILES[@]}"; do
    abis="$(abis_of "$file")"
    out="target/mutants/$(basename "$file" .rs)"
    rm -rf "$out"
    mkdir -p "$out"
    echo "==== $file (judged on $abis)"
    # Exit code 2 means some mutants survived, 3 that some timed out (counted as caught): the
    # report below says which.
    # What the unmutated rules plan: a mutant that refuses any of it is caught.
    export BACKCALL_JUDGE_PLANNED="$PWD/$out/planned.txt"
    BACKCALL_JUDGE_ABIS="$abis" BACKCALL_JUDGE_RECORD=1 cargo test -q --profile mutants \
        -p backcall-emu-tests --test judge -- --include-ignored >/dev/null
    status=0
    BACKCALL_JUDGE_ABIS="$abis" cargo mutants --in-place --profile mutants --workspace \
        --file "$file" --output "$out" --no-shuffle --colors never \
        -- -p backcall-emu-tests --test judge -- --include-ignored || status=$?
    case "$status" in
        0 | 2 | 3) ;;
        *) echo "mutants: cargo mutants failed on $file (exit $status)" >&2; exit 1 ;;
    esac
    dir="$out/mutants.out"
    caught=$(cat "$dir/caught.txt" "$dir/timeout.txt" 2>/dev/null | wc -l)
    missed=0
    equivalent=0
    survivors=()
    while IFS= read -r mutant; do
        [ -n "$mutant" ] || continue
        name="$(strip_position <<<"$mutant")"
        if is_equivalent "$name"; then
            equivalent=$((equivalent + 1))
        else
            missed=$((missed + 1))
            survivors+=("$mutant")
        fi
    done < <(cat "$dir/missed.txt" 2>/dev/null)
    judged=$((caught + missed))
    rate=100
    [ "$judged" -eq 0 ] || rate=$((100 * caught / judged))
    RESULTS+=("$(printf '%-28s %6d %6d %10d %6d%%' "$file" "$caught" "$missed" "$equivalent" "$rate")")
    if [ "${#survivors[@]}" -gt 0 ]; then
        printf 'survivors in %s:\n' "$file"
        printf '  %s\n' "${survivors[@]}"
    fi
    [ "$rate" -ge "$THRESHOLD" ] || FAILED=1
done

echo
printf '%-28s %6s %6s %10s %7s\n' "file" "caught" "missed" "equivalent" "killed"
printf '%s\n' "${RESULTS[@]}"
if [ "$FAILED" -ne 0 ]; then
    echo "mutants: a file's kill rate is under ${THRESHOLD}%"
    exit 1
fi
