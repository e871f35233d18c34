#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine runs `captioner batch --shard` as a job
# array (issue 28, docs/cluster.md): munged, slurmctld and slurmd are started on localhost
# with a slurm.conf of their own (in a temporary folder), `sbatch --array=0-3` captions the
# fixture photos in 4 shards, one task is cancelled midway and submitted again (it resumes),
# `captioner merge` joins the shards, and the merged captions must equal a single
# `captioner batch --json` of the same photos (same captions, same order). The daemons are
# stopped at the end, whatever happens.
#
# Installs nothing: the Debian packages `slurm-wlm` and `munge` are in .ci/apt-packages.txt.
# Skipped (exit 0, saying why) when not run as root or when the Slurm or munge programs are
# missing. Uses target/release/captioner (built when missing).
#
#   tools/slurm-test.sh [PHOTO_DIR]     (default: tests/fixtures/everyday)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ "$(id -u)" != 0 ]; then
  echo "slurm-test: skipped: needs root (it starts munged, slurmctld and slurmd)"
  exit 0
fi
for prog in munged mungekey slurmctld slurmd sbatch squeue scancel scontrol sinfo; do
  if ! command -v "$prog" >/dev/null 2>&1; then
    echo "slurm-test: skipped: $prog is missing (apt-get install slurm-wlm munge, see .ci/apt-packages.txt)"
    exit 0
  fi
done

photos=$(realpath "${1:-tests/fixtures/everyday}")
captioner="$repo/target/release/captioner"
if [ ! -x "$captioner" ]; then
  cargo build --release -p captioner-cli
fi

work=$(mktemp -d /tmp/captioner-slurm.XXXXXX)
chmod 700 "$work"
mkdir -p "$work/state" "$work/spool" "$work/logs" "$work/munge"
out="$work/shards"
host=$(hostname -s)
conf="$work/slurm.conf"
export SLURM_CONF="$conf"

say() { echo "slurm-test: $*"; }
fail() {
  say "FAILED: $*"
  for log in "$work"/slurmctld.log "$work"/slurmd.log "$work"/logs/*; do
    [ -f "$log" ] && { echo "--- $log"; tail -n 30 "$log"; }
  done
  exit 1
}

stop() {
  for pidfile in "$work/slurmd.pid" "$work/slurmctld.pid" "$work/munge/munged.pid"; do
    if [ -s "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  # Give them a moment to go, then make sure.
  for _ in $(seq 50); do
    alive=0
    for pidfile in "$work/slurmd.pid" "$work/slurmctld.pid" "$work/munge/munged.pid"; do
      if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then alive=1; fi
    done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pidfile in "$work/slurmd.pid" "$work/slurmctld.pid" "$work/munge/munged.pid"; do
    if [ -s "$pidfile" ]; then kill -9 "$(cat "$pidfile")" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}
trap stop EXIT

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local limit=$1
  shift
  local end=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}

# munge: a key of its own, its socket in the work folder.
mungekey --create --keyfile "$work/munge/munge.key" >/dev/null 2>&1 \
  || dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --force --key-file "$work/munge/munge.key" \
  --socket "$work/munge/munge.socket" --pid-file "$work/munge/munged.pid" \
  --log-file "$work/munge/munged.log" --seed-file "$work/munge/munged.seed" \
  || fail "munged did not start"

cat >"$conf" <<EOF
ClusterName=captioner-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -f "$conf" || fail "slurmctld did not start"
slurmd -f "$conf" -N "$host" || fail "slurmd did not start"
node_idle() { sinfo -h -N -o '%t' 2>/dev/null | grep -q '^idle'; }
wait_for 120 node_idle || fail "the node never became idle: $(sinfo -N 2>&1 || true)"
say "cluster up: $(sinfo -h -N -o '%N %t %c CPUs')"

# The job script: one shard per array task, on the cores Slurm gives it
# (SLURM_CPUS_PER_TASK, which captioner honours).
cat >"$work/shard.sbatch" <<EOF
#!/bin/bash
#SBATCH --job-name=captioner-shards
#SBATCH --cpus-per-task=1
#SBATCH --output=$work/logs/%A_%a.out
exec "$captioner" batch "$photos" --shard "\$SLURM_ARRAY_TASK_ID/4" --out "$out"
EOF

job_done() { [ -z "$(squeue -h -j "$1" 2>/dev/null)" ]; }

job=$(sbatch --parsable --array=0-3 "$work/shard.sbatch") || fail "sbatch failed"
say "submitted job array $job (shards 0-3 of 4)"

# Cancel task 2 once it has written its first captions, before it finishes.
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
started() { [ "$(lines "$out/shard-2-of-4.jsonl")" -ge 2 ] || [ -f "$out/shard-2-of-4.done.json" ]; }
wait_for 600 started || fail "shard 2 never started"
scancel "${job}_2"
say "cancelled task ${job}_2 after $(lines "$out/shard-2-of-4.jsonl") captions"
wait_for 600 job_done "$job" || fail "the job array did not end"
[ ! -f "$out/shard-2-of-4.done.json" ] || fail "shard 2 finished before it could be cancelled"
kept=$(lines "$out/shard-2-of-4.jsonl")
for k in 0 1 3; do
  [ -f "$out/shard-$k-of-4.done.json" ] || fail "shard $k has no manifest"
done

# merge refuses while shard 2 is unfinished, and names it.
if "$captioner" merge "$out" --json "$work/merged.json" 2>"$work/merge.err"; then
  fail "merge accepted an unfinished shard"
fi
grep -q "shard 2 of 4 not finished" "$work/merge.err" || fail "merge did not name shard 2: $(cat "$work/merge.err")"

job2=$(sbatch --parsable --array=2 "$work/shard.sbatch") || fail "sbatch (again) failed"
say "submitted task 2 again as $job2"
wait_for 600 job_done "$job2" || fail "the resubmitted task did not end"
[ -f "$out/shard-2-of-4.done.json" ] || fail "shard 2 did not finish when submitted again"

"$captioner" merge "$out" --json "$work/merged.json" || fail "merge failed"
"$captioner" batch "$photos" --json "$work/single.json" >/dev/null || fail "the single run failed"

python3 - "$work/merged.json" "$work/single.json" "$out/shard-2-of-4.done.json" "$kept" <<'EOF' || fail "the merged result differs from the single run"
import json, sys
merged, single, manifest = (json.load(open(p)) for p in sys.argv[1:4])
kept = int(sys.argv[4])
strip = lambda rows: [{k: v for k, v in r.items() if k != "millis"} for r in rows]
assert len(merged) == len(single), (len(merged), len(single))
for m, s in zip(strip(merged), strip(single)):
    assert m == s, (m["image"], m["caption"], s["image"], s["caption"])
# Shard 2 went on where it was cancelled: the photos it had captioned were not redone.
t = manifest["timings"]
assert t["resumed_at"] == kept > 0 and t["resumed_at"] + t["photos_this_run"] == manifest["photos"], t
print(f"slurm-test: {len(merged)} photos, merged == single run; shard 2 resumed at photo {t['resumed_at']} of {manifest['photos']}")
EOF
say "passed"
