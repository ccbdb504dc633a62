#!/bin/sh
# A single-node Slurm cluster for the tests and benchmarks, without systemd
# (docs/slurm.md, "How the tests start their own cluster").
#
#   cluster.sh start DIR [CTLD_PORT SLURMD_PORT]
#                          starts munged, slurmctld and slurmd with every file
#                          under DIR, waits until the node is idle, and
#                          prints the slurm.conf path (export it as SLURM_CONF);
#                          with two free ports, several clusters can run at
#                          once (default 6817 and 6818)
#   cluster.sh stop DIR    stops exactly the daemons `start DIR` started (by
#                          the pids it recorded, checking each pid's program)
#
# Needs root (SlurmUser=root) and Debian's slurmctld, slurmd, slurm-client
# and munge packages (.ci/run installs them).
set -eu

cmd=${1:?usage: cluster.sh start|stop DIR}
dir=${2:?usage: cluster.sh start|stop DIR}
ctld_port=${3:-6817}
slurmd_port=${4:-6818}

# Programs as the pid files will name them (slurmd is an alternatives link).
prog() { readlink -f "$(command -v "$1")"; }

stop() {
  for name in slurmd slurmctld munged; do
    pidfile="$dir/$name.pid.started"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    want=$(cat "$dir/$name.exe" 2>/dev/null || true)
    have=$(readlink -f "/proc/$pid/exe" 2>/dev/null || true)
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
    if [ -n "$want" ] && [ "$have" = "$want" ] && [ "$state" != Z ]; then
      kill -TERM "$pid" 2>/dev/null || true
      i=0
      while [ $i -lt 100 ]; do
        state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
        [ "$state" = gone ] || [ "$state" = Z ] && break
        sleep 0.1
        i=$((i + 1))
      done
      [ "$state" = gone ] || [ "$state" = Z ] || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi
[ "$cmd" = start ] || { echo "usage: cluster.sh start|stop DIR" >&2; exit 2; }

for p in munged mungekey slurmctld slurmd sinfo; do
  command -v "$p" >/dev/null 2>&1 || { echo "cluster.sh: $p is not installed" >&2; exit 3; }
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# munged refuses a socket directory without o+x; slurmd's spool must be 0755.
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chmod 0755 "$dir" "$dir/munge" "$dir/spool"
chmod 0700 "$dir/state"
host=$(hostname -s)
mungekey --create --keyfile "$dir/munge.key" --force >/dev/null
chmod 0400 "$dir/munge.key"
hw=$(slurmd -C | head -1)
mem=$(echo "$hw" | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
# Eight CPUs on the node line (config_overrides) so several test jobs run
# at once on a two-core machine.
cat > "$dir/slurm.conf" <<CONF
ClusterName=agentdtest
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd.%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
MinJobAge=3600
KillWait=5
ReturnToService=2
InactiveLimit=0
Waittime=0
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=8 RealMemory=${mem:-1000} State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"

# started NAME PIDFILE: records the daemon's pid (from its own pid file)
# and program, so `stop` signals only what this script started.
started() {
  i=0
  while [ ! -s "$2" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  [ -s "$2" ] || { echo "cluster.sh: $1 did not start; see $dir/log" >&2; stop; exit 1; }
  cp "$2" "$dir/$1.pid.started"
  prog "$1" > "$dir/$1.exe"
}

setsid munged -F --key-file "$dir/munge.key" --socket "$dir/munge/munge.socket" \
  --pid-file "$dir/munged.pid" --log-file "$dir/log/munged.log" \
  --seed-file "$dir/munge.seed" </dev/null >"$dir/log/munged.out" 2>&1 &
started munged "$dir/munged.pid"
setsid slurmctld -D -c -i -f "$SLURM_CONF" </dev/null >"$dir/log/slurmctld.out" 2>&1 &
started slurmctld "$dir/slurmctld.pid"
setsid slurmd -D -f "$SLURM_CONF" -N "$host" </dev/null >"$dir/log/slurmd.out" 2>&1 &
started slurmd "$dir/slurmd.pid"

i=0
while [ $i -lt 300 ]; do
  st=$(sinfo -h -N -o '%t' 2>/dev/null | head -1 || true)
  [ "$st" = idle ] && { echo "$SLURM_CONF"; exit 0; }
  sleep 0.1
  i=$((i + 1))
done
echo "cluster.sh: the node did not become idle in 30 s (last state: ${st:-none}); see $dir/log" >&2
stop
exit 1
