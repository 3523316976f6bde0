#!/bin/bash
# SPDX-License-Identifier: MIT
#
# full-disk.sh - tern-qmgr on a full spool: a bounce that cannot be recorded loses nothing
#
# As root, in a private mount namespace (unshare -m), a 2 MiB tmpfs is the spool. tern-qmgr,
# tern-error and tern-discard run by hand on it. The disk is filled to the last page with a
# filler file, then a message is queued (it was committed before the disk filled: made with
# queue-tool into hold and released by Requeue) whose recipient bounces. Its bounce cannot be
# appended to bounce/ID: qmgr must log that, keep the recipient (deferred, not done) and keep
# the message. With the filler gone, a requeue bounces it for real, the sender's non-delivery
# notice is queued and the message removed.
# Skipped (77) when not root or when mount namespaces are not available.
set -eu

qmgr=${TERN_QMGR:?}; error=${TERN_ERROR:?}; discard=${TERN_DISCARD:?}; tool=${QUEUE_TOOL:?}; ternctl=${TERNCTL:?}
if [ "$(id -u)" -ne 0 ]; then
        echo "not root: skipped"
        exit 77
fi
if ! unshare -m true 2>/dev/null; then
        echo "no mount namespaces: skipped"
        exit 77
fi
dir=$(mktemp -d /tmp/tern-qmgr-full.XXXXXX)
trap 'rm -rf "$dir"' EXIT

unshare -m --propagation private bash -s "$dir" "$qmgr" "$error" "$discard" "$tool" "$ternctl" <<'EOF'
set -u
dir=$1 qmgr=$2 error=$3 discard=$4 tool=$5 ternctl=$6
spool=$dir/spool rt=$dir/run log=$dir/log
mkdir -p "$spool" "$rt"
mount -t tmpfs -o size=2m,mode=0700 tmpfs "$spool" || exit 77
cat > "$dir/main.cf" <<CF
queue_directory = $spool
runtime_directory = $rt
myhostname = tern.test
mydestination = localhost
default_transport = discard
relay_transport = discard
local_transport = discard
qmgr_message_active_limit = 100
[transport]
bounce.test = error:5.1.1 mailbox unavailable
CF
export TERN_LOG=stderr
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "---- log"; cat "$log"; exit 1; }
# wait_log PATTERN - until the daemons' log has a line matching PATTERN (10 s at most)
wait_log() {
        for ((i = 0; i < 100; i++)); do
                grep -Eq "$1" "$log" && return 0
                sleep 0.1
        done
        fail "no log line like: $1"
}

"$tool" write "$dir/msg" -f sender@sender.test -r user@bounce.test -t "$(date +%s).0" <<< "Subject: full" || exit 1
id=$("$tool" enqueue "$spool" hold 1 "$dir/msg") || exit 1
"$error" -c "$dir/main.cf" 2>>"$log" & pids+=($!)
"$discard" -c "$dir/main.cf" 2>>"$log" & pids+=($!)
"$qmgr" -c "$dir/main.cf" 2>>"$log" & pids+=($!)
for ((i = 0; i < 100; i++)); do [ -S "$rt/qmgr" ] && [ -S "$rt/error" ] && break; sleep 0.1; done
[ -S "$rt/qmgr" ] || fail "tern-qmgr did not start"

# fill the disk to its last byte
dd if=/dev/zero of="$spool/filler" bs=4k 2>/dev/null
"$ternctl" -c "$dir/main.cf" call "$rt/qmgr" io.tern.Queue.Requeue "{\"filter\":{\"queueIds\":[\"$id\"]}}" >/dev/null ||
        fail "Requeue"
wait_log "tern/error: $id: to=<user@bounce.test>, .*status=bounced"
wait_log "tern/qmgr: warning: $id: cannot append to bounce log: No space left on device"
for ((i = 0; i < 100; i++)); do [ -n "$(find "$spool/deferred" -name "$id")" ] && break; sleep 0.1; done
[ -n "$(find "$spool/deferred" -name "$id")" ] || fail "$id is not in deferred"
grep -q "$id: removed" "$log" && fail "$id was removed"
grep -q "$id: sender non-delivery notification" "$log" && fail "a notice despite the full disk"
echo "ok 1 - full disk: the bounce could not be recorded; $id kept in deferred"

rm -f "$spool/filler"
"$ternctl" -c "$dir/main.cf" call "$rt/qmgr" io.tern.Queue.Requeue "{\"filter\":{\"queueIds\":[\"$id\"]}}" >/dev/null ||
        fail "Requeue"
wait_log "tern/qmgr: $id: sender non-delivery notification: "
wait_log "tern/qmgr: $id: removed"
echo "ok 2 - space again: bounced, the sender's notice queued, $id removed"
cleanup
trap - EXIT
grep -Eq "Sanitizer|runtime error" "$log" && fail "sanitizer report"
exit 0
EOF
