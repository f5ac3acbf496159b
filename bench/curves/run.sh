#!/usr/bin/env bash
# Cost curves (issue 28): what gatehouse costs as its config and its store grow.
#
# Clients: for N in CURVES_CLIENTS (default 1000 10000 100000) a config of N
# confidential clients (gen_config.py: one argon2 secret_hash, client_credentials, one
# scope, one audience each), the release binary started on it (memory store, default
# settings, pinned to CPU 1 as in bench/run.sh), and:
#   check_ms     `gatehouse check` on the file (load + validate, one process)
#   check_cpu_ms its CPU time (user + system)
#   start_ms     exec to the first 200 from /healthz; start_cpu_ms the server's CPU
#                time then (wall time stretches when the core is shared, CPU time less)
#   rss_kib      VmRSS once /healthz answers; rss_used_kib after one token of the
#                middle client (its argon2 verified once)
#   reload_ms    SIGHUP to the new generation serving (the "SIGHUP: reloading" and
#                "config_reloaded" log lines' timestamps: reload_log_ms)
#   reload_peak_kib  peak VmRSS during the reload (VmHWM, reset just before through
#                /proc/PID/clear_refs), reload_after_kib VmRSS 2 s after it
#   reload_non2xx, reload_errors  wrk client credentials (64 connections) running
#                through the reload: answers not 2xx, socket errors
#   reload_requests_rps  that wrk run's rate over its 12 s (SIGHUP 2 s in)
#   cc_rps, cc_p99_ms, cc_non2xx, cc_errors  client credentials of the middle client
#                svc-(N/2), wrk 10 s
# Tokens: for each store in CURVES_STORES (memory redis), a config of 1000 clients plus
# a first-party SPA and a user, codes living 1 s (so used codes do not pile up in the
# figures: each measurement waits for the memory store's 30 s sweep), one session; code flows with offline_access fill the store to each count
# in CURVES_TOKENS (default 10000 100000 1000000) live refresh tokens, then:
#   rss_kib        gatehouse's VmRSS; redis_used   Redis's INFO used_memory;
#   redis_used_scanned  the same after a SCAN of every key (which frees the expired)
#   flow_rps, flow_p99_ms  code flows as scenario 4 (bench/lua/code_flow.lua) but
#                  with offline_access (fill.lua), 10 s
#
# Writes bench/curves/clients.csv and tokens.csv (CURVES_OUT=dir
# elsewhere); bench/curves/plot.py draws them. Usage:
#   bench/curves/run.sh                     # builds nothing: BENCH_BIN or target/release
#   CURVES_CLIENTS="1000" CURVES_STORES="" bench/curves/run.sh
#   CURVES_TOKENS_REDIS="10000 100000"      # other counts for Redis than for memory
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/gatehouse}"
SECONDS_PER_RUN="${CURVES_SECONDS:-10}"
CONNECTIONS=64
CLIENT_COUNTS="${CURVES_CLIENTS-1000 10000 100000}"
TOKEN_COUNTS="${CURVES_TOKENS-10000 100000 1000000}"
STORES="${CURVES_STORES-memory redis}"
OUT="${CURVES_OUT:-bench/curves}"
PORT=18184
BASE="http://127.0.0.1:$PORT"
REDIS_PORT=18185
LUA=bench/lua
CURVES=bench/curves

for tool in wrk curl openssl taskset python3; do
    command -v "$tool" >/dev/null || { echo "curves: $tool is missing" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "curves: no binary at $BIN (build with cargo build --release, or set BENCH_BIN)" >&2; exit 1; }

WORK=$(mktemp -d)
SERVER_PID=""
REDIS_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    SERVER_PID=""
}
stop_redis() {
    if [ -n "$REDIS_PID" ]; then kill -9 "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
    REDIS_PID=""
}
start_redis() {
    (cd "$WORK" && exec taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null) &
    REDIS_PID=$!
    for _ in $(seq 1 100); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "curves: redis-server did not start" >&2; exit 1
}
cleanup() { stop_server; stop_redis; rm -rf "$WORK"; }
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
TICKS=$(getconf CLK_TCK)
# cpu_ms: the CPU time (user + system) the server has used, in ms: unlike wall time,
# it does not grow when other processes share the core.
cpu_ms() { awk -v t="$TICKS" '{print int(($14 + $15) * 1000 / t)}' "/proc/$SERVER_PID/stat"; }
status_kib() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$SERVER_PID/status"; }
metric() { curl -sf "$BASE/metrics" | awk -v m="$1" '$1 == m && !found {print $2; found = 1}'; }   # reads it all: an early exit would fail curl (23)
generation() { metric gatehouse_config_generation; }
# log_ms PATTERN: the timestamp of the log's first line matching PATTERN, in ms since
# the epoch (the text format starts each line with an RFC 3339 time).
log_ms() {
    local stamp
    stamp=$(grep -m1 -- "$1" "$WORK/server.log" | awk '{print $1}' | sed 's/\x1b\[[0-9;]*m//g')
    [ -n "$stamp" ] && date -d "$stamp" +%s%3N 2>/dev/null || echo ""
}

"$BIN" keygen --algorithm ES256 --out "$WORK/es256.pem" 2>/dev/null
HASH=$(printf %s bench-secret | "$BIN" hash-secret)

# start_server CONFIG: exec, then poll /healthz every 10 ms; sets START_MS.
start_server() {
    local t0
    t0=$(now_ms)
    env -u RUST_LOG taskset -c 1 "$BIN" serve --config "$1" 2>"$WORK/server.log" &
    SERVER_PID=$!
    until curl -sf -o /dev/null "$BASE/healthz" 2>/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "curves: the server exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
        sleep 0.01
    done
    START_MS=$(( $(now_ms) - t0 ))
    START_CPU_MS=$(cpu_ms)
}

# wrk_run SCRIPT SECONDS [wrk args]: prints "rps p50 p99 non2xx errors" (report.lua).
wrk_run() {
    local script="$1" seconds="$2"; shift 2
    local combined="$WORK/run.lua"
    cat "$script" > "$combined"
    grep -q "^function done" "$script" || cat "$LUA/report.lua" >> "$combined"
    taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --latency -s "$combined" "$@" | awk '$1 == "RESULT" {print $2, $3, $4, $5, $6}'
}

echo "gatehouse cost curves: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $BIN"

if [ -n "$CLIENT_COUNTS" ]; then
echo "clients,check_ms,check_cpu_ms,start_ms,start_cpu_ms,loaded_log_ms,rss_kib,rss_used_kib,reload_ms,reload_log_ms,reload_peak_kib,reload_after_kib,reload_non2xx,reload_errors,reload_requests_rps,cc_rps,cc_p50_ms,cc_p99_ms,cc_non2xx,cc_errors" > "$OUT/clients.csv"
for n in $CLIENT_COUNTS; do
    cfg="$WORK/gatehouse.toml"
    python3 "$CURVES/gen_config.py" "$n" "$cfg" --port "$PORT" --hash "$HASH"
    t0=$(now_ms)
    /usr/bin/time -f "%U %S" -o "$WORK/check.time" "$BIN" check "$cfg" >/dev/null 2>"$WORK/check.log" || { cat "$WORK/check.log" >&2; exit 1; }
    check_ms=$(( $(now_ms) - t0 ))
    check_cpu_ms=$(awk '{print int(($1 + $2) * 1000)}' "$WORK/check.time")
    t_exec=$(now_ms)
    start_server "$cfg"
    loaded=$(log_ms "configuration loaded")
    loaded_ms=""
    [ -n "$loaded" ] && loaded_ms=$(( loaded - t_exec ))
    rss=$(status_kib VmRSS)
    mid=$(( n / 2 ))
    auth="Basic $(printf 'svc-%d:bench-secret' "$mid" | base64 -w0)"
    curl -sf -H "Authorization: $auth" -d grant_type=client_credentials "$BASE/token" >/dev/null
    rss_used=$(status_kib VmRSS)

    # The reload, under client-credentials load.
    gen0=$(generation)
    AUTH="$auth" wrk_run "$CURVES/cc.lua" 12 "$BASE" > "$WORK/reload.wrk" &
    load=$!
    sleep 2
    echo 5 > "/proc/$SERVER_PID/clear_refs"   # resets VmHWM to the current RSS
    : > "$WORK/reload.mark"
    t0=$(now_ms)
    kill -HUP "$SERVER_PID"
    until [ "$(generation)" != "$gen0" ]; do sleep 0.01; done
    reload_ms=$(( $(now_ms) - t0 ))
    peak=$(status_kib VmHWM)
    wait "$load"
    sleep 2
    peak_after=$(status_kib VmHWM)
    [ "$peak_after" -gt "$peak" ] && peak=$peak_after
    after=$(status_kib VmRSS)
    hup=$(log_ms "SIGHUP: reloading")
    done_at=$(log_ms "config_reloaded")
    reload_log_ms=""
    [ -n "$hup" ] && [ -n "$done_at" ] && reload_log_ms=$(( done_at - hup ))
    read -r r_rps _ _ r_non2xx r_errors < "$WORK/reload.wrk"

    # The steady rate of one client in the middle of the list.
    read -r cc_rps cc_p50 cc_p99 cc_non2xx cc_errors <<<"$(AUTH="$auth" wrk_run "$CURVES/cc.lua" "$SECONDS_PER_RUN" "$BASE")"
    stop_server
    echo "$n,$check_ms,$check_cpu_ms,$START_MS,$START_CPU_MS,$loaded_ms,$rss,$rss_used,$reload_ms,$reload_log_ms,$peak,$after,$r_non2xx,$r_errors,$r_rps,$cc_rps,$cc_p50,$cc_p99,$cc_non2xx,$cc_errors" | tee -a "$OUT/clients.csv"
done
fi

VERIFIER="bench-verifier-0123456789-0123456789-0123456789"
CHALLENGE=$(printf %s "$VERIFIER" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=')
JAR="$WORK/cookies"
AUTHZ="$BASE/authorize?response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb&scope=openid%20offline_access&code_challenge=$CHALLENGE&code_challenge_method=S256"
# log_in: a session for the bench user in $SESSION (as bench/run.sh).
log_in() {
    rm -f "$JAR"
    local page csrf request
    page=$(curl -sf -c "$JAR" -b "$JAR" "$AUTHZ")
    csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
    request=$(printf '%s' "$page" | sed -n 's/.*name="request" value="\([^"]*\)".*/\1/p' | head -1)
    curl -sf -c "$JAR" -b "$JAR" -o /dev/null -d "csrf_token=$csrf&request=$request&username=bench&password=bench-secret" "$BASE/login"
    SESSION=$(awk '$6 == "gatehouse_session" {print $7}' "$JAR")
}
issued() {
    curl -sf "$BASE/metrics" | awk '$1 ~ /^gatehouse_tokens_issued_total\{/ && $1 ~ /grant="authorization_code"/ {s += $2} END {print s + 0}'
}
redis_used() { redis-cli -p "$REDIS_PORT" info memory | awk -F: '$1 == "used_memory" {print $2}' | tr -d '\r'; }

if [ -n "$STORES" ] && [ -n "$TOKEN_COUNTS" ]; then
echo "store,tokens,issued,refresh_entries,code_entries,rss_kib,rss_base_kib,redis_used,redis_base,redis_keys,fill_rps,flow_rps,flow_p50_ms,flow_p99_ms,flow_non2xx,redis_used_scanned" > "$OUT/tokens.csv"
for store in $STORES; do
    cfg="$WORK/gatehouse.toml"
    if [ "$store" = redis ]; then
        start_redis
        python3 "$CURVES/gen_config.py" 1000 "$cfg" --port "$PORT" --hash "$HASH" --code-ttl 1s --store "redis://127.0.0.1:$REDIS_PORT"
    else
        python3 "$CURVES/gen_config.py" 1000 "$cfg" --port "$PORT" --hash "$HASH" --code-ttl 1s
    fi
    start_server "$cfg"
    log_in
    [ -n "$SESSION" ] || { echo "curves: the login failed" >&2; exit 1; }
    # One flow first, so the one-time costs (the session's first code, allocator
    # arenas) are in the base.
    SESSION_COOKIE="gatehouse_session=$SESSION" CHALLENGE="$CHALLENGE" TARGET=64 \
        taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d5s -s "$CURVES/fill.lua" "$BASE" >/dev/null
    if [ "$store" = memory ]; then sleep 32; else sleep 3; fi
    rss_base=$(status_kib VmRSS)
    redis_base=""
    if [ "$store" = redis ]; then
        redis-cli -p "$REDIS_PORT" --scan >/dev/null
        redis_base=$(redis_used)
    fi
    counts="$TOKEN_COUNTS"
    [ "$store" = redis ] && counts="${CURVES_TOKENS_REDIS:-$TOKEN_COUNTS}"
    for count in $counts; do
        start_issued=$(issued)
        want=$(( count - start_issued ))
        fill_rps=""
        if [ "$want" -gt 0 ]; then
            t0=$(now_ms)
            SESSION_COOKIE="gatehouse_session=$SESSION" CHALLENGE="$CHALLENGE" TARGET="$want" \
                taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d3600s -s "$CURVES/fill.lua" "$BASE" > "$WORK/fill.wrk" &
            fill=$!
            while [ "$(issued)" -lt "$count" ]; do
                kill -0 "$fill" 2>/dev/null || break
                sleep 0.5
            done
            kill -INT "$fill" 2>/dev/null || true
            wait "$fill" 2>/dev/null || true
            fill_rps=$(( ($(issued) - start_issued) * 1000 / ($(now_ms) - t0) ))
        fi
        # The last codes expire (1 s); the memory store sweeps every 30 s.
        if [ "$store" = memory ]; then sleep 32; else sleep 3; fi
        total=$(issued)
        rss=$(status_kib VmRSS)
        refresh_entries=$(metric 'gatehouse_store_entries{kind="refresh_tokens"}')
        code_entries=$(metric 'gatehouse_store_entries{kind="codes"}')
        used=""; keys=""
        used_scanned=""
        if [ "$store" = redis ]; then
            used=$(redis_used); keys=$(redis-cli -p "$REDIS_PORT" dbsize)
            # Redis frees an expired key when it is touched or when its sampling finds
            # a quarter of a sample expired; used codes (a second each) can sit
            # expired far longer. SCAN touches every key, so what is left is what
            # lives: the tokens and the session.
            redis-cli -p "$REDIS_PORT" --scan >/dev/null
            used_scanned=$(redis_used)
        fi
        # The rate: the same flows (offline_access, so each adds a refresh token: the
        # next count starts from what this run left).
        read -r f_rps f_p50 f_p99 f_non2xx _ <<<"$(SESSION_COOKIE="gatehouse_session=$SESSION" CHALLENGE="$CHALLENGE" TARGET=0 wrk_run "$CURVES/fill.lua" "$SECONDS_PER_RUN" "$BASE")"
        echo "$store,$count,$total,$refresh_entries,$code_entries,$rss,$rss_base,$used,$redis_base,$keys,$fill_rps,$f_rps,$f_p50,$f_p99,$f_non2xx,$used_scanned" | tee -a "$OUT/tokens.csv"
    done
    stop_server
    stop_redis
done
fi

