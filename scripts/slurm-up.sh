#!/usr/bin/env bash
# A real single-node Slurm cluster (Debian bookworm packages, Slurm 22.05) for the integration tests that submit
# jobs with sbatch. No systemd: the daemons are started directly and tracked through their pidfiles.
#
#   bash scripts/slurm-up.sh up       install if missing, write slurm.conf, start munged/slurmctld/slurmd, wait idle
#   bash scripts/slurm-up.sh down     cancel all jobs, stop slurmd, slurmctld, munged
#   bash scripts/slurm-up.sh status   print the state; exit 0 when jobs can be submitted
#   bash scripts/slurm-up.sh reset    down, wipe the saved controller/node state (job ids restart at 1), up
#
# Every subcommand is idempotent: `up` on a running, unchanged cluster is a no-op, `down` on a stopped one too.
# Environment: SLURM_UP_WAIT (seconds to wait for readiness, default 30); SLURM_EXTRA_CONF (lines appended to
# slurm.conf, e.g. "SchedulerParameters=...").
# Background and measurements: /work/shared/spec/slurm-and-supervisor.md.
set -euo pipefail

PACKAGES=(slurm-wlm slurmctld slurmd slurm-client munge)
CONF=/etc/slurm/slurm.conf
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
LOG_DIR=/var/log/slurm
MUNGE_PIDFILE=/run/munge/munged.pid
CTLD_PIDFILE=/run/slurmctld.pid
SLURMD_PIDFILE=/run/slurmd.pid
LOCK_FILE=/run/slurm-up.lock
WAIT_SECS=${SLURM_UP_WAIT:-30}
NODE=$(hostname -s)

START_MS=$(date +%s%3N)
STEP_MS=$START_MS

# Timings: every line shows the time since the start of the command and since the previous line.
log() {
  local now
  now=$(date +%s%3N)
  printf '[slurm-up %6.2fs %+6.2fs] %s\n' "$((now - START_MS))e-3" "$((now - STEP_MS))e-3" "$*"
  STEP_MS=$now
}
die() { log "ERROR: $*"; exit 1; }

need_root() { [[ $(id -u) -eq 0 ]] || die "'$1' needs root (apt-get, daemons)"; }

# Serialise concurrent invocations (several test sessions may call `up` at once). The daemons are started with
# 9>&- so that they do not inherit the lock and hold it forever.
LOCKED=0
take_lock() {
  ((LOCKED)) && return 0
  exec 9>"$LOCK_FILE"
  flock -w 120 9 || die "another slurm-up.sh holds $LOCK_FILE"
  LOCKED=1
}

# --- processes ---------------------------------------------------------------------------------------------------

# The pid in PIDFILE when that process is alive and really is COMM. PID 1 here reaps orphans lazily, so an exited
# daemon stays a zombie for a while ('kill -0' still succeeds): a zombie counts as gone. /run is on disk, so a
# pidfile can outlive a reboot and name a recycled pid: the comm check guards against that.
live_pid() {
  local pidfile=$1 comm=$2 pid stat
  [[ -r $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [[ -n $pid ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1
  stat=${stat##*) }           # the field after "(comm)" is the state letter
  [[ ${stat:0:1} != Z ]] || return 1
  echo "$pid"
}

gone_or_zombie() {
  local pid=$1 stat
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [[ ${stat:0:1} == Z ]]
}

# TERM the daemon, wait (bounded) until it is gone or a zombie; KILL it if it does not go.
stop_daemon() {
  local pidfile=$1 comm=$2 pid i
  if ! pid=$(live_pid "$pidfile" "$comm"); then
    log "$comm not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    gone_or_zombie "$pid" && { log "$comm (pid $pid) stopped"; return 0; }
    sleep 0.1
  done
  log "$comm (pid $pid) ignored TERM for 15 s: KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    gone_or_zombie "$pid" && return 0
    sleep 0.1
  done
  die "$comm (pid $pid) survived KILL"
}

# --- packages ----------------------------------------------------------------------------------------------------

installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
  [[ $status == "install ok installed" ]]
}

install_packages() {
  local missing=() pkg policy update=0
  for pkg in "${PACKAGES[@]}"; do installed "$pkg" || missing+=("$pkg"); done
  if ((${#missing[@]} == 0)); then
    log "packages already installed ($(dpkg-query -W -f='${Version}' slurmctld))"
    return 0
  fi
  # Only refresh the package lists when apt does not know a candidate. The output is captured first:
  # `apt-cache policy X | grep -q` under pipefail is always false (grep exits early, apt-cache gets SIGPIPE).
  for pkg in "${missing[@]}"; do
    policy=$(apt-cache policy "$pkg" 2>/dev/null || true)
    if [[ $policy != *Candidate:* || $policy == *"Candidate: (none)"* ]]; then update=1; fi
  done
  if ((update)); then
    apt-get update -qq
    log "apt-get update"
  fi
  # --no-install-recommends: 9 packages instead of 39 (rocm, ipmi, hdf5, influx plugins...). policy-rc.d (exit 101)
  # keeps the postinst scripts from starting daemons; provide one for the duration if the machine has none.
  local own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { ((own_policy)) && rm -f /usr/sbin/policy-rc.d; die "apt-get install ${missing[*]} failed"; }
  if ((own_policy)); then rm -f /usr/sbin/policy-rc.d; fi
  log "installed ${missing[*]}"
}

# --- configuration -----------------------------------------------------------------------------------------------

# Node topology from `slurmd -C` (CPUs, sockets, cores, threads); memory from `free -m` minus 1 GiB of headroom:
# a RealMemory larger than what slurmd detects gets the node drained.
node_line() {
  local hw cpus sockets cores threads mem
  hw=$(slurmd -C 2>/dev/null | head -n 1)
  cpus=$(sed -n 's/.*\bCPUs=\([0-9]*\).*/\1/p' <<<"$hw")
  sockets=$(sed -n 's/.*\bSocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
  cores=$(sed -n 's/.*\bCoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
  threads=$(sed -n 's/.*\bThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
  [[ -n $cpus && -n $sockets && -n $cores && -n $threads ]] || die "cannot parse 'slurmd -C': $hw"
  mem=$(free -m | awk '/^Mem:/ { print $2 - 1024 }')
  ((mem >= 256)) || mem=256
  echo "NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN"
}

# Writes slurm.conf; returns 0 when the file changed (the daemons then need a restart), 1 when it is unchanged.
write_conf() {
  local tmp node
  node=$(node_line) # not inside the here-document: there a failure would go unnoticed
  tmp=$(mktemp)
  # No slurmdbd/MariaDB: accounting_storage/none (so `sacct` is disabled; `sacct -c` reads the jobcomp file).
  # No cgroup.conf: proctrack/linuxproc + task/none + jobacct_gather/none never touch cgroups.
  # kill_invalid_depend: a job whose dependency can never be satisfied (afterok on a failed job) is cancelled
  # instead of pending forever. MinJobAge=300: finished jobs stay visible to scontrol/squeue for 5 minutes.
  # batch_sched_delay=0: the default (3 s) lets the controller put off scheduling a freshly submitted batch job;
  # measured on an idle node, sbatch -> job running went from ~2.9 s to ~0.95 s, an `--array 0-2%1` from 9 s to
  # 3 s, and the cancel of a job whose dependency failed from 6.5 s to 2 s.
  cat >"$tmp" <<EOF
# Written by scripts/slurm-up.sh; rewritten on every 'up'.
ClusterName=ci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
DependencyParameters=kill_invalid_depend
ReturnToService=2
MinJobAge=300
SlurmctldPidFile=$CTLD_PIDFILE
SlurmdPidFile=$SLURMD_PIDFILE
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$node
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  if [[ -n ${SLURM_EXTRA_CONF:-} ]]; then printf '%s\n' "$SLURM_EXTRA_CONF" >>"$tmp"; fi
  if [[ -f $CONF ]] && cmp -s "$tmp" "$CONF"; then
    rm -f "$tmp"
    return 1
  fi
  install -m 644 "$tmp" "$CONF"
  rm -f "$tmp"
  return 0
}

# --- readiness ---------------------------------------------------------------------------------------------------

ctld_ping() { timeout 5 scontrol ping >/dev/null 2>&1; }

node_state() { timeout 5 sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1 || true; }

# idle/mixed/allocated/completing: the node takes jobs (others may already be running some).
usable_state() { [[ $1 =~ ^(idle|mixed|allocated|completing)$ ]]; }

# Fail fast (after a short grace for the pidfile) instead of waiting the full WAIT_SECS for a daemon that died.
daemon_died() {
  local pidfile=$1 comm=$2 started=$3
  if ((SECONDS - started >= 3)) && ! live_pid "$pidfile" "$comm" >/dev/null; then
    die "$comm is not running (see $LOG_DIR/$comm.log)"
  fi
}

wait_ready() {
  local deadline state resumed=0 started=$SECONDS
  deadline=$((SECONDS + WAIT_SECS))
  until ctld_ping; do
    ((SECONDS < deadline)) || die "slurmctld does not answer 'scontrol ping' after ${WAIT_SECS}s (see $LOG_DIR/slurmctld.log)"
    daemon_died "$CTLD_PIDFILE" slurmctld "$started"
    sleep 0.2
  done
  log "slurmctld answers ping"
  while :; do
    state=$(node_state)
    usable_state "$state" && break
    # down/drained without '*' (the '*' means "not responding": wait for slurmd to register instead).
    if ((!resumed)) && [[ $state =~ ^(down|drained|draining|drain|fail)$ ]]; then
      log "node $NODE is $state: resume"
      scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
      resumed=1
    fi
    ((SECONDS < deadline)) || die "node $NODE is '${state:-unknown}' after ${WAIT_SECS}s (see $LOG_DIR/slurmd.log)"
    daemon_died "$SLURMD_PIDFILE" slurmd "$started"
    sleep 0.2
  done
  # After a restart the controller reports the node state it saved (idle) before slurmd has registered again:
  # make sure slurmd is really there, or jobs would sit pending until SlurmdTimeout.
  live_pid "$SLURMD_PIDFILE" slurmd >/dev/null || die "slurmd is not running (see $LOG_DIR/slurmd.log)"
  log "node $NODE is $state"
}

# --- subcommands -------------------------------------------------------------------------------------------------

start_munged() {
  local pid
  if pid=$(live_pid "$MUNGE_PIDFILE" munged); then log "munged already running (pid $pid)"; return 0; fi
  mkdir -p /run/munge
  chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged 9>&- # daemonizes, writes /run/munge/munged.pid; 9>&-: not our lock
  log "munged started"
}

start_slurmctld() {
  local pid
  if pid=$(live_pid "$CTLD_PIDFILE" slurmctld); then log "slurmctld already running (pid $pid)"; return 0; fi
  /usr/sbin/slurmctld 9>&- # daemonizes, drops to SlurmUser=slurm
  log "slurmctld started"
}

start_slurmd() {
  local pid
  if pid=$(live_pid "$SLURMD_PIDFILE" slurmd); then log "slurmd already running (pid $pid)"; return 0; fi
  /usr/sbin/slurmd 9>&- # daemonizes, runs as root
  log "slurmd started"
}

cmd_up() {
  need_root up
  take_lock
  install_packages
  mkdir -p "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR"
  chown slurm:slurm "$LOG_DIR" "$STATE_DIR"
  if write_conf; then
    log "wrote $CONF"
    # A running daemon keeps its old configuration (slurmd even complains about a differing slurm.conf).
    if live_pid "$SLURMD_PIDFILE" slurmd >/dev/null || live_pid "$CTLD_PIDFILE" slurmctld >/dev/null; then
      log "configuration changed: restarting slurmctld and slurmd"
      stop_daemon "$SLURMD_PIDFILE" slurmd
      stop_daemon "$CTLD_PIDFILE" slurmctld
    fi
  else
    log "$CONF unchanged"
  fi
  start_munged
  start_slurmctld
  start_slurmd
  wait_ready
  log "up: Slurm is ready (sbatch/squeue/scontrol; node $NODE, partition debug)"
}

cmd_down() {
  need_root down
  take_lock
  local ids i
  if command -v scontrol >/dev/null && ctld_ping; then
    ids=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [[ -n $ids ]]; then
      # shellcheck disable=SC2086 # one argument per job id
      timeout 10 scancel $ids >/dev/null 2>&1 || true
      log "cancelled $(wc -w <<<"$ids") job(s)"
      # Let slurmd take the job steps down before it is stopped itself (slurmstepd outlives slurmd otherwise).
      for ((i = 0; i < 50; i++)); do
        [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null || true) ]] && break
        sleep 0.2
      done
    fi
  fi
  stop_daemon "$SLURMD_PIDFILE" slurmd
  stop_daemon "$CTLD_PIDFILE" slurmctld
  stop_daemon "$MUNGE_PIDFILE" munged
  log "down"
}

cmd_status() {
  local pid name pidfile usable=1 state
  for name in munged slurmctld slurmd; do
    case $name in
      munged) pidfile=$MUNGE_PIDFILE ;;
      slurmctld) pidfile=$CTLD_PIDFILE ;;
      slurmd) pidfile=$SLURMD_PIDFILE ;;
    esac
    if pid=$(live_pid "$pidfile" "$name"); then
      echo "$name: running (pid $pid)"
    else
      echo "$name: not running"
      usable=0
    fi
  done
  if command -v scontrol >/dev/null && ctld_ping; then
    echo "scontrol ping: ok"
    state=$(node_state)
    echo "node $NODE: ${state:-unknown}"
    usable_state "$state" || usable=0
    echo "jobs pending/running: $(timeout 5 squeue -h -o %i 2>/dev/null | wc -l)"
  else
    echo "scontrol ping: no answer"
    usable=0
  fi
  if ((usable)); then echo "status: usable"; else echo "status: NOT usable (bash scripts/slurm-up.sh up)"; fi
  ((usable))
}

cmd_reset() {
  need_root reset
  cmd_down
  # Saved jobs, job-id counter and node state; job ids restart at 1.
  find "$STATE_DIR" "$SPOOL_DIR" -mindepth 1 -delete 2>/dev/null || true
  log "wiped $STATE_DIR and $SPOOL_DIR"
  cmd_up
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 up|down|status|reset" >&2
    exit 2
    ;;
esac
