#!/usr/bin/env bash
# Resident memory of the release binary after 1,000 failed logins (each one argon2id
# run at the default m=19 MiB), sent 16 at a time. Usage:
#   bench/argon2_rss.sh [path/to/gatehouse]   (default: target/release/gatehouse)
# Prints the RSS after start-up, after one failed login, and after 1,000.
set -euo pipefail
bin=${1:-${CARGO_TARGET_DIR:-target}/release/gatehouse}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=18$((RANDOM % 900 + 100))
hash=$(printf 'alice-password' | "$bin" hash-secret)
cat > "$work/gatehouse.toml" <<TOML
issuer = "http://127.0.0.1:$port"
[server]
bind = "127.0.0.1:$port"
[limits]
login_max_failures = 1000000
pages_per_second = 100000
pages_burst = 100000
[[clients]]
id = "spa"
public = true
first_party = true
redirect_uris = ["https://spa.example.com/cb"]
[[users]]
username = "alice"
password_hash = "$hash"
TOML
"$bin" serve --config "$work/gatehouse.toml" 2>"$work/log" &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
echo "after start: $(rss) KiB"
page=$(curl -s -c "$work/jar" "http://127.0.0.1:$port/authorize?response_type=code&client_id=spa&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
field() { printf '%s' "$page" | sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | head -1; }
csrf=$(field csrf_token)
request=$(field request)
login() {
  curl -s -o /dev/null -w '%{http_code}\n' -b "$work/jar" \
    --data-urlencode "csrf_token=$csrf" --data-urlencode "request=$request" \
    --data-urlencode username=alice --data-urlencode password=wrong \
    "http://127.0.0.1:$port/login"
}
export -f login; export work csrf request port
login >/dev/null
echo "after 1 failed login: $(rss) KiB"
seq 1000 | xargs -P 16 -I{} bash -c login | sort | uniq -c | sed 's/^/  answers: /'
echo "after 1,000 failed logins: $(rss) KiB"
