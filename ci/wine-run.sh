#!/usr/bin/env bash
# Runs a Windows test binary under Wine (the cargo runner of x86_64-pc-windows-gnu): Wine's
# own diagnostics off, its prefix kept under target/ so that a fresh machine needs no setup.
# Wine 8 lacks bcryptprimitives.dll, which Rust's standard library imports: the prefix gets a
# small one (ci/wine/bcryptprimitives.c) when Wine has none of its own.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEPREFIX="${WINEPREFIX:-$here/target/wine-prefix}"
wine="$(command -v wine64 || command -v wine || true)"
[ -n "$wine" ] || [ ! -x /usr/lib/wine/wine64 ] || wine=/usr/lib/wine/wine64
if [ -z "$wine" ]; then
    echo "wine-run: neither wine64 nor wine is installed (ci/install-deps.sh installs wine64)" >&2
    exit 1
fi
system32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -e "$system32/bcryptprimitives.dll" ]; then
    [ -d "$system32" ] || "$wine" cmd /c exit >/dev/null 2>&1 || true
    x86_64-w64-mingw32-gcc -shared -O2 -o "$system32/bcryptprimitives.dll" \
        "$here/ci/wine/bcryptprimitives.c" -ladvapi32
fi
exec "$wine" "$@"
