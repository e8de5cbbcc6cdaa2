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
#   DLEDGER_TOOLS_HEAP    heap of mqadmin, dledger, dledger-migrate and the demo, default 256m
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
