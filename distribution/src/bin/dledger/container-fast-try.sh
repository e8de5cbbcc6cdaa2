#!/usr/bin/env bash
# A nameserver and the three broker containers of conf/container (three Raft groups, broker-a, broker-b and broker-c,
# of three brokers each; container c runs node nc of every group) on this machine, in the background.
#
#   bin/dledger/container-fast-try.sh start    start what is not running, wait until the nine brokers are registered
#                                              with the nameserver, each group's Raft leader as its brokerId 0
#   bin/dledger/container-fast-try.sh status   each process, and the nameserver's route of each group
#   bin/dledger/container-fast-try.sh stop     stop the processes this script started (SIGTERM, then SIGKILL)
#   bin/dledger/container-fast-try.sh clean    delete the store folders and logs (only while stopped)
#
# Works from any folder. Relative paths of the confs, the logs (logs/container-N) and the pid files (run/container-*)
# are in the data folder (DLEDGER_DATA, default ~/dledger-rocketmq). It uses the same nameserver port as
# bin/dledger/fast-try.sh: run one of the two at a time.
#
# Environment (all optional; memory settings: see bin/common.sh):
#   DLEDGER_BROKER_HEAP    each container's heap (its three brokers share it), default 1g here
#   DLEDGER_BROKER_DIRECT  each container's direct memory limit, default 1g here
#   DLEDGER_START_TIMEOUT  seconds start waits for the nameserver and the nine brokers, default 180
#   DLEDGER_STOP_TIMEOUT   seconds stop waits after SIGTERM before SIGKILL, default 60
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

enter_data_dir
export DLEDGER_BROKER_HEAP="${DLEDGER_BROKER_HEAP:-1g}"
export DLEDGER_BROKER_DIRECT="${DLEDGER_BROKER_DIRECT:-1g}"
CONF_DIR="$DLEDGER_HOME/conf/container"
RUN_DIR="$DLEDGER_DATA/run"
NAMESRV_CONF="$CONF_DIR/namesrv.conf"
CONTAINERS=(container-0 container-1 container-2)
GROUPS_=(broker-a broker-b broker-c)
START_TIMEOUT="${DLEDGER_START_TIMEOUT:-180}"
STOP_TIMEOUT="${DLEDGER_STOP_TIMEOUT:-60}"

usage() {
    echo "usage: $0 start|status|stop|clean" >&2
    exit 2
}

for f in "$NAMESRV_CONF" "$CONF_DIR"/container-{0,1,2}.conf; do
    [ -f "$f" ] || die "missing $f"
done
NAMESRV_PORT="$(conf_value "$NAMESRV_CONF" listenPort)"
NAMESRV_PORT="${NAMESRV_PORT:-9876}"
NAMESRV_ADDR="$(conf_value "$CONF_DIR/container-0.conf" namesrvAddr)"
[ -n "$NAMESRV_ADDR" ] || die "namesrvAddr is missing in $CONF_DIR/container-0.conf"

pid_file() {
    echo "$RUN_DIR/container-try-$1.pid"
}

log_dir() {
    if [ "$1" = namesrv ]; then
        namesrv_log_dir "$NAMESRV_CONF"
    else
        echo "$DLEDGER_DATA/logs/$1"
    fi
}

# The pid of a process this script started that still runs (its command line names this package and its conf).
running_pid() {
    pid_if_ours "$(pid_file "$1")" "*$CONF_DIR/*"
}

start_process() {
    if [ "$1" = namesrv ]; then
        start_background "$1" container-fast-try.sh "$DLEDGER_HOME/bin/mqnamesrv" "$NAMESRV_CONF"
    else
        start_background "$1" container-fast-try.sh "$DLEDGER_HOME/bin/mqbrokercontainer" "$CONF_DIR/$1.conf"
    fi
}

# Lines "group brokerId address" of the nameserver's cluster list for our groups.
routes() {
    "$DLEDGER_HOME/bin/mqadmin" clusterList -n "$NAMESRV_ADDR" 2> /dev/null \
        | awk '$2 ~ /^broker-[abc]$/ { print $2, $3, $4 }' || true
}

# Succeeds when every group has three brokers registered, one of them as brokerId 0.
all_registered() {
    local r g
    r="$(routes)"
    for g in "${GROUPS_[@]}"; do
        [ "$(echo "$r" | awk -v g="$g" '$1 == g' | wc -l)" -eq 3 ] || return 1
        echo "$r" | awk -v g="$g" '$1 == g && $2 == "0" { found = 1 } END { exit !found }' || return 1
    done
}

do_start() {
    find_java
    local began deadline name pid
    began=$(date +%s)
    deadline=$((began + START_TIMEOUT))
    if [ -z "$(running_pid namesrv)" ]; then
        port_open 127.0.0.1 "$NAMESRV_PORT" && die "port $NAMESRV_PORT (listenPort of $NAMESRV_CONF) is in use"
        start_process namesrv
    fi
    until port_open 127.0.0.1 "$NAMESRV_PORT"; do
        [ -n "$(running_pid namesrv)" ] || die "the nameserver exited; see $(log_dir namesrv)/console.log"
        [ "$(date +%s)" -lt "$deadline" ] || die "the nameserver did not open port $NAMESRV_PORT in ${START_TIMEOUT} s"
        sleep 0.2
    done
    for name in "${CONTAINERS[@]}"; do
        if [ -z "$(running_pid "$name")" ]; then
            start_process "$name"
        else
            echo "$name is running (pid $(running_pid "$name"))"
        fi
    done
    echo -n "waiting for the nine brokers to register, each group's Raft leader as its brokerId 0"
    until all_registered; do
        echo -n "."
        for name in "${CONTAINERS[@]}"; do
            pid="$(cat "$(pid_file "$name")" 2> /dev/null || true)"
            [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null \
                || { echo; die "$name exited during start; see $(log_dir "$name")/console.log"; }
        done
        [ "$(date +%s)" -lt "$deadline" ] || { echo; die "not all registered in ${START_TIMEOUT} s; see the logs"; }
        sleep 1
    done
    echo
    echo "all registered $(($(date +%s) - began)) s after start"
    print_routes
    echo "status: $0 status    stop: $0 stop    clean: $0 clean (after stop)"
}

# Each group's brokers as the nameserver lists them, with the container each runs in (from its listenPort).
print_routes() {
    echo "group     brokerId  address            container"
    routes | sort | while read -r g id addr; do
        local c="?" n f
        for n in 0 1 2; do
            f="$CONF_DIR/$g-n$n.conf"
            [ -f "$f" ] && [ "127.0.0.1:$(conf_value "$f" listenPort)" = "$addr" ] && c="container-$n"
        done
        printf '%-9s %-9s %-18s %s\n' "$g" "$id" "$addr" "$c"
    done
    echo "(brokerId 0 is the group's Raft leader; the conf's preferredLeaderId spreads them one per container)"
}

do_status() {
    local name rc=0 pid
    for name in namesrv "${CONTAINERS[@]}"; do
        pid="$(running_pid "$name")"
        if [ -n "$pid" ]; then echo "$name: running, pid $pid"; else echo "$name: not running"; rc=1; fi
    done
    if [ -n "$(running_pid namesrv)" ]; then
        find_java
        print_routes
    fi
    return $rc
}

do_clean() {
    local name dir
    for name in namesrv "${CONTAINERS[@]}"; do
        [ -z "$(running_pid "$name")" ] || die "$name is running; run $0 stop first"
    done
    for dir in "$DLEDGER_DATA/store/container-0" "$DLEDGER_DATA/store/container-1" "$DLEDGER_DATA/store/container-2" \
        "$(dirname "$(log_dir namesrv)")" "$DLEDGER_DATA/logs/container-0" "$DLEDGER_DATA/logs/container-1" \
        "$DLEDGER_DATA/logs/container-2"; do
        remove_dir "$dir"
    done
}

[ $# -eq 1 ] || usage
case "$1" in
    start) do_start ;;
    status) do_status ;;
    stop) stop_processes "${CONTAINERS[@]}" && stop_processes namesrv ;;
    clean) do_clean ;;
    *) usage ;;
esac
