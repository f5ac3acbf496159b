#!/usr/bin/env python3
"""Pools of single-use JWTs for bench/run.sh, one per line, signed ES256 with one
fresh P-256 key (python3-cryptography):

  gen_jwts.py assertion ISSUER CLIENT COUNT OUT JWKS_OUT
      private_key_jwt client assertions (RFC 7523) of CLIENT for ISSUER's token
      endpoint; the key's public JWK Set goes to JWKS_OUT as one TOML inline table,
      for the client's `jwks`.
  gen_jwts.py dpop HTU COUNT OUT
      DPoP proofs (RFC 9449) for POST HTU, the public key in each header.

Each JWT has its own jti and iat = now: run the scenario within a minute (the server
takes a proof at most 60 s old)."""
import base64
import json
import sys
import time
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(key, header: dict, claims: dict) -> str:
    signing_input = b64(json.dumps(header, separators=(",", ":")).encode()) + "." + b64(
        json.dumps(claims, separators=(",", ":")).encode())
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def public_jwk(key) -> dict:
    numbers = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big"))}


def main(argv):
    key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    if argv[1] == "assertion":
        issuer, client, count, out, jwks_out = argv[2], argv[3], int(argv[4]), argv[5], argv[6]
        jwk = dict(public_jwk(key), kid="bench-1")
        with open(jwks_out, "w") as f:
            members = ", ".join(f'{k} = "{v}"' for k, v in jwk.items())
            f.write("{ keys = [ { " + members + " } ] }\n")
        header = {"alg": "ES256", "typ": "JWT", "kid": "bench-1"}
        claims = {"iss": client, "sub": client, "aud": issuer, "iat": now, "exp": now + 120}
        with open(out, "w") as f:
            for _ in range(count):
                f.write(jwt(key, header, dict(claims, jti=str(uuid.uuid4()))) + "\n")
    elif argv[1] == "dpop":
        htu, count, out = argv[2], int(argv[3]), argv[4]
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key)}
        claims = {"htm": "POST", "htu": htu, "iat": now}
        with open(out, "w") as f:
            for _ in range(count):
                f.write(jwt(key, header, dict(claims, jti=str(uuid.uuid4()))) + "\n")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
