#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh - tern's units and service scaffold under a real systemd as PID 1 (meson suite 'systemd')
#
#   run.sh SOURCE_ROOT BUILD_ROOT TESTD TERNCTL
#
# What it tests: that tern's unit files, sysusers.d and tmpfiles.d work under a real service
# manager, and that the scaffold every daemon runs on (src/lib/event.c, through tern-testd)
# keeps the systemd protocol: socket activation with the name "varlink", READY=1 (Type=notify),
# STATUS=, idle exit after max_idle and re-activation, WATCHDOG=1, STOPPING=1 and a clean exit
# on SIGTERM, journal fields, tern.target, and a bad main.cf that stops the daemon from starting;
# and the mail path through the real units: submission, the connection cache, tern-qmgr
# delivering through Accept=yes agent instances, and SMTP reception by socket-activated tern-smtpd.
#
# How: systemd boots as PID 1 in a throwaway container (systemd-nspawn --directory=/
# --volatile=yes: the host's /usr read-only over a tmpfs root), exactly as
# /work/shared/reference/systemd-testing.md, recipe A, checked on the CI machines. A lab directory
# is bound at /lab and the build tree read-only at /tern-build. The units go into the container's
# /run/systemd/system with every Exec*= program pointed at /tern-build (units-lib.sh);
# sysusers.d and tmpfiles.d are applied inside the container. The script drives the container with
# `nsenter -t <its PID 1> -a`; the host's /run/systemd/system is never created. PID 1 logs at
# debug level so that the journal shows each notification message (READY=1, STOPPING=1, ...).
#
# Output is TAP (`ok N - name` / `not ok N - name`, diagnostics as `# ...`) and a last line
# `N passed, M failed, K skipped`. Exit 0 if nothing failed, 1 otherwise, 77 (skipped) without
# root, systemd-nspawn or nsenter, or on a host whose PID 1 is systemd (recipe A is for hosts
# where it is not; nothing else was tested).
#
# Bounds: every wait is a poll with a limit and every command run in the container has a
# timeout, so a hang fails a check instead of the CI job; a run takes about 12 s. The container is
# powered off, its cgroups, the tmpfs on /run/systemd/nspawn (if this script mounted it) and the
# lab are removed on every exit (trap). TERN_SYSTEMD_KEEP_LAB=1 keeps the lab (nspawn.log, the
# container's journal export) for a post-mortem.
set -euo pipefail

if [ $# -ne 4 ]; then
        echo "usage: $0 SOURCE_ROOT BUILD_ROOT TESTD TERNCTL" >&2
        exit 2
fi
SOURCE_ROOT=$(readlink -f "$1")
BUILD_ROOT=$(readlink -f "$2")
TESTD=$(readlink -f "$3")
TERNCTL=$(readlink -f "$4")
HERE=$(dirname "$(readlink -f "$0")")
# shellcheck source=units-lib.sh
. "$HERE/units-lib.sh"

# Where the build tree appears inside the container, and the programs there.
CT_BUILD=/tern-build
CT_TESTD=$CT_BUILD/${TESTD#"$BUILD_ROOT"/}
CT_TERNCTL=$CT_BUILD/${TERNCTL#"$BUILD_ROOT"/}
SOCKET=/run/tern/test
MACHINE=tern-test
# max_idle in the test's main.cf, seconds; the idle checks' bounds derive from it
MAX_IDLE=2
# limits for waits (seconds)
BOOT_TIMEOUT=60
WAIT_TIMEOUT=10
CMD_TIMEOUT=20

skip() {
        echo "1..0 # SKIP $*"
        exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root (systemd-nspawn)"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn missing (Debian: systemd-container)"
command -v nsenter >/dev/null || skip "nsenter missing (util-linux)"
[ -d /run/systemd/system ] && skip "the host runs systemd as PID 1; run.sh follows recipe A for hosts that do not"
[ -d /run/systemd ] || skip "no /run/systemd on the host"
if [ ! -x "$TESTD" ] || [ ! -x "$TERNCTL" ]; then
        echo "Bail out! $TESTD or $TERNCTL is not built"
        exit 1
fi
case $TESTD$TERNCTL in
"$BUILD_ROOT"/*"$BUILD_ROOT"/*) ;;
*) echo "Bail out! $TESTD and $TERNCTL must be inside $BUILD_ROOT"; exit 1 ;;
esac

# ---- setup and teardown ------------------------------------------------------------------------

LAB=
NSPID=
L=
CGROUP=tern-nspawn-$$
CGROUP_DIRS=()
NSPAWN_TMPFS_MOUNTED=no
# Host paths that this run creates as a side effect and removes again: /run/systemd/nspawn (the
# tmpfs mount point), /run/systemd/nspawn-root (nspawn's mount point for --directory=/).
HOST_DIRS_CREATED=()

cleanup() {
        local rc=$? i
        set +e
        # the smtp-sink t_smtp started on the host, if it is still there
        [ -z "$SINK_PID" ] || { kill "$SINK_PID"; wait "$SINK_PID"; } 2>/dev/null
        if [ -n "$NSPID" ] && kill -0 "$NSPID" 2>/dev/null; then
                if [ -n "$L" ] && [ -n "$LAB" ]; then
                        timeout 10 nsenter -t "$L" -a journalctl -o export >"$LAB/journal.export" 2>/dev/null
                fi
                kill -TERM "$NSPID"
                for ((i = 0; i < 100; i++)); do kill -0 "$NSPID" 2>/dev/null || break; sleep 0.1; done
                if kill -0 "$NSPID" 2>/dev/null; then
                        echo "# container did not power off in 10 s: killing it"
                        kill -KILL "$NSPID"
                        [ -n "$L" ] && kill -KILL "$L" 2>/dev/null
                fi
                wait "$NSPID" 2>/dev/null
        fi
        for d in "${CGROUP_DIRS[@]}"; do
                # children first (payload, supervisor, and what the container made below them)
                [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
                [ -d "$d" ] && echo "# could not remove cgroup $d"
        done
        if [ "$NSPAWN_TMPFS_MOUNTED" = yes ]; then
                umount -n /run/systemd/nspawn || umount -n -l /run/systemd/nspawn
        fi
        for d in "${HOST_DIRS_CREATED[@]}"; do
                rmdir "$d" || echo "# could not remove $d"
        done
        if [ -n "$LAB" ]; then
                if [ "${TERN_SYSTEMD_KEEP_LAB:-0}" = 1 ]; then
                        echo "# lab kept: $LAB"
                else
                        rm -rf "$LAB"
                fi
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Only one run at a time on a machine: runs share /run/systemd/nspawn and the host's network.
# The lock is on the directory itself, so that no lock file is left behind.
exec 9</run/systemd
flock -w 120 9 || { echo "Bail out! another run.sh holds the lock on /run/systemd"; exit 1; }

LAB=$(mktemp -d /tmp/tern-systemd.XXXXXX)
chmod 0755 "$LAB"

# cgroup_roots - where a cgroup for the container goes: hybrid (v1 name=systemd + unified) or v2
cgroup_roots() {
        if [ -d /sys/fs/cgroup/unified ] && [ -d /sys/fs/cgroup/systemd ]; then
                echo /sys/fs/cgroup/unified /sys/fs/cgroup/systemd
        elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
                echo /sys/fs/cgroup
        else
                return 1
        fi
}

# in_ct CMD... - run CMD inside the container, bounded
in_ct() {
        timeout "$CMD_TIMEOUT" nsenter -t "$L" -a "$@"
}

# set_ct_root - CT_ROOT: the container's root directory as the host sees it, after checking that
# it really is the container's and not the host's (units written to the host's
# /run/systemd/system would make every tool on the host believe systemd is PID 1). If the
# container dies, /proc/$L is gone and writes below CT_ROOT fail.
CT_ROOT=/nonexistent
set_ct_root() {
        local root=/proc/$L/root
        if [ "$(stat -L -c %d:%i "$root/")" = "$(stat -L -c %d:%i /)" ]; then
                echo "Bail out! /proc/$L/root is the host's root"
                exit 1
        fi
        CT_ROOT=$root
}

boot_container() {
        local roots r i st=

        for d in /run/systemd/nspawn /run/systemd/nspawn-root; do
                [ -d "$d" ] || HOST_DIRS_CREATED+=("$d")
        done
        mkdir -p /run/systemd/nspawn
        # nspawn refuses to work unless /run/systemd/nspawn is on a tmpfs; /run is not one here.
        # -n: no /run/mount/utab (util-linux would create /run/mount for it)
        if ! mountpoint -q /run/systemd/nspawn; then
                mount -n -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn
                NSPAWN_TMPFS_MOUNTED=yes
        fi
        roots=$(cgroup_roots) || { echo "Bail out! no cgroup hierarchy found"; exit 1; }
        for r in $roots; do
                CGROUP_DIRS+=("$r/$CGROUP")
        done

        # --register=no --keep-unit: there is no host systemd or machined to talk to;
        # systemd.unit=basic.target: none of the host's enabled services start;
        # systemd.firstboot=off: the first-boot wizard would wait for a console forever.
        (
                for d in "${CGROUP_DIRS[@]}"; do
                        mkdir -p "$d"
                        echo "$BASHPID" >"$d/cgroup.procs"
                done
                exec systemd-nspawn --quiet --directory=/ --volatile=yes --register=no --keep-unit \
                        -M "$MACHINE" --bind="$LAB":/lab --bind-ro="$BUILD_ROOT":"$CT_BUILD" \
                        --console=passive -b -- systemd.unit=basic.target systemd.firstboot=off
        ) </dev/null >"$LAB/nspawn.log" 2>&1 &
        NSPID=$!

        for ((i = 0; i < 200; i++)); do
                L=$(pgrep -P "$NSPID" -x systemd || true)
                [ -n "$L" ] && break
                kill -0 "$NSPID" 2>/dev/null || break
                sleep 0.05
        done
        if [ -z "$L" ]; then
                echo "Bail out! systemd did not start in the container"
                sed 's/^/# /' "$LAB/nspawn.log"
                exit 1
        fi
        for ((i = 0; i < BOOT_TIMEOUT * 10; i++)); do
                st=$(in_ct systemctl is-system-running 2>/dev/null || true)
                case $st in running | degraded) break ;; esac
                sleep 0.1
        done
        case $st in
        running | degraded) ;;
        *)
                echo "Bail out! the container did not boot in $BOOT_TIMEOUT s (state: ${st:-?})"
                sed 's/^/# /' "$LAB/nspawn.log" | tail -30
                exit 1
                ;;
        esac
        echo "# container booted ($st), PID 1 is host PID $L"
        set_ct_root
}

# write_main_cf TEXT - the container's /etc/tern/main.cf
write_main_cf() {
        mkdir -p "$CT_ROOT/etc/tern"
        printf '%s\n' "$1" >"$CT_ROOT/etc/tern/main.cf"
}

MAIN_CF="# tern main.cf for the systemd suite
runtime_directory = /run/tern
max_idle = ${MAX_IDLE}s"

install_tern() {
        local root=$CT_ROOT u

        mkdir -p "$root/run/sysusers.d" "$root/run/tmpfiles.d" "$root/run/systemd/system"
        cp "$SOURCE_ROOT/units/sysusers.d/tern.conf" "$root/run/sysusers.d/tern.conf"
        cp "$SOURCE_ROOT/units/tmpfiles.d/tern.conf" "$root/run/tmpfiles.d/tern.conf"
        in_ct systemd-sysusers /run/sysusers.d/tern.conf 2>&1 | sed 's/^/# /'
        in_ct systemd-tmpfiles --create /run/tmpfiles.d/tern.conf 2>&1 | sed 's/^/# /'

        # tern's units as meson configured them, and the suite's test units
        for u in "$BUILD_ROOT"/units/*.target "$BUILD_ROOT"/units/*.socket "$BUILD_ROOT"/units/*.service \
                 "$BUILD_ROOT"/units/*.timer "$SOURCE_ROOT"/tests/systemd/units/*; do
                [ -f "$u" ] || continue
                unit_localize "$u" "$root/run/systemd/system/${u##*/}" "$BUILD_ROOT" "$CT_BUILD"
                echo "# installed ${u##*/}"
        done

        # The compiled-in main.cf path follows the build's prefix (/usr/local/etc/... here), which
        # is the host's read-only /usr inside the container: point TERN_CONFIG at /etc/tern.
        local svc
        # (templates: tern-discard@.service.d applies to every instance)
        for svc in tern-testd tern-submit tern-scache tern-qmgr tern-qmgr-wakeup tern-discard@ tern-error@ \
                   tern-retry@ tern-flush tern-flush-refresh tern-smtp@ tern-relay@ tern-lmtp@ tern-smtpd; do
        mkdir -p "$root/run/systemd/system/$svc.service.d"
        {
                echo "[Service]"
                echo "Environment=TERN_CONFIG=/etc/tern/main.cf"
                # In a sanitizer build, AddressSanitizer still aborts the daemon on any error, but
                # LeakSanitizer cannot stop the world inside the unit's sandbox (seccomp, no
                # ptrace) and would fail every exit: leaks are the integration suite's to find,
                # with the same binary run by hand.
                echo "Environment=ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"
        } >"$root/run/systemd/system/$svc.service.d/test.conf"
        done
        write_main_cf "$MAIN_CF"

        # tern-smtpd.socket listens on port 25 of every address, and the container shares the
        # host's network: tern.target (started by several checks) would bind the host's port 25.
        # A drop-in, as its unit file suggests, makes it a free port on loopback instead (t_smtpd).
        SMTPD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        mkdir -p "$root/run/systemd/system/tern-smtpd.socket.d"
        printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$SMTPD_PORT" \
                >"$root/run/systemd/system/tern-smtpd.socket.d/test.conf"

        in_ct systemctl daemon-reload
        # every notification message (READY=1, STOPPING=1, ...) in the journal
        in_ct systemctl log-level debug
}

# ---- helpers for checks ------------------------------------------------------------------------

N=0
PASSED=0
FAILED=0
SKIPPED=0

# check NAME FUNCTION - run one sub-test; its output becomes TAP diagnostics
check() {
        local name=$1 fn=$2 out rc=0
        N=$((N + 1))
        # in this shell, not a subshell: sub-tests set variables and start background clients
        "$fn" >"$LAB/check.out" 2>&1 || rc=$?
        out=$(cat "$LAB/check.out")
        if [ "$rc" -eq 0 ]; then
                echo "ok $N - $name"
                PASSED=$((PASSED + 1))
        else
                echo "not ok $N - $name"
                FAILED=$((FAILED + 1))
                # what the service said about it (sanitizer reports go to its stderr: the journal)
                in_ct journalctl --no-pager -o cat -n 25 -u tern-testd.service 2>&1 | sed 's/^/#   | /' || true
        fi
        [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/#   /'
}

# skip_check NAME REASON
skip_check() {
        N=$((N + 1))
        echo "ok $N - $1 # SKIP $2"
        SKIPPED=$((SKIPPED + 1))
}

# prop UNIT PROPERTY - one property from systemctl show
prop() {
        in_ct systemctl show -P "$2" "$1"
}

# expect WHAT GOT WANT - compare and say what differed
expect() {
        if [ "$2" != "$3" ]; then
                echo "$1: expected '$3', got '$2'"
                return 1
        fi
}

# wait_for DESCRIPTION SECONDS CMD... - poll CMD every 0.1 s until it succeeds or time is up
wait_for() {
        local what=$1 limit=$2 i
        shift 2
        for ((i = 0; i < limit * 10; i++)); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        echo "timed out after ${limit}s waiting for: $what"
        return 1
}

state_is() {
        [ "$(prop "$1" ActiveState)" = "$2" ]
}

# ternctl ARGS... - the built ternctl, run inside the container as root
ternctl() {
        in_ct "$CT_TERNCTL" --timeout 15 "$@"
}

# hold_connection MS TAG - a client that stays connected for MS milliseconds (io.tern.Test.Sleep),
# in the background; sets HOLD_PID, output in $LAB/hold-TAG.out
hold_connection() {
        ternctl --json call "$SOCKET" io.tern.Test.Sleep "{\"milliseconds\": $1, \"tag\": \"$2\"}" \
                >"$LAB/hold-$2.out" 2>&1 &
        HOLD_PID=$!
}

# wait_pid PID SECONDS - wait for a background job, bounded; returns its exit status
wait_pid() {
        local i
        for ((i = 0; i < $2 * 10; i++)); do
                kill -0 "$1" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$1" 2>/dev/null; then
                echo "process $1 still running after $2 s"
                kill "$1" 2>/dev/null || true
                wait "$1" 2>/dev/null || true
                return 124
        fi
        wait "$1"
}

# journal_has PATTERN ARGS... - the container's journal (journalctl ARGS) has a line matching PATTERN
journal_has() {
        local pattern=$1
        shift
        # not grep -q: with pipefail, journalctl's SIGPIPE would make a match fail
        in_ct journalctl --no-pager -o cat "$@" | grep -- "$pattern" >/dev/null
}

now_ms() {
        date +%s%3N
}

# ---- sub-tests ---------------------------------------------------------------------------------

t_sysusers() {
        local pw uid gid home shell
        pw=$(in_ct getent passwd tern) || { echo "no user tern"; return 1; }
        echo "$pw"
        IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
        in_ct getent group tern >/dev/null || { echo "no group tern"; return 1; }
        if [ "$uid" -le 0 ] || [ "$uid" -ge 1000 ]; then
                echo "uid $uid is not a system uid"
                return 1
        fi
        expect "home" "$home" /var/spool/tern || return 1
        case $shell in */nologin) ;; *) echo "shell $shell is a login shell"; return 1 ;; esac
        expect "primary group" "$(in_ct getent group "$gid" | cut -d: -f1)" tern
}

t_tmpfiles() {
        local d got bad=0
        got=$(in_ct stat -c '%n %a %U:%G %F' /var/spool/tern /run/tern)
        expect "spool" "$(sed -n 1p <<<"$got")" "/var/spool/tern 755 root:root directory" || bad=1
        expect "runtime" "$(sed -n 2p <<<"$got")" "/run/tern 755 root:tern directory" || bad=1
        for d in incoming active deferred hold corrupt defer bounce flush; do
                got=$(in_ct stat -c '%a %U:%G %F' "/var/spool/tern/$d") || { bad=1; continue; }
                expect "/var/spool/tern/$d" "$got" "700 tern:tern directory" || bad=1
        done
        return "$bad"
}

t_units_loaded() {
        local u bad=0 st
        for u in tern.target tern-testd.socket tern-testd.service; do
                st=$(prop "$u" LoadState)
                expect "$u LoadState" "$st" loaded || bad=1
        done
        # what systemd said while loading them (unknown keys, bad values)
        if in_ct journalctl --no-pager -o cat -p warning _PID=1 | grep -E '/run/systemd/system/tern[^ ]*:[0-9]+:'; then
                echo "systemd complained about a tern unit (above)"
                bad=1
        fi
        return "$bad"
}

t_socket_start() {
        in_ct systemctl start tern-testd.socket || return 1
        expect "socket state" "$(prop tern-testd.socket ActiveState)/$(prop tern-testd.socket SubState)" \
                active/listening || return 1
        expect "socket file" "$(in_ct stat -c '%a %U:%G %F' "$SOCKET")" "660 root:tern socket"
}

t_not_running_before_call() {
        expect "service state" "$(prop tern-testd.service ActiveState)" inactive || return 1
        expect "MainPID" "$(prop tern-testd.service MainPID)" 0
}

# The first connection starts the service; this client stays connected for 3 s, longer than
# max_idle, so the checks below see one running instance.
HOLD_MS=$(((MAX_IDLE + 1) * 1000))
MAIN_PID=
t_call_activates() {
        hold_connection "$HOLD_MS" first
        FIRST_HOLD_PID=$HOLD_PID
        wait_for "tern-testd.service active" "$WAIT_TIMEOUT" state_is tern-testd.service active || return 1
        MAIN_PID=$(prop tern-testd.service MainPID)
        local reply
        reply=$(ternctl --json call "$SOCKET" io.tern.Test.Echo '{"text": "activated"}') || return 1
        expect "Echo reply" "$reply" '{"text":"activated"}' || return 1
        expect "MainPID after a second call" "$(prop tern-testd.service MainPID)" "$MAIN_PID"
}

t_status() {
        expect "ActiveState" "$(prop tern-testd.service ActiveState)" active || return 1
        expect "SubState" "$(prop tern-testd.service SubState)" running || return 1
        expect "StatusText" "$(prop tern-testd.service StatusText)" "Serving on $SOCKET (socket-activated)"
}

t_ready() {
        expect "Type" "$(prop tern-testd.service Type)" notify || return 1
        # A Type=notify unit is "active" only after READY=1; PID 1 logged the message itself
        wait_for "READY=1 from PID $MAIN_PID in the journal" 5 \
                journal_has "Got notification message from PID $MAIN_PID (READY=1" _PID=1 || return 1
        expect "program" "$(in_ct readlink "/proc/$MAIN_PID/exe")" "$CT_TESTD"
}

JOURNAL_TAG=tern-systemd-$$-$RANDOM
t_journal() {
        local json
        ternctl call "$SOCKET" io.tern.Test.Log >/dev/null \
                "{\"message\": \"journal check $JOURNAL_TAG\", \"field\": \"$JOURNAL_TAG\"}" || return 1
        wait_for "TERN_TEST=$JOURNAL_TAG in the journal" 5 journal_has "$JOURNAL_TAG" "TERN_TEST=$JOURNAL_TAG" ||
                return 1
        json=$(in_ct journalctl --no-pager -o json "TERN_TEST=$JOURNAL_TAG")
        python3 - "$json" "$JOURNAL_TAG" "$MAIN_PID" <<'EOF'
import json, sys
lines = [l for l in sys.argv[1].splitlines() if l.strip()]
tag, pid = sys.argv[2], sys.argv[3]
if len(lines) != 1:
    sys.exit(f"expected one entry, got {len(lines)}")
e = json.loads(lines[0])
want = {
    "MESSAGE": f"journal check {tag}",
    "TERN_TEST": tag,
    "SYSLOG_IDENTIFIER": "tern/testd",
    "PRIORITY": "6",
    "SYSLOG_FACILITY": "2",
    "CODE_FUNC": "method_log",
    "_SYSTEMD_UNIT": "tern-testd.service",
    "_PID": pid,
}
# a field sent twice comes back as a list
bad = [f"{k} appears {len(v)} times: {v!r}" for k, v in e.items() if isinstance(v, list)]
bad += [f"{k}: expected {v!r}, got {e.get(k)!r}" for k, v in want.items() if e.get(k) != v]
if not str(e.get("CODE_FILE", "")).endswith("testd-varlink.c"):
    bad.append(f"CODE_FILE: {e.get('CODE_FILE')!r}")
if not str(e.get("CODE_LINE", "")).isdigit():
    bad.append(f"CODE_LINE: {e.get('CODE_LINE')!r}")
print(" ".join(f"{k}={e.get(k)}" for k in ["SYSLOG_IDENTIFIER", "PRIORITY", "SYSLOG_FACILITY",
                                           "CODE_FILE", "CODE_LINE", "CODE_FUNC"]))
if bad:
    sys.exit("\n".join(bad))
EOF
}

# The held client got its answer after more than max_idle: no idle exit while a client is there.
CLIENT_GONE_MS=
t_no_idle_exit_with_client() {
        wait_pid "$FIRST_HOLD_PID" "$WAIT_TIMEOUT" || { cat "$LAB/hold-first.out"; return 1; }
        CLIENT_GONE_MS=$(now_ms)
        expect "Sleep reply" "$(cat "$LAB/hold-first.out")" '{"tag":"first"}' || return 1
        expect "MainPID" "$(prop tern-testd.service MainPID)" "$MAIN_PID"
}

# After the last client left the service exits by itself, cleanly, the socket still listening.
t_idle_exit() {
        local elapsed
        wait_for "tern-testd.service inactive" $((MAX_IDLE + WAIT_TIMEOUT)) \
                state_is tern-testd.service inactive || return 1
        elapsed=$(($(now_ms) - CLIENT_GONE_MS))
        echo "exited ${elapsed} ms after the client left (max_idle ${MAX_IDLE}s)"
        # not before max_idle (less polling granularity), and not long after it
        [ "$elapsed" -ge $((MAX_IDLE * 1000 - 200)) ] || { echo "exited before max_idle"; return 1; }
        [ "$elapsed" -le $((MAX_IDLE * 1000 + 3000)) ] || { echo "exited long after max_idle"; return 1; }
        expect "Result" "$(prop tern-testd.service Result)" success || return 1
        expect "ExecMainStatus" "$(prop tern-testd.service ExecMainStatus)" 0 || return 1
        wait_for "STOPPING=1 from PID $MAIN_PID" 5 \
                journal_has "Got notification message from PID $MAIN_PID (.*STOPPING=1" _PID=1 || return 1
        expect "socket" "$(prop tern-testd.socket ActiveState)/$(prop tern-testd.socket SubState)" \
                active/listening
}

# With WatchdogSec=2s (drop-in) the next call starts a new instance, which pings the watchdog.
t_reactivate_watchdog() {
        local old=$MAIN_PID reply start
        printf '[Service]\nWatchdogSec=2s\n' >"$CT_ROOT/run/systemd/system/tern-testd.service.d/watchdog.conf"
        in_ct systemctl daemon-reload || return 1
        reply=$(ternctl --json call "$SOCKET" io.tern.Test.Echo '{"text": "again"}') || return 1
        expect "Echo reply" "$reply" '{"text":"again"}' || return 1
        MAIN_PID=$(prop tern-testd.service MainPID)
        if [ "$MAIN_PID" -le 0 ] || [ "$MAIN_PID" = "$old" ]; then
                echo "MainPID $MAIN_PID: expected a new process (was $old)"
                return 1
        fi
        expect "WatchdogUSec" "$(prop tern-testd.service WatchdogUSec)" 2s || return 1
        # keep it from idling out while we watch
        hold_connection 2500 watchdog
        start=$(prop tern-testd.service ActiveEnterTimestampMonotonic)
        wait_for "WATCHDOG=1 (WatchdogTimestamp after ActiveEnterTimestamp)" 5 \
                watchdog_pinged_after "$start" || return 1
        wait_for "WATCHDOG=1 from PID $MAIN_PID in the journal" 5 \
                journal_has "Got notification message from PID $MAIN_PID (WATCHDOG=1)" _PID=1 || return 1
        wait_pid "$HOLD_PID" "$WAIT_TIMEOUT" || return 1
        expect "ActiveState" "$(prop tern-testd.service ActiveState)" active || return 1
        expect "MainPID" "$(prop tern-testd.service MainPID)" "$MAIN_PID"
}

watchdog_pinged_after() {
        [ "$(prop tern-testd.service WatchdogTimestampMonotonic)" -gt "$1" ]
}

# client_connected - the service holds at least one accepted connection on $SOCKET
client_connected() {
        [ "$(in_ct ss -xHn state connected src "$SOCKET" | wc -l)" -ge 1 ]
}

# systemctl stop while a client is connected: SIGTERM, STOPPING=1, exit status 0, socket removed
t_stop() {
        # the client also starts the service if it has just idled out
        hold_connection 10000 stop
        wait_for "tern-testd.service active" "$WAIT_TIMEOUT" state_is tern-testd.service active || return 1
        wait_for "the client's connection accepted" 5 client_connected || return 1
        MAIN_PID=$(prop tern-testd.service MainPID)
        local t0 t1 rc=0
        t0=$(now_ms)
        in_ct systemctl stop tern-testd.socket tern-testd.service || rc=$?
        t1=$(now_ms)
        wait_pid "$HOLD_PID" "$WAIT_TIMEOUT" >/dev/null 2>&1 || true
        echo "systemctl stop: exit $rc, $((t1 - t0)) ms"
        [ "$rc" -eq 0 ] || return 1
        expect "service" "$(prop tern-testd.service ActiveState)" inactive || return 1
        # With both units stopped PID 1 unloads the service at once (ExecMainStatus= and Result=
        # are then defaults): its own log says how the main process ended.
        wait_for "PID 1: main process $MAIN_PID exited with status 0" 5 \
                journal_has "Child $MAIN_PID (tern-testd) died (code=exited, status=0/SUCCESS)" _PID=1 || {
                in_ct journalctl --no-pager -o cat _PID=1 | grep -F "Child $MAIN_PID "
                return 1
        }
        wait_for "STOPPING=1 from PID $MAIN_PID" 5 \
                journal_has "Got notification message from PID $MAIN_PID (.*STOPPING=1" _PID=1 || return 1
        expect "socket" "$(prop tern-testd.socket ActiveState)" inactive || return 1
        if in_ct test -e "$SOCKET"; then
                echo "$SOCKET still exists (RemoveOnStop=yes)"
                return 1
        fi
}

# tern.target pulls in what is enabled into it and stops it again (PartOf=)
t_target() {
        in_ct systemctl enable --runtime --quiet tern-testd.socket || return 1
        in_ct systemctl start tern.target || return 1
        expect "tern.target" "$(prop tern.target ActiveState)" active || return 1
        expect "socket pulled in by tern.target" \
                "$(prop tern-testd.socket ActiveState)/$(prop tern-testd.socket SubState)" active/listening || return 1
        ternctl call "$SOCKET" io.tern.Test.Ping '{}' >/dev/null || return 1
        in_ct systemctl stop tern.target || return 1
        expect "socket after stopping tern.target" "$(prop tern-testd.socket ActiveState)" inactive || return 1
        expect "service after stopping tern.target" "$(prop tern-testd.service ActiveState)" inactive || return 1
        in_ct systemctl disable --runtime --quiet tern-testd.socket
}

# Local submission through the real units: tern-sendmail -> tern-submit.socket -> tern-submit.service
# (User=tern, ProtectSystem=strict, ReadWritePaths=/var/spool/tern): a ready queue file owned by
# tern in incoming, and Postfix pickup's log line with its TERN_* fields.
t_submit() {
        local out id json
        in_ct systemctl start tern-submit.socket || return 1
        expect "tern-submit.socket" "$(prop tern-submit.socket SubState)" listening || return 1
        out=$(printf 'Subject: from the container\n\nhello\n' |
                in_ct env TERN_CONFIG=/etc/tern/main.cf "$CT_BUILD/src/sendmail/tern-sendmail" -f someone \
                        user@example.test 2>&1) || { echo "tern-sendmail: $out"; return 1; }
        wait_for "the pickup line in the journal" 5 journal_has "uid=0 from=<someone>" \
                SYSLOG_IDENTIFIER=tern/submit || return 1
        json=$(in_ct journalctl --no-pager -o json SYSLOG_IDENTIFIER=tern/submit TERN_UID=0)
        id=$(python3 -c 'import json, sys
e = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()][-1]
msg = e["MESSAGE"]
assert msg == e["TERN_QUEUE_ID"] + ": uid=0 from=<someone>", msg
assert e["_SYSTEMD_UNIT"] == "tern-submit.service", e["_SYSTEMD_UNIT"]
print(e["TERN_QUEUE_ID"])' "$json") || return 1
        echo "queued as $id"
        expect "queue file owner and mode" "$(in_ct stat -c '%U %a %F' "/var/spool/tern/incoming/$id")" \
                "tern 700 regular file" || return 1
        expect "service user" "$(prop tern-submit.service User)" tern || return 1
        in_ct systemctl stop tern-submit.socket tern-submit.service
}

# The connection cache through its real units: the first save through tern-scache.socket starts
# tern-scache.service (User=tern, PrivateNetwork=yes, RestrictAddressFamilies=AF_UNIX: the TCP
# connection it caches was made by the client and travels as a descriptor); a find hands the same
# connection back; `ternctl scache stats` prints the statistics lines; at stop they are logged.
# The client is a stdlib Python snippet (the host's /usr/bin/python3, visible in the container):
# ternctl cannot pass a connected TCP socket.
SCACHE_CLIENT='import socket, json, sys
def call(c, method, params, fds=()):
    msg = json.dumps({"method": "io.tern.Scache." + method, "parameters": params}).encode() + b"\0"
    if fds:
        socket.send_fds(c, [msg], list(fds))
    else:
        c.sendall(msg)
    buf, got = b"", []
    while not buf.endswith(b"\0"):
        data, fds_in, _, _ = socket.recv_fds(c, 65536, 4)
        if not data:
            sys.exit("tern-scache closed the connection")
        buf += data
        got += fds_in
    reply = json.loads(buf[:-1])
    if "error" in reply:
        sys.exit("%s: %s" % (method, reply["error"]))
    return reply.get("parameters", {}), got
listener = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(listener.getsockname())
server, _ = listener.accept()
c = socket.socket(socket.AF_UNIX)
c.settimeout(15)
c.connect("/run/tern/scache")
call(c, "SaveEndpoint", {"ttl": 2, "endpoint": "smtp\n127.0.0.1", "properties": "p=1\n", "fd": 0}, [client.fileno()])
client.close()
params, fds = call(c, "FindEndpoint", {"endpoint": "smtp\n127.0.0.1"})
assert params["properties"] == "p=1\n" and len(fds) == 1, (params, fds)
found = socket.socket(fileno=fds[0])
found.sendall(b"EHLO through the cache\r\n")
server.settimeout(15)
assert server.recv(100) == b"EHLO through the cache\r\n"
print("same connection")'

t_scache() {
        local out
        in_ct systemctl start tern-scache.socket || return 1
        expect "tern-scache.socket" "$(prop tern-scache.socket SubState)" listening || return 1
        expect "socket file" "$(in_ct stat -c '%a %U:%G %F' /run/tern/scache)" "660 root:tern socket" || return 1
        expect "tern-scache.service before the first save" "$(prop tern-scache.service ActiveState)" inactive ||
                return 1
        out=$(in_ct /usr/bin/python3 -c "$SCACHE_CLIENT" 2>&1) || { echo "client: $out"; return 1; }
        expect "client" "$out" "same connection" || return 1
        expect "tern-scache.service after a save" "$(prop tern-scache.service ActiveState)" active || return 1
        expect "service user" "$(prop tern-scache.service User)" tern || return 1
        out=$(in_ct env TERN_CONFIG=/etc/tern/main.cf "$CT_TERNCTL" --timeout 15 scache stats 2>&1) ||
                { echo "ternctl scache stats: $out"; return 1; }
        printf '%s\n' "$out"
        printf '%s\n' "$out" | grep -E '^statistics: start interval [A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8}$' >/dev/null ||
                { echo "no start interval line"; return 1; }
        printf '%s\n' "$out" | grep -Fx "statistics: address lookup hits=1 miss=0 success=100%" >/dev/null ||
                { echo "no address lookup line"; return 1; }
        printf '%s\n' "$out" | grep -Fx "statistics: max simultaneous domains=0 addresses=1 connection=1" \
                >/dev/null || { echo "no max simultaneous line"; return 1; }
        printf '%s\n' "$out" | grep -Fx "cached now: sessions=0 endpoints=0 destinations=0" >/dev/null ||
                { echo "no cached now line"; return 1; }
        in_ct systemctl stop tern-scache.socket tern-scache.service || return 1
        expect "tern-scache.service after stop" "$(prop tern-scache.service ActiveState)" inactive || return 1
        # the exit statistics, as Postfix's scache logs them
        wait_for "the exit statistics in the journal" 5 journal_has \
                "statistics: max simultaneous domains=0 addresses=1 connection=1" SYSLOG_IDENTIFIER=tern/scache
}

# submit_message SENDER RECIPIENT SUBJECT - tern-sendmail in the container (as root); waits for
# tern-submit's pickup line and sets id to the message's queue ID
submit_message() {
        local out
        out=$(printf 'Subject: %s\n\nhello\n' "$3" |
                in_ct env TERN_CONFIG=/etc/tern/main.cf "$CT_BUILD/src/sendmail/tern-sendmail" \
                        -f "$1" "$2" 2>&1) || { echo "tern-sendmail: $out"; return 1; }
        wait_for "the pickup line in the journal" 5 journal_has "from=<$1>" \
                SYSLOG_IDENTIFIER=tern/submit || return 1
        id=$(in_ct journalctl --no-pager -o cat SYSLOG_IDENTIFIER=tern/submit |
                sed -n "s/^\([A-Za-z0-9]*\): uid=0 from=<$1>\$/\1/p" | tail -n 1)
        [ -n "$id" ] || { echo "no queue ID in tern/submit's line"; return 1; }
        echo "queued as $id"
}

# The queue manager through the real units: tern.target starts tern-qmgr.service (Type=notify,
# User=tern), which serves io.tern.Qmgr on /run/tern/qmgr. A message submitted with tern-sendmail
# to a recipient that main.cf routes to discard goes incoming -> active -> tern-discard@.service
# (one instance per qmgr connection, Accept=yes, DynamicUser=yes, the queue file passed as a
# descriptor) -> removed; every line about it carries TERN_QUEUE_ID=. tern-qmgr-wakeup.timer is
# active and its service (ternctl qmgr trigger wakeup, DynamicUser=yes) succeeds.
QMGR_CF="$MAIN_CF
myhostname = tern.test
mydestination = localhost
default_transport = discard
relay_transport = discard
local_transport = discard
relayhost ="
QMGR_SENDER=qmgr-check-$$

t_qmgr() {
        local main_pid out id json n
        write_main_cf "$QMGR_CF"
        in_ct systemctl start tern.target || return 1
        wait_for "tern-qmgr.service active" "$WAIT_TIMEOUT" state_is tern-qmgr.service active || return 1
        expect "Type" "$(prop tern-qmgr.service Type)" notify || return 1
        expect "service user" "$(prop tern-qmgr.service User)" tern || return 1
        main_pid=$(prop tern-qmgr.service MainPID)
        wait_for "READY=1 from tern-qmgr (PID $main_pid)" 5 \
                journal_has "Got notification message from PID $main_pid (READY=1" _PID=1 || return 1
        expect "socket file" "$(in_ct stat -c '%a %U:%G %F' /run/tern/qmgr)" "666 root:tern socket" || return 1
        expect "tern-discard.socket" "$(prop tern-discard.socket SubState)" listening || return 1
        expect "tern-qmgr-wakeup.timer" "$(prop tern-qmgr-wakeup.timer ActiveState)" active || return 1

        # ternctl qmgr status over /run/tern/qmgr (as root, and as a user with no rights at all)
        out=$(ternctl qmgr status 2>&1) || { echo "ternctl qmgr status: $out"; return 1; }
        printf '%s\n' "$out" | grep -E '^in core: messages [0-9]+/[0-9]+ recipients [0-9]+/[0-9]+$' >/dev/null ||
                { printf '%s\n' "$out"; echo "no 'in core' line"; return 1; }
        json=$(in_ct setpriv --reuid=65534 --regid=65534 --clear-groups "$CT_TERNCTL" --timeout 15 --json \
                qmgr status 2>&1) || { echo "ternctl qmgr status as nobody: $json"; return 1; }
        python3 -c 'import json, sys
s = json.loads(sys.argv[1])
assert s["messageLimit"] > 0 and s["recipientLimit"] > 0, s' "$json" || return 1

        # a message to a recipient routed to discard: delivered by tern-discard@.service, removed
        submit_message "$QMGR_SENDER" user@example.test "through the queue manager" || return 1
        wait_for "\"$id: removed\" from tern/qmgr" "$WAIT_TIMEOUT" journal_has "^$id: removed\$" \
                SYSLOG_IDENTIFIER=tern/qmgr "TERN_QUEUE_ID=$id" || {
                in_ct journalctl --no-pager -o short "TERN_QUEUE_ID=$id"
                in_ct journalctl --no-pager -o short -u tern-qmgr.service -n 20
                return 1
        }
        in_ct journalctl --no-pager -o cat "TERN_QUEUE_ID=$id"
        journal_has "^$id: from=<$QMGR_SENDER@[^>]*>, size=[0-9]*, nrcpt=1 (queue active)\$" \
                SYSLOG_IDENTIFIER=tern/qmgr "TERN_QUEUE_ID=$id" || { echo "no 'queue active' line"; return 1; }
        json=$(in_ct journalctl --no-pager -o json SYSLOG_IDENTIFIER=tern/discard "TERN_QUEUE_ID=$id")
        python3 -c 'import json, re, sys
e = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
assert len(e) == 1, "expected one tern/discard line, got %d" % len(e)
e = e[0]
assert re.fullmatch(r"%s: to=<user@example\.test>, relay=none, delay=[0-9.]+, "
                    r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, status=sent \(example\.test\)"
                    % sys.argv[2], e["MESSAGE"]), e["MESSAGE"]
assert re.fullmatch(r"tern-discard@[0-9]+-[0-9]+-[0-9]+\.service", e["_SYSTEMD_UNIT"]), e["_SYSTEMD_UNIT"]
print("delivered by", e["_SYSTEMD_UNIT"])' "$json" "$id" || return 1
        n=$(in_ct find /var/spool/tern -type f -name "$id" | wc -l)
        expect "queue files named $id left in the spool" "$n" 0 || return 1

        # the timer's service: a wakeup trigger from a dynamic user
        in_ct systemctl start tern-qmgr-wakeup.service || return 1
        expect "tern-qmgr-wakeup.service result" "$(prop tern-qmgr-wakeup.service Result)" success || return 1

        in_ct systemctl stop tern.target || return 1
        # PartOf= queues tern-qmgr's stop with the target's; it may still be finishing
        wait_for "tern-qmgr.service inactive after stopping tern.target" 10 state_is tern-qmgr.service inactive ||
                return 1
        write_main_cf "$MAIN_CF"
}

# Fast flush through the real units: mail for a relay domain routed to retry: is deferred by
# tern-error@ (-t retry); tern-qmgr's Add reaches tern-flush.socket, which starts
# tern-flush.service (User=tern) and the queue ID lands in /var/spool/tern/flush/cust_test.
# tern-flush-refresh.timer (shortened by a runtime drop-in) runs tern-flush-refresh.service
# (ternctl flush refresh, User=tern), which flushes the logfile once it is older than
# fast_flush_refresh_time: qmgr opens the message again. tern-sendmail -qR does the same at
# once; tern-flush exits after max_idle and its socket stays.
FLUSH_CF="$QMGR_CF
relay_domains = cust.test
fast_flush_refresh_time = 1s
[transport]
cust.test = retry:"
FLUSH_SENDER=flush-check-$$

active_count() {
        in_ct journalctl --no-pager -o cat SYSLOG_IDENTIFIER=tern/qmgr "TERN_QUEUE_ID=$1" | grep -c '(queue active)$'
}
active_at_least() {
        [ "$(active_count "$1")" -ge "$2" ]
}

t_flush() {
        local out id n
        write_main_cf "$FLUSH_CF"
        in_ct systemctl start tern.target || return 1
        wait_for "tern-qmgr.service active" "$WAIT_TIMEOUT" state_is tern-qmgr.service active || return 1
        expect "tern-flush.socket" "$(prop tern-flush.socket SubState)" listening || return 1
        expect "socket file" "$(in_ct stat -c '%a %U:%G %F' /run/tern/flush)" "666 root:tern socket" || return 1
        expect "tern-flush-refresh.timer" "$(prop tern-flush-refresh.timer ActiveState)" active || return 1

        submit_message "$FLUSH_SENDER" user@cust.test "for a customer that pulls its mail" || return 1
        wait_for "status=deferred from tern/error" "$WAIT_TIMEOUT" journal_has "status=deferred" \
                SYSLOG_IDENTIFIER=tern/error "TERN_QUEUE_ID=$id" || return 1
        wait_for "$id in the fast flush logfile" "$WAIT_TIMEOUT" \
                in_ct grep -qx "$id" /var/spool/tern/flush/cust_test || {
                in_ct journalctl --no-pager -o cat -u tern-flush.service -u tern-qmgr.service -n 20
                return 1
        }
        expect "tern-flush.service user" "$(prop tern-flush.service User)" tern || return 1
        expect "logfile owner and mode" "$(in_ct stat -c '%U %a' /var/spool/tern/flush/cust_test)" "tern 600" ||
                return 1
        expect "queue active lines before any flush" "$(active_count "$id")" 1 || return 1

        # the timer: fires within seconds with the drop-in; its refresh flushes the stale logfile
        mkdir -p "$CT_ROOT/run/systemd/system/tern-flush-refresh.timer.d"
        printf '[Timer]\nOnActiveSec=1s\nOnUnitActiveSec=2s\nAccuracySec=100ms\n' \
                >"$CT_ROOT/run/systemd/system/tern-flush-refresh.timer.d/test.conf"
        in_ct systemctl daemon-reload || return 1
        in_ct systemctl restart tern-flush-refresh.timer || return 1
        wait_for "the timer's refresh opens $id again" "$WAIT_TIMEOUT" active_at_least "$id" 2 || {
                in_ct journalctl --no-pager -o cat -u tern-flush-refresh.service -u tern-flush.service -n 20
                return 1
        }
        expect "tern-flush-refresh.service result" "$(prop tern-flush-refresh.service Result)" success || return 1
        rm -rf "$CT_ROOT/run/systemd/system/tern-flush-refresh.timer.d"
        in_ct systemctl daemon-reload || return 1
        in_ct systemctl restart tern-flush-refresh.timer || return 1

        # sendmail -qR: the site's mail at once
        wait_for "$id back in the logfile" "$WAIT_TIMEOUT" in_ct grep -qx "$id" /var/spool/tern/flush/cust_test ||
                return 1
        n=$(active_count "$id")
        out=$(in_ct env TERN_CONFIG=/etc/tern/main.cf "$CT_BUILD/src/sendmail/tern-sendmail" -qR cust.test 2>&1) ||
                { echo "tern-sendmail -qR: $out"; return 1; }
        wait_for "-qR opens $id again" "$WAIT_TIMEOUT" active_at_least "$id" $((n + 1)) || return 1
        out=$(ternctl flush list 2>&1) || { echo "ternctl flush list: $out"; return 1; }
        printf '%s\n' "$out"
        printf '%s\n' "$out" | grep -E '^cust_test ' >/dev/null || { echo "no cust_test in the list"; return 1; }

        # idle exit after max_idle; the socket stays and the next call starts it again
        wait_for "tern-flush.service exits when idle" $((MAX_IDLE * 10)) state_is tern-flush.service inactive ||
                return 1
        expect "tern-flush.socket after the idle exit" "$(prop tern-flush.socket SubState)" listening || return 1
        ternctl flush send-file "$id" >/dev/null || return 1
        wait_for "send-file opens $id again" "$WAIT_TIMEOUT" active_at_least "$id" $((n + 2)) || return 1

        in_ct systemctl stop tern.target || return 1
        wait_for "tern-qmgr.service inactive after stopping tern.target" 10 state_is tern-qmgr.service inactive ||
                return 1
        write_main_cf "$MAIN_CF"
}

# SMTP delivery through the real units: main.cf sends all mail to relayhost = [127.0.0.1]:PORT,
# where Postfix's smtp-sink (started on the host; the container shares its network) takes it.
# tern-qmgr connects to tern-smtp.socket, which starts tern-smtp@.service (Accept=yes,
# DynamicUser=yes, no spool access, AF_INET allowed) for each connection; the session is saved
# to tern-scache (socket-activated, reached through the agent's group tern) and the second
# message goes over it (conn_use=2 or more): one SMTP session for all the messages.
SMTP_SENDER=smtp-check-$$
SINK_PID=

t_smtp() {
        local port id1 id2 json sessions
        if ! bash "$SOURCE_ROOT/tools/fetch-postfix.sh" "$BUILD_ROOT/postfix-root" >/dev/null 2>&1; then
                echo "smtp-sink: Debian's postfix package cannot be unpacked (tools/fetch-postfix.sh)"
                return 1
        fi
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        # fd 9 (the run's lock) closed: a sink left behind must not hold it
        LD_LIBRARY_PATH="$BUILD_ROOT/postfix-root/usr/lib/postfix" "$BUILD_ROOT/postfix-root/usr/sbin/smtp-sink" \
                -u nobody -c "127.0.0.1:$port" 10 >"$LAB/smtp-sink.out" 2>&1 9<&- &
        SINK_PID=$!
        write_main_cf "$QMGR_CF
default_transport = smtp
relayhost = [127.0.0.1]:$port
inet_protocols = ipv4
smtp_connection_cache_destinations = 127.0.0.1"
        in_ct systemctl start tern.target || return 1
        wait_for "tern-qmgr.service active" "$WAIT_TIMEOUT" state_is tern-qmgr.service active || return 1
        expect "tern-smtp.socket" "$(prop tern-smtp.socket SubState)" listening || return 1
        expect "socket file" "$(in_ct stat -c '%a %U:%G %F' /run/tern/smtp)" "660 root:tern socket" || return 1

        submit_message "$SMTP_SENDER" one@example.test "first over SMTP" || return 1
        id1=$id
        wait_for "\"$id1: removed\"" "$WAIT_TIMEOUT" journal_has "^$id1: removed\$" SYSLOG_IDENTIFIER=tern/qmgr || {
                in_ct journalctl --no-pager -o cat -u 'tern-smtp@*' -u tern-smtp.socket -u tern-qmgr.service -n 60
                return 1
        }
        submit_message "$SMTP_SENDER" two@example.test "second over SMTP" || return 1
        id2=$id
        wait_for "\"$id2: removed\"" "$WAIT_TIMEOUT" journal_has "^$id2: removed\$" SYSLOG_IDENTIFIER=tern/qmgr || {
                in_ct journalctl --no-pager -o cat -n 30
                return 1
        }
        in_ct journalctl --no-pager -o cat SYSLOG_IDENTIFIER=tern/smtp
        json=$(in_ct journalctl --no-pager -o json SYSLOG_IDENTIFIER=tern/smtp)
        python3 -c 'import json, re, sys
e = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
by_id = {x.get("TERN_QUEUE_ID"): x for x in e}
# mail left deferred by the earlier checks may go first over the same session: the first
# message may already be on a reused session; the second is on one for sure
for qid, rcpt, use in ((sys.argv[2], "one", "(?:conn_use=[0-9]+, )?"), (sys.argv[3], "two", "conn_use=([2-9]|[1-9][0-9]+), ")):
    x = by_id.get(qid)
    assert x, "no tern/smtp line for %s" % qid
    want = (r"%s: to=<%s@example\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%s, %sdelay=[0-9.]+, "
            r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, status=sent \(250 .*\)" % (qid, rcpt, sys.argv[4], use))
    assert re.fullmatch(want, x["MESSAGE"]), x["MESSAGE"]
    assert re.fullmatch(r"tern-smtp@[0-9]+-[0-9]+-[0-9]+\.service", x["_SYSTEMD_UNIT"]), x["_SYSTEMD_UNIT"]
    print(qid, "delivered by", x["_SYSTEMD_UNIT"])' "$json" "$id1" "$id2" "$port" || return 1
        expect "tern-scache.service (activated by the save)" "$(prop tern-scache.service ActiveState)" active || return 1

        in_ct systemctl stop tern.target || return 1
        wait_for "tern-qmgr.service inactive after stopping tern.target" 10 state_is tern-qmgr.service inactive ||
                return 1
        in_ct systemctl stop tern-scache.service >/dev/null 2>&1 || true
        # smtp-sink prints its counters as sessions end: one session for every message
        wait_for "smtp-sink's session ends" 10 grep -q "quit=0 mesg=[2-9]" "$LAB/smtp-sink.out" || {
                cat "$LAB/smtp-sink.out"
                return 1
        }
        kill "$SINK_PID" 2>/dev/null
        wait "$SINK_PID" 2>/dev/null
        SINK_PID=
        sessions=$(sed 's/sess=/\nsess=/g' "$LAB/smtp-sink.out" | sed -n 's/^sess=\([0-9]*\) .*/\1/p' | tail -n 1)
        expect "SMTP sessions for all the messages" "$sessions" 1 || { cat "$LAB/smtp-sink.out"; return 1; }
        write_main_cf "$MAIN_CF"
}

# The SMTP server through its real units: tern-smtpd.socket (listening on 127.0.0.1:$SMTPD_PORT,
# a drop-in of install_tern's) starts tern-smtpd.service (Type=notify, User=tern, hardened) at
# the first connection; a message sent over SMTP from the host (the container shares its
# network) is answered "250 2.0.0 Ok: queued as ID" and goes on through tern-qmgr and
# tern-smtp@ to Postfix's smtp-sink on the host, as in t_smtp. The journal has tern-smtpd's lines
# with SYSLOG_IDENTIFIER=tern/smtpd and their TERN_CLIENT= (and TERN_QUEUE_ID=) fields.
# smtpd_peername_lookup = no: the container has no /etc/hosts, and the client's name must not be
# looked up in the DNS; the client is "unknown[127.0.0.1]".
SMTPD_SENDER=smtpd-check-$$
SMTPD_PORT=
# the client: argv PORT SENDER RECIPIENT; prints the queue ID of the 250 reply
SMTPD_CLIENT='import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        line = f.readline().decode()
        if not line.endswith("\r\n"):
            sys.exit("bad reply line %r after %r" % (line, lines))
        lines.append(line[:-2])
        if line[3:4] != "-":
            return "\n".join(lines)
def cmd(line, want):
    if line is not None:
        s.sendall(line.encode() + b"\r\n")
    r = reply()
    if not r.startswith(want):
        sys.exit("%s: expected %r, got %r" % (line or "greeting", want, r))
    return r
cmd(None, "220 ")
cmd("EHLO client.test", "250-")
cmd("MAIL FROM:<%s>" % sys.argv[2], "250 2.1.0 Ok")
cmd("RCPT TO:<%s>" % sys.argv[3], "250 2.1.5 Ok")
cmd("DATA", "354 ")
s.sendall(b"Subject: over SMTP into the container\r\n\r\nhello\r\n.\r\n")
r = cmd(None, "250 2.0.0 Ok: queued as ")
cmd("QUIT", "221 ")
print(r.split()[-1])'

t_smtpd() {
        local port id main_pid json out
        if ! bash "$SOURCE_ROOT/tools/fetch-postfix.sh" "$BUILD_ROOT/postfix-root" >/dev/null 2>&1; then
                echo "smtp-sink: Debian's postfix package cannot be unpacked (tools/fetch-postfix.sh)"
                return 1
        fi
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        # fd 9 (the run's lock) closed: a sink left behind must not hold it
        LD_LIBRARY_PATH="$BUILD_ROOT/postfix-root/usr/lib/postfix" "$BUILD_ROOT/postfix-root/usr/sbin/smtp-sink" \
                -u nobody -c "127.0.0.1:$port" 10 >"$LAB/smtp-sink-smtpd.out" 2>&1 9<&- &
        SINK_PID=$!
        write_main_cf "$QMGR_CF
default_transport = smtp
relayhost = [127.0.0.1]:$port
inet_protocols = ipv4
smtpd_peername_lookup = no"
        in_ct systemctl start tern.target || return 1
        wait_for "tern-qmgr.service active" "$WAIT_TIMEOUT" state_is tern-qmgr.service active || return 1
        expect "tern-smtpd.socket" "$(prop tern-smtpd.socket ActiveState)/$(prop tern-smtpd.socket SubState)" \
                active/listening || return 1
        expect "tern-smtpd.socket listens on" "$(prop tern-smtpd.socket Listen)" "127.0.0.1:$SMTPD_PORT (Stream)" ||
                return 1
        expect "tern-smtpd.service before the first connection" "$(prop tern-smtpd.service ActiveState)" inactive ||
                return 1

        out=$(timeout "$CMD_TIMEOUT" python3 -c "$SMTPD_CLIENT" "$SMTPD_PORT" "$SMTPD_SENDER@client.test" \
                rcpt@example.test 2>&1) || {
                echo "SMTP client: $out"
                in_ct journalctl --no-pager -o cat -u tern-smtpd.socket -u tern-smtpd.service -n 30
                return 1
        }
        [[ $out =~ ^[0-9A-Za-z]{10,}$ ]] || { echo "no queue ID from the 250 reply: $out"; return 1; }
        id=$out
        echo "queued as $id"

        # the connection started the service: Type=notify, READY=1, the tern user
        wait_for "tern-smtpd.service active" "$WAIT_TIMEOUT" state_is tern-smtpd.service active || return 1
        expect "Type" "$(prop tern-smtpd.service Type)" notify || return 1
        expect "service user" "$(prop tern-smtpd.service User)" tern || return 1
        main_pid=$(prop tern-smtpd.service MainPID)
        wait_for "READY=1 from tern-smtpd (PID $main_pid)" 5 \
                journal_has "Got notification message from PID $main_pid (READY=1" _PID=1 || return 1

        # on through tern-qmgr and tern-smtp@ to the sink
        wait_for "\"$id: removed\"" "$WAIT_TIMEOUT" journal_has "^$id: removed\$" SYSLOG_IDENTIFIER=tern/qmgr || {
                in_ct journalctl --no-pager -o cat "TERN_QUEUE_ID=$id"
                in_ct journalctl --no-pager -o cat -u 'tern-smtp@*' -u tern-qmgr.service -n 30
                return 1
        }
        in_ct journalctl --no-pager -o cat "TERN_QUEUE_ID=$id"
        journal_has "^$id: to=<rcpt@example\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$port, .*status=sent (250 " \
                SYSLOG_IDENTIFIER=tern/smtp "TERN_QUEUE_ID=$id" || { echo "no status=sent line"; return 1; }

        # tern-smtpd's own lines, with their fields
        json=$(in_ct journalctl --no-pager -o json SYSLOG_IDENTIFIER=tern/smtpd)
        python3 -c 'import json, sys
e = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
qid, pid = sys.argv[2], sys.argv[3]
want = ["connect from unknown[127.0.0.1]", "%s: client=unknown[127.0.0.1]" % qid,
        "disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"]
got = [x["MESSAGE"] for x in e]
assert got == want, got
for x in e:
    assert x.get("TERN_CLIENT") == "unknown[127.0.0.1]", x
    assert x["_SYSTEMD_UNIT"] == "tern-smtpd.service" and x["_PID"] == pid, x
    assert x["PRIORITY"] == "6", x
assert e[1].get("TERN_QUEUE_ID") == qid, e[1]
print("\n".join(got))' "$json" "$id" "$main_pid" || return 1

        in_ct systemctl stop tern.target || return 1
        wait_for "tern-smtpd.service inactive after stopping tern.target" 10 state_is tern-smtpd.service inactive ||
                return 1
        expect "tern-smtpd.service result" "$(prop tern-smtpd.service Result)" success || return 1
        wait_for "tern-qmgr.service inactive after stopping tern.target" 10 state_is tern-qmgr.service inactive ||
                return 1
        in_ct systemctl stop tern-scache.service >/dev/null 2>&1 || true
        # smtp-sink prints its counters as sessions end: the message arrived
        wait_for "smtp-sink got the message" 10 grep -q "mesg=[1-9]" "$LAB/smtp-sink-smtpd.out" || {
                cat "$LAB/smtp-sink-smtpd.out"
                return 1
        }
        kill "$SINK_PID" 2>/dev/null
        wait "$SINK_PID" 2>/dev/null
        SINK_PID=
        write_main_cf "$MAIN_CF"
}

# A bad value in main.cf: the daemon does not start and says why, with file, line and parameter
t_bad_config() {
        local rc=0 invocation
        write_main_cf "$MAIN_CF
max_idle = ten"
        in_ct systemctl start tern-testd.service || rc=$?
        echo "systemctl start: exit $rc"
        [ "$rc" -ne 0 ] || { echo "started despite max_idle = ten"; return 1; }
        expect "ActiveState" "$(prop tern-testd.service ActiveState)" failed || return 1
        expect "ExecMainStatus" "$(prop tern-testd.service ExecMainStatus)" 1 || return 1
        # this start attempt's own lines, at priority err or worse
        invocation=$(prop tern-testd.service InvocationID)
        wait_for "the error in the journal" 5 journal_has "main.cf:4: .*max_idle" -p err \
                "_SYSTEMD_INVOCATION_ID=$invocation" SYSLOG_IDENTIFIER=tern/testd || {
                in_ct journalctl --no-pager -o short "_SYSTEMD_INVOCATION_ID=$invocation"
                return 1
        }
        in_ct journalctl --no-pager -o cat -p err "_SYSTEMD_INVOCATION_ID=$invocation" SYSLOG_IDENTIFIER=tern/testd
        write_main_cf "$MAIN_CF"
        in_ct systemctl stop tern-testd.socket || return 1
        in_ct systemctl reset-failed tern-testd.service
}

# ---- main --------------------------------------------------------------------------------------

T0=$(now_ms)
boot_container
install_tern

check "sysusers.d: tern is a system user and group, home /var/spool/tern" t_sysusers
check "tmpfiles.d: spool 0755 root, queue directories 0700 tern, /run/tern 0755 root:tern" t_tmpfiles
check "units load without complaint" t_units_loaded
check "systemctl start tern-testd.socket: listening, socket file 0660 root:tern" t_socket_start
check "the service is not running before the first call" t_not_running_before_call
check "a call activates the service; a second call reaches the same instance" t_call_activates
check "ActiveState/SubState/StatusText: active, running, the scaffold's STATUS" t_status
check "Type=notify: READY=1 arrived, the program is tern-testd" t_ready
check "journal: TERN_TEST= line with identifier, priority, facility, CODE_*" t_journal
check "no idle exit while a client is connected (longer than max_idle)" t_no_idle_exit_with_client
check "idle exit after max_idle: clean, STOPPING=1, socket still listening" t_idle_exit
check "the next call re-activates it; WATCHDOG=1 arrives (WatchdogSec=2s)" t_reactivate_watchdog
check "systemctl stop with a client connected: exit 0, STOPPING=1, socket removed" t_stop
check "tern.target starts the sockets wanted by it and stops them (PartOf=)" t_target
check "tern-sendmail -> tern-submit.socket: a ready queue file owned by tern, pickup's log line" t_submit
check "tern-scache.socket: a save activates the service, a find returns the connection, ternctl scache stats" t_scache
check "tern.target starts tern-qmgr; a message routed to discard is delivered by tern-discard@ and removed" t_qmgr
check "fast flush: qmgr's Add activates tern-flush; the refresh timer, sendmail -qR and send-file flush the site" t_flush
check "SMTP: tern-qmgr -> tern-smtp@ (DynamicUser) -> smtp-sink; the session reused through tern-scache" t_smtp
check "tern-smtpd.socket on loopback: SMTP in, tern-smtpd.service (notify, tern) started, on to smtp-sink" t_smtpd
check "bad main.cf (max_idle = ten): no start, error in the journal" t_bad_config

echo "1..$N"
echo "# run time $((($(now_ms) - T0) / 1000)) s (plus power-off)"
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
