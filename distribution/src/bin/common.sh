#!/usr/bin/env bash
# Shared by the scripts in bin/: finds the package folder and a Java 17+, and reads keys of conf files.
# Not meant to be run by itself.
#
# Environment (all optional):
#   JAVA_HOME             the JDK/JRE to use (else `java` on the PATH); it must be Java 17 or newer
#   JAVA_OPT_EXT          extra JVM options appended last, so they win (e.g. "-Xmx1g" or a debugger agent)
#   DLEDGER_NAMESRV_HEAP  nameserver heap, default 256m
#   DLEDGER_BROKER_HEAP   broker heap; default 8g, as stock RocketMQ's runbroker.sh, or a quarter of this machine's
#                         memory when that is less (at least 1g)
#   DLEDGER_BROKER_DIRECT broker direct (off-heap) memory limit; default the same as the heap; the memory-mapped
#                         log files do not count toward it
#   DLEDGER_TOOLS_HEAP    heap of mqadmin, dledger-cli, dledger-migrate and the demo, default 256m
#   DLEDGER_NODE_HEAP     heap of the dledger-cli commands that run Raft nodes (server, appender, register,
#                         benchmark), default 1g
#   DLEDGER_DATA          the data folder: the servers start in it, so relative paths in their confs (stores, logs)
#                         are relative to it; default ~/dledger-rocketmq. It lies outside the package, so that a new
#                         version unpacked beside this one and started with the same confs finds the same data.

DLEDGER_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DLEDGER_HOME
DLEDGER_DATA="${DLEDGER_DATA:-$HOME/dledger-rocketmq}"
case "$DLEDGER_DATA" in
    /*) ;;
    *) DLEDGER_DATA="$PWD/$DLEDGER_DATA" ;;
esac
export DLEDGER_DATA
DLEDGER_CLASSPATH="$DLEDGER_HOME/lib/*"

die() {
    echo "$(basename "$0"): $*" >&2
    exit 2
}

# Sets JAVA to a Java 17+ executable or stops with a message saying what was found.
find_java() {
    if [ -n "${JAVA_HOME:-}" ]; then
        JAVA="$JAVA_HOME/bin/java"
        [ -x "$JAVA" ] || die "JAVA_HOME=$JAVA_HOME has no bin/java; point JAVA_HOME at a JDK 17 or newer"
    elif command -v java > /dev/null 2>&1; then
        JAVA="$(command -v java)"
    else
        die "no java found: install JDK 17 or newer, or set JAVA_HOME"
    fi
    local version major
    version="$("$JAVA" -version 2>&1 | awk -F '"' '/version/ { print $2; exit }')"
    major="${version%%[.-]*}"
    if [ "$major" = "1" ]; then
        major="$(echo "$version" | cut -d. -f2)"
    fi
    case "$major" in
        '' | *[!0-9]*) die "cannot tell the version of $JAVA (it printed '$version'); Java 17 or newer is needed" ;;
    esac
    if [ "$major" -lt 17 ]; then
        die "$JAVA is Java $version; Java 17 or newer is needed (set JAVA_HOME)"
    fi
    export JAVA
}

# conf_value FILE KEY: the value of KEY in a key=value file (the last one wins, as in java.util.Properties), trimmed;
# empty when absent.
conf_value() {
    awk -v key="$2" '
        /^[ \t]*[#!]/ { next }
        {
            line = $0
            sub(/^[ \t]+/, "", line)
            eq = index(line, "=")
            if (eq == 0) { next }
            k = substr(line, 1, eq - 1)
            sub(/[ \t]+$/, "", k)
            if (k == key) {
                v = substr(line, eq + 1)
                sub(/^[ \t]+/, "", v)
                sub(/[ \t\r]+$/, "", v)
                found = v
            }
        }
        END { print found }' "$1"
}

# abs_path PATH [BASE]: PATH made absolute against BASE (default: the current folder); the file need not exist.
abs_path() {
    case "$1" in
        /*) echo "$1" ;;
        *) echo "${2:-$PWD}/$1" ;;
    esac
}

# The JVM options of the servers' shared part: crash-friendly stack traces, IPv4, the package folder as RocketMQ home.
server_jvm_opts() {
    echo "-server -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow -Djava.net.preferIPv4Stack=true" \
        "-Drocketmq.home.dir=$DLEDGER_HOME"
}

# The default broker heap in MiB: 8 GiB as a production broker (stock runbroker.sh) has, but never more than a
# quarter of this machine's memory, and never under 1 GiB.
default_broker_heap_mb() {
    local total_kb mb
    total_kb="$(awk '/^MemTotal:/ { print $2; exit }' /proc/meminfo 2> /dev/null || true)"
    mb=8192
    if [ -n "$total_kb" ] && [ $((total_kb / 4096)) -lt "$mb" ]; then
        mb=$((total_kb / 4096))
    fi
    [ "$mb" -ge 1024 ] || mb=1024
    echo "$mb"
}

# The JVM options of the short-lived tools: a small heap, a fast start, warnings only on the console.
tools_jvm_opts() {
    echo "-Xms32m -Xmx${DLEDGER_TOOLS_HEAP:-256m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1" \
        "-Djava.net.preferIPv4Stack=true -Drocketmq.home.dir=$DLEDGER_HOME" \
        "-Drmq.logback.configurationFile=$DLEDGER_HOME/conf/rmq.tools.logback.xml"
}

# Makes the data folder and enters it: the servers' relative paths resolve against it.
enter_data_dir() {
    mkdir -p "$DLEDGER_DATA" || die "cannot create the data folder $DLEDGER_DATA (set DLEDGER_DATA to another)"
    cd "$DLEDGER_DATA"
}

# ---------------------------------------------------------------------------------------------------------------------
# Background processes of the fast-try scripts (bin/dledger/fast-try.sh, bin/dledger/container-fast-try.sh). A script
# using them defines pid_file NAME (the file holding the pid of process NAME), log_dir NAME (the folder of its
# console.log) and running_pid NAME (the pid when it runs, see pid_if_ours), and sets STOP_TIMEOUT (seconds).

port_open() {
    (exec 3<> "/dev/tcp/$1/$2") 2> /dev/null
}

# pid_if_ours PID_FILE PATTERN...: the pid in PID_FILE when that process is alive and its command line matches one of
# the shell patterns (so a pid reused by another program is not taken for ours), else nothing.
pid_if_ours() {
    local f="$1" pid cmd pattern
    shift
    [ -f "$f" ] || return 0
    pid="$(cat "$f")"
    case "$pid" in '' | *[!0-9]*) return 0 ;; esac
    kill -0 "$pid" 2> /dev/null || return 0
    if [ -r "/proc/$pid/cmdline" ]; then
        cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline")"
    else
        cmd="$(ps -o args= -p "$pid" 2> /dev/null || true)"
    fi
    for pattern in "$@"; do
        # shellcheck disable=SC2254
        case "$cmd" in
            $pattern) echo "$pid"; return 0 ;;
        esac
    done
}

# namesrv_log_dir NAMESRV_CONF: where bin/mqnamesrv puts the nameserver's logs, the folder of its kvConfigPath plus
# /logs (relative paths against the data folder).
namesrv_log_dir() {
    local root
    root="$(conf_value "$1" kvConfigPath)"
    echo "$(dirname "$(abs_path "${root:-store/namesrv/kvConfig.json}" "$DLEDGER_DATA")")/logs"
}

# start_background NAME SCRIPT LAUNCHER CONF: runs `LAUNCHER -c CONF` in the background, output appended to NAME's
# console.log (under a line naming SCRIPT), its pid in NAME's pid file.
start_background() {
    local name="$1" script="$2" launcher="$3" conf="$4" dir console
    dir="$(log_dir "$name")"
    mkdir -p "$dir" "$(dirname "$(pid_file "$name")")"
    console="$dir/console.log"
    echo "=== $(date '+%Y-%m-%d %H:%M:%S') started by $script" >> "$console"
    nohup "$launcher" -c "$conf" >> "$console" 2>&1 < /dev/null &
    echo $! > "$(pid_file "$name")"
    echo "started $name (pid $!), console output in $console"
}

# stop_processes NAME...: SIGTERM to each running one, wait up to STOP_TIMEOUT, then SIGKILL, and wait until gone.
stop_processes() {
    local name pid pids=() names=() deadline alive killed=""
    for name in "$@"; do
        pid="$(running_pid "$name")"
        if [ -n "$pid" ]; then
            kill -TERM "$pid" 2> /dev/null || true
            pids+=("$pid")
            names+=("$name")
            echo "stopping $name (pid $pid)"
        fi
    done
    deadline=$(($(date +%s) + STOP_TIMEOUT))
    while :; do
        alive=()
        for pid in "${pids[@]+"${pids[@]}"}"; do
            if kill -0 "$pid" 2> /dev/null; then
                alive+=("$pid")
            fi
        done
        [ "${#alive[@]}" -gt 0 ] || break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            [ -z "$killed" ] || die "pids ${alive[*]} survived SIGKILL for 30 s"
            echo "still running ${STOP_TIMEOUT} s after SIGTERM, killing (SIGKILL): ${alive[*]}"
            kill -KILL "${alive[@]}" 2> /dev/null || true
            killed=1
            deadline=$(($(date +%s) + 30))
        fi
        sleep 0.2
    done
    for name in "$@"; do
        rm -f "$(pid_file "$name")"
    done
    if [ "${#names[@]}" -gt 0 ]; then
        echo "stopped ${names[*]}"
    fi
}

# remove_dir DIR: deletes DIR (saying so) when it exists; refuses the root, the home, the package and the data folder.
remove_dir() {
    local dir="$1"
    case "$dir" in
        '' | / | "$HOME" | "$DLEDGER_HOME" | "$DLEDGER_DATA") die "refusing to delete '$dir'" ;;
    esac
    if [ -e "$dir" ]; then
        rm -rf -- "$dir"
        echo "deleted $dir"
    fi
}
