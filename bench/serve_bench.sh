#!/usr/bin/env bash
# Benchmark of the model server: POST /api/v1/models/predict on `mlops up` (the demo model),
# against MLflow serving the same model and a bare ASGI + onnxruntime app (the ceiling).
#
#   bench/serve_bench.sh                      # everything, 15 s per measurement (~6.5 min)
#   DURATION=5 MLFLOW=0 bench/serve_bench.sh  # quick look, no MLflow baseline
#   PROFILE=1 bench/serve_bench.sh            # also a py-spy profile under the single-row load
#
# Every server runs alone, pinned to core $SERVER_CPU (taskset); every load generator on $LOAD_CPU.
#   1. mlops up (fresh temp data dir, SQLite, in-process cache), batching ON:
#      a. 1 row per request    wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency   (closed loop)
#      b. 1 row, $RATE req/s   open loop over $CONNECTIONS keep-alive connections (wrk2-like:
#                              evenly spaced, latency counted from when each was due), and
#                              hey -z ${DURATION}s -c $CONNECTIONS -q $RATE/$CONNECTIONS for reference
#                              (hey's workers tick in phase: it sends bursts, not a steady rate)
#      c. $BATCH_ROWS rows per request  wrk -t1 -c$BATCH_CONNECTIONS   (requests/s and rows/s)
#      d. the demo artifact uploaded again as version 2; (a) in POLICY_ROUNDS rounds of
#         DURATION/POLICY_ROUNDS s each: the plain policy, {"canary":{"version":2,"percent":10}},
#         {"shadow":{"version":2}} (alternated, so the VM's drift over minutes hits all three
#         alike; each policy's cost is against the plain rounds between them)
#   2. mlops up restarted with MLOPS_BATCHING=false (same data dir, plain policy): (a) and (c).
#   3. The ceiling: bench/serve_ceiling_app.py (bare ASGI, orjson, onnxruntime with one thread,
#      no auth) under the project's uvicorn (--loop uvloop --http httptools): (a) and (c).
#   4. MLflow: a separate venv in the temp dir (pip install mlflow scikit-learn skops; never the
#      project's), the downloaded .skops saved with mlflow.sklearn.save_model, served by
#      `mlflow models serve --env-manager local -w 1`: (a) and (c), with both payload styles
#      {"dataframe_split": {"columns": [...], "data": [...]}} and {"inputs": [...]}.
# Then a summary with the issue's targets (model server, item 10):
#   - 1 row at $CONNECTIONS connections: >= 10x MLflow's better figure AND >= half of the ceiling
#   - p99 <= 10 ms at a steady 1,000 requests/s (the open-loop client; hey is shown, not judged)
#   - $BATCH_ROWS-row batches: rows/s >= 10x MLflow's better rows/s
#   - canary (10%) and shadow each cost <= 15% of the single-row throughput
# The targets are judged on the default configuration (batching on); batching off is shown.
#
# Options (environment):
#   DURATION=15           seconds per measurement
#   CONNECTIONS=50        connections of the single-row runs (wrk, steady client, hey workers)
#   RATE=1000             requests/s of the latency measurements
#   BATCH_ROWS=100        rows per request of the batch runs
#   BATCH_CONNECTIONS=8   connections of the batch runs
#   WARMUP=3              seconds of load before the measurements of each server
#   MLFLOW=1              0: skip the MLflow baseline (its targets are then not judged)
#   MLFLOW_SPEC=mlflow    what pip installs for MLflow (e.g. mlflow==3.17.2), with
#                         scikit-learn and skops at the project's versions
#   MLFLOW_VENV=          an existing venv with MLflow, scikit-learn and skops to use instead
#                         of installing one (it is not removed)
#   PROFILE=0             1: after the batching-on round, record the server with py-spy
#                         (uvx py-spy record --native, 100 Hz) under the single-row wrk load
#   STRICT=0              1: exit 3 when a target is missed (errors always exit 1)
#   POLICY_ROUNDS=3       rounds of plain / canary / shadow (each DURATION/POLICY_ROUNDS s, >= 3)
#   SERVER_CPU=0 LOAD_CPU=1   the two cores
#   SOURCE=tree           tree: the platform runs from the working tree (src/, as installed in
#                         .venv); head: from a `git archive HEAD` copy of src/ (PYTHONPATH), so
#                         edits in progress in a shared tree cannot leak into a run
#   MLOPS_MAX_BATCH_SIZE, MLOPS_MAX_BATCH_TIME_MS, MLOPS_PREDICT_FAST_PATH,
#   MLOPS_CATALOG_POLL_SECONDS, MLOPS_DRIFT_SAMPLE_RATE and MLOPS_DRIFT_SAMPLES_PER_MINUTE are
#   passed to the platform when set (and recorded); every other MLOPS_* variable is cleared.
#
# Everything it creates is removed on exit: the servers (each started in its own session and
# killed by its process group id), the temp dir (data dir, MLflow venv and model, bodies).
# Raw outputs and summary.txt go to bench/results/serve-<UTC timestamp>/ (gitignored).
# Any answer other than 200 (seen by wrk, hey, the steady client, or the platform's own request
# counter) fails the run, except on MLflow, whose failures are reported and skip its figures.

set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-50}
RATE=${RATE:-1000}
BATCH_ROWS=${BATCH_ROWS:-100}
BATCH_CONNECTIONS=${BATCH_CONNECTIONS:-8}
WARMUP=${WARMUP:-3}
MLFLOW=${MLFLOW:-1}
MLFLOW_SPEC=${MLFLOW_SPEC:-mlflow}
MLFLOW_VENV=${MLFLOW_VENV:-}
PROFILE=${PROFILE:-0}
SOURCE=${SOURCE:-tree}
STRICT=${STRICT:-0}
POLICY_ROUNDS=${POLICY_ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKLEARN_SPEC=scikit-learn==1.9.1 SKOPS_SPEC=skops==0.16.0  # the project's versions (uv.lock)
TARGET_X_MLFLOW=10        # single-row and batch throughput, times MLflow's better figure
TARGET_CEILING_PCT=50     # single-row throughput, % of the ceiling app
TARGET_P99_MS=10          # at RATE requests/s
TARGET_POLICY_COST_PCT=15 # canary and shadow, % of single-row throughput
HEALTH_TIMEOUT_S=120
PREDICT=/api/v1/models/predict

die() { printf 'serve_bench: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'serve_bench: %s\n' "$*" >&2; }

# ------------------------------------------------------------------------- options
for var in DURATION CONNECTIONS RATE BATCH_ROWS BATCH_CONNECTIONS WARMUP MLFLOW PROFILE STRICT \
  SERVER_CPU LOAD_CPU; do
  [[ ${!var} =~ ^[0-9]+$ ]] || die "$var must be a whole number, got '${!var}'"
done
((DURATION >= 1 && DURATION <= 600)) || die "DURATION must be 1..600 seconds"
((CONNECTIONS >= 1 && CONNECTIONS <= 1000)) || die "CONNECTIONS must be 1..1000"
((RATE >= CONNECTIONS && RATE <= 100000)) || die "RATE must be between CONNECTIONS ($CONNECTIONS) and 100000"
((BATCH_ROWS >= 1 && BATCH_ROWS <= 10000)) || die "BATCH_ROWS must be 1..10000"
((BATCH_CONNECTIONS >= 1 && BATCH_CONNECTIONS <= 1000)) || die "BATCH_CONNECTIONS must be 1..1000"
((WARMUP >= 1 && WARMUP <= 60)) || die "WARMUP must be 1..60 seconds"
for var in MLFLOW PROFILE STRICT; do ((${!var} <= 1)) || die "$var must be 0 or 1"; done
[[ $SOURCE == tree || $SOURCE == head ]] || die "SOURCE must be tree or head, got '$SOURCE'"
[[ -z $MLFLOW_VENV || -x $MLFLOW_VENV/bin/mlflow ]] || die "MLFLOW_VENV=$MLFLOW_VENV has no bin/mlflow"
[[ $# -eq 0 ]] || die "no arguments: options are environment variables (see the top of $0)"

# ------------------------------------------------------------------------- tools
command -v taskset >/dev/null || die "taskset not found (Debian package util-linux)"
command -v setsid >/dev/null || die "setsid not found (Debian package util-linux)"
NCPU=$(nproc)
((NCPU >= 2)) || die "needs 2 cores (server on one, load generator on the other); nproc=$NCPU"
((SERVER_CPU < NCPU && LOAD_CPU < NCPU && SERVER_CPU != LOAD_CPU)) ||
  die "SERVER_CPU and LOAD_CPU must be two different cores below $NCPU"

missing=()
for tool in wrk hey curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    note "installing ${missing[*]} (apt-get)"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" >/dev/null ||
      die "apt-get install ${missing[*]} failed"
  else
    die "${missing[*]} not found: install them (Debian: apt-get install ${missing[*]}), or run as root where apt-get exists"
  fi
fi

if [[ ! -x $ROOT/.venv/bin/mlops ]]; then
  command -v uv >/dev/null || die "$ROOT/.venv is missing and uv is not installed"
  note "creating $ROOT/.venv (uv sync --frozen)"
  (cd "$ROOT" && uv sync --frozen -q) || die "uv sync --frozen failed"
fi
MLOPS=$ROOT/.venv/bin/mlops
PY=$ROOT/.venv/bin/python
UVICORN=$ROOT/.venv/bin/uvicorn
[[ -x $MLOPS && -x $PY && -x $UVICORN ]] || die "$MLOPS, $PY or $UVICORN not found after uv sync"
[[ -f $ROOT/bench/serve_ceiling_app.py ]] || die "$ROOT/bench/serve_ceiling_app.py is missing"
if ((PROFILE)); then command -v uvx >/dev/null || die "PROFILE=1 needs uvx (uv) for py-spy"; fi

# ------------------------------------------------------------------------- temp dir, cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/serve-bench.XXXXXX")
chmod 700 "$TMP"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/results/serve-$STAMP
mkdir -p "$OUT"
SERVER_PID=""   # the server process (taskset execs it), leader of its own session and group
SERVER_NAME=""

stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  local pgid=$SERVER_PID _
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 -- "-$pgid" 2>/dev/null; then
    note "$SERVER_NAME did not stop within 10 s of SIGTERM: SIGKILL"
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID="" SERVER_NAME=""
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_server
  rm -rf "$TMP"
  rmdir "$OUT" 2>/dev/null || true  # only when the run failed before writing anything
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------- request bodies
"$PY" - "$TMP" "$BATCH_ROWS" <<'PYEOF'
import json, random, sys
tmp, rows = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261129)
batch = [[round(rng.uniform(-3, 3), 3) for _ in range(5)] for _ in range(rows)]
one = [[1, 2, 3, 4, 5]]
columns = ["f0", "f1", "f2", "f3", "f4"]
bodies = {
    "one": {"data": one}, "batch": {"data": batch},
    "mlflow-split-one": {"dataframe_split": {"columns": columns, "data": one}},
    "mlflow-split-batch": {"dataframe_split": {"columns": columns, "data": batch}},
    "mlflow-inputs-one": {"inputs": one}, "mlflow-inputs-batch": {"inputs": batch},
}
for name, body in bodies.items():
    with open(f"{tmp}/body-{name}.json", "w") as f:
        f.write(json.dumps(body, separators=(", ", ": ") if name == "one" else (",", ":")))
PYEOF
# wrk: POST the body file; print exact percentiles (--latency has no p95) and error counts.
for name in one batch mlflow-split-one mlflow-split-batch mlflow-inputs-one mlflow-inputs-batch; do
  cat >"$TMP/wrk-$name.lua" <<LUAEOF
local f = assert(io.open("$TMP/body-$name.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("bench_percentiles_us p50=%d p95=%d p99=%d max=%d\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
  io.write(string.format("bench_errors connect=%d read=%d write=%d timeout=%d status=%d requests=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    summary.errors.status, summary.requests))
end
LUAEOF
done
cp "$TMP/body-one.json" "$OUT/body-one.json"
cp "$TMP/body-batch.json" "$OUT/body-batch.json"

# Summary of a py-spy raw profile (--native --threads): samples of threads that were waiting
# (a lock, a queue, epoll) are dropped; the rest are charged to the innermost frame that belongs
# to a library (interpreter and libc frames are skipped), plus inclusive shares per function.
cat >"$TMP/profile_summary.py" <<'PYEOF'
import re
import sys
from collections import Counter

WAITS = ("PyThread_acquire_lock_timed", "pthread_cond_wait", "pthread_cond_timedwait", "epoll_wait",
         "epoll_pwait", "sem_wait", "sem_timedwait", "sem_clockwait", "select (", "poll (", "nanosleep")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
NATIVE = {"loop.c": "uvloop (event loop, C)", "loop-watcher.c": "uvloop (event loop, C)",
          "core.c": "uvloop (event loop, C)", "stream.c": "uvloop (event loop, C)",
          "linux.c": "uvloop (event loop, C)", "tcp.c": "uvloop (event loop, C)",
          "parser.c": "httptools (HTTP parser, C)", "llhttp.c": "httptools (HTTP parser, C)",
          "api.c": "httptools (HTTP parser, C)", "_asynciomodule.c": "asyncio (C tasks and futures)"}
SKIP = ("libc.so", "libpython", "object.h", "ceval", ".h:", "libm.so", "ld-linux", "libstdc++")


def owner(frames):
    for frame in reversed(frames):
        m = FRAME.match(frame)
        if not m:
            continue
        func, path = m["func"], m["file"]
        if "collect" in func and ("gc" in func or func in ("collect_main", "collect_generations")):
            return "cyclic garbage collector"
        if "onnxruntime" in path:
            return "onnxruntime"
        if path.endswith(".py"):
            parts = path.split("/")
            if parts[0] == "mlops":
                return "mlops/" + (parts[1] if len(parts) > 2 else parts[-1])
            return parts[0].removesuffix(".py")
        if ".so" in path and not any(s in path for s in SKIP):
            return path.split("/")[0].split(".")[0] + " (native)"
        base = path.rsplit("/", 1)[-1]
        if base in NATIVE:
            return NATIVE[base]
    return "interpreter / libc (no owner)"


def main(path):
    threads, busy_threads, owners, inclusive, self_time = Counter(), Counter(), Counter(), Counter(), Counter()
    total = busy = 0
    for line in open(path):
        stack, _, n = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        n = int(n)
        frames = stack.split(";")
        thread = re.sub(r"^thread \(\d+\): ", "", frames[0])
        thread = re.sub(r"_\d+$", "", thread)
        frames = frames[1:]
        total += n
        threads[thread] += n
        innermost = frames[-1] if frames else ""
        if "libc.so" in innermost and any(w in stack for w in WAITS):
            continue  # waiting, not running
        busy += n
        busy_threads[thread] += n
        owners[owner(frames)] += n
        seen = set()
        for frame in frames:
            m = FRAME.match(frame)
            if m and m["file"].endswith(".py"):
                key = f'{m["func"]} ({m["file"]})'
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += n
        py = [f for f in frames if ".py:" in f]
        if py:
            self_time[re.sub(r":\d+\)$", ")", py[-1])] += n

    def pct(v):
        return f"{100 * v / busy:5.1f}%"

    print(f"py-spy samples: {total} (threads x 100 Hz), running: {busy}; shares below are of running samples")
    print("running samples by thread: " + ", ".join(f"{t} {pct(v)}" for t, v in busy_threads.most_common()))
    print("\nby owner (innermost frame that belongs to a library):")
    for k, v in owners.most_common(25):
        print(f"  {pct(v)}  {k}")
    # Frames on most stacks are the CLI and the event loop's entry points: left out.
    inner = [(k, v) for k, v in inclusive.most_common() if v < 0.85 * busy]
    print("\ninclusive (share of running samples with this Python function on the stack), top 30:")
    for k, v in inner[:30]:
        print(f"  {pct(v)}  {k}")
    print("\ninclusive, the platform's own functions (mlops/), top 30:")
    for k, v in [kv for kv in inner if "(mlops/" in kv[0]][:30]:
        print(f"  {pct(v)}  {k}")
    print("\nself (innermost Python function), top 25:")
    for k, v in self_time.most_common(25):
        print(f"  {pct(v)}  {k}")


main(sys.argv[1])
PYEOF

# ------------------------------------------------------------------------- helpers
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME LOG URL-TO-POLL COMMAND...: in its own session (so its whole process group
# can be stopped), pinned to SERVER_CPU; waits for a 200 from the URL.
start_server() {
  local name=$1 log=$2 url=$3 code deadline; shift 3
  setsid taskset -c "$SERVER_CPU" "$@" >"$log" 2>&1 &
  SERVER_PID=$!  # setsid (not a group leader here) and taskset exec: this is the server
  SERVER_NAME=$name
  deadline=$((SECONDS + HEALTH_TIMEOUT_S))
  while :; do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" || true)
    [[ $code == 200 ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      tail -n 40 "$log" >&2
      wait "$SERVER_PID" 2>/dev/null || true
      SERVER_PID="" SERVER_NAME=""
      return 1
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$log" >&2
      note "no 200 from $url within ${HEALTH_TIMEOUT_S} s"
      return 1
    fi
    sleep 0.2
  done
  # Only ever signal a group this script made: the server must lead its own.
  if [[ $(ps -o pgid= -p "$SERVER_PID" | tr -d ' ') != "$SERVER_PID" ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    SERVER_PID="" SERVER_NAME=""
    die "$name is not the leader of its own process group (setsid forked?)"
  fi
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

BUSY_WARNING=""
record_machine_state() { # label
  local busy
  busy=$(core_busy)
  {
    echo "[$1] loadavg before: $(cut -d' ' -f1-3 /proc/loadavg); cores busy before: $busy"
    echo "[$1] busiest processes before (top, 1 s):"
    top -b -n 2 -d 1 -w 120 2>/dev/null | awk '/^top -/ {n++} n == 2' | sed -n '7,12p' | sed 's/^/    /'
  } >>"$OUT/machine.txt"
  if awk -v b="$busy" 'BEGIN { n = split(b, f, " "); for (i = 2; i <= n; i += 2) if (f[i] + 0 > 15) exit 0; exit 1 }'; then
    note "warning: the machine is busy before '$1' ($busy): results will be noisy"
    BUSY_WARNING+="$1: cores busy before ($busy). "
  fi
}

CLK_TCK=$(getconf CLK_TCK)
# CPU ticks of the server's whole process group (MLflow's CLI runs uvicorn as a child).
server_ticks() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } |
    awk -v g="$SERVER_PID" '{ sub(/^.*\) /, ""); if ($3 == g) t += $12 + $13 } END { print t + 0 }'
}
now() { date +%s.%N; }

declare -A R     # results: R[<key>.<field>]
declare -A SOFT  # keys whose measurement failed on a baseline: the reason

us_to_ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }

# wrk_run KEY LUA URL SOFT [wrk header args...]: one closed-loop wrk run, results in R[KEY.*].
# SOFT=1: a failure is recorded in SOFT[KEY] (return 1) instead of failing the run.
wrk_run() {
  local key=$1 lua=$2 url=$3 soft=$4 conns=$5 seconds=$6 out t0 c0 t1 c1 why=""; shift 6
  out=$OUT/wrk-$key.txt
  t0=$(now); c0=$(server_ticks)
  taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"$seconds"s --latency -s "$lua" "$@" "$url" >"$out" 2>&1 ||
    why="wrk failed: $(tail -3 "$out" | xargs)"
  t1=$(now); c1=$(server_ticks)
  if [[ -z $why ]] && ! grep -q '^Requests/sec:' "$out"; then why="no result in the wrk output"; fi
  if [[ -z $why ]] && grep -q 'Non-2xx or 3xx responses' "$out"; then
    why="error answers ($(grep 'Non-2xx' "$out" | xargs))"
  fi
  if [[ -z $why ]] && grep -q 'Socket errors' "$out"; then why="socket errors ($(grep 'Socket errors' "$out" | xargs))"; fi
  if [[ -n $why ]]; then
    ((soft)) || die "$key: $why: see $out and the server log"
    SOFT[$key]=$why
    note "$key: $why (see $out)"
    return 1
  fi
  R[$key.rps]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
  local p50 p95 p99 max
  read -r p50 p95 p99 max < <(awk '/^bench_percentiles_us/ {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      print v["p50"], v["p95"], v["p99"], v["max"] }' "$out")
  R[$key.p50]=$(us_to_ms "$p50") R[$key.p95]=$(us_to_ms "$p95") R[$key.p99]=$(us_to_ms "$p99")
  R[$key.max]=$(us_to_ms "$max")
  R[$key.cpu]=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", 100 * c / hz / (b - a) }')
  R[$key.what]="wrk -c$conns"
}

# merge_rounds KEY N: R[KEY.*] from the runs KEY.1 .. KEY.N (equal lengths): mean throughput,
# CPU and p50/p95; the worst p99 and max.
merge_rounds() {
  local key=$1 n=$2 field i
  for field in rps p50 p95 cpu; do
    R[$key.$field]=$(for i in $(seq "$n"); do echo "${R[$key.$i.$field]}"; done |
      awk -v f="$field" '{ t += $1 } END { printf (f == "rps" || f == "cpu") ? "%.0f" : "%.2f", t / NR }')
  done
  for field in p99 max; do
    R[$key.$field]=$(for i in $(seq "$n"); do echo "${R[$key.$i.$field]}"; done | sort -g | tail -1)
  done
  R[$key.what]="${R[$key.1.what]}, $n rounds"
}

steady_run() { # KEY URL-PORT HEADERS-FILE BODY
  local key=$1 port=$2 headers=$3 body=$4 out t0 c0 t1 c1
  out=$OUT/steady-$key.json
  t0=$(now); c0=$(server_ticks)
  taskset -c "$LOAD_CPU" "$PY" "$ROOT/bench/steady_load.py" 127.0.0.1 "$port" "$PREDICT" "$headers" "$body" \
    "$RATE" "$DURATION" "$CONNECTIONS" >"$out" 2>&1 || die "the steady load generator failed: $(tail -5 "$out")"
  t1=$(now); c1=$(server_ticks)
  "$PY" - "$out" <<'PYEOF' || die "steady run: answers other than 200, errors or unfinished requests: see $out"
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if r["statuses"] == {"200": r["requests"]} and not r["errors"] and not r["unfinished"] else 1)
PYEOF
  R[$key.rps]=$(json_get "$out" 'round(r["achieved_rps"])')
  for p in 50 95 99; do R[$key.p$p]=$(json_get "$out" "'%.2f' % r['latency_ms']['p$p']"); done
  R[$key.max]=$(json_get "$out" "'%.2f' % r['latency_ms']['p100']")
  R[$key.cpu]=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", 100 * c / hz / (b - a) }')
}

hey_run() { # KEY URL BODY [hey header args...]
  local key=$1 url=$2 body=$3 out t0 c0 t1 c1 codes; shift 3
  out=$OUT/hey-$key.txt
  t0=$(now); c0=$(server_ticks)
  taskset -c "$LOAD_CPU" hey -z "$DURATION"s -c "$CONNECTIONS" -q "$PER_WORKER_QPS" -cpus 1 -t 10 \
    -m POST -T application/json -D "$body" "$@" "$url" >"$out" 2>&1 || die "hey failed: $(cat "$out")"
  t1=$(now); c1=$(server_ticks)
  grep -q 'Requests/sec:' "$out" || die "no result in the hey output $out"
  codes=$(awk '/Status code distribution:/ {f = 1; next} f && /\[[0-9]+\]/ {print $1} f && /^ *$/ {f = 0}' "$out" |
    tr -d '[]' | sort -u | xargs)
  [[ $codes == 200 ]] || die "hey got status codes '$codes' (only 200 expected): see $out"
  if grep -q 'Error distribution' "$out"; then
    die "hey saw errors: $(awk '/Error distribution/ {f = 1; next} f' "$out" | head -3 | xargs): see $out"
  fi
  R[$key.rps]=$(awk '/Requests\/sec:/ {printf "%.0f", $2}' "$out")
  for p in 50 95 99; do
    R[$key.p$p]=$(awk -v p="$p%" '$1 == p && $2 == "in" {printf "%.2f", $3 * 1000; exit}' "$out")
  done
  R[$key.max]=$(awk '/Slowest:/ {printf "%.2f", $2 * 1000; exit}' "$out")
  R[$key.cpu]=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", 100 * c / hz / (b - a) }')
}

json_get() { # file python-expression-on-r
  "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# Sum of a Prometheus counter's samples on the platform whose labels contain FILTER.
metric_sum() { # NAME FILTER
  curl -s -m 5 "$BASE/metrics" | awk -v m="$1{" -v f="$2" 'index($0, m) == 1 && index($0, f) { s += $NF }
    END { printf "%.0f", s }'
}

# The platform's own count of predict answers by status code: "200=12345 ".
server_statuses() {
  curl -s -m 5 "$BASE/metrics" |
    awk -v route="$PREDICT" '/^mlops_http_requests_total\{/ && index($0, "route=\"" route "\"") {
           match($0, /status="[0-9]+"/); s = substr($0, RSTART + 8, RLENGTH - 9); n[s] += $NF }
         END { for (s in n) printf "%s=%d ", s, n[s] }'
}

# post URL BODY-FILE OUT-FILE [curl args...] -> HTTP status code
post() {
  local url=$1 body=$2 out=$3; shift 3
  curl -s -m 30 -o "$out" -w '%{http_code}' -X POST "$url" -H 'Content-Type: application/json' \
    --data-binary @"$body" "$@" || true
}

# predictions FILE KEY: the list of predictions in a JSON answer (KEY: predictions), one line.
predictions_of() {
  "$PY" -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["predictions"]))' "$1"
}

PER_WORKER_QPS=$(awk -v r="$RATE" -v c="$CONNECTIONS" 'BEGIN { printf "%g", r / c }')

PASS_MLOPS=(MLOPS_MAX_BATCH_SIZE MLOPS_MAX_BATCH_TIME_MS MLOPS_PREDICT_FAST_PATH MLOPS_CATALOG_POLL_SECONDS
  MLOPS_DRIFT_SAMPLE_RATE MLOPS_DRIFT_SAMPLES_PER_MINUTE)

# The code the platform runs, as of now: "commit abc1234" (+ ", src/ modified: <hash of the diff>").
source_state() {
  if [[ $SOURCE == head ]]; then
    echo "commit $SNAPSHOT_COMMIT (git archive, SOURCE=head)"
  elif git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    local dirty
    dirty=$({ git -C "$ROOT" diff HEAD -- src; git -C "$ROOT" ls-files --others --exclude-standard -- src; } |
      sha256sum | cut -c1-12)
    if git -C "$ROOT" status --porcelain -- src | grep -q .; then
      echo "commit $(git -C "$ROOT" rev-parse --short HEAD), with uncommitted changes in src/ (diff $dirty)"
    else
      echo "commit $(git -C "$ROOT" rev-parse --short HEAD)"
    fi
  else
    echo "$ROOT (not a git checkout)"
  fi
}
PLATFORM_PYTHONPATH=${PYTHONPATH:-}
if [[ $SOURCE == head ]]; then
  git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 || die "SOURCE=head needs a git checkout"
  SNAPSHOT_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
  mkdir -p "$TMP/snapshot"
  git -C "$ROOT" archive HEAD src | tar -x -C "$TMP/snapshot" || die "git archive HEAD src failed"
  PLATFORM_PYTHONPATH=$TMP/snapshot/src${PYTHONPATH:+:$PYTHONPATH}
  got=$(PYTHONPATH=$PLATFORM_PYTHONPATH "$PY" -c 'import mlops; print(mlops.__file__)') ||
    die "the snapshot of src/ does not import"
  [[ $got == "$TMP/snapshot/src/"* ]] || die "mlops imports from $got, not from the snapshot"
fi

# ------------------------------------------------------------------------- the machine
{
  echo "timestamp_utc=$STAMP"
  echo "nproc=$NCPU"
  echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "mem_total=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel=$(uname -r)"
  echo "source at the start=$(source_state)"
  echo "python=$("$PY" -c 'import sys; print(sys.version.split()[0])')"
  echo "project: $("$PY" -c 'import importlib.metadata as m; print(" ".join(f"{p}={m.version(p)}" for p in ("uvicorn", "fastapi", "onnxruntime", "skl2onnx", "scikit-learn", "numpy", "orjson")))')"
  echo "wrk=$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2) hey=$(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo '?')"
  echo "server_cpu=$SERVER_CPU load_cpu=$LOAD_CPU duration=${DURATION}s connections=$CONNECTIONS rate=$RATE" \
    "batch_rows=$BATCH_ROWS batch_connections=$BATCH_CONNECTIONS warmup=${WARMUP}s"
  for var in "${PASS_MLOPS[@]}"; do printf '%s=%s ' "$var" "${!var:-(default)}"; done
  echo
} >"$OUT/machine.txt"

# ------------------------------------------------------------------------- MLflow venv (first:
# a failed install is known before minutes of measurements, and pip's CPU is over by then)
MLFLOW_STATUS=""  # empty: usable; otherwise why MLflow was not measured
MLFLOW_VERSION=""
if ((!MLFLOW)); then
  MLFLOW_STATUS="skipped (MLFLOW=0)"
elif [[ -n $MLFLOW_VENV ]]; then
  MLFLOW_PY=$MLFLOW_VENV/bin/python
  note "MLflow: using the venv $MLFLOW_VENV"
else
  MLFLOW_VENV=$TMP/mlflow-venv
  MLFLOW_PY=$MLFLOW_VENV/bin/python
  note "MLflow: installing $MLFLOW_SPEC $SKLEARN_SPEC $SKOPS_SPEC into a temp venv (a minute or so)"
  if ! python3 -m venv "$MLFLOW_VENV" >"$OUT/mlflow-pip.log" 2>&1; then
    MLFLOW_STATUS="could not be installed: python3 -m venv failed (see mlflow-pip.log)"
  elif ! timeout 600 "$MLFLOW_PY" -m pip install -q --disable-pip-version-check \
    "$MLFLOW_SPEC" "$SKLEARN_SPEC" "$SKOPS_SPEC" >>"$OUT/mlflow-pip.log" 2>&1; then
    MLFLOW_STATUS="could not be installed: pip install $MLFLOW_SPEC $SKLEARN_SPEC $SKOPS_SPEC failed (see mlflow-pip.log)"
  fi
fi
if [[ -z $MLFLOW_STATUS ]]; then
  MLFLOW_VERSION=$("$MLFLOW_PY" -c 'import mlflow; print(mlflow.__version__)' 2>>"$OUT/mlflow-pip.log") ||
    MLFLOW_STATUS="could not be installed: mlflow does not import (see mlflow-pip.log)"
fi
if [[ -n $MLFLOW_STATUS ]]; then
  note "MLflow: $MLFLOW_STATUS"
else
  "$MLFLOW_PY" -m pip freeze --disable-pip-version-check >"$OUT/mlflow-pip-freeze.txt" 2>/dev/null || true
  echo "mlflow=$MLFLOW_VERSION ($(grep -iE '^(uvicorn|fastapi|scikit-learn|skops|pandas|numpy|uvloop|httptools)==' \
    "$OUT/mlflow-pip-freeze.txt" | xargs))" >>"$OUT/machine.txt"
fi

# ------------------------------------------------------------------------- the platform
while IFS= read -r var; do
  [[ " ${PASS_MLOPS[*]} " == *" $var "* ]] || unset "$var"
done < <(compgen -e | grep '^MLOPS_' || true)
ADMIN_PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(18))')  # 24 characters
export MLOPS_ADMIN_USERNAME=admin
export MLOPS_ADMIN_PASSWORD=$ADMIN_PASSWORD
export MLOPS_DATA_DIR=$TMP/data
# The shipped defaults: the access log on (MLOPS_ACCESS_LOG=true) at INFO, one JSON line per
# request into the server log file, as a container runtime would take stderr. INFO also
# keeps the line a model load writes, which names the runtime (onnxruntime or the model's
# library).
export MLOPS_LOG_LEVEL=INFO
printf '{"username":"admin","password":"%s"}' "$ADMIN_PASSWORD" >"$TMP/login.json"

platform_start() { # on|off
  PORT=$(free_port)
  BASE=http://127.0.0.1:$PORT
  SERVER_LOG=$TMP/server-batching-$1.log
  local batching=true
  [[ $1 == on ]] || batching=false
  note "mlops up, batching $1: starting on core $SERVER_CPU"
  R[source.$1]=$(source_state)
  echo "[batching $1] source when the server started: ${R[source.$1]}" >>"$OUT/machine.txt"
  PYTHONPATH=$PLATFORM_PYTHONPATH MLOPS_BATCHING=$batching start_server "mlops up" "$SERVER_LOG" "$BASE/health" \
    "$MLOPS" up --host 127.0.0.1 --port "$PORT" || die "mlops up did not start (log above)"
  local body code deadline
  body=$(curl -sS -m 30 -f -X POST "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
    --data-binary @"$TMP/login.json") || die "logging in as admin failed"
  printf '%s' "$body" |
    "$PY" -c 'import json, sys; print("Authorization: Bearer " + json.load(sys.stdin)["access_token"])' \
      >"$TMP/auth_header" || die "the login answer has no access_token"
  AUTH=$(head -1 "$TMP/auth_header")
  # The demo model loads in the background: wait for its first prediction.
  deadline=$((SECONDS + 60))
  until [[ $(post "$BASE$PREDICT" "$TMP/body-one.json" "$TMP/answer.json" -H "$AUTH") == 200 ]]; do
    ((SECONDS < deadline)) || die "no 200 from $PREDICT within 60 s: $(cat "$TMP/answer.json")"
    sleep 0.5
  done
  code=$(post "$BASE$PREDICT" "$TMP/body-batch.json" "$TMP/answer-batch.json" -H "$AUTH")
  [[ $code == 200 ]] || die "$PREDICT with $BATCH_ROWS rows answered $code: $(cat "$TMP/answer-batch.json")"
  [[ $("$PY" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["predictions"]))' \
    "$TMP/answer-batch.json") == "$BATCH_ROWS" ]] || die "the $BATCH_ROWS-row answer has another count of predictions"
  PLATFORM_BATCH_PREDICTIONS=$(predictions_of "$TMP/answer-batch.json")
}

platform_finish() { # on|off
  local statuses
  statuses=$(server_statuses)
  echo "[batching $1] platform-side answers on $PREDICT: $statuses" >>"$OUT/machine.txt"
  [[ $statuses =~ ^200=[0-9]+\ $ ]] || die "the platform answered other than 200 on $PREDICT: $statuses"
  R[runtime.$1]=$(grep -o '"model version loaded".*' "$SERVER_LOG" | grep -o '"runtime": "[^"]*"' |
    sort -u | cut -d'"' -f4 | xargs || true)
  echo "[batching $1] runtimes loaded: ${R[runtime.$1]:-(not logged)}; server log lines: $(wc -l <"$SERVER_LOG")" \
    >>"$OUT/machine.txt"
  curl -s -m 5 "$BASE/metrics" | grep -E '^mlops_(batch_size_rows_(sum|count)|prediction_rows_total|predictions_total|canary|shadow)' \
    >"$OUT/metrics-batching-$1.txt" || true
  grep -v 'mlops.access' "$SERVER_LOG" | tail -n 100 >"$OUT/server-batching-$1.log" || true
  stop_server
}

set_policy() { # JSON
  local code
  code=$(curl -s -m 30 -o "$TMP/policy.json" -w '%{http_code}' -X PUT "$BASE/api/v1/models/demo/deployment" \
    -H "$AUTH" -H 'Content-Type: application/json' -d "$1" || true)
  [[ $code == 200 ]] || die "PUT /api/v1/models/demo/deployment $1 answered $code: $(cat "$TMP/policy.json")"
}

# Sends single-row predictions until PREDICATE (a function) holds; the policy change is applied
# by the server in the background (an in-process event, then loading version 2).
wait_until_policy() { # description predicate
  local what=$1 check=$2 deadline=$((SECONDS + 60)) _
  until "$check"; do
    ((SECONDS < deadline)) || die "the deployment policy did not take effect within 60 s ($what)"
    for _ in $(seq 20); do post "$BASE$PREDICT" "$TMP/body-one.json" /dev/null -H "$AUTH" >/dev/null; done
    sleep 0.2
  done
}
CANARY_SEEN=0
canary_live() { (($(metric_sum mlops_canary_requests_total 'version="2"') > CANARY_SEEN)); }
SHADOW_SEEN=0
shadow_live() { (($(metric_sum mlops_shadow_requests_total 'version="2"') > SHADOW_SEEN)); }
shadow_gone() {
  local before after
  before=$(metric_sum mlops_shadow_requests_total 'version="2"')
  post "$BASE$PREDICT" "$TMP/body-one.json" /dev/null -H "$AUTH" >/dev/null
  sleep 0.3
  after=$(metric_sum mlops_shadow_requests_total 'version="2"')
  ((after == before)) && [[ $(metric_sum mlops_canary_requests_total 'version="2"') == "$CANARY_LAST" ]]
}

single() { # KEY [soft]: single-row wrk against the current server
  wrk_run "$1" "$TMP/wrk-${LUA_ONE:-one}.lua" "$URL" "${2:-0}" "$CONNECTIONS" "$DURATION" "${WRK_HEADERS[@]}"
}
batched() { # KEY [soft]
  wrk_run "$1" "$TMP/wrk-${LUA_BATCH:-batch}.lua" "$URL" "${2:-0}" "$BATCH_CONNECTIONS" "$DURATION" "${WRK_HEADERS[@]}" || return 1
  R[$1.rows]=$((R[$1.rps] * BATCH_ROWS))
}
warm_up() {
  wrk_run warmup-single "$TMP/wrk-${LUA_ONE:-one}.lua" "$URL" "${1:-0}" "$CONNECTIONS" "$WARMUP" "${WRK_HEADERS[@]}" || return 1
  wrk_run warmup-batch "$TMP/wrk-${LUA_BATCH:-batch}.lua" "$URL" "${1:-0}" "$BATCH_CONNECTIONS" 1 "${WRK_HEADERS[@]}" || return 1
  rm -f "$OUT/wrk-warmup-single.txt" "$OUT/wrk-warmup-batch.txt"
}

# --- batching on
record_machine_state "mlops up, batching on"
platform_start on
URL=$BASE$PREDICT
WRK_HEADERS=(-H "$AUTH")
code=$(curl -s -m 30 -o "$TMP/demo.skops" -w '%{http_code}' -H "$AUTH" "$BASE/api/v1/models/demo/versions/1/artifact" || true)
[[ $code == 200 && -s $TMP/demo.skops ]] || die "downloading the demo artifact answered $code"
sha256sum "$TMP/demo.skops" | sed 's/ .*//; s/^/demo.skops sha256=/' >>"$OUT/machine.txt"
note "mlops up, batching on: warm-up ${WARMUP} s"
warm_up

note "mlops up, batching on: 1 row, wrk -c$CONNECTIONS, ${DURATION} s"
single on.single
note "mlops up, batching on: 1 row, steady $RATE requests/s over $CONNECTIONS connections, ${DURATION} s"
steady_run on.steady "$PORT" "$TMP/auth_header" "$TMP/body-one.json"
note "mlops up, batching on: 1 row, hey -c$CONNECTIONS -q$PER_WORKER_QPS, ${DURATION} s"
hey_run on.hey "$URL" "$TMP/body-one.json" -H "$AUTH"
note "mlops up, batching on: $BATCH_ROWS rows, wrk -c$BATCH_CONNECTIONS, ${DURATION} s"
batched on.batch

note "uploading the demo artifact again as version 2"
code=$(curl -s -m 60 -o "$TMP/v2.json" -w '%{http_code}' -X POST "$BASE/api/v1/models/demo/versions" \
  -H "$AUTH" -F "file=@$TMP/demo.skops;filename=demo.skops" || true)
[[ $code == 201 ]] || die "uploading version 2 answered $code: $(cat "$TMP/v2.json")"
[[ $(json_get "$TMP/v2.json" 'r["version"]') == 2 ]] || die "the upload did not become version 2: $(cat "$TMP/v2.json")"

# The policies' cost: the VM's speed drifts by 10-20% over minutes, so plain, canary and
# shadow runs alternate in POLICY_ROUNDS rounds of a share of DURATION each, and each
# policy is judged on its rounds together against the plain rounds between them.
POLICY_SECONDS=$(((DURATION + POLICY_ROUNDS - 1) / POLICY_ROUNDS))
((POLICY_SECONDS >= 3)) || POLICY_SECONDS=3
requests_in() { awk '/requests in/ {print $1}' "$OUT/wrk-$1.txt"; }
canary_requests=0 canary_sent=0 shadow_requests=0 shadow_sent=0
for round in $(seq "$POLICY_ROUNDS"); do
  set_policy '{"alias":"production"}'
  CANARY_LAST=$(metric_sum mlops_canary_requests_total 'version="2"')
  wait_until_policy plain shadow_gone
  note "mlops up, batching on: 1 row, wrk -c$CONNECTIONS, round $round/$POLICY_ROUNDS: plain policy, $POLICY_SECONDS s"
  wrk_run "on.plain.$round" "$TMP/wrk-one.lua" "$URL" 0 "$CONNECTIONS" "$POLICY_SECONDS" -H "$AUTH"

  CANARY_SEEN=$(metric_sum mlops_canary_requests_total 'version="2"')
  set_policy '{"canary":{"version":2,"percent":10}}'
  wait_until_policy canary canary_live
  note "mlops up, batching on: 1 row, wrk -c$CONNECTIONS, round $round/$POLICY_ROUNDS: canary 10% on version 2, $POLICY_SECONDS s"
  wrk_run warmup-canary "$TMP/wrk-one.lua" "$URL" 0 "$CONNECTIONS" 1 -H "$AUTH"; rm -f "$OUT/wrk-warmup-canary.txt"
  c0=$(metric_sum mlops_canary_requests_total 'version="2"')
  wrk_run "on.canary.$round" "$TMP/wrk-one.lua" "$URL" 0 "$CONNECTIONS" "$POLICY_SECONDS" -H "$AUTH"
  c1=$(metric_sum mlops_canary_requests_total 'version="2"')
  canary_requests=$((canary_requests + c1 - c0)) canary_sent=$((canary_sent + $(requests_in "on.canary.$round")))

  SHADOW_SEEN=$(metric_sum mlops_shadow_requests_total 'version="2"')
  set_policy '{"shadow":{"version":2}}'
  wait_until_policy shadow shadow_live
  note "mlops up, batching on: 1 row, wrk -c$CONNECTIONS, round $round/$POLICY_ROUNDS: shadow on version 2, $POLICY_SECONDS s"
  wrk_run warmup-shadow "$TMP/wrk-one.lua" "$URL" 0 "$CONNECTIONS" 1 -H "$AUTH"; rm -f "$OUT/wrk-warmup-shadow.txt"
  sleep 0.5  # let the warm-up's shadow copies finish
  s0=$(metric_sum mlops_shadow_requests_total 'version="2"')
  wrk_run "on.shadow.$round" "$TMP/wrk-one.lua" "$URL" 0 "$CONNECTIONS" "$POLICY_SECONDS" -H "$AUTH"
  sleep 0.5  # let the last shadow copies finish
  s1=$(metric_sum mlops_shadow_requests_total 'version="2"')
  shadow_requests=$((shadow_requests + s1 - s0)) shadow_sent=$((shadow_sent + $(requests_in "on.shadow.$round")))
done
set_policy '{"alias":"production"}'
CANARY_LAST=$(metric_sum mlops_canary_requests_total 'version="2"')
wait_until_policy plain shadow_gone
for policy in plain canary shadow; do merge_rounds "on.$policy" "$POLICY_ROUNDS"; done
R[on.canary.share]=$(awk -v c="$canary_requests" -v n="$canary_sent" 'BEGIN { printf "%.1f", 100 * c / n }')
R[on.shadow.share]=$(awk -v s="$shadow_requests" -v n="$shadow_sent" 'BEGIN { printf "%.1f", 100 * s / n }')
R[on.shadow.errors]=$(metric_sum mlops_shadow_requests_total 'outcome="error"')

if ((PROFILE)); then
  note "profile: uvx py-spy record --native, 100 Hz, under 1 row wrk -c$CONNECTIONS, ${DURATION} s"
  taskset -c "$LOAD_CPU" uvx py-spy record --pid "$SERVER_PID" --rate 100 --duration "$DURATION" --native \
    --threads --format raw --output "$OUT/py-spy-batching-on.txt" >"$OUT/py-spy.log" 2>&1 &
  spy=$!
  sleep 1
  wrk_run profile "$TMP/wrk-one.lua" "$URL" 0 "$CONNECTIONS" "$((DURATION + 1))" -H "$AUTH"
  if wait "$spy" && [[ -s $OUT/py-spy-batching-on.txt ]]; then
    "$PY" "$TMP/profile_summary.py" "$OUT/py-spy-batching-on.txt" >"$OUT/profile-summary.txt" ||
      note "could not summarise the profile"
  else
    note "py-spy failed (it needs ptrace: root or CAP_SYS_PTRACE): $(tail -3 "$OUT/py-spy.log" | xargs)"
  fi
fi
platform_finish on

# --- batching off (same data dir: the demo is registered, the policy is plain again)
record_machine_state "mlops up, batching off"
platform_start off
URL=$BASE$PREDICT
WRK_HEADERS=(-H "$AUTH")
note "mlops up, batching off: warm-up ${WARMUP} s"
warm_up
note "mlops up, batching off: 1 row, wrk -c$CONNECTIONS, ${DURATION} s"
single off.single
note "mlops up, batching off: $BATCH_ROWS rows, wrk -c$BATCH_CONNECTIONS, ${DURATION} s"
batched off.batch
platform_finish off

# ------------------------------------------------------------------------- the ceiling
record_machine_state "ceiling app"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT$PREDICT
WRK_HEADERS=()
note "ceiling: starting bench/serve_ceiling_app.py on core $SERVER_CPU (converts the model at start-up)"
CEILING_MODEL=$TMP/demo.skops start_server "ceiling app" "$TMP/ceiling.log" "http://127.0.0.1:$PORT/health" \
  "$UVICORN" serve_ceiling_app:app --app-dir "$ROOT/bench" --host 127.0.0.1 --port "$PORT" \
  --loop uvloop --http httptools --no-access-log --log-level warning ||
  die "the ceiling app did not start (log above)"
code=$(post "$URL" "$TMP/body-batch.json" "$TMP/answer-ceiling.json")
[[ $code == 200 ]] || die "the ceiling app answered $code: $(cat "$TMP/answer-ceiling.json")"
R[agree.ceiling]=$("$PY" -c 'import json, sys; a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2]); print(sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b)))' \
  "$PLATFORM_BATCH_PREDICTIONS" "$(predictions_of "$TMP/answer-ceiling.json")")
note "ceiling: warm-up ${WARMUP} s"
warm_up
note "ceiling: 1 row, wrk -c$CONNECTIONS, ${DURATION} s"
single ceiling.single
note "ceiling: $BATCH_ROWS rows, wrk -c$BATCH_CONNECTIONS, ${DURATION} s"
batched ceiling.batch
cp "$TMP/ceiling.log" "$OUT/server-ceiling.log"
stop_server

# ------------------------------------------------------------------------- MLflow
if [[ -z $MLFLOW_STATUS ]]; then
  note "MLflow: loading demo.skops and saving it with mlflow.sklearn.save_model"
  cat >"$TMP/mlflow_save.py" <<'PYEOF'
import sys
import mlflow.sklearn
import skops.io as sio

path, dest = sys.argv[1], sys.argv[2]
# The platform's own demo model: trust exactly the types the file names.
model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
mlflow.sklearn.save_model(model, dest)
print(model)
PYEOF
  if ! "$MLFLOW_PY" "$TMP/mlflow_save.py" "$TMP/demo.skops" "$TMP/mlflow-model" >"$OUT/mlflow-save.log" 2>&1; then
    MLFLOW_STATUS="could not save the model with mlflow.sklearn.save_model (see mlflow-save.log)"
  fi
fi
if [[ -z $MLFLOW_STATUS ]]; then
  cp "$TMP/mlflow-model/MLmodel" "$OUT/mlflow-MLmodel.yaml"
  record_machine_state "MLflow"
  PORT=$(free_port)
  URL=http://127.0.0.1:$PORT/invocations
  WRK_HEADERS=()
  note "MLflow: mlflow models serve --env-manager local -w 1 on core $SERVER_CPU"
  # The CLI runs `uvicorn ... --workers 1` as its child; both are in the server's process group.
  if ! PATH=$MLFLOW_VENV/bin:$PATH start_server "mlflow models serve" "$TMP/mlflow.log" \
    "http://127.0.0.1:$PORT/ping" "$MLFLOW_VENV/bin/mlflow" models serve -m "$TMP/mlflow-model" \
    --env-manager local -w 1 -p "$PORT" -h 127.0.0.1; then
    MLFLOW_STATUS="could not be started: mlflow models serve did not answer /ping (see server-mlflow.log)"
  fi
fi
if [[ -z $MLFLOW_STATUS ]]; then
  for style in split inputs; do
    code=$(post "$URL" "$TMP/body-mlflow-$style-batch.json" "$TMP/answer-mlflow-$style.json")
    if [[ $code != 200 ]]; then
      MLFLOW_STATUS="answered $code to the $style payload: $(head -c 300 "$TMP/answer-mlflow-$style.json")"
      break
    fi
    R[agree.mlflow-$style]=$("$PY" -c 'import json, sys; a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2]); print(sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b)))' \
      "$PLATFORM_BATCH_PREDICTIONS" "$(predictions_of "$TMP/answer-mlflow-$style.json")")
  done
fi
if [[ -z $MLFLOW_STATUS ]]; then
  LUA_ONE=mlflow-inputs-one LUA_BATCH=mlflow-inputs-batch
  note "MLflow: warm-up ${WARMUP} s"
  warm_up 1 || true
  for style in split inputs; do
    LUA_ONE=mlflow-$style-one LUA_BATCH=mlflow-$style-batch
    note "MLflow: 1 row ($style), wrk -c$CONNECTIONS, ${DURATION} s"
    single "mlflow-$style.single" 1 || true
    note "MLflow: $BATCH_ROWS rows ($style), wrk -c$BATCH_CONNECTIONS, ${DURATION} s"
    batched "mlflow-$style.batch" 1 || true
  done
  LUA_ONE="" LUA_BATCH=""
fi
if [[ -n $SERVER_PID ]]; then
  tail -n 30 "$TMP/mlflow.log" >"$OUT/server-mlflow.log"
  stop_server
elif [[ -f $TMP/mlflow.log ]]; then
  tail -n 60 "$TMP/mlflow.log" >"$OUT/server-mlflow.log"
fi
[[ -z $MLFLOW_STATUS ]] || note "MLflow: $MLFLOW_STATUS"

# ------------------------------------------------------------------------- summary
best_of() { # KEY-FIELD...: the largest of the values that exist, or empty
  local v best=""
  for k in "$@"; do
    v=${R[$k]:-}
    [[ -n $v ]] || continue
    if [[ -z $best ]] || ((v > best)); then best=$v; fi
  done
  echo "$best"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
MLFLOW_BEST_RPS=$(best_of mlflow-split.single.rps mlflow-inputs.single.rps)
MLFLOW_BEST_ROWS=$(best_of mlflow-split.batch.rows mlflow-inputs.batch.rows)
MISSED=0
declare -A V
judge() { # NAME COMMAND...: V[NAME]=met when the command succeeds
  if "${@:2}"; then V[$1]=met; else V[$1]=MISSED; MISSED=1; fi
}
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
at_most() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
if [[ -n $MLFLOW_BEST_RPS ]]; then
  judge rps-mlflow at_least "${R[on.single.rps]}" "$((TARGET_X_MLFLOW * MLFLOW_BEST_RPS))"
  R[x.mlflow]=$(ratio "${R[on.single.rps]}" "$MLFLOW_BEST_RPS")
else
  V[rps-mlflow]="not judged (no MLflow figure)"
fi
judge rps-ceiling at_least "$((R[on.single.rps] * 100))" "$((TARGET_CEILING_PCT * R[ceiling.single.rps]))"
R[pct.ceiling]=$(awk -v a="${R[on.single.rps]}" -v b="${R[ceiling.single.rps]}" 'BEGIN { printf "%.0f", 100 * a / b }')
judge p99 at_most "${R[on.steady.p99]}" "$TARGET_P99_MS"
if [[ -n $MLFLOW_BEST_ROWS ]]; then
  judge rows-mlflow at_least "${R[on.batch.rows]}" "$((TARGET_X_MLFLOW * MLFLOW_BEST_ROWS))"
  R[x.mlflow.rows]=$(ratio "${R[on.batch.rows]}" "$MLFLOW_BEST_ROWS")
else
  V[rows-mlflow]="not judged (no MLflow figure)"
fi
for policy in canary shadow; do
  R[$policy.cost]=$(awk -v p="${R[on.$policy.rps]}" -v b="${R[on.plain.rps]}" 'BEGIN { printf "%.1f", 100 * (1 - p / b) }')
  judge "$policy" at_most "${R[$policy.cost]}" "$TARGET_POLICY_COST_PCT"
done

row() { printf '%-34s | %-44s | %7s | %8s | %7s | %7s | %7s | %7s | %s\n' "$@"; }
fig() { # KEY: a table row's figures
  local k=$1
  if [[ -n ${SOFT[$k]:-} ]]; then
    printf '%s\n' "failed: ${SOFT[$k]}"
    return
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s%%\n' "${R[$k.rps]:--}" "${R[$k.rows]:--}" "${R[$k.p50]:--}" \
    "${R[$k.p95]:--}" "${R[$k.p99]:--}" "${R[$k.max]:--}" "${R[$k.cpu]:--}"
}
line() { # SERVER MEASUREMENT KEY
  local f
  f=$(fig "$3")
  if [[ $f == failed:* ]]; then
    printf '%-34s | %-44s | %s\n' "$1" "$2" "$f"
  else
    IFS=$'\t' read -r a b c d e g h <<<"$f"
    row "$1" "$2" "$a" "$b" "$c" "$d" "$e" "$g" "$h"
  fi
}
{
  echo "Model server benchmark $STAMP: the demo model (StandardScaler + LogisticRegression, 5 features)"
  echo "each server alone on core $SERVER_CPU, load generator on core $LOAD_CPU;" \
    "$(sed -n 's/^cpu_model=//p' "$OUT/machine.txt"), nproc $NCPU; ${DURATION} s per measurement"
  echo "platform: ${R[source.on]}; runtime ${R[runtime.on]:-?}$(
    [[ ${R[source.off]} == "${R[source.on]}" ]] || echo "; batching off: ${R[source.off]}")"
  settings=$(for var in "${PASS_MLOPS[@]}"; do [[ -z ${!var:-} ]] || printf '%s=%s ' "$var" "${!var}"; done)
  [[ -z $settings ]] || echo "platform settings passed: $settings"
  echo
  row server measurement "req/s" "rows/s" "p50 ms" "p95 ms" "p99 ms" "max ms" "server CPU"
  echo "-----------------------------------+----------------------------------------------+---------+----------+---------+---------+---------+---------+-----------"
  line "mlops up, batching on (default)" "1 row, wrk -c$CONNECTIONS" on.single
  line "" "1 row, steady $RATE/s, $CONNECTIONS conns (open loop)" on.steady
  line "" "1 row, hey -c$CONNECTIONS -q$PER_WORKER_QPS (bursts)" on.hey
  line "" "$BATCH_ROWS rows, wrk -c$BATCH_CONNECTIONS" on.batch
  line "" "1 row, plain, ${POLICY_ROUNDS} x ${POLICY_SECONDS} s, between:" on.plain
  line "" "1 row, canary 10% -> v2, ${POLICY_ROUNDS} x ${POLICY_SECONDS} s" on.canary
  line "" "1 row, shadow v2, ${POLICY_ROUNDS} x ${POLICY_SECONDS} s" on.shadow
  line "mlops up, batching off" "1 row, wrk -c$CONNECTIONS" off.single
  line "" "$BATCH_ROWS rows, wrk -c$BATCH_CONNECTIONS" off.batch
  line "ceiling: bare ASGI + onnxruntime" "1 row, wrk -c$CONNECTIONS" ceiling.single
  line "" "$BATCH_ROWS rows, wrk -c$BATCH_CONNECTIONS" ceiling.batch
  if [[ -n ${R[mlflow-split.single.rps]:-}${R[mlflow-inputs.single.rps]:-}${SOFT[mlflow-split.single]:-}${SOFT[mlflow-inputs.single]:-} ]]; then
    line "MLflow $MLFLOW_VERSION (uvicorn, 1 worker)" "1 row, wrk -c$CONNECTIONS, dataframe_split" mlflow-split.single
    line "" "1 row, wrk -c$CONNECTIONS, inputs" mlflow-inputs.single
    line "" "$BATCH_ROWS rows, wrk -c$BATCH_CONNECTIONS, dataframe_split" mlflow-split.batch
    line "" "$BATCH_ROWS rows, wrk -c$BATCH_CONNECTIONS, inputs" mlflow-inputs.batch
  else
    printf '%-34s | %s\n' "MLflow" "not measured: ${MLFLOW_STATUS:-no figure}"
  fi
  echo
  echo "canary: ${R[on.canary.share]}% of the requests went to version 2; shadow: ${R[on.shadow.share]}% of" \
    "the requests were mirrored to version 2 (${R[on.shadow.errors]} shadow errors)"
  echo "predictions on the $BATCH_ROWS-row body differing from the platform's: ceiling ${R[agree.ceiling]}$(
    [[ -n ${R[agree.mlflow-split]:-} ]] && echo ", MLflow dataframe_split ${R[agree.mlflow-split]}, inputs ${R[agree.mlflow-inputs]:-?}")"
  echo
  echo "targets (batching on, the default):"
  echo "  1 row at $CONNECTIONS connections >= ${TARGET_X_MLFLOW}x MLflow's better figure: ${V[rps-mlflow]}" \
    "(${R[on.single.rps]} req/s$([[ -n $MLFLOW_BEST_RPS ]] && echo " = ${R[x.mlflow]}x MLflow's $MLFLOW_BEST_RPS; needs $((TARGET_X_MLFLOW * MLFLOW_BEST_RPS))"))"
  echo "  1 row at $CONNECTIONS connections >= ${TARGET_CEILING_PCT}% of the ceiling: ${V[rps-ceiling]}" \
    "(${R[pct.ceiling]}% of ${R[ceiling.single.rps]} req/s)"
  echo "  p99 <= $TARGET_P99_MS ms at a steady $RATE req/s: ${V[p99]} (${R[on.steady.p99]} ms; hey, bursts: ${R[on.hey.p99]} ms)"
  echo "  $BATCH_ROWS-row batches >= ${TARGET_X_MLFLOW}x MLflow's rows/s: ${V[rows-mlflow]}" \
    "(${R[on.batch.rows]} rows/s$([[ -n $MLFLOW_BEST_ROWS ]] && echo " = ${R[x.mlflow.rows]}x MLflow's $MLFLOW_BEST_ROWS"))"
  echo "  canary 10% costs <= ${TARGET_POLICY_COST_PCT}%: ${V[canary]} (${R[canary.cost]}%: ${R[on.canary.rps]} vs ${R[on.plain.rps]} req/s, the plain rounds between them)"
  echo "  shadow costs <= ${TARGET_POLICY_COST_PCT}%: ${V[shadow]} (${R[shadow.cost]}%: ${R[on.shadow.rps]} vs ${R[on.plain.rps]} req/s)"
  for k in on.single off.single ceiling.single mlflow-split.single mlflow-inputs.single; do
    if [[ -n ${R[$k.cpu]:-} ]] && ((R[$k.cpu] < 90)); then
      echo "  warning: $k: the server used only ${R[$k.cpu]}% of its core under wrk: its throughput may be understated"
    fi
  done
  if ((R[on.steady.rps] * 100 < RATE * 95)); then echo "  warning: the steady client reached only ${R[on.steady.rps]} of $RATE req/s"; fi
  [[ $CONNECTIONS -eq 50 && $RATE -eq 1000 && $BATCH_ROWS -eq 100 && $BATCH_CONNECTIONS -eq 8 ]] ||
    echo "(the targets are defined for 50 connections, 1,000 req/s, and 100-row batches at 8 connections)"
  [[ -z $BUSY_WARNING ]] || echo "warning: other load on the machine: $BUSY_WARNING"
  now_source=$(source_state)
  [[ $now_source == "${R[source.on]}" ]] ||
    echo "warning: the source changed during the run (now: $now_source): use SOURCE=head on a shared tree"
  [[ -z $MLFLOW_STATUS ]] || echo "MLflow: $MLFLOW_STATUS"
  if [[ -s $OUT/profile-summary.txt ]]; then
    echo
    echo "profile (py-spy --native, 100 Hz, batching on, 1 row wrk -c$CONNECTIONS; ${R[profile.rps]:-?} req/s while sampled):"
    sed -n '1,2p' "$OUT/profile-summary.txt" | sed 's/^/  /'
    awk '/^by owner/ {f = 1; next} f && /^$/ {exit} f' "$OUT/profile-summary.txt" | head -12
    echo "  (more: profile-summary.txt)"
  fi
  echo "every platform and ceiling answer was 200 (wrk, steady client, hey, the platform's counter); raw outputs in ${OUT#"$ROOT"/}/"
} | tee "$OUT/summary.txt"

if ((STRICT && MISSED)); then exit 3; fi
exit 0
