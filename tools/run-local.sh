#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-local.sh - set everything up and run a whole tern on a local spool under the checkout
#
# Installs the Debian packages (tools/deps.sh), builds into build/, unpacks Postfix's smtp-sink
# (tools/fetch-postfix.sh: Debian's postfix package, not installed, nothing configured), writes
# run/main.cf (queue_directory run/spool, runtime_directory run/sockets) and starts tern the way
# its units do on a real host:
#   - the socket-activated daemons (tern-submit, tern-scache, tern-flush, and tern-testd, the
#     service scaffold's test daemon) under systemd-socket-activate, as their
#     .socket units start them: the first call starts the daemon, it exits after
#     max_idle with no client, the next call starts it again;
#   - tern-qmgr, which is long-running (tern.target starts it), directly;
#   - tern-smtpd, the SMTP server, directly on 127.0.0.1:2525 (smtpd_listen; a free loopback
#     port if 2525 is taken), where its unit would listen on port 25;
#   - the delivery agents tern-smtp (transports smtp and relay), tern-discard, tern-error and
#     tern-error -t retry, directly: run by hand, an agent binds its socket and forks a child
#     per connection, as Accept=yes does under systemd.
# The destination is smtp-sink on loopback: main.cf sends all mail to relayhost =
# [127.0.0.1]:PORT, so nothing can reach the network. Two relay domains, down.example and
# later.example, go to a second loopback port where nothing listens at first: their mail is
# deferred, and fast flush delivers it once a sink answers there.
#
# Then it shows a few ternctl calls and a message's whole life: tern-sendmail -> tern-submit ->
# run/spool/incoming -> tern-qmgr -> tern-smtp -> smtp-sink -> removed; sessions reused through
# tern-scache (conn_use=2); a message received over SMTP by tern-smtpd and delivered the same
# way; the deferred sites, `ternctl queue list`, `ternctl flush list`, `sendmail -qR
# down.example` once the site is back, and an SMTP ETRN for the second site, later.example,
# which tern-smtpd passes to tern-flush. It keeps serving until Ctrl-C when run on a
# terminal; with --demo (or no terminal) it stops after the demonstration. Each daemon that
# lands adds itself to DAEMONS (socket-activated) or SERVERS (started directly) below.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
demo_only=false
[[ "${1:-}" == "--demo" || ! -t 0 ]] && demo_only=true

bash tools/deps.sh --sink
[[ -f build/build.ninja ]] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build >/dev/null
postfix_root="$top/build/postfix-root"
if ! bash tools/fetch-postfix.sh "$postfix_root"; then
        echo "run-local.sh: cannot unpack Debian's postfix package for smtp-sink (apt-get download postfix)" >&2
        exit 1
fi

run="$top/run"
mkdir -p "$run/spool" "$run/sockets" "$run/sink"
# two free loopback ports: the relayhost's sink, and the site that is down; and tern-smtpd's,
# 2525 unless that is taken
read -r sink_port down_port smtpd_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s[:2]: x.bind(("127.0.0.1", 0))
try:
    s[2].bind(("127.0.0.1", 2525))
except OSError:
    s[2].bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
cat > "$run/main.cf" <<CF
# tern on a local spool: written by tools/run-local.sh
queue_directory = $run/spool
runtime_directory = $run/sockets
syslog_name = tern
myhostname = relay.tern.test
myorigin = tern.test
# short, so that the demonstration shows an idle exit and a re-activation
max_idle = 5s
# All mail goes to smtp-sink on loopback (Postfix's test server): nothing leaves this
# machine. Mail for this host itself goes to the discard agent.
default_transport = smtp
relayhost = [127.0.0.1]:$sink_port
relay_transport = relay
local_transport = discard
inet_protocols = ipv4
# keep sessions to the sink in tern-scache and reuse them (conn_use=2, 3, ...)
smtp_connection_cache_destinations = 127.0.0.1
# a local run needs no more; the default (20000) holds as many files open
qmgr_message_active_limit = 1000
# a site that is down is retried soon, not after the default backoff
minimal_backoff_time = 10s

# the customers whose sites are down pull their mail with ETRN (or sendmail -qR):
# fast flush keeps a logfile of their deferred mail (fast_flush_domains = \$relay_domains)
relay_domains = down.example, later.example

# tern-smtpd, the SMTP server, on loopback (under systemd its socket unit listens on port 25).
# mynetworks (default: loopback) may relay anywhere, and only mynetworks may send ETRN.
smtpd_listen = 127.0.0.1:$smtpd_port
smtpd_etrn_restrictions = permit_mynetworks, reject

[transport]
# sites that are down: nothing listens on their port until the demo starts a sink there
down.example = relay:[127.0.0.1]:$down_port
later.example = relay:[127.0.0.1]:$down_port
CF
export TERN_CONFIG="$run/main.cf"
ternctl="$top/build/src/ctl/ternctl"

# program  socket  (socket-activated like the .socket unit does)
DAEMONS=(
        "build/src/submit/tern-submit submit"
        "build/src/scache/tern-scache scache"
        "build/src/flush/tern-flush flush"
        "build/tests/tern-testd test"
)

# program [arguments]  socket  (long-running or forking agents: started directly, as
# tern.target and the agents' Accept=yes sockets do)
SERVERS=(
        "build/src/smtp/tern-smtp smtp"
        "build/src/smtp/tern-smtp:-t:relay relay"
        "build/src/discard/tern-discard discard"
        "build/src/error/tern-error error"
        "build/src/error/tern-error:-t:retry retry"
        "build/src/qmgr/tern-qmgr qmgr"
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

# sink PORT - Postfix's smtp-sink on 127.0.0.1:PORT, a dump file per message in run/sink
sink() {
        local u=()
        [[ $(id -u) -ne 0 ]] || { u=(-u nobody); chmod 0777 "$run/sink"; }
        LD_LIBRARY_PATH="$postfix_root/usr/lib/postfix" "$postfix_root/usr/sbin/smtp-sink" "${u[@]}" \
                -h sink.tern.test -d "$run/sink/%M." "127.0.0.1:$1" 100 >>"$run/sink.log" 2>&1 &
        pids+=($!)
}
sink "$sink_port"

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

# wait_socket NAME - until run/sockets/NAME listens (at most 5 s)
wait_socket() {
        for _ in $(seq 100); do [[ -S "$run/sockets/$1" ]] && return 0; sleep 0.05; done
        echo "run-local.sh: $1 did not come up; see $run/daemons.log" >&2
        return 1
}

# agents first, so that tern-qmgr finds them for mail left from an earlier run
for d in "${SERVERS[@]}"; do
        read -r program sock <<<"$d"
        IFS=: read -r -a argv <<<"$program"
        rm -f "$run/sockets/$sock"
        "$top/${argv[0]}" -c "$run/main.cf" "${argv[@]:1}" 2>>"$run/daemons.log" &
        pids+=($!)
        wait_socket "$sock"
done
for d in "${DAEMONS[@]}"; do
        read -r program sock <<<"$d"
        activate "$program" "$sock" 2>>"$run/daemons.log" &
        pids+=($!)
        wait_socket "$sock"
done
# the SMTP server, long-running as tern-smtpd.service is; it binds smtpd_listen itself
"$top/build/src/smtpd/tern-smtpd" -c "$run/main.cf" 2>>"$run/daemons.log" &
pids+=($!)
# listening: /proc/net/tcp shows 127.0.0.1:PORT in state 0A (a probe connection would be logged)
smtpd_listening() { grep -q "0100007F:$(printf '%04X' "$smtpd_port") 00000000:0000 0A" /proc/net/tcp; }
for _ in $(seq 100); do smtpd_listening && break; sleep 0.05; done
smtpd_listening || { echo "run-local.sh: tern-smtpd did not come up; see $run/daemons.log" >&2; exit 1; }

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
show() { say "$*"; "$@" || echo "(exit status $?)"; }

echo "tern is running under $run (sockets: $run/sockets, log: $run/daemons.log)"
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

# logged QUEUEID TEXT - wait (at most 10 s) for tern/qmgr's line "QUEUEID: TEXT"
logged() {
        for _ in $(seq 200); do
                grep -qF "tern/qmgr: $1: $2" "$run/daemons.log" && return 0
                sleep 0.05
        done
        echo "(no \"$1: $2\" line from tern/qmgr in 10 s)"
        return 1
}
# queue_id - the queue ID of the last message tern-submit logged
queue_id() {
        grep -F "tern/submit:" "$run/daemons.log" | tail -n 1 | sed -n 's/^tern\/submit: \([A-Za-z0-9]*\): .*/\1/p'
}
# smtp COMMAND... - a plain SMTP dialogue with tern-smtpd, both sides shown (C: and S:); a
# COMMAND that holds newlines is message content, sent with CRLF line ends and the final "."
smtp() {
        say "# SMTP to 127.0.0.1:$smtpd_port"
        python3 - "$smtpd_port" "$@" <<'PY'
import socket, sys
port, commands = int(sys.argv[1]), sys.argv[2:]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline().decode(errors="replace").rstrip("\r\n")
        print("S: " + line, flush=True)
        if len(line) < 4 or line[3] != "-":
            return
reply()
for c in commands:
    if "\n" in c:
        for line in c.split("\n"):
            print("C: " + line)
        print("C: .")
        s.sendall(c.replace("\n", "\r\n").encode() + b"\r\n.\r\n")
    else:
        print("C: " + c)
        s.sendall(c.encode() + b"\r\n")
    reply()
PY
}
# smtp_queued OUTPUT - the queue ID in smtp's "250 2.0.0 Ok: queued as ID"
smtp_queued() {
        sed -n 's/^S: 250 2\.0\.0 Ok: queued as \([A-Za-z0-9]*\).*/\1/p' <<<"$1" | tail -n 1
}

say "# local submission: tern-sendmail queues three messages durably into run/spool/incoming,"
say "# tern-submit tells tern-qmgr, tern-qmgr hands them to tern-smtp, which delivers them to"
say "# smtp-sink on 127.0.0.1:$sink_port; the session is kept in tern-scache and reused"
sendmail="$top/build/src/sendmail/tern-sendmail"
for n in 1 2 3; do
        printf 'Subject: hello %s from tern\n\nThis message goes through tern-smtp to smtp-sink.\n' "$n" >"$run/message.txt"
        show "$sendmail" -f operator "site-admin@customer$n.example" <"$run/message.txt"
        id=$(queue_id)
        logged "$id" removed || true
done
show grep -F "tern/smtp:" "$run/daemons.log"
show ls "$run/sink"
show "$ternctl" queue list
show "$ternctl" scache stats
show "$sendmail" -f operator 'not an address@' <"$run/message.txt"

say "# over SMTP: tern-smtpd takes a message from a client in mynetworks (loopback), makes it"
say "# durable (fsync) before its 250, tells tern-qmgr, and tern-smtp delivers it to smtp-sink"
out=$(smtp "EHLO client.tern.test" "MAIL FROM:<operator@tern.test>" "RCPT TO:<site-admin@customer4.example>" \
        "DATA" $'Subject: hello over SMTP\n\nThis message came in through tern-smtpd.' "QUIT") || true
echo "$out"
id=$(smtp_queued "$out")
[[ -z "$id" ]] || logged "$id" removed || true
say "grep -F tern/smtpd: $run/daemons.log | tail -n 3"
grep -F "tern/smtpd:" "$run/daemons.log" | tail -n 3
[[ -z "$id" ]] || show grep -F "$id" "$run/daemons.log"

say "# a site that is down (nothing listens on 127.0.0.1:$down_port): deferred"
printf 'Subject: for a site that is down\n\nThis message waits in the deferred queue.\n' >"$run/message.txt"
show "$sendmail" -f operator postmaster@down.example <"$run/message.txt"
id=$(queue_id)
for _ in $(seq 200); do [[ -n "$(find "$run/spool/deferred" -type f -name "$id")" ]] && break; sleep 0.05; done
show grep -F "$id" "$run/daemons.log"
say "# a second site behind the same link, later.example, gets mail over SMTP: deferred too"
out=$(smtp "EHLO client.tern.test" "MAIL FROM:<operator@tern.test>" "RCPT TO:<postmaster@later.example>" \
        "DATA" $'Subject: for a site that comes back later\n\nThis message waits for an ETRN.' "QUIT") || true
echo "$out"
later_id=$(smtp_queued "$out")
for _ in $(seq 200); do
        [[ -z "$later_id" || -n "$(find "$run/spool/deferred" -type f -name "$later_id")" ]] && break
        sleep 0.05
done
show "$ternctl" queue list
show "$ternctl" qmgr status
say "# fast flush: tern-qmgr listed each deferred message in its site's logfile. The site"
say "# comes back (a sink on its port) and pulls its mail with ETRN (here: sendmail -qR):"
say "# exactly that site's mail moves to incoming and is delivered"
for _ in $(seq 200); do grep -qx "$id" "$run/spool/flush/down_example" 2>/dev/null && break; sleep 0.05; done
for _ in $(seq 200); do
        [[ -z "$later_id" ]] || grep -qx "$later_id" "$run/spool/flush/later_example" 2>/dev/null && break
        sleep 0.05
done
show "$ternctl" flush list
sink "$down_port"
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$down_port") 2>/dev/null && break; sleep 0.05; done
show "$sendmail" -qR down.example
logged "$id" removed || true
show grep -F "$id" "$run/daemons.log"
say "# later.example's message is still deferred: only down.example's mail was flushed"
show "$ternctl" queue list
say "# later.example sends ETRN over SMTP: tern-smtpd asks tern-flush for that site's mail"
smtp "EHLO gw.later.example" "ETRN later.example" "QUIT" || true
if [[ -n "$later_id" ]]; then
        logged "$later_id" removed || true
        show grep -F "$later_id" "$run/daemons.log"
fi
say "grep -F etrn= $run/daemons.log | tail -n 1"
grep -F "etrn=" "$run/daemons.log" | tail -n 1
show "$ternctl" queue list
echo
echo "The daemons' log lines: $run/daemons.log"

if ! $demo_only; then
        echo
        echo "tern is running. Try: export TERN_CONFIG=$run/main.cf"
        echo "  echo hi | $top/build/src/sendmail/tern-sendmail you@example.com   (to smtp-sink: ls $run/sink)"
        echo "  swaks --server 127.0.0.1:$smtpd_port --to you@example.com   (over SMTP to tern-smtpd; apt-get install swaks)"
        echo "  $ternctl queue list; $ternctl qmgr status; tail $run/daemons.log"
        echo "Ctrl-C stops it."
        wait
fi
