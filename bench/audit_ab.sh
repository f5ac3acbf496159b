#!/usr/bin/env bash
# What the audit log costs, in alternated rounds: one build, four servers at once, all
# pinned to CPU 1, each with scenario 1's client (client credentials, ES256):
#   beside   the default level, the log in the config file's directory (as bench/run.sh
#            writes it: the reloader watches that directory, so each batch is an event)
#   apart    the default level, the log in a directory of its own
#   devnull  the default level, the log thrown away (the lines formatted, not stored)
#   warn     RUST_LOG=warn: no audit line at all
# Then ROUNDS rounds in which wrk (CPU 0) drives each in turn for SECONDS (the order
# reversed in even rounds). Only one server is loaded at a time. Prints per server and
# round the requests/s and gatehouse's CPU time (user + system, /proc) a request, then
# per server the medians and how far each is below `warn`.
# Usage: bench/audit_ab.sh BIN [SECONDS] [CONNECTIONS]; ROUNDS=6 by default.
# Needs wrk, curl, taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:?usage: bench/audit_ab.sh BIN [SECONDS] [CONNECTIONS]}"
SECONDS_PER_RUN="${2:-6}"
CONNECTIONS="${3:-64}"
ROUNDS="${ROUNDS:-6}"
. bench/processes.sh

HASH=$(printf %s bench-secret | "$BIN" hash-secret)
"$BIN" keygen --algorithm ES256 --out "$WORK/es256.pem" 2>/dev/null
SCRIPT="$WORK/cc.lua"
cat bench/lua/client_credentials.lua bench/lua/report.lua > "$SCRIPT"
mkdir "$WORK/logs"

declare -A PID PORT
# start NAME PORT LOG [LEVEL]: a server whose config lives in $WORK/NAME, logging to LOG.
start() {
    local name="$1" port="$2" log="$3" level="${4:-}" dir="$WORK/$1"
    mkdir "$dir"
    cp "$WORK/es256.pem" "$dir/"
    {
        printf 'issuer = "http://127.0.0.1:%s"\n[server]\nbind = "127.0.0.1:%s"\n' "$port" "$port"
        printf '[[keys]]\nid = "es256"\nprivate_key_file = "es256.pem"\n'
        printf '[[clients]]\nid = "svc-0"\nsecret_hash = "%s"\ngrant_types = ["client_credentials"]\n' "$HASH"
    } > "$dir/gatehouse.toml"
    [ "$log" = beside ] && log="$dir/server.log"
    if [ -n "$level" ]; then
        RUST_LOG="$level" taskset -c 1 "$BIN" serve --config "$dir/gatehouse.toml" 2>"$log" &
    else
        env -u RUST_LOG taskset -c 1 "$BIN" serve --config "$dir/gatehouse.toml" 2>"$log" &
    fi
    PID[$name]=$!
    PIDS+=($!)
    PORT[$name]=$port
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    # The first request verifies the argon2 hash; the rounds then use the cached result.
    curl -sf -u svc-0:bench-secret -d grant_type=client_credentials "http://127.0.0.1:$port/token" >/dev/null
}
start beside 18311 beside
start apart 18312 "$WORK/logs/server.log"
start devnull 18313 /dev/null
start warn 18314 /dev/null warn

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
RESULTS="$WORK/results"
echo "audit_ab: $BIN, $(date -u +%Y-%m-%dT%H:%MZ), ${SECONDS_PER_RUN}s x $CONNECTIONS connections, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
    order="beside apart devnull warn"
    [ $((round % 2)) -eq 1 ] || order="warn devnull apart beside"
    for name in $order; do
        before=$(cpu "${PID[$name]}")
        line=$(CLIENTS=1 taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency -s "$SCRIPT" \
            "http://127.0.0.1:${PORT[$name]}" | grep '^RESULT')
        after=$(cpu "${PID[$name]}")
        read -r _ rate _ p99 non2xx errors <<<"$line"
        awk -v r="$round" -v n="$name" -v f="$rate" -v c=$((after - before)) -v t="$TICK" -v s="$SECONDS_PER_RUN" \
            -v p="$p99" -v x="$non2xx" -v e="$errors" \
            'BEGIN { printf "round %d  %-8s %6d req/s  p99 %5.2f ms  gatehouse CPU %5.2f us/req  non-2xx %s  errors %s\n",
                     r, n, f, p, c * 1e6 / (t * f * s), x, e }' | tee -a "$RESULTS"
    done
done
# Medians per server, and each against `warn` (the rate's shortfall, the CPU's excess).
awk '{ rate[$3] = rate[$3] " " $4; cpu[$3] = cpu[$3] " " $11 }
     function median(list,   a, n, i, j, t) {
         n = split(list, a, " ")
         for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
         return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
     }
     END {
         wr = median(rate["warn"]); wc = median(cpu["warn"])
         split("beside apart devnull warn", names, " ")
         for (k = 1; k <= 4; k++) {
             n = names[k]; r = median(rate[n]); c = median(cpu[n])
             printf "median    %-8s %6d req/s (%+.1f%% against warn)  CPU %5.2f us/req (%+.1f%%)\n",
                 n, r, 100 * (r - wr) / wr, c, 100 * (c - wc) / wc
         }
     }' "$RESULTS"
