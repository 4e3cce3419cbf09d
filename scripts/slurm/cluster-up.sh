#!/usr/bin/env bash
# Start a real one-node SLURM cluster on this machine for the `cluster` tests (Debian 12, as root).
#
#   bash scripts/slurm/cluster-up.sh      # install if needed, configure, start; ~20 s from nothing
#   bash scripts/slurm/cluster-down.sh    # stop it again (by PID file)
#
# What it gives: SLURM 22.05 from Debian with accounting (slurmdbd + MariaDB: submitit learns that a
# job was cancelled or killed only through sacct), node `node1` with fake GPUs (GRES backed by
# character devices), partition `debug` (default, preemptable: a preempted job gets its --signal and
# is requeued) and partition `urgent` (higher priority tier: its jobs preempt `debug` jobs).
# Running it again is cheap: daemons that are up stay up, unless the generated config changed.
#
# Environment:
#   STRATDISTILL_SLURM_GPUS=2   fake GPUs on the node (0: none, so GPU requests are refused)
#   STRATDISTILL_SLURM_CPUS=    CPUs the node advertises (default: the machine's)
set -euo pipefail

GPUS=${STRATDISTILL_SLURM_GPUS:-2}
CPUS=${STRATDISTILL_SLURM_CPUS:-}
NODE=node1
PIDS=/run/slurm
STATE=/var/spool/slurm
LOGS=/var/log/slurm
DB_SOCKET=/run/mysqld/mysqld.sock

say() { echo "[cluster-up] $*"; }

# running PIDFILE COMM: the file names a live, non-zombie process whose command is COMM
running() {
  local pid
  [[ -s $1 ]] || return 1
  pid=$(<"$1")
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

# halt PIDFILE COMM: TERM (then KILL after 10 s) the process the file names, if it is COMM
halt() {
  local pid i
  running "$1" "$2" || { rm -f "$1"; return 0; }
  pid=$(<"$1")
  kill -TERM "$pid"
  for i in $(seq 50); do running "$1" "$2" || break; sleep 0.2; done
  running "$1" "$2" && kill -KILL "$pid"
  rm -f "$1"
}

# retry SECONDS WHAT CMD...: run CMD until it succeeds
retry() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then say "gave up waiting for $what"; return 1; fi
    sleep 0.25
  done
}

# --- packages --------------------------------------------------------------------------------------
need=()
for p in munge slurmctld slurmd slurm-client slurmdbd mariadb-server; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if ((${#need[@]})); then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- munge (authentication between the daemons and the clients) -----------------------------------
install -d -o munge -g munge -m 0700 /etc/munge
install -d -o munge -g munge -m 0755 /run/munge /var/lib/munge /var/log/munge
[[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
running /run/munge/munged.pid munged || { say "starting munged"; runuser -u munge -- /usr/sbin/munged; }
retry 10 munge bash -c 'munge -n </dev/null | unmunge'

# --- configuration -----------------------------------------------------------------------------------
mkdir -p "$PIDS" "$STATE/ctld" "$STATE/d" "$LOGS" /etc/slurm
hw=$(slurmd -C | head -n1)  # "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ..."
field() { grep -o " $1=[0-9]*" <<<"$hw" | cut -d= -f2; }
memory=$(($(field RealMemory) - 512))  # leave the OS some room
if [[ -n $CPUS ]]; then
  topology="CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1"
  overrides="SlurmdParameters=config_overrides"  # slurmd would otherwise reject more CPUs than it has
else
  topology="CPUs=$(field CPUs) Sockets=$(field SocketsPerBoard) CoresPerSocket=$(field CoresPerSocket) ThreadsPerCore=$(field ThreadsPerCore)"
  overrides=""
fi
gres_types="" node_gres="" gres_conf="AutoDetect=off"
if ((GPUS > 0)); then
  # GRES gpu needs device files (a bare Count= leaves the node INVAL); /dev/null's numbers will do,
  # nothing constrains devices here: SLURM only hands out CUDA_VISIBLE_DEVICES.
  mkdir -p /dev/fakegpu
  for ((i = 0; i < GPUS; i++)); do [[ -c /dev/fakegpu/gpu$i ]] || mknod "/dev/fakegpu/gpu$i" c 1 3; done
  gres_types="GresTypes=gpu
AccountingStorageTRES=gres/gpu" node_gres="Gres=gpu:$GPUS"  # sacct then shows each job's GPUs
  gres_conf+=$'\n'"NodeName=$NODE Name=gpu File=/dev/fakegpu/gpu[0-$((GPUS - 1))]"
fi

slurm_conf="# written by scripts/slurm/cluster-up.sh
ClusterName=stratdistill
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
# requeued jobs may start again after cred_expire seconds (default 120)
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default, a job that names no memory takes all of it and jobs run one at a time
DefMemPerCPU=1024
ReturnToService=2
MailProg=/bin/true
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$PIDS/slurmd.pid
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
MinJobAge=300
KillWait=5
InactiveLimit=0
# preemption by partition priority; the preempted job is sent its --signal, then requeued
# (22.05 spells this SlurmctldParameters=preempt_send_user_signal)
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
$overrides
$gres_types
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=localhost $topology RealMemory=$memory $node_gres State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=10
PartitionName=urgent Nodes=$NODE Default=NO MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF"

changed=0
put() {  # put FILE TEXT: write TEXT to FILE when it differs
  if [[ ! -f $1 || $(<"$1") != "$2" ]]; then printf '%s\n' "$2" >"$1"; changed=1; fi
}
put /etc/slurm/slurm.conf "$slurm_conf"
put /etc/slurm/gres.conf "$gres_conf"
if ((changed)); then
  say "configuration written"
  halt "$PIDS/slurmd.pid" slurmd
  halt "$PIDS/slurmctld.pid" slurmctld
fi

# --- accounting: MariaDB (unix socket only) + slurmdbd -----------------------------------------------
if ! running /run/mysqld/mysqld.pid mariadbd; then
  say "starting mariadb"
  install -d -o mysql -g mysql /run/mysqld
  [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  # the server itself, not mysqld_safe: one process, one PID file
  nohup /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid --socket=$DB_SOCKET \
    --skip-networking --skip-name-resolve >"$LOGS/mariadb.log" 2>&1 </dev/null &
  retry 30 mariadb mariadb-admin --socket=$DB_SOCKET ping
fi
mariadb --socket=$DB_SOCKET -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'stratdistill';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
dbd_conf="AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$PIDS/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=stratdistill"
[[ -f /etc/slurm/slurmdbd.conf && $(</etc/slurm/slurmdbd.conf) == "$dbd_conf" ]] ||
  printf '%s\n' "$dbd_conf" >/etc/slurm/slurmdbd.conf
chmod 600 /etc/slurm/slurmdbd.conf  # slurmdbd refuses a config others can read
if ! running "$PIDS/slurmdbd.pid" slurmdbd; then
  say "starting slurmdbd"
  slurmdbd
  retry 30 slurmdbd bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819'
fi

# --- controller and node ------------------------------------------------------------------------------
running "$PIDS/slurmctld.pid" slurmctld || { say "starting slurmctld"; slurmctld; }
retry 30 slurmctld bash -c 'scontrol ping | grep -q UP'
running "$PIDS/slurmd.pid" slurmd || { say "starting slurmd"; slurmd -N "$NODE"; }
node_ready() { [[ $(sinfo -h -n "$NODE" -o %T) =~ ^(idle|mixed|allocated) ]]; }
if ! retry 20 "node $NODE" node_ready; then
  say "node is $(sinfo -h -n "$NODE" -o %T); resuming it"  # e.g. left down by a killed run
  scontrol update nodename="$NODE" state=resume || true
  retry 20 "node $NODE" node_ready
fi
retry 30 sacct sacct -n -X -S now-1minutes
sinfo -o '%P %a %D %T %c %m %G'
say "cluster up"
