#!/usr/bin/env python3
"""Independent implementation of the hashed-ngram-v2 spec (index/embedder.cpp header) for
texts whose words are their own English stems, and whose stop words are among STOP. Prints the expected
vector that tests/index/embedder_test.cpp (Embedder.Golden) compares against.

    python3 tests/index/embedder_golden.py "Hello, world" 16
"""
import math
import re
import sys

M = (1 << 64) - 1
SEED_WORD, SEED_BIGRAM, SEED_CHAR = 0x8F14C2A1E9B3D507, 0x2D6A91F3C47E0B58, 0xC3B1E5F70A29D864
SEED_SCATTER = 0x5BD1E9955BD1E995
KIND_WEIGHT = {0: 1.0, 1: 0.7, 2: 0.25}
STOP = {b"the", b"and", b"of", b"a"}


def mix64(x):
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M
    x ^= x >> 31
    return x


def hash_bytes(b, seed):
    h = 0xCBF29CE484222325 ^ seed
    for c in b:
        h ^= c
        h = (h * 0x100000001B3) & M
    return mix64(h ^ len(b))


def with_kind(h, kind):
    return (h & ~3 & M) | kind


def embed(text, dim):
    words = [w for w in re.findall(rb"[a-z0-9\x80-\xff]+", text.lower().encode()) if w not in STOP]
    counts = {}
    prev = None
    for w in words:
        h = hash_bytes(w, SEED_WORD)
        counts[with_kind(h, 0)] = counts.get(with_kind(h, 0), 0) + 1
        if prev is not None:
            rot = ((h << 17) | (h >> 47)) & M
            b = with_kind(mix64(prev ^ rot ^ SEED_BIGRAM), 1)
            counts[b] = counts.get(b, 0) + 1
        prev = h
        g = "<" + w.decode() + ">"
        for n in (3, 4, 5):
            for s in range(len(g) - n + 1):
                k = with_kind(hash_bytes(g[s:s + n].encode(), SEED_CHAR), 2)
                counts[k] = counts.get(k, 0) + 1
    v = [0.0] * dim
    for h, tf in counts.items():
        w = KIND_WEIGHT[h & 3] * (1 + math.log(tf))
        for j in range(4):
            x = mix64((h + SEED_SCATTER * (j + 1)) & M)
            d = ((x >> 32) * dim) >> 32
            v[d] += w if x & 1 else -w
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm else v


if __name__ == "__main__":
    text = sys.argv[1] if len(sys.argv) > 1 else "Hello, world"
    dim = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    print(", ".join("%.9gf" % x for x in embed(text, dim)))
