#!/usr/bin/env bash
# Load test: bare axum against StreamGate's layers, on loopback, alternating rounds.
#
#   benches/load.sh                          # every layer (--stack full)
#   benches/load.sh --layers metrics         # one layer (request ids off too)
#   benches/load.sh --duration 10 --rounds 5 --connections 32
#   benches/load.sh --layers metrics --against stack   # against the Stack with no optional layer
#   benches/load.sh --layers ratelimit --redis redis://127.0.0.1:6379 --connections 64
#   benches/load.sh --layers ecosystem       # the hand-assembled ecosystem stack against bare
#   benches/load.sh --against ecosystem      # every layer against the ecosystem stack
#
# The server runs pinned to CPU 0 (taskset), wrk to CPU 1, so the server's one core is saturated
# and 1/rps is its CPU time per request. For each scenario (GET /items/{id}, POST /items) it
# prints the median requests/s and p99 of the rounds, the ratio to bare, and the CPU each request
# costs on top of bare, twice: from the medians' throughput (1e6/rps - 1e6/rps_bare microseconds)
# and from the servers' own CPU time per request (schedstat, which leaves out what the hypervisor
# stole), as the median over rounds of the layered round minus the bare round run just before it,
# so that the machine's drift between rounds cancels. On a noisy machine prefer many short rounds
# (--rounds 15 --duration 2). Any non-2xx answer fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

layers=""
against=bare
redis=""
duration=5
rounds=3
connections=32
port_bare=38080
port_layered=38081
while [ $# -gt 0 ]; do
  case "$1" in
    --layers) layers="$2"; shift 2 ;;
    --against) against="$2"; shift 2 ;;
    --redis) redis="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    *) echo "load.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done

command -v wrk >/dev/null || { echo "load.sh: wrk is missing (apt-get install wrk)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "load.sh: taskset is missing (util-linux)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "load.sh: needs 2 CPUs (server and load generator pinned apart)" >&2; exit 2; }

if [ -n "$redis" ]; then
  cargo build --release -p streamgate-bench-server --features redis --quiet
else
  cargo build --release -p streamgate-bench-server --quiet
fi
server="${CARGO_TARGET_DIR:-target}/release/bench_server"
ecosystem_server="${CARGO_TARGET_DIR:-target}/release/ecosystem_server"
if [ "$layers" = ecosystem ] || [ "$against" = ecosystem ]; then
  cargo build --release -p streamgate-bench-ecosystem --quiet
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    rm -rf "${TMPDIR:-/tmp}/streamgate-bench-audit-$pid"
  done
  rm -rf "$work"
}
trap cleanup EXIT

# server_command NAME: the program and flags of a whole stack (bare, full, or ecosystem, the
# hand-assembled one of benches/ecosystem) or of a list of StreamGate layers.
server_command() {
  case "$1" in
    ecosystem) echo "$ecosystem_server" ;;
    bare|full) echo "$server --stack $1" ;;
    *) echo "$server --layers $1" ;;
  esac
}
read -r -a layered_command <<<"$(server_command "${layers:-full}")"
if [ -n "$redis" ]; then layered_command+=(--redis "$redis"); fi
# Both servers get the same Authorization header: a token the security layer accepts.
token=$("$server" --print-token)
read -r -a base_command <<<"$(server_command "$against")"
taskset -c 0 "${base_command[@]}" --port "$port_bare" >"$work/bare.log" 2>&1 & pids+=($!)
taskset -c 0 "${layered_command[@]}" --port "$port_layered" >"$work/layered.log" 2>&1 & pids+=($!)
for port in "$port_bare" "$port_layered"; do
  for _ in $(seq 100); do
    curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/items/1" 2>/dev/null && break
    sleep 0.1
  done
done
head -n1 "$work/layered.log"

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"email":"ada@example.com","name":"Analytical Engine"}'
wrk.headers["Content-Type"] = "application/json"
LUA
# Both servers get the same request headers.
auth=(-H "Authorization: Bearer $token")

# percentile P FILE: wrk's latency at P (e.g. 99%) in microseconds
percentile() {
  awk -v p="$1" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); print v} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000000}}' "$2"
}

# cpu_ns PID: the CPU time the process's threads have run, in nanoseconds (schedstat's first
# field). The scheduler leaves out time the hypervisor stole, which 1/rps does not.
cpu_ns() {
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{sum += $1} END {printf "%.0f", sum}'
}

# run SCENARIO CONFIG PORT ROUND: one wrk run; appends "rps p99_us p50_us cpu_us_per_request"
# to $work/SCENARIO.CONFIG
run() {
  local scenario=$1 config=$2 port=$3 out="$work/$1.$2.$4.txt" pid
  if [ "$config" = bare ]; then pid=${pids[0]}; else pid=${pids[1]}; fi
  local script=() path="/items/42"
  if [ "$scenario" = post ]; then script=(-s "$work/post.lua"); path="/items"; fi
  local cpu_before cpu_after
  cpu_before=$(cpu_ns "$pid")
  taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" --latency "${auth[@]}" "${script[@]}" \
    "http://127.0.0.1:$port$path" >"$out"
  cpu_after=$(cpu_ns "$pid")
  if grep -q "Non-2xx or 3xx responses" "$out"; then
    echo "load.sh: $config answered non-2xx to $scenario:" >&2; cat "$out" >&2; exit 1
  fi
  if grep -q "Socket errors" "$out"; then
    echo "load.sh: socket errors against $config ($scenario):" >&2; cat "$out" >&2; exit 1
  fi
  local rps p50 p99 requests
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50=$(percentile 50% "$out")
  p99=$(percentile 99% "$out")
  requests=$(awk '/requests in/ {print $1}' "$out")
  echo "$rps $p99 $p50 $(awk -v a="$cpu_before" -v b="$cpu_after" -v n="$requests" 'BEGIN {printf "%.4f", (b - a) / n / 1000}')" \
    >>"$work/$scenario.$config"
}

for round in $(seq "$rounds"); do
  for scenario in get post; do
    run "$scenario" bare "$port_bare" "$round"
    run "$scenario" layered "$port_layered" "$round"
  done
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "base: $against; layered: ${layers:-full}"
printf '%-6s %12s %12s %10s %10s %10s %8s %13s %13s\n' scenario base_rps layered_rps base_p99 lay_p50 lay_p99 ratio added_us_rps added_us_cpu
for scenario in get post; do
  b_rps=$(cut -d' ' -f1 "$work/$scenario.bare" | median)
  l_rps=$(cut -d' ' -f1 "$work/$scenario.layered" | median)
  b_p99=$(cut -d' ' -f2 "$work/$scenario.bare" | median)
  l_p99=$(cut -d' ' -f2 "$work/$scenario.layered" | median)
  l_p50=$(cut -d' ' -f3 "$work/$scenario.layered" | median)
  # Each layered round against the bare round just before it, so the machine's drift between
  # rounds cancels: the median of the paired differences.
  added_cpu=$(paste -d' ' <(cut -d' ' -f4 "$work/$scenario.bare") <(cut -d' ' -f4 "$work/$scenario.layered") \
    | awk '{print $2 - $1}' | median)
  awk -v s="$scenario" -v b="$b_rps" -v l="$l_rps" -v bp="$b_p99" -v lp="$l_p99" -v lm="$l_p50" \
    -v added="$added_cpu" 'BEGIN {
    printf "%-6s %12.0f %12.0f %8.0fus %8.0fus %8.0fus %8.3f %13.3f %13.3f\n", s, b, l, bp, lm, lp, l / b, 1e6 / l - 1e6 / b, added
  }'
done
