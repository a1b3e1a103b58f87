#!/bin/sh
# A throw-away one-node Slurm cluster on this machine, for testing the job templates (test/e2e/slurm.test.ts):
# its own munge key and socket, its own slurm.conf (this node's CPUs and memory, proctrack/linuxproc, task/none, a
# few stand-in "gpu" resources so that the templates' GPU requests schedule), its own ports, state and
# logs, all under DIR. Nothing system-wide is configured or started.
#   tools/slurm/local-cluster.sh start DIR   writes DIR/slurm.conf, starts munged, slurmctld and slurmd, waits until
#                                            the node takes jobs; then use the client commands with
#                                            SLURM_CONF=DIR/slurm.conf
#   tools/slurm/local-cluster.sh stop DIR    stops the three daemons by the pids in DIR
# Needs Debian's slurm-wlm and munge (tools/setup.sh installs them) and root (slurmd runs jobs as their users).
set -eu
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi
fail() {
  echo "local-cluster: $*" >&2
  exit 1
}

stop() {
  for name in slurmd slurmctld munged; do
    pidfile="$dir/$name.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
      # Wait for it to go (slurmd and slurmctld save their state first).
      i=0
      while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
  done
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi
[ "$cmd" = start ] || fail "unknown command '$cmd' (start or stop)"

for bin in munged mungekey slurmctld slurmd sinfo; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || fail "$bin not found: install Debian's slurm-wlm and munge (tools/setup.sh slurm-wlm munge)"
done
[ "$(id -u)" -eq 0 ] || fail "slurmd must run as root (it starts jobs as their users)"
PATH="$PATH:/usr/sbin"
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
dir=$(cd "$dir" && pwd)
trap 'stop' EXIT

# munge: a fresh key, its own socket (the system's munged, if any, is left alone)
chmod 700 "$dir/munge"
rm -f "$dir/munge/munge.key"
mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null
chmod 600 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/munge.seed"

# Free-looking ports, so that clusters of parallel test runs do not meet.
base=$((20000 + $$ % 20000))
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ { print int($2 / 1024 / 2) }' /proc/meminfo)
cat >"$dir/slurm.conf" <<CONF
ClusterName=cao2test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
JobRequeue=1
MailProg=/bin/true
KillWait=5
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:3 State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
# Three stand-in GPUs (Slurm wants a character device per GPU; with task/none nothing is isolated or opened), so
# that the templates' --gres=gpu:1 schedules as on a real cluster.
printf "AutoDetect=off\nName=gpu File=/dev/null\nName=gpu File=/dev/zero\nName=gpu File=/dev/full\n" >"$dir/gres.conf"

slurmctld -f "$dir/slurm.conf" -i
slurmd -f "$dir/slurm.conf"
export SLURM_CONF="$dir/slurm.conf"
i=0
until sinfo -h -N -o %t 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; do
  i=$((i + 1))
  if [ $i -gt 300 ]; then
    echo "local-cluster: the node did not come up in 30 s; logs in $dir:" >&2
    tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.1
done
trap - EXIT
echo "export SLURM_CONF=$dir/slurm.conf"
