#!/bin/bash
# SPDX-License-Identifier: MIT
#
# verify-units.sh - static checks of tern's unit files (meson suite 'units')
#
#   verify-units.sh verify   BUILD_ROOT UNIT...
#       `systemd-analyze verify` over all UNITs together (so that Requires=, PartOf=,
#       WantedBy= between them resolve), after pointing each Exec*= program at the build
#       tree (units-lib.sh). verify only warns, with exit status 0, about unknown keys and
#       bad values: any output on stderr fails the test.
#   verify-units.sh security BUILD_ROOT THRESHOLD UNIT...
#       `systemd-analyze security --offline=yes` (systemd >= 250) on every .service among
#       UNITs; fails when a service's overall exposure is above THRESHOLD (e.g. 2.0, on the
#       0.0-10.0 scale systemd prints). Other unit types are skipped.
#
# Output is TAP (one line per check) so `meson test --verbose` shows what ran.
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
# shellcheck source=units-lib.sh
. "$here/units-lib.sh"

usage() {
        echo "usage: $0 verify BUILD_ROOT UNIT... | security BUILD_ROOT THRESHOLD UNIT..." >&2
        exit 2
}

[ $# -ge 2 ] || usage
mode=$1 build_root=$(readlink -f "$2")
shift 2

source_root=$(readlink -f "$here/../..")
work=$(mktemp -d "${TMPDIR:-/tmp}/tern-verify-units.XXXXXX")
trap 'rm -rf "$work"' EXIT

# analyze ARGS... - systemd-analyze, as root in a private mount namespace with a tmpfs on
# /run/systemd: run as root, verify and security write /run/systemd/systemd-units-load on the host
# (PID 1's "units loaded" stamp), and this test must leave the host as it found it.
analyze() {
        if [ "$(id -u)" -eq 0 ] && [ -d /run/systemd ] && command -v unshare >/dev/null; then
                unshare --mount --propagation private \
                        sh -c 'mount -n -t tmpfs tmpfs /run/systemd && exec systemd-analyze "$@"' sh "$@"
        else
                systemd-analyze "$@"
        fi
}

# localize_all UNIT... - localized copies in $work/units, one directory for all
localize_all() {
        mkdir -p "$work/units"
        for u in "$@"; do
                unit_localize "$u" "$work/units/${u##*/}" "$build_root"
        done
}

check_verify() {
        local rc=0
        localize_all "$@"
        # Documentation=man:... must name a page tern ships: point man(1) at the source tree's
        # pages, laid out as man/manN/ the way they install.
        local page
        for page in "$source_root"/man/*.[1-9]; do
                mkdir -p "$work/man/man${page##*.}"
                ln -sf "$page" "$work/man/man${page##*.}/"
        done
        (cd "$work/units" && MANPATH="$work/man" analyze verify --no-pager ./*) \
                >"$work/verify.out" 2>"$work/verify.err" || rc=$?
        cat "$work/verify.out" "$work/verify.err"
        if [ "$rc" -eq 0 ] && [ ! -s "$work/verify.err" ]; then
                echo "ok 1 - systemd-analyze verify: $(cd "$work/units" && echo ./*)"
                echo "1..1"
                return 0
        fi
        echo "not ok 1 - systemd-analyze verify (exit $rc, stderr above)"
        echo "1..1"
        return 1
}

check_security() {
        local threshold=$1 n=0 failed=0 rc level
        shift
        # systemd's --threshold is on the internal 0..100 scale (ten times what it prints)
        local threshold_int
        threshold_int=$(awk -v t="$threshold" 'BEGIN { printf "%d", t * 10 }')
        localize_all "$@"
        for u in "$work"/units/*.service; do
                [ -e "$u" ] || continue
                n=$((n + 1)) rc=0
                (cd "$work/units" && analyze security --offline=yes --no-pager \
                        --threshold="$threshold_int" "./${u##*/}") \
                        >"$work/security.out" 2>"$work/security.err" || rc=$?
                level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$work/security.out")
                if [ "$rc" -eq 0 ] && [ -n "$level" ] && [ ! -s "$work/security.err" ]; then
                        echo "ok $n - ${u##*/}: exposure $level <= $threshold"
                else
                        cat "$work/security.out" "$work/security.err"
                        echo "not ok $n - ${u##*/}: exposure ${level:-?} (threshold $threshold, exit $rc)"
                        failed=$((failed + 1))
                fi
        done
        echo "1..$n"
        [ "$failed" -eq 0 ]
}

case $mode in
verify)
        [ $# -ge 1 ] || usage
        check_verify "$@"
        ;;
security)
        [ $# -ge 2 ] || usage
        check_security "$@"
        ;;
*)
        usage
        ;;
esac
