#!/usr/bin/env bash
# Stop the cluster started by scripts/slurm/cluster-up.sh: cancel its jobs, then stop each daemon by
# its PID file (checking that the PID still is that daemon), never by name.
#   bash scripts/slurm/cluster-down.sh           # stop
#   bash scripts/slurm/cluster-down.sh --purge   # stop, and forget every job (controller state and
#                                                # accounting DB together: job ids restart at 1)
set -uo pipefail
PIDS=/run/slurm

# stop PIDFILE COMM
stop() {
  local pid i
  [[ -s $1 ]] || return 0
  pid=$(<"$1")
  if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]; then
    kill -TERM "$pid"
    for i in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "[cluster-down] stopped $2 ($pid)"
  fi
  rm -f "$1"
}

# Job processes belong to slurmstepd, which outlives slurmd: cancel the jobs first.
if [[ -s $PIDS/slurmctld.pid && $(cat "/proc/$(<$PIDS/slurmctld.pid)/comm" 2>/dev/null) == slurmctld ]]; then
  jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
  [[ -n $jobs ]] && scancel $jobs 2>/dev/null
  for _ in $(seq 50); do [[ -z $(squeue -h 2>/dev/null) ]] && break; sleep 0.2; done
fi
stop $PIDS/slurmd.pid slurmd
stop $PIDS/slurmctld.pid slurmctld
stop $PIDS/slurmdbd.pid slurmdbd
if [[ ${1:-} == --purge && -S /run/mysqld/mysqld.sock ]]; then
  mariadb --socket=/run/mysqld/mysqld.sock -e 'DROP DATABASE IF EXISTS slurm_acct_db'
fi
stop /run/mysqld/mysqld.pid mariadbd
stop /run/munge/munged.pid munged
if [[ ${1:-} == --purge ]]; then
  rm -rf /var/spool/slurm/ctld/* /var/spool/slurm/d/*
  echo "[cluster-down] purged jobs and accounting"
fi
exit 0
