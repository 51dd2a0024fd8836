#!/usr/bin/env bash
# Benchmark of the API server on PostgreSQL + Redis: authenticated GET /api/v1/users/me.
#
#   bench/api_bench.sh                        # the shipped defaults (access log on), 15 s per measurement
#   ACCESS_LOG=both bench/api_bench.sh        # access log off, then on (~2.5 min)
#
# For each access-log mode, against one uvicorn process pinned to core 0 (load on core 1):
#   1. throughput  wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency       (closed loop, as fast as it goes)
#   2. steady      $RATE req/s open loop over $CONNECTIONS keep-alive connections (wrk2-like:
#                  evenly spaced requests, latency counted from when each was due)
#   3. hey         hey -z ${DURATION}s -c $CONNECTIONS -q $RATE/$CONNECTIONS  (also $RATE req/s, but
#                  hey's workers tick in phase: a burst of $CONNECTIONS requests every
#                  $CONNECTIONS/$RATE s, so its latencies measure the burst, not a steady rate)
# PostgreSQL and Redis are the shared ones at 127.0.0.1:5432 / :6379 (not pinned; started if down).
#
# Options (environment):
#   DURATION=15      seconds per measurement
#   CONNECTIONS=50   connections (wrk, steady) / workers (hey)
#   RATE=500         requests/s of the steady and hey measurements
#   ACCESS_LOG=on    on | off | both   (on = MLOPS_ACCESS_LOG=true, the platform's default; it is
#                    run with MLOPS_LOG_LEVEL=INFO, the default, since access lines are INFO records)
#   WARMUP=3         seconds of load before the measurements of each server
#   STRICT=0         1: exit 3 when a target is missed (errors always exit 1)
#   SERVER_CPU=0 LOAD_CPU=1   the two cores
#
# Everything it creates is removed on exit: the server (killed by PID), the database
# mlops_bench_<random> (dropped), the Redis keys bench-<random>:* in db 14, a temp dir.
# Raw outputs and summary.txt go to bench/results/<UTC timestamp>/ (gitignored).
# Any response other than 200 (seen by wrk, hey, the steady client or the server's own
# request counter) fails the run.

set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-50}
RATE=${RATE:-500}
ACCESS_LOG=${ACCESS_LOG:-on}
WARMUP=${WARMUP:-3}
STRICT=${STRICT:-0}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PG_HOST=127.0.0.1 PG_PORT=5432 PG_USER=postgres
REDIS_HOST=127.0.0.1 REDIS_PORT=6379 REDIS_DB=14
TARGET_RPS=1500   # at 50 connections, at least
TARGET_P99_MS=20  # at 500 requests/s, at most
HEALTH_TIMEOUT_S=60
ENDPOINT=/api/v1/users/me

die() { printf 'api_bench: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'api_bench: %s\n' "$*" >&2; }

# ------------------------------------------------------------------------- options
for var in DURATION CONNECTIONS RATE WARMUP SERVER_CPU LOAD_CPU STRICT; do
  [[ ${!var} =~ ^[0-9]+$ ]] || die "$var must be a whole number, got '${!var}'"
done
((DURATION >= 1 && DURATION <= 600)) || die "DURATION must be 1..600 seconds"
((CONNECTIONS >= 1 && CONNECTIONS <= 1000)) || die "CONNECTIONS must be 1..1000"
((RATE >= CONNECTIONS && RATE <= 100000)) || die "RATE must be between CONNECTIONS ($CONNECTIONS) and 100000"
((WARMUP >= 1 && WARMUP <= 60)) || die "WARMUP must be 1..60 seconds"
case $ACCESS_LOG in
  both) MODES=(off on) ;;
  on | off) MODES=("$ACCESS_LOG") ;;
  *) die "ACCESS_LOG must be both, on or off, got '$ACCESS_LOG'" ;;
esac
[[ $# -eq 0 ]] || die "no arguments: options are environment variables (see the top of $0)"

# ------------------------------------------------------------------------- tools
command -v taskset >/dev/null || die "taskset not found (Debian package util-linux)"
NCPU=$(nproc)
((NCPU >= 2)) || die "needs 2 cores (server on one, load generator on the other); nproc=$NCPU"
((SERVER_CPU < NCPU && LOAD_CPU < NCPU && SERVER_CPU != LOAD_CPU)) ||
  die "SERVER_CPU and LOAD_CPU must be two different cores below $NCPU"

missing=()
for tool in wrk hey curl psql pg_isready redis-cli; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  declare -A pkg_of=([wrk]=wrk [hey]=hey [curl]=curl [psql]=postgresql-client
                     [pg_isready]=postgresql-client [redis-cli]=redis-tools)
  pkgs=$(for t in "${missing[@]}"; do echo "${pkg_of[$t]}"; done | sort -u | xargs)
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    note "installing $pkgs (apt-get)"
    apt-get update -qq || die "apt-get update failed"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq $pkgs >/dev/null ||
      die "apt-get install $pkgs failed"
  else
    die "${missing[*]} not found: install them (Debian: apt-get install $pkgs), or run as root where apt-get exists"
  fi
fi

if [[ ! -x $ROOT/.venv/bin/mlops ]]; then
  command -v uv >/dev/null || die "$ROOT/.venv is missing and uv is not installed"
  note "creating $ROOT/.venv (uv sync --frozen)"
  (cd "$ROOT" && uv sync --frozen -q) || die "uv sync --frozen failed"
fi
MLOPS=$ROOT/.venv/bin/mlops
PY=$ROOT/.venv/bin/python
[[ -x $MLOPS && -x $PY ]] || die "$MLOPS not found after uv sync"

# ------------------------------------------------------------------------- PostgreSQL, Redis
pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2; }
redis_up() { [[ $(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
wait_for() { # seconds command...
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.5; done
}
if ! pg_up; then
  note "PostgreSQL is not answering on $PG_HOST:$PG_PORT: starting the local cluster (it is left running)"
  [[ -d /etc/postgresql ]] || die "no /etc/postgresql: start PostgreSQL on $PG_HOST:$PG_PORT first"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start ||
    die "pg_ctlcluster start failed"
  wait_for 30 pg_up || die "PostgreSQL is still not answering after 30 s"
fi
if ! redis_up; then
  note "Redis is not answering on $REDIS_HOST:$REDIS_PORT: starting redis-server (it is left running)"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || die "redis-server did not start"
  wait_for 15 redis_up || die "Redis is still not answering after 15 s"
fi
PG_VERSION=$(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atc 'SHOW server_version' | cut -d' ' -f1)
REDIS_VERSION=$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" info server | tr -d '\r' | sed -n 's/^redis_version://p')

# ------------------------------------------------------------------------- throwaway state, cleanup
RUN_ID=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
DB_NAME=mlops_bench_$RUN_ID
NAMESPACE=bench-$RUN_ID:
TMP=$(mktemp -d "${TMPDIR:-/tmp}/api-bench.XXXXXX")
chmod 700 "$TMP"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/results/$STAMP
mkdir -p "$OUT"
SERVER_PID=""
DB_CREATED=0

stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local _
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_server
  if ((DB_CREATED)); then
    psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 \
      -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 ||
      note "could not drop database $DB_NAME: drop it by hand"
  fi
  # Only our namespace (hex: no glob characters in it).
  redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" --scan --pattern "${NAMESPACE}*" 2>/dev/null |
    xargs -r -n 100 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" del >/dev/null 2>&1 ||
    note "could not delete the Redis keys ${NAMESPACE}* in db $REDIS_DB"
  rm -rf "$TMP"
  rmdir "$OUT" 2>/dev/null || true  # only when the run failed before writing anything
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 \
  -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null || die "could not create database $DB_NAME"
DB_CREATED=1

# ------------------------------------------------------------------------- platform settings
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^MLOPS_' || true)
ADMIN_PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(18))')  # 24 characters
export MLOPS_ENVIRONMENT=production
export MLOPS_DATABASE_URL="postgresql://$PG_USER@$PG_HOST:$PG_PORT/$DB_NAME"
export MLOPS_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT/$REDIS_DB"
export MLOPS_REDIS_NAMESPACE=$NAMESPACE
MLOPS_SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(48))')  # 64 characters
export MLOPS_SECRET_KEY
export MLOPS_ADMIN_USERNAME=admin
export MLOPS_ADMIN_PASSWORD=$ADMIN_PASSWORD
export MLOPS_DATA_DIR=$TMP/data
export MLOPS_LOG_LEVEL=WARNING
mkdir -p "$MLOPS_DATA_DIR"
printf '{"username":"admin","password":"%s"}' "$ADMIN_PASSWORD" >"$TMP/login.json"

"$MLOPS" db upgrade >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "mlops db upgrade failed"; }

# ------------------------------------------------------------------------- helpers
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() { # off|on
  local mode=$1 code deadline
  PORT=$(free_port)
  BASE=http://127.0.0.1:$PORT
  SERVER_LOG=$TMP/server-$mode.log
  if [[ $mode == on ]]; then
    # The access lines are INFO records: at WARNING they would be dropped and "on" would
    # measure no logging at all. A deployment that keeps the access log runs at INFO.
    MLOPS_ACCESS_LOG=true MLOPS_LOG_LEVEL=INFO \
      taskset -c "$SERVER_CPU" "$MLOPS" api --host 127.0.0.1 --port "$PORT" >"$SERVER_LOG" 2>&1 &
  else
    MLOPS_ACCESS_LOG=false \
      taskset -c "$SERVER_CPU" "$MLOPS" api --host 127.0.0.1 --port "$PORT" >"$SERVER_LOG" 2>&1 &
  fi
  SERVER_PID=$!  # taskset execs the server, so this is the server's PID
  deadline=$((SECONDS + HEALTH_TIMEOUT_S))
  while :; do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$BASE/health" || true)
    [[ $code == 200 ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      tail -n 40 "$SERVER_LOG" >&2
      SERVER_PID=""
      die "the server exited while starting (log above)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$SERVER_LOG" >&2
      die "no 200 from $BASE/health within ${HEALTH_TIMEOUT_S} s"
    fi
    sleep 0.2
  done
}

login() {
  local body code
  body=$(curl -sS -m 30 -f -X POST "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
    --data-binary @"$TMP/login.json") || die "logging in as admin failed"
  printf '%s' "$body" |
    "$PY" -c 'import json, sys; print("Authorization: Bearer " + json.load(sys.stdin)["access_token"], end="")' \
      >"$TMP/auth_header" || die "the login answer has no access_token"
  code=$(curl -s -o "$TMP/me.json" -w '%{http_code}' -H @"$TMP/auth_header" "$BASE$ENDPOINT")
  [[ $code == 200 ]] || die "GET $ENDPOINT answered $code: $(cat "$TMP/me.json")"
}

# The server's own count of $ENDPOINT answers by status code, from /metrics: "200=12345 ".
server_statuses() {
  curl -s -m 5 "$BASE/metrics" |
    awk -v route="$ENDPOINT" '/^mlops_http_requests_total\{/ && index($0, "route=\"" route "\"") {
           match($0, /status="[0-9]+"/); s = substr($0, RSTART + 8, RLENGTH - 9); n[s] += $NF }
         END { for (s in n) printf "%s=%d ", s, n[s] }'
}

# Busy share of each core over 1 s, from /proc/stat: "cpu0 3% cpu1 1%".
core_busy() {
  local a b
  a=$(grep '^cpu[0-9]' /proc/stat); sleep 1; b=$(grep '^cpu[0-9]' /proc/stat)
  paste <(echo "$a") <(echo "$b") | awk '{
      n = (NF - 2) / 2; t1 = t2 = 0
      for (i = 2; i <= n + 1; i++) t1 += $i
      for (i = n + 3; i <= 2 * n + 2; i++) t2 += $i
      idle = ($(n + 6) + $(n + 7)) - ($5 + $6)
      printf "%s %d%% ", $1, 100 * (1 - idle / (t2 - t1)) }'
}

to_ms() { # a wrk duration: 812.00us | 1.23ms | 1.02s | 2.00m
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) printf "%.2f", v / 1000; else if (v ~ /ms$/) printf "%.2f", v + 0
    else if (v ~ /m$/) printf "%.2f", v * 60000; else if (v ~ /s$/) printf "%.2f", v * 1000
    else printf "nan" }'
}

run_wrk() { # seconds outfile
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$1"s --latency -H "$(cat "$TMP/auth_header")" \
    "$BASE$ENDPOINT" >"$2" 2>&1 || die "wrk failed: $(cat "$2")"
  grep -q '^Requests/sec:' "$2" || die "no result in the wrk output $2"
  if grep -q 'Non-2xx or 3xx responses' "$2"; then
    die "wrk got error answers ($(grep 'Non-2xx' "$2" | xargs)): see $2 and the server log"
  fi
  if grep -q 'Socket errors' "$2"; then die "wrk saw socket errors ($(grep 'Socket errors' "$2" | xargs)): see $2"; fi
}

run_steady() { # seconds outfile
  taskset -c "$LOAD_CPU" "$PY" "$ROOT/bench/steady_load.py" 127.0.0.1 "$PORT" "$ENDPOINT" "$TMP/auth_header" - \
    "$RATE" "$1" "$CONNECTIONS" >"$2" 2>&1 || die "the steady load generator failed: $(tail -5 "$2")"
  "$PY" - "$2" <<'PYEOF' || die "steady run: answers other than 200, errors or unfinished requests: see $2"
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if r["statuses"] == {"200": r["requests"]} and not r["errors"] and not r["unfinished"] else 1)
PYEOF
}

run_hey() { # seconds outfile
  taskset -c "$LOAD_CPU" hey -z "$1"s -c "$CONNECTIONS" -q "$PER_WORKER_QPS" -cpus 1 -t 10 \
    -H "$(cat "$TMP/auth_header")" "$BASE$ENDPOINT" >"$2" 2>&1 || die "hey failed: $(cat "$2")"
  grep -q 'Requests/sec:' "$2" || die "no result in the hey output $2"
  local codes
  codes=$(awk '/Status code distribution:/ {f = 1; next} f && /\[[0-9]+\]/ {print $1} f && /^ *$/ {f = 0}' "$2" |
    tr -d '[]' | sort -u | xargs)
  [[ $codes == 200 ]] || die "hey got status codes '$codes' (only 200 expected): see $2"
  if grep -q 'Error distribution' "$2"; then
    die "hey saw errors: $(awk '/Error distribution/ {f = 1; next} f' "$2" | head -3 | xargs): see $2"
  fi
}

CLK_TCK=$(getconf CLK_TCK)
server_ticks() { sed 's/^.*) //' "/proc/$SERVER_PID/stat" | awk '{print $12 + $13}'; }
now() { date +%s.%N; }
# measure KEY COMMAND...: runs it, and sets R[KEY.cpu] to the share of one core the server used (%).
measure() {
  local key=$1 t0 c0 t1 c1; shift
  t0=$(now); c0=$(server_ticks)
  "$@"
  t1=$(now); c1=$(server_ticks)
  R[$key.cpu]=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", 100 * c / hz / (b - a) }')
}

json_get() { # file python-expression-on-r
  "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

PER_WORKER_QPS=$(awk -v r="$RATE" -v c="$CONNECTIONS" 'BEGIN { printf "%g", r / c }')

# ------------------------------------------------------------------------- the machine
{
  echo "timestamp_utc=$STAMP"
  echo "nproc=$NCPU"
  echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "mem_total=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel=$(uname -r)"
  if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    echo "source=commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" status --porcelain -- src | grep -q . && echo ', with uncommitted changes in src/')"
  else
    echo "source=$ROOT (not a git checkout)"
  fi
  echo "python=$("$PY" -c 'import sys; print(sys.version.split()[0])')"
  echo "postgresql=$PG_VERSION redis=$REDIS_VERSION"
  echo "wrk=$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2) hey=$(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo '?')"
  echo "server_cpu=$SERVER_CPU load_cpu=$LOAD_CPU duration=${DURATION}s connections=$CONNECTIONS rate=$RATE warmup=${WARMUP}s"
} >"$OUT/machine.txt"

# ------------------------------------------------------------------------- measurements
declare -A R
BUSY_WARNING=""
for mode in "${MODES[@]}"; do
  busy=$(core_busy)
  {
    echo "[$mode] loadavg before: $(cut -d' ' -f1-3 /proc/loadavg); cores busy before: $busy"
    echo "[$mode] busiest processes before (top, 1 s):"
    top -b -n 2 -d 1 -w 120 2>/dev/null | awk '/^top -/ {n++} n == 2' | sed -n '7,12p' | sed 's/^/    /'
  } >>"$OUT/machine.txt"
  if awk -v b="$busy" 'BEGIN { n = split(b, f, " "); for (i = 2; i <= n; i += 2) if (f[i] + 0 > 15) exit 0; exit 1 }'; then
    note "warning: the machine is busy before the '$mode' round ($busy): results will be noisy"
    BUSY_WARNING+="access log $mode: cores busy before the round ($busy). "
  fi

  note "access log $mode: starting the server on core $SERVER_CPU"
  start_server "$mode"
  login
  note "access log $mode: warm-up, ${WARMUP} s"
  run_wrk "$WARMUP" "$TMP/warmup.txt"

  f=$OUT/wrk-access-log-$mode.txt
  note "access log $mode: wrk, $CONNECTIONS connections, ${DURATION} s"
  measure "$mode.wrk" run_wrk "$DURATION" "$f"
  R[$mode.wrk_rps]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f")
  for p in 50 99; do
    R[$mode.wrk_p$p]=$(to_ms "$(awk -v p="$p%" '/Latency Distribution/ {d = 1} d && $1 == p {print $2; exit}' "$f")")
  done

  f=$OUT/steady-access-log-$mode.json
  note "access log $mode: steady $RATE requests/s over $CONNECTIONS connections, ${DURATION} s"
  measure "$mode.steady" run_steady "$DURATION" "$f"
  R[$mode.steady_rps]=$(json_get "$f" 'round(r["achieved_rps"])')
  for p in 50 95 99; do R[$mode.steady_p$p]=$(json_get "$f" "'%.2f' % r['latency_ms']['p$p']"); done
  R[$mode.steady_max]=$(json_get "$f" "'%.2f' % r['latency_ms']['p100']")

  f=$OUT/hey-access-log-$mode.txt
  note "access log $mode: hey, $CONNECTIONS workers x $PER_WORKER_QPS requests/s, ${DURATION} s"
  measure "$mode.hey" run_hey "$DURATION" "$f"
  R[$mode.hey_rps]=$(awk '/Requests\/sec:/ {printf "%.0f", $2}' "$f")
  for p in 50 95 99; do
    R[$mode.hey_p$p]=$(awk -v p="$p%" '$1 == p && $2 == "in" {printf "%.2f", $3 * 1000; exit}' "$f")
  done
  R[$mode.hey_max]=$(awk '/Slowest:/ {printf "%.2f", $2 * 1000; exit}' "$f")

  statuses=$(server_statuses)
  echo "[$mode] server-side answers on $ENDPOINT: $statuses" >>"$OUT/machine.txt"
  [[ $statuses =~ ^200=[0-9]+\ $ ]] || die "the server answered other than 200 on $ENDPOINT: $statuses"
  if [[ $mode == on ]]; then
    R[$mode.lines]=$(grep -c '"logger": "mlops.access"' "$SERVER_LOG" || true)
    ((R[$mode.lines] > 0)) || die "access log on, but the server wrote no access line (see $SERVER_LOG)"
    grep -m 1 '"logger": "mlops.access"' "$SERVER_LOG" >"$OUT/access-log-sample.txt" || true
  else
    R[$mode.lines]=0
  fi
  grep -v '"logger": "mlops.access"' "$SERVER_LOG" | tail -n 50 >"$OUT/server-access-log-$mode.log" || true
  stop_server
done

# ------------------------------------------------------------------------- summary
MISSED=0
declare -A V
for mode in "${MODES[@]}"; do
  V[$mode.rps]=met V[$mode.steady]=met V[$mode.hey]=met
  ((R[$mode.wrk_rps] >= TARGET_RPS)) || { V[$mode.rps]=MISSED; MISSED=1; }
  awk -v a="${R[$mode.steady_p99]}" -v b="$TARGET_P99_MS" 'BEGIN { exit !(a <= b) }' ||
    { V[$mode.steady]=MISSED; MISSED=1; }
  awk -v a="${R[$mode.hey_p99]}" -v b="$TARGET_P99_MS" 'BEGIN { exit !(a <= b) }' || V[$mode.hey]=MISSED
done
row() { printf '%-4s | %-40s | %7s | %7s | %7s | %7s | %8s | %s\n' "$@"; }
{
  echo "API server benchmark $STAMP: GET $ENDPOINT with a JWT; PostgreSQL $PG_VERSION, Redis $REDIS_VERSION"
  echo "one uvicorn process on core $SERVER_CPU, load generator on core $LOAD_CPU;" \
    "$(sed -n 's/^cpu_model=//p' "$OUT/machine.txt"), nproc $NCPU"
  echo
  row log measurement "req/s" "p50 ms" "p95 ms" "p99 ms" "max ms" "server CPU"
  echo "-----+------------------------------------------+---------+---------+---------+---------+----------+-----------"
  for mode in "${MODES[@]}"; do
    row "$mode" "wrk -t1 -c$CONNECTIONS (as fast as it goes)" "${R[$mode.wrk_rps]}" "${R[$mode.wrk_p50]}" "-" \
      "${R[$mode.wrk_p99]}" "-" "${R[$mode.wrk.cpu]}% of a core"
    row "$mode" "steady $RATE req/s, $CONNECTIONS conns (open loop)" "${R[$mode.steady_rps]}" \
      "${R[$mode.steady_p50]}" "${R[$mode.steady_p95]}" "${R[$mode.steady_p99]}" "${R[$mode.steady_max]}" \
      "${R[$mode.steady.cpu]}%"
    row "$mode" "hey -c$CONNECTIONS -q$PER_WORKER_QPS (bursts of $CONNECTIONS)" "${R[$mode.hey_rps]}" \
      "${R[$mode.hey_p50]}" "${R[$mode.hey_p95]}" "${R[$mode.hey_p99]}" "${R[$mode.hey_max]}" \
      "${R[$mode.hey.cpu]}%"
  done
  [[ -z ${R[on.lines]:-} ]] || echo "(access log on: ${R[on.lines]} JSON access lines written)"
  echo
  for mode in "${MODES[@]}"; do
    echo "targets, access log $mode: >= $TARGET_RPS req/s at $CONNECTIONS connections: ${V[$mode.rps]} (${R[$mode.wrk_rps]});" \
      "p99 <= $TARGET_P99_MS ms at $RATE req/s: steady ${V[$mode.steady]} (${R[$mode.steady_p99]})," \
      "hey ${V[$mode.hey]} (${R[$mode.hey_p99]})"
    if ((R[$mode.wrk.cpu] < 90)); then
      echo "  warning: the server used only ${R[$mode.wrk.cpu]}% of its core under wrk (access log $mode): other processes took part of core $SERVER_CPU, the throughput is understated"
    fi
    for kind in steady hey; do
      if ((R[$mode.${kind}_rps] * 100 < RATE * 95)); then
        echo "  warning: $kind reached only ${R[$mode.${kind}_rps]} of $RATE req/s (access log $mode)"
      fi
    done
  done
  [[ $CONNECTIONS -eq 50 && $RATE -eq 500 ]] || echo "(the targets are defined for 50 connections and 500 req/s)"
  [[ -z $BUSY_WARNING ]] || echo "warning: other load on the machine: $BUSY_WARNING"
  echo "every answer was 200 (wrk, steady client, hey and the server's own counter); raw outputs in ${OUT#"$ROOT"/}/"
} | tee "$OUT/summary.txt"

if ((STRICT && MISSED)); then exit 3; fi
exit 0
