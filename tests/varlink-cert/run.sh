#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh - the varlink certification, one direction per run
#
#   run.sh tern-server CERT-SERVER              varlink-go-certification --client against tern's server
#   run.sh tern-client CERT-CLIENT              tern's clients against varlink-go-certification's server
#   run.sh tern-both CERT-SERVER CERT-CLIENT    tern's clients against tern's server
#
# The server side starts in the background on a socket in a fresh temporary directory; we wait
# (bounded) until the socket accepts a connection, run the client side, stop the server.
#
# The Go client exits 0 whatever happens and only prints; so tern-server requires its exit code
# 0, its last line "End: 'true'" (all_ok from our server, which checks every value the Go client
# sends), no "failed" line, and the same transcript as the Go client gets from the Go server
# (so it decoded our replies to the same values), except the random client_id and Test09's line
# (Go prints a pointer there; Test09's value is checked by our server when Test10 returns it).
#
# Exit: the client side's result; 77 (skip) only when varlink-go-certification is not installed.
set -u

GO_CERT=${VARLINK_GO_CERTIFICATION:-varlink-go-certification}
PYTHON3=${PYTHON3:-python3}
mode=${1:?mode}

if [ "$mode" != tern-both ] && ! command -v "$GO_CERT" >/dev/null 2>&1; then
        echo "SKIP: $GO_CERT is not installed (Debian package varlink-go)"
        exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tern-varlink-cert.XXXXXX") || exit 1
server_pids=()
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
        for pid in "${server_pids[@]}"; do
                kill "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
        done
        rm -rf "$tmp"
}
trap cleanup EXIT

# start_server SOCKET LOG COMMAND... - run COMMAND in the background (its pid in $server_pid);
# wait until SOCKET accepts a connection
start_server() {
        local sock=$1 log=$2 pid
        shift 2
        "$@" >"$log" 2>&1 &
        pid=$!
        server_pid=$pid
        server_pids+=("$pid")
        for _ in $(seq 1 200); do
                if "$PYTHON3" -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' \
                        "$sock" 2>/dev/null; then
                        return 0
                fi
                if ! kill -0 "$pid" 2>/dev/null; then
                        echo "FAIL: server exited before listening: $*"
                        cat "$log"
                        return 1
                fi
                sleep 0.05
        done
        echo "FAIL: no listening socket at $sock after 10 s: $*"
        cat "$log"
        return 1
}

# stop_tern_server PID LOG - SIGTERM, then require a clean exit (under ASan also: no leak report)
stop_tern_server() {
        local rc
        kill -TERM "$1"
        wait "$1"
        rc=$?
        local left=() pid
        for pid in "${server_pids[@]}"; do
                [ "$pid" = "$1" ] || left+=("$pid")
        done
        server_pids=("${left[@]}")
        echo "--- cert-server's log (exit $rc):"
        cat "$2"
        [ $rc -eq 0 ] || echo "FAIL: cert-server did not exit cleanly"
        return $rc
}

# go_client SOCKET OUT - run the Go certification client; its transcript in OUT, status returned
go_client() {
        timeout 60 "$GO_CERT" --client --varlink="unix:$1" >"$2" 2>&1
}

normalize() {
        sed -e "s/^Start: '.*'\$/Start: '<client_id>'/" -e "s/^Test09: '.*'\$/Test09: '<mytype>'/" "$1"
}

case "$mode" in
tern-server)
        cert_server=${2:?cert-server}
        start_server "$tmp/tern.sock" "$tmp/tern-server.log" "$cert_server" "$tmp/tern.sock" || exit 1
        tern_pid=$server_pid
        go_client "$tmp/tern.sock" "$tmp/tern.out"
        rc=$?
        echo "--- varlink-go-certification --client against tern's cert-server (exit $rc):"
        cat "$tmp/tern.out"
        fail=0
        stop_tern_server "$tern_pid" "$tmp/tern-server.log" || fail=1

        start_server "$tmp/go.sock" "$tmp/go-server.log" "$GO_CERT" --varlink="unix:$tmp/go.sock" || exit 1
        if ! go_client "$tmp/go.sock" "$tmp/go.out"; then
                echo "FAIL: the reference run (Go client against the Go server) failed"
                cat "$tmp/go.out"
                exit 1
        fi

        [ "$rc" -eq 0 ] || { echo "FAIL: the Go client exited with $rc"; fail=1; }
        if [ "$(tail -n 1 "$tmp/tern.out")" != "End: 'true'" ]; then
                echo "FAIL: the Go client's last line is not \"End: 'true'\""
                fail=1
        fi
        if grep -q 'failed' "$tmp/tern.out"; then
                echo "FAIL: the Go client reports a failed call"
                fail=1
        fi
        if ! diff -u <(normalize "$tmp/go.out") <(normalize "$tmp/tern.out"); then
                echo "FAIL: the Go client saw other values from tern than from the Go server (- Go, + tern)"
                fail=1
        fi
        [ $fail -eq 0 ] && echo "PASS: varlink-go-certification --client certifies tern's server"
        exit $fail
        ;;
tern-client)
        cert_client=${2:?cert-client}
        start_server "$tmp/go.sock" "$tmp/go-server.log" "$GO_CERT" --varlink="unix:$tmp/go.sock" || exit 1
        timeout 60 "$cert_client" "unix:$tmp/go.sock"
        rc=$?
        [ $rc -eq 0 ] && echo "PASS: tern's clients pass against varlink-go-certification's server"
        exit $rc
        ;;
tern-both)
        cert_server=${2:?cert-server}
        cert_client=${3:?cert-client}
        start_server "$tmp/tern.sock" "$tmp/tern-server.log" "$cert_server" "$tmp/tern.sock" || exit 1
        tern_pid=$server_pid
        timeout 60 "$cert_client" "$tmp/tern.sock"
        rc=$?
        stop_tern_server "$tern_pid" "$tmp/tern-server.log" || rc=1
        exit $rc
        ;;
*)
        echo "usage: $0 tern-server CERT-SERVER | tern-client CERT-CLIENT |" \
             "tern-both CERT-SERVER CERT-CLIENT"
        exit 2
        ;;
esac
