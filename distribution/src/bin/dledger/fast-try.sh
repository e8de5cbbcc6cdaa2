#!/usr/bin/env bash
# A nameserver and the three brokers of conf/dledger (one Raft group) on this machine, in the background.
#
#   bin/dledger/fast-try.sh start    start what is not running, wait until the three brokers are registered with the
#                                    nameserver, the Raft leader as brokerId 0
#   bin/dledger/fast-try.sh status   each process, and each broker's Raft role, term, commit index and lag
#   bin/dledger/fast-try.sh stop     stop the processes this script started (SIGTERM, then SIGKILL) and wait for them
#   bin/dledger/fast-try.sh clean    delete the store folders (only while stopped)
#   bin/dledger/fast-try.sh --witness start|status|stop|clean
#                                    the same for the group of conf/witness (issue 19): data brokers n0 and n1 and the
#                                    witness n2 (bin/mqwitness: the Raft node only, never registered); start waits for
#                                    the two data brokers, the leader as brokerId 0
#
# Works from any folder. Ports, store folders and the group come from conf/dledger/namesrv.conf and
# broker-n0.conf ... broker-n2.conf (of conf/witness with --witness; the witnesses are its raftWitnessPeers). Their
# relative paths, and the pid files in run/ (run-witness/ with --witness), are in the data folder (DLEDGER_DATA,
# default ~/dledger-rocketmq), outside the package: a new version unpacked beside it finds them. One group at a time:
# both use the nameserver port of conf/dledger/namesrv.conf.
#
# Environment (all optional; memory settings: see bin/common.sh):
#   DLEDGER_BROKER_HEAP    each broker's heap, default 1g here (three brokers share this one machine; a broker started
#                          by bin/mqbroker alone defaults to a production size)
#   DLEDGER_BROKER_DIRECT  each broker's direct memory limit, default 1g here
#   DLEDGER_START_TIMEOUT  seconds start waits for the nameserver and a registered leader, default 120
#   DLEDGER_STOP_TIMEOUT   seconds stop waits after SIGTERM before SIGKILL, default 60
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

enter_data_dir
export DLEDGER_BROKER_HEAP="${DLEDGER_BROKER_HEAP:-1g}"
export DLEDGER_BROKER_DIRECT="${DLEDGER_BROKER_DIRECT:-1g}"
CONF_DIR="$DLEDGER_HOME/conf/dledger"
RUN_DIR="$DLEDGER_DATA/run"
NAMESRV_CONF="$DLEDGER_HOME/conf/dledger/namesrv.conf"
WITNESS_MODE=""
# How to call this script again for the same group (in the hints it prints).
SELF="$0"
if [ "${1:-}" = --witness ]; then
    WITNESS_MODE=1
    SELF="$0 --witness"
    CONF_DIR="$DLEDGER_HOME/conf/witness"
    RUN_DIR="$DLEDGER_DATA/run-witness"
    shift
fi
BROKERS=(n0 n1 n2)
START_TIMEOUT="${DLEDGER_START_TIMEOUT:-120}"
STOP_TIMEOUT="${DLEDGER_STOP_TIMEOUT:-60}"

usage() {
    echo "usage: $0 [--witness] start|status|stop|clean" >&2
    exit 2
}

broker_conf() {
    echo "$CONF_DIR/broker-$1.conf"
}

check_conf() {
    local f
    for f in "$NAMESRV_CONF" $(for b in "${BROKERS[@]}"; do broker_conf "$b"; done); do
        [ -f "$f" ] || die "missing $f"
    done
    NAMESRV_PORT="$(conf_value "$NAMESRV_CONF" listenPort)"
    NAMESRV_PORT="${NAMESRV_PORT:-9876}"
    local n0
    n0="$(broker_conf n0)"
    NAMESRV_ADDR="$(conf_value "$n0" namesrvAddr)"
    GROUP="$(conf_value "$n0" dLegerGroup)"
    PEERS="$(conf_value "$n0" dLegerPeers)"
    BROKER_NAME="$(conf_value "$n0" brokerName)"
    [ -n "$NAMESRV_ADDR" ] || die "namesrvAddr is missing in $n0"
    [ -n "$GROUP" ] || die "dLegerGroup is missing in $n0"
    [ -n "$PEERS" ] || die "dLegerPeers is missing in $n0"
    [ -n "$BROKER_NAME" ] || die "brokerName is missing in $n0"
    # The witnesses (raftWitnessPeers, issue 19) run the Raft node only: never registered at the nameserver.
    WITNESSES=" $(conf_value "$n0" raftWitnessPeers | tr ',' ' ') "
    DATA_BROKERS=()
    local b
    for b in "${BROKERS[@]}"; do
        is_witness "$b" || DATA_BROKERS+=("$b")
    done
    if [ -n "$WITNESS_MODE" ] && [ "${#DATA_BROKERS[@]}" -eq "${#BROKERS[@]}" ]; then
        die "--witness: $n0 names no witness in raftWitnessPeers"
    fi
}

is_witness() {
    case "$WITNESSES" in
        *" $1 "*) return 0 ;;
        *) return 1 ;;
    esac
}

# Each broker conf must still put its broker on the Raft log as the node it names. A conf rewritten by the stock
# updateBrokerConfig of an earlier version (enableDLegerCommitLog=false, the launcher's brokerId and brokerRole)
# starts a stock broker outside the group, and `start` then waits in vain for the group.
check_raft_conf() {
    local b f flag self group
    for b in "${BROKERS[@]}"; do
        f="$(broker_conf "$b")"
        flag="$(conf_value "$f" enableDLegerCommitLog)"
        self="$(conf_value "$f" dLegerSelfId)"
        group="$(conf_value "$f" dLegerGroup)"
        case "$flag" in
            [Tt][Rr][Uu][Ee]) ;;
            *) die "$f: enableDLegerCommitLog=${flag:-(missing)}, so $b would start as a stock broker outside the Raft group; set enableDLegerCommitLog=true (if updateBrokerConfig of an earlier version rewrote the file, $f.bak holds the one before)" ;;
        esac
        [ "$self" = "$b" ] || die "$f: dLegerSelfId=${self:-(missing)}, expected $b"
        [ "$group" = "$GROUP" ] || die "$f: dLegerGroup=${group:-(missing)}, but broker-n0.conf has $GROUP"
        if is_witness "$b"; then
            [ "$(conf_value "$f" raftWitness)" = true ] \
                || die "$f: $b is in raftWitnessPeers of broker-n0.conf, so its file must set raftWitness=true"
        fi
    done
}

# The folder of a process's logs: ${storePathRootDir}/logs of a broker, the folder of kvConfigPath plus /logs of
# the nameserver (where bin/mqbroker and bin/mqnamesrv put them).
log_dir() {
    if [ "$1" = namesrv ]; then
        namesrv_log_dir "$NAMESRV_CONF"
    else
        echo "$(store_root "$1")/logs"
    fi
}

store_root() {
    local root
    root="$(conf_value "$(broker_conf "$1")" storePathRootDir)"
    abs_path "${root:-$HOME/store}" "$DLEDGER_DATA"
}

pid_file() {
    echo "$RUN_DIR/$1.pid"
}

main_class() {
    if [ "$1" = namesrv ]; then
        echo org.apache.rocketmq.namesrv.NamesrvStartup
    else
        echo dev.dledger.rocketmq.RaftBrokerStartup
    fi
}

launcher() {
    if [ "$1" = namesrv ]; then
        echo "$DLEDGER_HOME/bin/mqnamesrv"
    elif is_witness "$1"; then
        echo "$DLEDGER_HOME/bin/mqwitness"
    else
        echo "$DLEDGER_HOME/bin/mqbroker"
    fi
}

# The pid of a process this script started and that still runs (its pid file names a live process whose command line
# is ours: the main class and this package folder, or for its first moments the launcher script), else nothing.
running_pid() {
    pid_if_ours "$(pid_file "$1")" "*$(launcher "$1") *" \
        "*-Drocketmq.home.dir=$DLEDGER_HOME *$(main_class "$1")*"
}

# start_process NAME: starts the nameserver or a broker in the background, output to its console.log.
start_process() {
    local name="$1"
    if [ "$name" = namesrv ]; then
        start_background "$name" fast-try.sh "$(launcher "$name")" "$NAMESRV_CONF"
    else
        start_background "$name" fast-try.sh "$(launcher "$name")" "$(broker_conf "$name")"
    fi
    STARTED+=("$name")
}

# Stops what this run of start started, after a failure, and exits.
fail_start() {
    echo "fast-try: $*" >&2
    local name
    for name in "${STARTED[@]+"${STARTED[@]}"}"; do
        echo "--- last lines of $(log_dir "$name")/console.log:" >&2
        tail -n 15 "$(log_dir "$name")/console.log" >&2 || true
    done
    if [ "${#STARTED[@]}" -gt 0 ]; then
        echo "fast-try: stopping what this start started: ${STARTED[*]}" >&2
        stop_processes "${STARTED[@]}"
    fi
    echo "fast-try: the logs named above say more; '$SELF clean' deletes the stores to start over from empty ones" >&2
    exit 1
}

# Fails the start when one of the processes is gone (by pid alone: a process just started may still be the shell
# that is about to run its launcher).
check_alive() {
    local name pid
    for name in "$@"; do
        pid="$(cat "$(pid_file "$name")" 2> /dev/null || true)"
        [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null || fail_start "$name exited during start"
    done
}

# The address of brokerId 0 of our broker name in the nameserver's cluster list once every data broker of the group
# is registered (the leader as 0, the others as slaves; a witness never is), else nothing.
registered_leader() {
    "$DLEDGER_HOME/bin/mqadmin" clusterList -n "$NAMESRV_ADDR" 2> /dev/null \
        | awk -v name="$BROKER_NAME" -v want="${#DATA_BROKERS[@]}" '
            $2 == name { n++; if ($3 == "0") { leader = $4 } }
            END { if (n == want && leader != "") { print leader } }' || true
}

do_start() {
    check_raft_conf
    find_java
    STARTED=()
    local began deadline name leader port bind
    began=$(date +%s)
    deadline=$((began + START_TIMEOUT))
    if [ -z "$(running_pid namesrv)" ]; then
        port_open 127.0.0.1 "$NAMESRV_PORT" && fail_start "port $NAMESRV_PORT (listenPort of $NAMESRV_CONF) is in use"
        start_process namesrv
    else
        echo "namesrv is running (pid $(running_pid namesrv))"
    fi
    until port_open 127.0.0.1 "$NAMESRV_PORT"; do
        check_alive namesrv
        [ "$(date +%s)" -lt "$deadline" ] || fail_start "the nameserver did not open port $NAMESRV_PORT in ${START_TIMEOUT} s"
        sleep 0.2
    done
    for name in "${BROKERS[@]}"; do
        if [ -z "$(running_pid "$name")" ]; then
            start_process "$name"
        else
            echo "broker $name is running (pid $(running_pid "$name"))"
        fi
    done
    echo -n "waiting for the ${#DATA_BROKERS[@]} data brokers (${DATA_BROKERS[*]}) to register, the Raft leader as brokerId 0 of $BROKER_NAME"
    # A broker opens its listenPort at the end of its start and registers right then. Until the three have, asking
    # the nameserver (mqadmin: a JVM start each time) finds nothing and only takes processor time from them. A witness
    # opens no listenPort: it never registers.
    for name in "${DATA_BROKERS[@]}"; do
        port="$(conf_value "$(broker_conf "$name")" listenPort)"
        port="${port:-10911}"
        bind="$(conf_value "$(broker_conf "$name")" bindAddress)"
        case "$bind" in '' | 0.0.0.0) bind=127.0.0.1 ;; esac
        until port_open "$bind" "$port"; do
            check_alive namesrv "${BROKERS[@]}"
            [ "$(date +%s)" -lt "$deadline" ] || { echo; fail_start "$name did not open $bind:$port (listenPort of $(broker_conf "$name")) in ${START_TIMEOUT} s"; }
            sleep 0.2
        done
    done
    leader=""
    while [ -z "$leader" ]; do
        echo -n "."
        check_alive namesrv "${BROKERS[@]}"
        [ "$(date +%s)" -lt "$deadline" ] || { echo; fail_start "no leader registered in ${START_TIMEOUT} s"; }
        leader="$(registered_leader)"
        [ -n "$leader" ] || sleep 1
    done
    echo
    echo "all registered, the leader as brokerId 0 at $leader, $(($(date +%s) - began)) s after start"
    echo
    print_roles || true
    echo
    echo "nameserver: $NAMESRV_ADDR (cluster $(conf_value "$(broker_conf n0)" brokerClusterName), broker $BROKER_NAME)"
    echo "logs:"
    for name in namesrv "${BROKERS[@]}"; do
        echo "  $name: $(log_dir "$name")/"
    done
    echo "status: $SELF status"
    echo "stop:   $SELF stop"
    echo "clean:  $SELF clean    (deletes the stores; after stop)"
}

# One line per broker: its pid, Raft address, role, term, commit index and lag, from `dledger-cli status`.
print_roles() {
    local out rc=0 name token
    # The status is an admin request: served only to the raftAdminToken of the brokers' conf (none: no Raft columns).
    token="$(conf_value "$(broker_conf n0)" raftAdminToken)"
    out="$("$DLEDGER_HOME/bin/dledger-cli" status -g "$GROUP" -p "$PEERS" --timeout-ms 1500 \
        ${token:+--token "$token"} 2>&1)" || rc=$?
    printf '%-7s %-8s %-22s %-10s %-6s %-10s %s\n' broker pid raft role term commit lag
    for name in "${BROKERS[@]}"; do
        echo "$out" | awk -v id="$name" -v pid="$(running_pid "$name")" '
            function val(key,   i, kv) {
                for (i = 1; i <= NF; i++) {
                    if (index($i, key "=") == 1) { return substr($i, length(key) + 2) }
                }
                return ""
            }
            $1 == id && $3 ~ /^role=/ { role = val("role"); term = val("term"); commit = val("commit")
                                        addr = $2; sub(/^[^\/]*\//, "", addr); up = 1 }
            $1 == id && ($3 == "unreachable:" || $3 == "refused:") { addr = $2; sub(/^[^\/]*\//, "", addr) }
            $1 == "follower" && $2 == id { lag = $4; sub(/^lag=/, "", lag) }
            END {
                if (pid == "") { pid = "-" }
                if (!up) { role = "DOWN"; term = "-"; commit = "-"; lag = "-" }
                else if (role == "LEADER") { lag = 0 }
                else if (lag == "") { lag = "?" }
                printf "%-7s %-8s %-22s %-10s %-6s %-10s %s\n", id, pid, addr, role, term, commit, lag
            }'
    done
    return $rc
}

do_status() {
    local name pid rc=0 routes
    pid="$(running_pid namesrv)"
    if [ -n "$pid" ]; then
        echo "namesrv $NAMESRV_ADDR: running, pid $pid"
    else
        echo "namesrv $NAMESRV_ADDR: not running"
        rc=1
    fi
    for name in "${BROKERS[@]}"; do
        [ -n "$(running_pid "$name")" ] || rc=1
    done
    find_java
    echo
    print_roles || rc=1
    if [ -n "$(running_pid namesrv)" ]; then
        echo
        echo "nameserver route of $BROKER_NAME (brokerId 0 is the Raft leader, n0/n1/n2 are 1/2/3):"
        routes="$("$DLEDGER_HOME/bin/mqadmin" clusterList -n "$NAMESRV_ADDR" 2> /dev/null \
            | awk -v name="$BROKER_NAME" '$2 == name { printf "  brokerId %s at %s\n", $3, $4 }' || true)"
        echo "${routes:-  (none registered)}"
    fi
    return $rc
}

do_stop() {
    local name any=""
    for name in namesrv "${BROKERS[@]}"; do
        [ -z "$(running_pid "$name")" ] || any=1
    done
    if [ -z "$any" ]; then
        rm -f "$RUN_DIR"/*.pid
        echo "nothing to stop: no process started by $0 is running"
        return 0
    fi
    # Brokers first, so they do not keep trying to register with a nameserver that is gone.
    stop_processes "${BROKERS[@]}"
    stop_processes namesrv
}

do_clean() {
    local name
    for name in namesrv "${BROKERS[@]}"; do
        [ -z "$(running_pid "$name")" ] || die "$name is running (pid $(running_pid "$name")); run $SELF stop first"
    done
    for name in "${BROKERS[@]}"; do
        remove_dir "$(store_root "$name")"
    done
    remove_dir "$(dirname "$(log_dir namesrv)")"
    remove_dir "$RUN_DIR"
}

[ $# -eq 1 ] || usage
check_conf
case "$1" in
    start) do_start ;;
    status) do_status ;;
    stop) do_stop ;;
    clean) do_clean ;;
    *) usage ;;
esac
