#!/usr/bin/env bash
# Load benchmark of the release binary as a user runs it: default log level (info, so
# every audit event is written), the log going to a file in a directory of its own;
# gatehouse pinned to CPU 1, wrk pinned to CPU 0, 64 connections, SECONDS per scenario
# (default 10). Scenarios 1 and 6 run a second time with RUST_LOG=warn, so the cost of
# the audit log stays visible.
# Prints one line per scenario:
#   scenario  requests/s  p50 ms  p99 ms  non-2xx/3xx  socket-errors  [redis CPU]
# (scenarios 9-11 end with Redis's CPU time, user + system, per request: per flow in 9)
# Usage: bench/run.sh [SECONDS] [CONNECTIONS]; BENCH_ONLY="1 7" runs only those scenarios;
# BENCH_BIN=path runs that binary instead of building this checkout.
# Scenarios 9-11 repeat 4-6 with [store] url = redis://... (a redis-server of the
# script's own on CPU 0, beside wrk), and 12 stops and restarts that Redis under load.
# Scenarios 13-15 repeat 4-6 with the embedded file store ([store] url = "file:...";
# every security-relevant write fsynced before the answer, so the disk counts).
# Scenarios 16-18 are scenario 1 through the other issues' hot paths, side by side with
# it: a token for one resource (RFC 8707), private_key_jwt client assertions and DPoP
# proofs (single-use JWTs from bench/gen_jwts.py, python3-cryptography).
# Scenario ref (issue 28, "the limit"): bench/reference, a bare actix-web handler that
# answers POST /token with one ES256 JWT and does nothing else, pinned to CPU 1 like
# gatehouse; wrk runs scenario 1's script against it and against gatehouse in turn
# (reference, gatehouse, reference, gatehouse) and the ratio of the means is printed.
# BENCH_REF_BIN=path runs that reference binary instead of building bench/reference.
# Needs wrk (Debian: apt-get install wrk), curl, openssl, taskset (util-linux); 9-12
# redis-server and redis-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
CONNECTIONS="${2:-64}"
PORT=18181
BASE="http://127.0.0.1:$PORT"
# BENCH_BIN runs another build (an older commit's, to compare) instead of building this one.
BIN="${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/gatehouse}"
LUA=bench/lua

for tool in wrk curl openssl taskset; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
[ -n "${BENCH_BIN:-}" ] || cargo build --release --locked --quiet

WORK=$(mktemp -d)
SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    SERVER_PID=""
}
REDIS_PORT=18182
REDIS_PID=""
stop_redis() {
    if [ -n "$REDIS_PID" ]; then kill -9 "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
    REDIS_PID=""
}
# start_redis: an empty redis-server on CPU 0, nothing persisted.
start_redis() {
    taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
    REDIS_PID=$!
    for _ in $(seq 1 100); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "bench: redis-server did not start" >&2; exit 1
}
REF_PID=""
cleanup() {
    stop_server; stop_redis
    if [ -n "$REF_PID" ]; then kill "$REF_PID" 2>/dev/null || true; wait "$REF_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# A step that fails ends the run (set -e): say which, rather than stopping silently.
trap 'echo "bench: stopped at line $LINENO: $BASH_COMMAND (exit $?)" >&2' ERR

# The server's log goes to a directory of its own, as it does where gatehouse runs
# (journald, a container's log, /var/log): a log beside the config file would wake the
# reloader, which watches that directory, at every batch (bench/audit_ab.sh measures it).
mkdir "$WORK/logs"
"$BIN" keygen --algorithm ES256 --out "$WORK/es256.pem" 2>/dev/null
"$BIN" keygen --algorithm EdDSA --out "$WORK/eddsa.pem" 2>/dev/null
HASH=$(printf %s bench-secret | "$BIN" hash-secret)
export BENCH_SECRET=bench-secret

# write_config ACTIVE_KEY: the bench config, signing with es256 or eddsa.
write_config() {
    local active="$1"
    {
        echo "issuer = \"$BASE\""
        echo "[server]"
        echo "bind = \"127.0.0.1:$PORT\""
        if [ -n "${STORE_URL:-}" ]; then
            echo "[store]"
            echo "url = \"$STORE_URL\""
        fi
        echo "[limits]"
        echo "pages_per_second = 1000000"
        echo "pages_burst = 1000000"
        echo "[[keys]]"
        echo "id = \"es256\""
        echo "private_key_file = \"es256.pem\""
        [ "$active" = es256 ] && echo "active = true"
        echo "[[keys]]"
        echo "id = \"eddsa\""
        echo "algorithm = \"EdDSA\""
        echo "private_key_file = \"eddsa.pem\""
        [ "$active" = eddsa ] && echo "active = true"
        # svc-0 has an argon2 hash (verified once, then cached); the other 999 take
        # their secret from the environment, as env and secret_file secrets do.
        echo "[[clients]]"
        echo "id = \"svc-0\""
        echo "secret_hash = \"$HASH\""
        echo "grant_types = [\"client_credentials\"]"
        for i in $(seq 1 999); do
            printf '[[clients]]\nid = "svc-%d"\nsecret = "${env:BENCH_SECRET}"\ngrant_types = ["client_credentials"]\n' "$i"
        done
        echo "[[clients]]"
        echo "id = \"gateway\""
        echo "secret_hash = \"$HASH\""
        echo "grant_types = [\"client_credentials\"]"
        echo "introspect = true"
        echo "[[clients]]"
        echo "id = \"spa\""
        echo "public = true"
        echo "first_party = true"
        echo "redirect_uris = [\"https://spa.example.com/cb\"]"
        echo "scopes = [\"openid\", \"offline_access\"]"
        echo "[[users]]"
        echo "username = \"bench\""
        echo "password_hash = \"$HASH\""
        # 16: tokens for one API (RFC 8707).
        echo "[[scopes]]"
        echo "name = \"api:read\""
        echo "[[resources]]"
        echo "id = \"$RESOURCE\""
        echo "scopes = [\"api:read\"]"
        echo "[[clients]]"
        echo "id = \"svc-res\""
        echo "secret_hash = \"$HASH\""
        echo "grant_types = [\"client_credentials\"]"
        echo "scopes = [\"api:read\"]"
        echo "resources = [\"$RESOURCE\"]"
        # 17: private_key_jwt, its key made with the assertion pool (gen_jwts.py).
        if [ -f "$WORK/pkj.jwks" ]; then
            echo "[[clients]]"
            echo "id = \"svc-pkj\""
            echo "jwks = $(cat "$WORK/pkj.jwks")"
            echo "grant_types = [\"client_credentials\"]"
        fi
    } > "$WORK/gatehouse.toml"
}

# start_server ACTIVE_KEY [RUST_LOG]: without a level, the server's default (info).
start_server() {
    write_config "$1"
    if [ -n "${2:-}" ]; then
        RUST_LOG="$2" taskset -c 1 "$BIN" serve --config "$WORK/gatehouse.toml" 2>"$WORK/logs/server.log" &
    else
        env -u RUST_LOG taskset -c 1 "$BIN" serve --config "$WORK/gatehouse.toml" 2>"$WORK/logs/server.log" &
    fi
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -sf "$BASE/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench: the server did not start:" >&2; cat "$WORK/logs/server.log" >&2; exit 1
}

# redis_cpu: the bench Redis's CPU seconds so far (user + system); nothing while no
# Redis runs.
redis_cpu() {
    [ -n "$REDIS_PID" ] || return 0
    redis-cli -p "$REDIS_PORT" info cpu | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.6f", s}'
}

# run NAME SCRIPT [wrk args...]: one measured run; scripts without their own done()
# get the shared reporter appended. While the bench Redis runs, the line ends with
# Redis's CPU time per counted request (per flow for the code flows).
run() {
    local name="$1" script="$2"; shift 2
    local combined="$WORK/${name//[^A-Za-z0-9]/_}.lua"
    cat "$script" > "$combined"
    grep -q "^function done" "$script" || cat "$LUA/report.lua" >> "$combined"
    local line cpu_before redis=""
    cpu_before=$(redis_cpu)
    line=$(taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency -s "$combined" "$@" | grep '^RESULT' || true)
    read -r _ rps p50 p99 non2xx errors <<<"$line"
    if [ -n "$cpu_before" ]; then
        redis=$(awk -v a="$cpu_before" -v b="$(redis_cpu)" -v r="$rps" -v s="$SECONDS_PER_RUN" \
            'BEGIN { if (r > 0) printf "  redis CPU %.1f us each", (b - a) * 1e6 / (r * s) }')
    fi
    printf '%-34s %8s req/s  p50 %6s ms  p99 %6s ms  non-2xx %s  errors %s%s\n' "$name" "$rps" "$p50" "$p99" "$non2xx" "$errors" "$redis"
}

want() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }

basic() { printf '%s' "$1:bench-secret" | base64 -w0; }
RESOURCE="https://api.example.com/"
# Single-use JWTs for 17 and 18: enough for SECONDS_PER_RUN at 12,000 requests/s.
POOL_SIZE=$((SECONDS_PER_RUN * 12000))
if want 17; then
    python3 bench/gen_jwts.py assertion "$BASE" svc-pkj "$POOL_SIZE" "$WORK/assertions" "$WORK/pkj.jwks"
fi

echo "gatehouse benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${SECONDS_PER_RUN}s x ${CONNECTIONS} connections, server on CPU 1, wrk on CPU 0"

# 1. Client credentials, client_secret_basic, ES256 then EdDSA.
start_server es256
curl -sf -u svc-0:bench-secret -d grant_type=client_credentials "$BASE/token" >/dev/null  # pays the argon2 hash once
want 1 && CLIENTS=1 run "1 client_credentials ES256" "$LUA/client_credentials.lua" "$BASE"
# 2. 1,000 distinct clients, round-robin.
want 2 && CLIENTS=1000 run "2 client_credentials 1000 clients" "$LUA/client_credentials.lua" "$BASE"
# 3. JWKS and discovery.
want 3 && run "3 GET /jwks" "$LUA/report.lua" "$BASE/jwks"
want 3 && run "3 GET /.well-known/openid-config" "$LUA/report.lua" "$BASE/.well-known/openid-configuration"
# 16-18. Scenario 1's request through the other open issues' hot paths, beside it.
# (svc-res's secret hashed once first, as svc-0's above.)
want 16 && curl -sf -u svc-res:bench-secret -d grant_type=client_credentials "$BASE/token" >/dev/null
want 16 && BASIC="Basic $(basic svc-res)" RESOURCE="$RESOURCE" run "16 client_credentials, one resource" "$LUA/resource.lua" "$BASE"
want 17 && POOL_FILE="$WORK/assertions" POOL_MODE=assertion POOL_CLIENT=svc-pkj run "17 client_credentials, private_key_jwt" "$LUA/pool.lua" "$BASE"
if want 18; then
    # Proofs are good for 60 s: made just before the run.
    python3 bench/gen_jwts.py dpop "$BASE/token" "$POOL_SIZE" "$WORK/proofs"
    POOL_FILE="$WORK/proofs" POOL_MODE=dpop BASIC="Basic $(basic svc-0)" run "18 client_credentials, DPoP proof" "$LUA/pool.lua" "$BASE"
fi
# introspection NAME: scenario 6 (or 11) against the running server.
introspection() {
    TOKEN=$(curl -sf -u svc-0:bench-secret -d grant_type=client_credentials "$BASE/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
    curl -sf -u gateway:bench-secret --data-urlencode "token=$TOKEN" "$BASE/introspect" >/dev/null
    TOKEN="$TOKEN" GATEWAY_AUTH="Basic $(basic gateway)" run "$1" "$LUA/introspect.lua" "$BASE"
}

VERIFIER="bench-verifier-0123456789-0123456789-0123456789"
CHALLENGE=$(printf %s "$VERIFIER" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=')
JAR="$WORK/cookies"
AUTHZ_PATH="/authorize?response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb&scope=openid%20offline_access&code_challenge=$CHALLENGE&code_challenge_method=S256"
AUTHZ="$BASE$AUTHZ_PATH"

# log_in: a session for the bench user in $JAR and $SESSION.
log_in() {
    rm -f "$JAR"
    PAGE=$(curl -sf -c "$JAR" -b "$JAR" "$AUTHZ")
    CSRF=$(printf '%s' "$PAGE" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
    REQUEST=$(printf '%s' "$PAGE" | sed -n 's/.*name="request" value="\([^"]*\)".*/\1/p' | head -1)
    curl -sf -c "$JAR" -b "$JAR" -o /dev/null -d "csrf_token=$CSRF&request=$REQUEST&username=bench&password=bench-secret" "$BASE/login"
    SESSION=$(awk '$6 == "gatehouse_session" {print $7}' "$JAR")
}

# flows CODE_NAME REFRESH_NAME: scenarios 4 and 5 (or 9 and 10); either name empty
# skips that one.
flows() {
    log_in
    [ -n "$1" ] && SESSION_COOKIE="gatehouse_session=$SESSION" CHALLENGE="$CHALLENGE" run "$1" "$LUA/code_flow.lua" "$BASE"
    [ -n "$2" ] || return 0
    # A pool of refresh tokens (two per connection).
    : > "$WORK/refresh"
    for _ in $(seq 1 $((CONNECTIONS * 2))); do
        CODE=$(curl -s -o /dev/null -w '%{redirect_url}' -b "$JAR" "$AUTHZ" | sed -n 's/.*code=\([^&]*\).*/\1/p')
        ISSUED=$(curl -sf -d "grant_type=authorization_code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb&code_verifier=$VERIFIER&code=$CODE" "$BASE/token")
        echo "$ISSUED" | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p' >> "$WORK/refresh"
    done
    REFRESH_FILE="$WORK/refresh" run "$2" "$LUA/refresh.lua" "$BASE"
}

# 6. Introspection of a live token.
want 6 && introspection "6 introspection"

# 4. Authorization-code flows for a user with a session.
# 5. Refresh-token rotation, from a pool of refresh tokens (two per connection).
if want 4 || want 5; then
    flows "$(want 4 && echo "4 code flows (flows/s)")" "$(want 5 && echo "5 refresh rotation")"
fi

# 7. Client credentials while the config file is rewritten every 100 ms.
if want 7; then
generation() { curl -sf "$BASE/metrics" | awk '$1 == "gatehouse_config_generation" {print $2; exit}'; }
BEFORE=$(generation)
( n=0; while :; do n=$((n + 1)); cp "$WORK/gatehouse.toml" "$WORK/next.toml"; echo "# rewrite $n" >> "$WORK/next.toml"; mv "$WORK/next.toml" "$WORK/gatehouse.toml"; sleep 0.1; done ) &
REWRITER=$!
CLIENTS=1 run "7 client_credentials under reloads" "$LUA/client_credentials.lua" "$BASE"
kill "$REWRITER"; wait "$REWRITER" 2>/dev/null || true
echo "   config generations applied during 7: $(( $(generation) - BEFORE ))"
fi
stop_server

if want 1; then
    start_server eddsa
    curl -sf -u svc-0:bench-secret -d grant_type=client_credentials "$BASE/token" >/dev/null
    CLIENTS=1 run "1 client_credentials EdDSA" "$LUA/client_credentials.lua" "$BASE"
    stop_server
fi

# The same server with its audit log off, for comparison.
if want 1 || want 6; then
    start_server es256 warn
    curl -sf -u svc-0:bench-secret -d grant_type=client_credentials "$BASE/token" >/dev/null
    want 1 && CLIENTS=1 run "1 client_credentials ES256 (warn)" "$LUA/client_credentials.lua" "$BASE"
    want 6 && introspection "6 introspection (warn)"
    stop_server
fi

# 9-11. Scenarios 4-6 with the Redis store (default settings otherwise).
if want 9 || want 10 || want 11 || want 12; then
    start_redis
    STORE_URL="redis://127.0.0.1:$REDIS_PORT" start_server es256
    curl -sf -u svc-0:bench-secret -d grant_type=client_credentials "$BASE/token" >/dev/null
    if want 9 || want 10; then
        flows "$(want 9 && echo "9 code flows, Redis (flows/s)")" "$(want 10 && echo "10 refresh rotation, Redis")"
    fi
    want 11 && introspection "11 introspection, Redis"
    echo "   redis keys after 9-11: $(redis-cli -p "$REDIS_PORT" dbsize), used_memory $(redis-cli -p "$REDIS_PORT" info memory | awk -F: '$1 == "used_memory_human" {print $2}' | tr -d '\r')"
fi

# 12. Redis stopped (SIGKILL) 3 s into a 9 s run and started again (empty) 3 s later,
# under three loads at once (16 connections each): client credentials, introspection,
# and GET /authorize with a session. Prints the answers of each by status.
if want 12; then
    log_in
    TOKEN=$(curl -sf -u svc-0:bench-secret -d grant_type=client_credentials "$BASE/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
    LOADS=()
    for kind in cc introspect authorize; do
        REQUEST=$kind TOKEN="$TOKEN" GATEWAY_AUTH="Basic $(basic gateway)" AUTHZ_PATH="$AUTHZ_PATH" \
            SESSION_COOKIE="gatehouse_session=$SESSION" \
            taskset -c 0 wrk -t1 -c16 -d9s --latency -s "$LUA/statuses.lua" "$BASE" > "$WORK/outage-$kind" &
        LOADS+=($!)
    done
    sleep 3; stop_redis
    sleep 3; start_redis
    wait "${LOADS[@]}"
    for kind in cc introspect authorize; do
        printf '12 %-10s through the outage: %s\n' "$kind" "$(grep '^STATUSES' "$WORK/outage-$kind" | cut -d' ' -f2-)"
    done
    curl -s "$BASE/readyz"; echo
fi
[ -z "$SERVER_PID" ] || stop_server
stop_redis

# 13-15. Scenarios 4-6 with the embedded file store ([store] url = "file:..."), the
# file in the work directory (BENCH_FILE_DIR=dir puts it on another disk).
if want 13 || want 14 || want 15; then
    STATE="${BENCH_FILE_DIR:-$WORK}/bench-state.redb"
    rm -f "$STATE"
    STORE_URL="file:$STATE" start_server es256
    curl -sf -u svc-0:bench-secret -d grant_type=client_credentials "$BASE/token" >/dev/null
    if want 13 || want 14; then
        flows "$(want 13 && echo "13 code flows, file (flows/s)")" "$(want 14 && echo "14 refresh rotation, file")"
    fi
    want 15 && introspection "15 introspection, file"
    stop_server
    echo "   file store after 13-15: $(du -h "$STATE" | cut -f1)"
    rm -f "$STATE"
fi

# ref. Client credentials against the reference server and against gatehouse, in turn.
if want ref; then
    REF_BIN="${BENCH_REF_BIN:-${CARGO_TARGET_DIR:-bench/reference/target}/release/gatehouse-reference}"
    [ -n "${BENCH_REF_BIN:-}" ] || cargo build --release --locked --quiet --manifest-path bench/reference/Cargo.toml
    REF_BASE="http://127.0.0.1:18183"
    REFERENCE_BIND=127.0.0.1:18183 taskset -c 1 "$REF_BIN" >"$WORK/reference.log" 2>&1 &
    REF_PID=$!
    for _ in $(seq 1 100); do
        curl -sf -u svc-0:bench-secret -d grant_type=client_credentials "$REF_BASE/token" >/dev/null 2>&1 && break
        sleep 0.1
    done
    start_server es256
    curl -sf -u svc-0:bench-secret -d grant_type=client_credentials "$BASE/token" >/dev/null
    rate() { sed -n 's/.* \([0-9][0-9]*\) req\/s .*/\1/p'; }
    REF_SUM=0; GH_SUM=0
    for round in 1 2; do
        line=$(CLIENTS=1 run "ref reference, round $round" "$LUA/client_credentials.lua" "$REF_BASE"); echo "$line"
        REF_SUM=$((REF_SUM + $(rate <<<"$line")))
        line=$(CLIENTS=1 run "ref gatehouse ES256, round $round" "$LUA/client_credentials.lua" "$BASE"); echo "$line"
        GH_SUM=$((GH_SUM + $(rate <<<"$line")))
    done
    stop_server
    kill "$REF_PID" 2>/dev/null || true; wait "$REF_PID" 2>/dev/null || true; REF_PID=""
    awk -v g="$GH_SUM" -v r="$REF_SUM" 'BEGIN { printf "client credentials / reference: %.2f (gatehouse %d/s, reference %d/s)\n", g / r, g / 2, r / 2 }'
fi
