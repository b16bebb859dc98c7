#!/usr/bin/env bash
# Instructions per request: bare axum against StreamGate's layers, counted by callgrind.
#
#   benches/instructions.sh                        # every layer (--stack full)
#   benches/instructions.sh --layers security      # one layer (request ids off too)
#   benches/instructions.sh --layers metrics --against stack
#   benches/instructions.sh --layers ecosystem     # the hand-assembled ecosystem stack
#   benches/instructions.sh --top 25               # and the 25 functions whose cost differs most
#
# load.sh measures time, which this shared 2-core machine makes noisy (about ±0.3 µs per
# request). This script counts the user-space instructions the bench server executes per request
# under wrk, which is the same from run to run whatever else the machine does: the server runs
# under `valgrind --tool=callgrind` with collection switched on only while wrk runs (after a
# warm-up), and the count is divided by the requests wrk completed. It prints, for GET /items/{id}
# and POST /items, the base's and the layered server's instructions per request and the
# difference. Kernel time (sockets) is not counted, so the ratio is not the throughput ratio. With
# --top N it then lists, per scenario, the N functions whose own instructions per request
# (callgrind's self cost) differ most between the two servers: where the difference goes.
# Needs valgrind and wrk (apt-get install valgrind wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

layers=""
against=bare
duration=5
top=0
while [ $# -gt 0 ]; do
  case "$1" in
    --layers) layers="$2"; shift 2 ;;
    --against) against="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --top) top="$2"; shift 2 ;;
    *) echo "instructions.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
case "$top" in
  ''|*[!0-9]*) echo "instructions.sh: --top takes a number of functions" >&2; exit 2 ;;
esac
for program in valgrind callgrind_control callgrind_annotate wrk curl; do
  command -v "$program" >/dev/null || { echo "instructions.sh: $program is missing" >&2; exit 2; }
done

cargo build --release -p streamgate-bench-server --quiet
server="${CARGO_TARGET_DIR:-target}/release/bench_server"
work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$work" "${TMPDIR:-/tmp}"/streamgate-bench-audit-*
}
trap cleanup EXIT

token=$("$server" --print-token)
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"email":"ada@example.com","name":"Analytical Engine"}'
wrk.headers["Content-Type"] = "application/json"
LUA

# count CONFIG SCENARIO PROGRAM ARGS...: prints the instructions per request of one server under wrk.
count() {
  local config=$1 scenario=$2 port=$((39100 + RANDOM % 800))
  shift 2
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/$config.$scenario.%p" \
    "$@" --port "$port" >"$work/$config.$scenario.log" 2>&1 &
  pid=$!
  local up=""
  for _ in $(seq 200); do
    if curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/items/1" 2>/dev/null; then
      up=yes; break
    fi
    sleep 0.1
  done
  [ -n "$up" ] || { echo "instructions.sh: $config did not start" >&2; cat "$work/$config.$scenario.log" >&2; exit 1; }
  local load=(-t1 -c8 -H "Authorization: Bearer $token") url="http://127.0.0.1:$port/items/42"
  if [ "$scenario" = post ]; then load+=(-s "$work/post.lua"); url="http://127.0.0.1:$port/items"; fi
  wrk "${load[@]}" -d1 "$url" >/dev/null
  callgrind_control -i on "$pid" >/dev/null 2>&1
  wrk "${load[@]}" -d"$duration" "$url" >"$work/$config.$scenario.wrk"
  callgrind_control -i off "$pid" >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pid=""
  if grep -q "Non-2xx or 3xx responses" "$work/$config.$scenario.wrk"; then
    echo "instructions.sh: $config answered non-2xx to $scenario" >&2; exit 1
  fi
  local requests instructions
  requests=$(awk '/requests in/ {print $1}' "$work/$config.$scenario.wrk")
  echo "$requests" >"$work/$config.$scenario.requests"
  instructions=$(callgrind_annotate "$work/$config.$scenario".*.1 2>/dev/null \
    | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo $((instructions / requests))
}

# per_function CONFIG SCENARIO: "instructions-per-request<TAB>function" for each function of one
# count, by its own instructions (not its callees'), the source file and object left out.
per_function() {
  callgrind_annotate --threshold=100 "$work/$1.$2".*.1 2>/dev/null \
    | awk -v requests="$(cat "$work/$1.$2.requests")" '
      /PROGRAM TOTALS/ {next}
      match($0, /^ *[0-9,]+ +\( *[0-9.]+%\) +/) {
        split(substr($0, 1, RLENGTH), head, " ")
        gsub(",", "", head[1])
        name = substr($0, RLENGTH + 1)
        sub(/ \[[^]]*\]$/, "", name)
        sub(/^[^:]*:/, "", name)
        cost[name] += head[1] / requests
      }
      END {for (name in cost) printf "%.1f\t%s\n", cost[name], name}'
}

# differences SCENARIO N: the N functions whose instructions per request differ most between the
# base and the layered server, largest first by size.
differences() {
  per_function base "$1" >"$work/base.$1.functions"
  per_function layered "$1" >"$work/layered.$1.functions"
  echo "$1: the $2 functions that differ most (instructions per request)"
  printf '%10s %10s %10s  %s\n' added base layered function
  awk -F'\t' 'FNR == NR {base[$2] = $1; next} {layered[$2] = $1}
    END {
      for (name in base) if (!(name in layered)) layered[name] = 0
      for (name in layered) {
        added = layered[name] - base[name]
        printf "%.1f\t%10.0f %10.0f %10.0f  %s\n", (added < 0 ? -added : added), added, base[name], layered[name], substr(name, 1, 120)
      }
    }' "$work/base.$1.functions" "$work/layered.$1.functions" \
    | sort -t$'\t' -k1,1gr | awk -v n="$2" 'NR <= n' | cut -f2-
}

# server_command NAME: the program and flags of a whole stack (bare, full, or ecosystem, the
# hand-assembled one of benches/ecosystem) or of a list of StreamGate layers.
server_command() {
  case "$1" in
    ecosystem) echo "$ecosystem_server" ;;
    bare|full) echo "$server --stack $1" ;;
    *) echo "$server --layers $1" ;;
  esac
}
ecosystem_server="${CARGO_TARGET_DIR:-target}/release/ecosystem_server"
if [ "$layers" = ecosystem ] || [ "$against" = ecosystem ]; then
  cargo build --release -p streamgate-bench-ecosystem --quiet
fi
read -r -a base_command <<<"$(server_command "$against")"
read -r -a layered_command <<<"$(server_command "${layers:-full}")"
echo "base: $against; layered: ${layers:-full}"
printf '%-8s %14s %14s %14s\n' scenario base_instr layered_instr added_instr
for scenario in get post; do
  base=$(count base "$scenario" "${base_command[@]}")
  layered=$(count layered "$scenario" "${layered_command[@]}")
  printf '%-8s %14d %14d %14d\n' "$scenario" "$base" "$layered" $((layered - base))
done
if [ "$top" -gt 0 ]; then
  for scenario in get post; do
    echo
    differences "$scenario" "$top"
  done
fi
