#!/usr/bin/env bash
# The failover demo: starts the group of conf/dledger with fast-try.sh (if it is not running), sends messages with
# RocketMQ's producer, reads them back with its consumer, kills the Raft leader's broker (SIGKILL) while sending,
# shows the new leader taking writes, reads everything back, and ends with
#   demo: sent S, acked A, read R, lost L, failover F ms
# Then it stops the group (fast-try.sh stop); with --keep it restarts the killed broker instead and leaves the group
# running. Exit code 0 when no acknowledged message was lost.
#
#   bin/dledger/demo.sh [--keep] [--messages N]      (N default 3000, 1 KiB each)
#
# Works from any folder. Environment: see fast-try.sh and bin/common.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
find_java

keep=""
messages=3000
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep=1; shift ;;
        --messages)
            [ $# -ge 2 ] || die "--messages needs a number"
            messages="$2"
            shift 2
            ;;
        *) die "unknown argument '$1'; usage: $0 [--keep] [--messages N]" ;;
    esac
done

fast_try="$DLEDGER_HOME/bin/dledger/fast-try.sh"
conf="$DLEDGER_HOME/conf/dledger/broker-n0.conf"
"$fast_try" start
echo

rc=0
# The demo asks each broker's Raft role: an admin request, served only to the brokers' raftAdminToken.
admin_token="$(conf_value "$conf" raftAdminToken)"
# shellcheck disable=SC2046
"$JAVA" $(tools_jvm_opts) -Ddledger.tools.log.level=OFF ${JAVA_OPT_EXT:-} -cp "$DLEDGER_CLASSPATH" \
    dev.dledger.distribution.FailoverDemo \
    --namesrv "$(conf_value "$conf" namesrvAddr)" --group "$(conf_value "$conf" dLegerGroup)" \
    --peers "$(conf_value "$conf" dLegerPeers)" --pid-dir "$DLEDGER_DATA/run" --messages "$messages" \
    ${admin_token:+--token "$admin_token"} || rc=$?
echo

if [ -n "$keep" ]; then
    echo "restarting the killed broker; it rejoins as a follower:"
    "$fast_try" start > /dev/null
    "$fast_try" status || true
    echo
    echo "the group keeps running; stop it with: $fast_try stop"
else
    "$fast_try" stop
    echo "the group is stopped; its stores stay in $DLEDGER_DATA/store (start it again: $fast_try start)"
fi
exit $rc
