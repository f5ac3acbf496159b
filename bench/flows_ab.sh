#!/usr/bin/env bash
# Two builds side by side on scenario 4's code flow, with the memory store and with
# Redis: four servers at once (A and B, each with memory and with Redis; the two Redis
# servers share one redis-server under different key prefixes), all pinned to CPU 1,
# each with a logged-in session, then ROUNDS rounds in which wrk (CPU 0) drives each in
# turn for SECONDS (A first in odd rounds, B first in even ones). Only one server is
# loaded at a time, so a round compares the four under the same machine. Prints per
# server and round the flows/s and gatehouse's CPU time (user + system, from /proc)
# per flow (for the Redis servers also redis-server's), then per round Redis's share
# of the memory store's rate for each build.
# Usage: bench/flows_ab.sh BIN_A BIN_B [SECONDS] [CONNECTIONS]; ROUNDS=6 by default.
# Needs wrk, curl, openssl, taskset, redis-server, redis-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
A="${1:?usage: bench/flows_ab.sh BIN_A BIN_B [SECONDS] [CONNECTIONS]}"
B="${2:?usage: bench/flows_ab.sh BIN_A BIN_B [SECONDS] [CONNECTIONS]}"
SECONDS_PER_RUN="${3:-6}"
CONNECTIONS="${4:-64}"
ROUNDS="${ROUNDS:-6}"
REDIS_PORT=18282
. bench/processes.sh

"$B" keygen --algorithm ES256 --out "$WORK/es256.pem" 2>/dev/null
HASH=$(printf %s bench-secret | "$B" hash-secret)
VERIFIER="bench-verifier-0123456789-0123456789-0123456789"
CHALLENGE=$(printf %s "$VERIFIER" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=')
taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
REDIS_PID=$!
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

declare -A PID PORT SESSION
# start NAME BIN PORT PREFIX: a server (Redis under PREFIX, or memory when empty) with
# scenario 4's client and user, and a session for the user.
start() {
    local name="$1" bin="$2" port="$3" prefix="$4" base="http://127.0.0.1:$3"
    {
        echo "issuer = \"$base\""
        printf '[server]\nbind = "127.0.0.1:%s"\n' "$port"
        [ -z "$prefix" ] || printf '[store]\nurl = "redis://127.0.0.1:%s"\nkey_prefix = "%s:"\n' "$REDIS_PORT" "$prefix"
        printf '[limits]\npages_per_second = 1000000\npages_burst = 1000000\n'
        printf '[[keys]]\nid = "es256"\nprivate_key_file = "es256.pem"\n'
        printf '[[clients]]\nid = "spa"\npublic = true\nfirst_party = true\n'
        printf 'redirect_uris = ["https://spa.example.com/cb"]\nscopes = ["openid", "offline_access"]\n'
        printf '[[users]]\nusername = "bench"\npassword_hash = "%s"\n' "$HASH"
    } > "$WORK/$name.toml"
    env -u RUST_LOG taskset -c 1 "$bin" serve --config "$WORK/$name.toml" 2>"$WORK/$name.log" &
    PID[$name]=$!
    PIDS+=($!)
    PORT[$name]=$port
    for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    local jar="$WORK/$name.jar" page csrf request
    page=$(curl -sf -c "$jar" -b "$jar" "$base/authorize?response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb&scope=openid&code_challenge=$CHALLENGE&code_challenge_method=S256")
    csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
    request=$(printf '%s' "$page" | sed -n 's/.*name="request" value="\([^"]*\)".*/\1/p' | head -1)
    curl -sf -c "$jar" -b "$jar" -o /dev/null -d "csrf_token=$csrf&request=$request&username=bench&password=bench-secret" "$base/login"
    SESSION[$name]=$(awk '$6 == "gatehouse_session" {print $7}' "$jar")
}
start a-memory "$A" 18301 ""
start a-redis "$A" 18302 a
start b-memory "$B" 18303 ""
start b-redis "$B" 18304 b

# cpu PID: the process's CPU time so far, in clock ticks (user + system).
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
echo "flows_ab: A=$A B=$B, $(date -u +%Y-%m-%dT%H:%MZ), ${SECONDS_PER_RUN}s x $CONNECTIONS connections, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
    declare -A RATE=()
    # Odd rounds run A first, even rounds B first: what one run leaves behind (a
    # Redis holding its used codes until they expire) falls on each build alike.
    order="a-memory b-memory a-redis b-redis"
    [ $((round % 2)) -eq 1 ] || order="b-memory a-memory b-redis a-redis"
    for name in $order; do
        before=$(cpu "${PID[$name]}")
        redis_before=$(cpu "$REDIS_PID")
        line=$(SESSION_COOKIE="gatehouse_session=${SESSION[$name]}" CHALLENGE="$CHALLENGE" taskset -c 0 \
            wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -s bench/lua/code_flow.lua "http://127.0.0.1:${PORT[$name]}" | grep '^RESULT')
        after=$(cpu "${PID[$name]}")
        redis_after=$(cpu "$REDIS_PID")
        read -r _ rate _ _ non2xx errors <<<"$line"
        RATE[$name]=$rate
        redis_cpu=""
        case "$name" in *-redis) redis_cpu=$((redis_after - redis_before)) ;; esac
        awk -v r="$round" -v n="$name" -v f="$rate" -v c=$((after - before)) -v rc="$redis_cpu" -v t="$TICK" -v s="$SECONDS_PER_RUN" -v x="$non2xx" -v e="$errors" \
            'BEGIN { printf "round %d  %-9s %6d flows/s  gatehouse CPU %6.1f us/flow", r, n, f, c * 1e6 / (t * f * s)
                     if (rc != "") printf "  Redis CPU %5.1f us/flow", rc * 1e6 / (t * f * s)
                     printf "  non-2xx %s  errors %s\n", x, e }'
    done
    awk -v r="$round" -v am="${RATE[a-memory]}" -v ar="${RATE[a-redis]}" -v bm="${RATE[b-memory]}" -v br="${RATE[b-redis]}" \
        'BEGIN { printf "round %d  Redis of memory: A %.1f%%  B %.1f%%\n", r, 100 * ar / am, 100 * br / bm }'
done
