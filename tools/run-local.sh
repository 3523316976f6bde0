#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-local.sh - set everything up and run tern on a local spool under the checkout
#
# Installs the Debian packages (tools/deps.sh), builds into build/, writes
# run/main.cf (queue_directory run/spool, runtime_directory run/sockets) and
# starts tern's daemons socket-activated with systemd-socket-activate, the way
# systemd's .socket units start them on a real host: the first call starts the
# daemon, it exits after max_idle with no client, the next call starts it again.
# Then it shows a few ternctl calls. It keeps serving until Ctrl-C when run on a
# terminal; with --demo (or no terminal) it stops after the demonstration.
#
# What exists today: tern-submit (local submission: tern-sendmail queues mail
# into run/spool/incoming), tern-scache (the connection cache the SMTP delivery
# agents will use) and tern-testd, the service scaffold's test daemon.
# Each daemon that lands adds itself to DAEMONS below.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
demo_only=false
[[ "${1:-}" == "--demo" || ! -t 0 ]] && demo_only=true

bash tools/deps.sh
[[ -f build/build.ninja ]] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build >/dev/null

run="$top/run"
mkdir -p "$run/spool" "$run/sockets"
cat > "$run/main.cf" <<CF
# tern on a local spool: written by tools/run-local.sh
queue_directory = $run/spool
runtime_directory = $run/sockets
syslog_name = tern
myhostname = relay.tern.test
myorigin = tern.test
# short, so that the demonstration shows an idle exit and a re-activation
max_idle = 5s
CF
export TERN_CONFIG="$run/main.cf"
ternctl="$top/build/src/ctl/ternctl"

# program  socket  (socket-activated like the .socket unit does)
DAEMONS=(
        "build/src/submit/tern-submit submit"
        "build/src/scache/tern-scache scache"
        "build/tests/tern-testd test"
)

pids=()
cleanup() {
        # each loop, then what it started (systemd-socket-activate, which became the daemon)
        local p kids
        for p in "${pids[@]}"; do
                kids=$(pgrep -P "$p" || true)
                kill "$p" 2>/dev/null || true
                [[ -z "$kids" ]] || kill $kids 2>/dev/null || true
        done
        wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# activate PROGRAM SOCKET - listen on SOCKET; start PROGRAM on the first
# connection; after it exits (max_idle), listen again: systemd's .socket units.
activate() {
        local program=$1 sock="$run/sockets/$2"
        while :; do
                rm -f "$sock"
                systemd-socket-activate -l "$sock" --fdname=varlink -E TERN_CONFIG -E TERN_LOG \
                        "$top/$program" -c "$run/main.cf" || sleep 1
        done
}

for d in "${DAEMONS[@]}"; do
        read -r program sock <<<"$d"
        activate "$program" "$sock" 2>>"$run/daemons.log" &
        pids+=($!)
        for _ in $(seq 100); do [[ -S "$run/sockets/$sock" ]] && break; sleep 0.05; done
done

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
show() { say "$*"; "$@" || echo "(exit status $?)"; }

echo "tern is listening under $run/sockets (log: $run/daemons.log)"
show "$ternctl" introspect test io.tern.Test
show "$ternctl" call test io.tern.Test.Echo '{"text": "hello from ternctl"}'
running() { pgrep -a -x tern-testd || echo "tern-testd is not running; its socket still listens"; }
show running
show "$ternctl" call test io.tern.Test.Echo '{"txt": "a typo"}'
show "$ternctl" call test io.tern.Test.Fail '{"reason": "an interface error, with its parameters"}'
show "$ternctl" config -n
say "# after max_idle (5 s) with no client the daemon exits; the socket stays"
for _ in $(seq 150); do pgrep -x tern-testd >/dev/null || break; sleep 0.1; done
show running
show "$ternctl" call test io.tern.Test.Ping
show running

say "# local submission: tern-sendmail queues a message durably into run/spool/incoming"
sendmail="$top/build/src/sendmail/tern-sendmail"
printf 'Subject: hello from tern\n\nThis message waits in the queue.\n' >"$run/message.txt"
show "$sendmail" -f operator site-admin@customer.example <"$run/message.txt"
show ls -l "$run/spool/incoming"
show grep -F "tern/submit:" "$run/daemons.log"
show "$sendmail" -f operator 'not an address@' <"$run/message.txt"

say "# the connection cache: empty until the SMTP delivery agent lands"
show "$ternctl" scache stats
show "$ternctl" call scache io.tern.Scache.FindDestination '{"destination": "smtp\nexample.com\n0\n0\n0\n"}'
echo
echo "The daemons' log lines: $run/daemons.log"

if ! $demo_only; then
        echo
        echo "tern is running. Try: TERN_CONFIG=$run/main.cf $ternctl introspect test"
        echo "Ctrl-C stops it."
        wait
fi
