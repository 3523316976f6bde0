#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test.sh - set everything up and run every test suite of tern
#
# On a fresh Debian 12 machine (as root): installs the packages (tools/deps.sh
# --tests), builds tern with clang, AddressSanitizer + UndefinedBehaviorSanitizer,
# -Werror and the libFuzzer targets into build-test/, and runs all suites with
# `meson test --verbose`: unit (cmocka), integration (real daemons on real
# sockets), varlink-cert (varlink-go's certification in both directions),
# units (systemd-analyze), systemd (systemd as PID 1 in nspawn), fuzz (short
# smoke runs). Exits non-zero when any test fails. .ci/run runs exactly this.
#
#   TERN_TEST_BUILDDIR=dir   build directory (default: build-test)
#   extra arguments go to `meson test` (e.g. --suite unit)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash tools/deps.sh --tests

builddir=${TERN_TEST_BUILDDIR:-build-test}
if [[ ! -f "$builddir/build.ninja" ]]; then
        CC=clang meson setup "$builddir" \
                --buildtype=debugoptimized \
                -Dwerror=true \
                -Db_sanitize=address,undefined \
                -Db_lundef=false \
                -Dfuzz=true \
                -Dtests=enabled
fi
ninja -C "$builddir"

# Sanitizers: any report fails the test that triggered it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
meson test -C "$builddir" --verbose --print-errorlogs "$@" || status=$?

# The failures' output, then one closing line that any reader understands, from meson's own log.
python3 - "$builddir/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
failures = []
with open(sys.argv[1]) as f:
    for line in f:
        t = json.loads(line)
        r = t.get('result')
        if r in ('OK', 'EXPECTEDFAIL'):
            passed += 1
        elif r == 'SKIP':
            skipped += 1
        else:
            failed += 1
            failures.append(t)
# A failing test's own output again, last: a CI log is often read from its end only.
for t in failures:
    out = ((t.get('stdout') or '') + (t.get('stderr') or '')).splitlines()
    print(f"==== {t['name']}: {t['result']} (last {min(len(out), 80)} lines of its output)")
    print("\n".join(out[-80:]))
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit "$status"
