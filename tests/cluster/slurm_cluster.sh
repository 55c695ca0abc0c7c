#!/usr/bin/env bash
# Start or stop a private single-node SLURM cluster for tests.
#
# Usage (as root):
#   slurm_cluster.sh start DIR   # write DIR/slurm.conf; start munged, slurmctld, slurmd
#   slurm_cluster.sh stop DIR    # stop the daemons started from DIR
#   slurm_cluster.sh status DIR  # exit 0 when the node is up, print sinfo
#
# Everything lives under DIR: the config, a private MUNGE key and socket, the controller state,
# the slurmd spool, logs and a job-completion log (DIR/log/jobcomp.txt, one line per finished
# job; this cluster has no accounting database, so sacct cannot answer). No system daemon is
# touched, so it can run beside a host's own munged.
# The one file outside DIR: /etc/slurm/slurm.conf becomes a symlink to DIR/slurm.conf (only
# when no slurm.conf is there; removed again by `stop`). Client commands find the config
# through $SLURM_CONF too (`source DIR/env.sh`), but the Snakemake SLURM plugin strips every
# SLURM_* variable before it runs `srun` inside a job, so srun must find it at the default path.
#
# The node is this host (its hostname, CPUs and memory as `slurmd -C` detects them), in two
# partitions: `debug` (the default) and `tcflow`.
# Needs the Debian packages slurm-wlm (slurmctld, slurmd, client tools) and munge.
# Both actions are idempotent: `start` on a running cluster only waits for the node,
# `stop` on a stopped one does nothing.
#
# Environment (optional):
#   TCFLOW_SLURM_CTLD_PORT   slurmctld port (default 16817; not the standard 6817, so a real
#   TCFLOW_SLURM_D_PORT      slurmd port    (default 16818;  cluster on this host is unaffected)
#   TCFLOW_SLURM_WAIT_S      seconds to wait for the node to become idle (default 60)
set -euo pipefail

readonly CTLD_PORT="${TCFLOW_SLURM_CTLD_PORT:-16817}"
readonly SLURMD_PORT="${TCFLOW_SLURM_D_PORT:-16818}"
# Two partitions on the one node: the default one and a second, so that a test can tell a job
# sent to a named partition from one that fell back to the default.
readonly DEFAULT_PARTITION=debug
readonly NAMED_PARTITION=tcflow
readonly WAIT_S="${TCFLOW_SLURM_WAIT_S:-60}"
readonly STOP_WAIT_S=20
# Finished jobs stay visible to `squeue --states=all` this long (s). The Snakemake SLURM
# plugin only trusts squeue for job status when MinJobAge >= 3 x its first-check delay.
readonly MIN_JOB_AGE_S=600
readonly CONF_MARKER="# Written by tests/cluster/slurm_cluster.sh"

die() { echo "slurm_cluster.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop|status DIR"; }

[[ $# -eq 2 ]] || usage
ACTION="$1"
DIR="$(realpath -m "$2")"

CONF="$DIR/slurm.conf"
MUNGE_DIR="$DIR/munge"
MUNGE_KEY="$MUNGE_DIR/munge.key"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket"
MUNGE_PID="$MUNGE_DIR/munged.pid"
CTLD_PID="$DIR/run/slurmctld.pid"
SLURMD_PID="$DIR/run/slurmd.pid"
LOG_DIR="$DIR/log"
NODE="$(hostname -s)"

export SLURM_CONF="$CONF"

pid_alive() {  # pid_alive PIDFILE -> 0 when the process in PIDFILE runs
    [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

need_tools() {
    local tool
    for tool in munged mungekey slurmctld slurmd sinfo scontrol; do
        command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] \
            || die "$tool not found; install with: apt-get install slurm-wlm munge"
    done
    [[ $EUID -eq 0 ]] || die "must run as root (slurmd launches jobs as their owner)"
}

write_munge_key() {
    mkdir -p "$MUNGE_DIR"
    chmod 0755 "$MUNGE_DIR"  # the socket must be reachable by job owners; the key stays 0400
    if [[ ! -s "$MUNGE_KEY" ]]; then
        if command -v mungekey >/dev/null || [[ -x /usr/sbin/mungekey ]]; then
            PATH="$PATH:/usr/sbin" mungekey --create --keyfile="$MUNGE_KEY"
        else  # munge < 0.5.14 has no mungekey
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
        fi
    fi
    chmod 0400 "$MUNGE_KEY"
}

start_munged() {
    if pid_alive "$MUNGE_PID"; then return; fi
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    PATH="$PATH:/usr/sbin" munged --force \
        --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" --pid-file="$MUNGE_PID" \
        --log-file="$LOG_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
        || die "munged failed to start; see $LOG_DIR/munged.log"
}

# The node's CPU layout and memory as slurmd itself detects them ("NodeName=... RealMemory=...").
node_line() {
    local detected
    detected="$(PATH="$PATH:/usr/sbin" slurmd -C | head -n 1)"
    [[ "$detected" == NodeName=* ]] || die "slurmd -C gave no node line: $detected"
    # keep CPUs/Boards/Sockets/Cores/Threads/RealMemory; name the node by its short hostname
    echo "NodeName=$NODE NodeAddr=127.0.0.1 ${detected#NodeName=* } State=UNKNOWN"
}

write_conf() {
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/run" "$LOG_DIR"
    chmod 0755 "$DIR" "$DIR/state" "$DIR/spool" "$DIR/run" "$LOG_DIR"
    local tmp="$CONF.tmp.$$"
    cat >"$tmp" <<EOF
$CONF_MARKER: single-node test cluster, no accounting.
ClusterName=tcflowtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# QE (Debian) is built against Open MPI with PMIx: srun starts its ranks through the pmix plugin
MpiDefault=pmix
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.txt
MinJobAge=$MIN_JOB_AGE_S
ReturnToService=2
$(node_line)
PartitionName=$DEFAULT_PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=$NAMED_PARTITION Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
EOF
    mv "$tmp" "$CONF"
    printf 'export SLURM_CONF=%q\n' "$CONF" >"$DIR/env.sh"
}

# /etc/slurm/slurm.conf -> DIR/slurm.conf, unless another cluster's config is there.
readonly SYSTEM_CONF=/etc/slurm/slurm.conf

link_system_conf() {
    if [[ -L "$SYSTEM_CONF" && "$(readlink "$SYSTEM_CONF")" == "$CONF" ]]; then return; fi
    if [[ -L "$SYSTEM_CONF" ]]; then
        # left by an earlier test cluster that was not stopped: replace it; anything else is
        # a real cluster's config and stays
        if [[ -e "$SYSTEM_CONF" ]] && ! head -n 1 "$SYSTEM_CONF" | grep -qF "$CONF_MARKER"; then
            die "$SYSTEM_CONF links to another SLURM config; this host has a cluster of its own"
        fi
        rm -f "$SYSTEM_CONF"
    elif [[ -e "$SYSTEM_CONF" ]]; then
        die "$SYSTEM_CONF exists; this host has a SLURM config of its own"
    fi
    mkdir -p "$(dirname "$SYSTEM_CONF")"
    ln -s "$CONF" "$SYSTEM_CONF"
}

unlink_system_conf() {
    if [[ -L "$SYSTEM_CONF" && "$(readlink "$SYSTEM_CONF")" == "$CONF" ]]; then
        rm -f "$SYSTEM_CONF"
    fi
}

node_state() {  # compact state of our node, e.g. idle, mix, down*, drain; empty if unknown
    sinfo --noheader --nodes="$NODE" --format=%t 2>/dev/null | head -n 1 | tr -d ' '
}

wait_idle() {
    local waited=0 state resumed=0
    while (( waited < WAIT_S )); do
        state="$(node_state)"
        case "$state" in
            idle|mix|alloc) sinfo; return 0 ;;
            down*|drain*|drng*|fail*)
                # stale state from an earlier run (e.g. killed slurmd): put it back in service once
                if (( ! resumed )); then
                    scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
                    resumed=1
                fi ;;
        esac
        sleep 1
        waited=$((waited + 1))
    done
    die "node $NODE not idle after ${WAIT_S}s (state '${state:-unknown}'); see $LOG_DIR"
}

start() {
    need_tools
    mkdir -p "$DIR" "$LOG_DIR"
    if pid_alive "$CTLD_PID" && pid_alive "$SLURMD_PID" && pid_alive "$MUNGE_PID"; then
        link_system_conf
        wait_idle
        return
    fi
    stop_daemons  # a partial earlier start: begin clean
    write_munge_key
    write_conf
    link_system_conf
    start_munged
    PATH="$PATH:/usr/sbin" slurmctld -f "$CONF" \
        || die "slurmctld failed to start; see $LOG_DIR/slurmctld.log"
    PATH="$PATH:/usr/sbin" slurmd -f "$CONF" -N "$NODE" \
        || die "slurmd failed to start; see $LOG_DIR/slurmd.log"
    wait_idle
}

stop_one() {  # stop_one NAME PIDFILE
    local pid waited=0
    pid_alive "$2" || { rm -f "$2"; return 0; }
    pid="$(cat "$2")"
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if (( waited >= STOP_WAIT_S )); then
            echo "slurm_cluster.sh: $1 (pid $pid) ignored SIGTERM for ${STOP_WAIT_S}s; SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 1
        waited=$((waited + 1))
    done
    rm -f "$2"
}

stop_daemons() {
    stop_one slurmd "$SLURMD_PID"
    stop_one slurmctld "$CTLD_PID"
    stop_one munged "$MUNGE_PID"
    unlink_system_conf
}

status() {
    pid_alive "$CTLD_PID" && pid_alive "$SLURMD_PID" || die "not running (from $DIR)"
    sinfo
}

case "$ACTION" in
    start) start ;;
    stop) stop_daemons ;;
    status) status ;;
    *) usage ;;
esac
