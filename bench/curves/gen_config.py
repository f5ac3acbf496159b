#!/usr/bin/env python3
"""Writes a gatehouse config with N confidential clients, for the cost curves.

Usage: gen_config.py N OUT [--port PORT] [--hash PHC] [--store URL] [--user-hash PHC]
                      [--key FILE] [--code-ttl DURATION] [--pending-total N]

Each client svc-I (I = 0 .. N-1) has one argon2 secret_hash (the same PHC string for
all: hashing N secrets would take N x 30 ms and measure nothing), the grant
client_credentials, one scope (bench:read) and one audience. The hash comes from
--hash, or from $CURVES_HASH, or is computed once with `gatehouse hash-secret` (the
binary in $GATEHOUSE_BIN, default target/release/gatehouse) for the secret
"bench-secret". A public first-party SPA and one user are added for the token-side
runs (code flows with offline_access), with the same hash as the user's password.
"""

import argparse
import os
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of confidential clients")
    parser.add_argument("out", help="the config file to write")
    parser.add_argument("--port", type=int, default=18184)
    parser.add_argument("--hash", default=os.environ.get("CURVES_HASH"))
    parser.add_argument("--store", default=None, help='[store] url, e.g. "redis://127.0.0.1:18185"')
    parser.add_argument("--user-hash", default=None, help="the user's password_hash (default: --hash)")
    parser.add_argument("--key", default="es256.pem", help="private_key_file of the one ES256 key")
    parser.add_argument("--code-ttl", default=None, help='[tokens] authorization_code_ttl, e.g. "1s"')
    parser.add_argument("--pending-total", type=int, default=None, help="[limits] pending_total")
    args = parser.parse_args()

    phc = args.hash
    if not phc:
        binary = os.environ.get("GATEHOUSE_BIN", "target/release/gatehouse")
        phc = subprocess.run(
            [binary, "hash-secret"], input="bench-secret", capture_output=True, text=True, check=True
        ).stdout.strip()
    user_hash = args.user_hash or phc

    base = f"http://127.0.0.1:{args.port}"
    out = [
        f'issuer = "{base}"',
        "[server]",
        f'bind = "127.0.0.1:{args.port}"',
    ]
    if args.store:
        out += ["[store]", f'url = "{args.store}"']
    if args.code_ttl:
        out += ["[tokens]", f'authorization_code_ttl = "{args.code_ttl}"']
    out += [
        "[limits]",
        "pages_per_second = 1000000",
        "pages_burst = 1000000",
    ]
    if args.pending_total:
        out += [f"pending_total = {args.pending_total}"]
    out += [
        "[[keys]]",
        'id = "es256"',
        f'private_key_file = "{args.key}"',
        "[[scopes]]",
        'name = "bench:read"',
        'description = "read the bench API"',
        "[[clients]]",
        'id = "spa"',
        "public = true",
        "first_party = true",
        'redirect_uris = ["https://spa.example.com/cb"]',
        'scopes = ["openid", "offline_access"]',
        "[[users]]",
        'username = "bench"',
        f'password_hash = "{user_hash}"',
        "",
    ]
    client = (
        '[[clients]]\nid = "svc-{i}"\nsecret_hash = "' + phc + '"\n'
        'grant_types = ["client_credentials"]\nscopes = ["bench:read"]\n'
        'audience = ["https://api-{i}.example.com"]\n'
    )
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out))
        for i in range(args.n):
            f.write(client.replace("{i}", str(i)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
