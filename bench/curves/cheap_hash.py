#!/usr/bin/env python3
"""Prints an argon2id PHC string of SECRET at the lowest cost (m=8 KiB, t=1, p=1).

Usage: cheap_hash.py SECRET

For the cost curves only: a user whose password verifies in microseconds, so that
thousands of logins (one session each) take seconds instead of the minutes the
default cost (m=19 MiB, t=2) would. Never for a real config. Pure Python (RFC 9106,
one lane), since the binary hashes only at the default cost; gatehouse accepts any
valid argon2 parameters.
"""

import base64
import hashlib
import os
import struct
import sys

MASK = (1 << 64) - 1


def le32(n):
    return struct.pack("<I", n)


def blake2b(data, size=64):
    return hashlib.blake2b(data, digest_size=size).digest()


def h_prime(data, size):
    """H' of RFC 9106 3.3: BLAKE2b stretched to `size` bytes."""
    if size <= 64:
        return blake2b(le32(size) + data, size)
    r = (size + 31) // 32 - 2
    v = blake2b(le32(size) + data)
    out = v[:32]
    for _ in range(r - 1):
        v = blake2b(v)
        out += v[:32]
    out += blake2b(v, size - 32 * r)
    return out


def rotr(x, n):
    return ((x >> n) | (x << (64 - n))) & MASK


def gb(v, a, b, c, d):
    def f(x, y):
        return (x + y + 2 * (x & 0xFFFFFFFF) * (y & 0xFFFFFFFF)) & MASK

    v[a] = f(v[a], v[b])
    v[d] = rotr(v[d] ^ v[a], 32)
    v[c] = f(v[c], v[d])
    v[b] = rotr(v[b] ^ v[c], 24)
    v[a] = f(v[a], v[b])
    v[d] = rotr(v[d] ^ v[a], 16)
    v[c] = f(v[c], v[d])
    v[b] = rotr(v[b] ^ v[c], 63)


def permute(v, idx):
    gb(v, idx[0], idx[4], idx[8], idx[12])
    gb(v, idx[1], idx[5], idx[9], idx[13])
    gb(v, idx[2], idx[6], idx[10], idx[14])
    gb(v, idx[3], idx[7], idx[11], idx[15])
    gb(v, idx[0], idx[5], idx[10], idx[15])
    gb(v, idx[1], idx[6], idx[11], idx[12])
    gb(v, idx[2], idx[7], idx[8], idx[13])
    gb(v, idx[3], idx[4], idx[9], idx[14])


def compress(x, y, old=None):
    """G(X, Y) of RFC 9106 3.5, XORed into `old` when given (passes after the first)."""
    r = [a ^ b for a, b in zip(x, y)]
    q = list(r)
    for i in range(8):
        permute(q, [16 * i + j for j in range(16)])
    for i in range(8):
        permute(q, [2 * i + 16 * k + e for k in range(8) for e in (0, 1)])
    out = [a ^ b for a, b in zip(q, r)]
    if old is not None:
        out = [a ^ b for a, b in zip(out, old)]
    return out


def words(block):
    return list(struct.unpack("<128Q", block))


def argon2id(password, salt, m=8, t=1, tag=32):
    p, y, version, sl = 1, 2, 0x13, 4
    h0 = blake2b(
        le32(p) + le32(tag) + le32(m) + le32(t) + le32(version) + le32(y)
        + le32(len(password)) + password + le32(len(salt)) + salt + le32(0) + le32(0)
    )
    blocks = 4 * p * (m // (4 * p))
    q = blocks // p
    seg = q // sl
    b = [None] * q
    b[0] = words(h_prime(h0 + le32(0) + le32(0), 1024))
    b[1] = words(h_prime(h0 + le32(1) + le32(0), 1024))
    zero = [0] * 128
    for r in range(t):
        for s in range(sl):
            independent = r == 0 and s < sl // 2
            addresses, counter = None, 0
            start = 2 if r == 0 and s == 0 else 0
            if independent and start == 2:
                counter += 1
                inp = [r, 0, s, blocks, t, y, counter] + [0] * 121
                addresses = compress(zero, compress(zero, inp))
            for i in range(start, seg):
                j = s * seg + i
                prev = j - 1 if j > 0 else q - 1
                if independent:
                    if i % 128 == 0:
                        counter += 1
                        inp = [r, 0, s, blocks, t, y, counter] + [0] * 121
                        addresses = compress(zero, compress(zero, inp))
                    rand = addresses[i % 128]
                else:
                    rand = b[prev][0]
                j1 = rand & 0xFFFFFFFF
                if r == 0:
                    area = s * seg + i - 1
                    begin = 0
                else:
                    area = q - seg + i - 1
                    begin = 0 if s == sl - 1 else (s + 1) * seg
                x = (j1 * j1) >> 32
                rel = area - 1 - ((area * x) >> 32)
                ref = (begin + rel) % q
                b[j] = compress(b[prev], b[ref], b[j] if r > 0 else None)
    final = struct.pack("<128Q", *b[q - 1])
    return h_prime(final, tag)


def phc(secret, salt=None, m=8, t=1):
    salt = salt or os.urandom(16)
    digest = argon2id(secret.encode(), salt, m, t)
    b64 = lambda d: base64.b64encode(d).decode().rstrip("=")  # noqa: E731
    return f"$argon2id$v=19$m={m},t={t},p=1${b64(salt)}${b64(digest)}"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(phc(sys.argv[1]))
