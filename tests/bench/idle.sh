#!/usr/bin/env bash
# What `make run` costs at rest (#19): starts the supervisor (demo and Prometheus off) on a
# fresh home, waits until ready and 40 s more, then sums its process tree: processes
# (Postgres backends apart), PSS from /proc/<pid>/smaps_rollup, and CPU over 20 s.
# Usage: tests/bench/idle.sh host|standalone. Stops only the supervisor it started.
set -euo pipefail
mode=${1:-host}
home=$(mktemp -d /tmp/redline-idle-XXXX)
cd "$(dirname "$0")/../.."
REDLINE_DEPARTMENTS=$mode REDLINE_SYSTEM=$mode REDLINE_DEMO=0 REDLINE_PROMETHEUS=off REDLINE_HOME=$home \
    .venv/bin/python -m services.entrypoints.run >"$home/out.log" 2>&1 &
supervisor=$!
trap 'kill -TERM $supervisor 2>/dev/null; wait $supervisor 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do grep -q "redline ready" "$home/out.log" && break; sleep 0.25; done
ready=$(grep -o "redline ready in [0-9.]*s" "$home/out.log" || echo "not ready")
sleep 40
tree() { echo "$1"; for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do tree "$child"; done; }
pids=$(tree "$supervisor")
count=0; postgres=0; pss=0
for pid in $pids; do
    [ -r /proc/"$pid"/smaps_rollup ] || continue
    count=$((count + 1))
    pss=$((pss + $(awk '/^Pss:/{print $2}' /proc/"$pid"/smaps_rollup)))
    case $(cat /proc/"$pid"/comm) in postgres*) postgres=$((postgres + 1)) ;; esac
done
# Each process's own CPU and that of its children it has reaped (cutime, cstime): a
# process born and gone within the 20 s (an autovacuum worker) is counted in its parent.
ticks() { for pid in $pids; do awk '{print $14 + $15 + $16 + $17}' /proc/"$pid"/stat 2>/dev/null; done | awk '{s += $1} END {print s}'; }
before=$(ticks); sleep 20; after=$(ticks)
hz=$(getconf CLK_TCK)
printf '{"mode": "%s", "ready": "%s", "own_processes": %d, "postgres_processes": %d, "pss_mib": %d, "idle_cores": %.3f}\n' \
    "$mode" "$ready" $((count - postgres)) "$postgres" $((pss / 1024)) \
    "$(awk -v a="$after" -v b="$before" -v hz="$hz" 'BEGIN {print (a - b) / hz / 20}')"
