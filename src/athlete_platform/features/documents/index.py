"""The document index: a LanceDB table built from `feature_store.document_chunks`, with the
hybrid search the assistant calls.

The Delta table is the source of truth; this index is derived from it and can be rebuilt from it
at any time (`athlete-platform index rebuild`). The `embed-documents` step refreshes it
incrementally after each run (`pipeline.sync_index`), and `state.json` beside the LanceDB table
records which Delta version of the chunk table the index holds.

Search is hybrid: a vector search (cosine, exact: the corpus is small enough that no ANN index
is needed) and a full-text search (Lance's native BM25 index on title + text, stemmed English
with ASCII folding) each return their best candidates, and reciprocal-rank fusion merges the two
rankings. Both run with the same `where` filter applied inside the LanceDB query, before ranking
(prefilter): the athlete's own notes within [since, until], plus knowledge chunks when asked. So
another athlete's note is never a candidate, however well it matches.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from athlete_platform.errors import ConfigError, SetupError
from athlete_platform.features.documents.chunking import KNOWLEDGE, SESSION_NOTE

if TYPE_CHECKING:
    import pyarrow as pa

    from athlete_platform.config import Settings
    from athlete_platform.features.documents.embedder import Embedder

log = logging.getLogger(__name__)

TABLE = "document_chunks"
STATE_FILE = "state.json"
RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the weight of the very first ranks
HIT_COLUMNS = ["chunk_id", "source", "source_id", "athlete_id", "doc_date", "title", "text"]
MISSING_HINT = (
    "run `athlete-platform embed-documents` (embeds the notes and articles and builds the index) or, "
    "when feature_store.document_chunks is already filled, `athlete-platform index rebuild`"
)


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    source: str  # 'session_note' | 'knowledge'
    source_id: str
    athlete_id: str | None
    doc_date: date | None
    title: str | None
    text: str
    score: float  # higher is better (fused rank score)


@dataclass(frozen=True)
class IndexState:
    """What the index holds: the Delta chunk table, its version, and the embedding model."""

    table: str
    version: int
    model_name: str
    model_version: str
    rows: int


def index_schema(dim: int) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("source", pa.string()),
            ("source_id", pa.string()),
            ("chunk_index", pa.int32()),
            ("athlete_id", pa.string()),
            ("doc_date", pa.date32()),
            ("title", pa.string()),
            ("text", pa.string()),
            ("search_text", pa.string()),  # what the full-text index sees: title line + text
            ("content_sha256", pa.string()),
            ("model_name", pa.string()),
            ("model_version", pa.string()),
            ("vector", pa.list_(pa.float32(), dim)),
        ]
    )


def to_index_rows(chunks: pa.Table, dim: int) -> pa.Table:
    """Rows of `feature_store.document_chunks` (as Arrow, `embedding` a list of floats) -> index rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = index_schema(dim)
    if chunks.num_rows == 0:
        return schema.empty_table()
    embedding = chunks.column("embedding").combine_chunks()
    lengths = pc.list_value_length(embedding)
    if pc.any(pc.not_equal(lengths, dim)).as_py() or embedding.null_count:
        raise SetupError(
            f"feature_store.document_chunks holds embeddings that are not {dim}-dimensional: the table was "
            "embedded by another model; run `athlete-platform embed-documents --full-refresh` to re-embed it."
        )
    values = pc.cast(embedding.flatten(), pa.float32())
    title, text = (pc.cast(chunks.column(name), pa.string()) for name in ("title", "text"))
    search_text = pc.if_else(pc.is_null(title), text, pc.binary_join_element_wise(title, text, "\n"))
    columns = {name: chunks.column(name) for name in schema.names if name in chunks.column_names}
    columns["search_text"] = search_text
    columns["vector"] = pa.FixedSizeListArray.from_arrays(values, dim)
    return pa.table({name: pc.cast(columns[name], schema.field(name).type) for name in schema.names}, schema=schema)


# --- pure query building and fusion -----------------------------------------------------------


def sql_string(value: str) -> str:
    """A SQL string literal (quotes doubled): a value can never end the literal early."""
    return "'" + value.replace("'", "''") + "'"


def search_filter(athlete_id: str, since: date | None, until: date | None, include_knowledge: bool) -> str:
    """The `where` both searches apply inside LanceDB: the athlete's notes with
    since <= doc_date <= until, or a knowledge chunk (when asked)."""
    if not isinstance(athlete_id, str) or not athlete_id:
        raise ValueError(f"athlete_id must be a non-empty string, not {athlete_id!r}")
    if since is not None and until is not None and since > until:
        raise ValueError(f"since ({since}) is after until ({until})")
    notes = [f"source = {sql_string(SESSION_NOTE)}", f"athlete_id = {sql_string(athlete_id)}"]
    if since is not None:
        notes.append(f"doc_date >= date '{since.isoformat()}'")
    if until is not None:
        notes.append(f"doc_date <= date '{until.isoformat()}'")
    clause = "(" + " AND ".join(notes) + ")"
    return f"{clause} OR source = {sql_string(KNOWLEDGE)}" if include_knowledge else clause


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Ids by fused score, best first: the sum over rankings of 1 / (k + rank), rank 1-based.
    Ties keep the order in which the ids were first seen (the first ranking's order first)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(dict.fromkeys(ranking), start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    order = {key: n for n, key in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


# --- the index on disk ------------------------------------------------------------------------


def _connect(path: Path):
    import lancedb

    # Read the latest version on every query: the step may refresh the index while it is served.
    return lancedb.connect(str(path), read_consistency_interval=timedelta(0))


def read_state(path: Path) -> IndexState | None:
    try:
        return IndexState(**json.loads((path / STATE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_state(path: Path, state: IndexState) -> None:
    tmp = path / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state.__dict__, indent=2) + "\n")
    os.replace(tmp, path / STATE_FILE)  # atomic: a reader sees the old state or the new one


def _create_fts(table) -> None:
    from lancedb.index import FTS

    table.create_index("search_text", config=FTS(), replace=True)


def write_full(path: Path, rows: pa.Table, state: IndexState) -> IndexState:
    """Replace the whole index with `rows` (index rows: `to_index_rows`), then record `state`."""
    path.mkdir(parents=True, exist_ok=True)
    table = _connect(path).create_table(TABLE, data=rows, schema=rows.schema, mode="overwrite")
    _create_fts(table)
    state = IndexState(state.table, state.version, state.model_name, state.model_version, table.count_rows())
    _write_state(path, state)
    return state


def apply_changes(path: Path, upserts: pa.Table, deletes: Sequence[str], state: IndexState) -> IndexState:
    """Upsert `upserts` (index rows) by chunk_id, delete `deletes`, fold the new rows into the
    full-text index, then record `state`."""
    table = _connect(path).open_table(TABLE)
    if deletes:
        for start in range(0, len(deletes), 500):
            ids = ", ".join(sql_string(i) for i in deletes[start : start + 500])
            table.delete(f"chunk_id IN ({ids})")
    if upserts.num_rows:
        table.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all().execute(upserts)
    if deletes or upserts.num_rows:
        table.optimize()  # new rows into the full-text index, deleted ones out (until then: searched flat)
    state = IndexState(state.table, state.version, state.model_name, state.model_version, table.count_rows())
    _write_state(path, state)
    return state


def index_exists(path: Path) -> bool:
    return (path / f"{TABLE}.lance").is_dir() and read_state(path) is not None


class DocumentIndex:
    """Hybrid search over the document index (see the module docstring)."""

    def __init__(self, table: Any, embedder: Embedder, state: IndexState, path: Path) -> None:
        self._table = table
        self._embedder = embedder
        self.state = state
        self.path = path

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> DocumentIndex:
        """The index at `documents.index_path`, searched with `embedder` (default: the configured one)."""
        from athlete_platform.features.documents.embedder import embedder_from_settings

        path = settings.documents_index_path
        if not index_exists(path):
            raise SetupError(f"There is no document index at {path}: {MISSING_HINT}.")
        embedder = embedder or embedder_from_settings(settings)
        state = read_state(path)
        if (state.model_name, state.model_version) != (embedder.name, embedder.version):
            raise ConfigError(
                f"The document index at {path} was embedded with {state.model_name} {state.model_version}, "
                f"but the configured embedder is {embedder.name} {embedder.version}: query vectors would not "
                "match. Run `athlete-platform embed-documents` to re-embed with the configured model."
            )
        return cls(_connect(path).open_table(TABLE), embedder, state, path)

    def search(
        self,
        query: str,
        *,
        athlete_id: str,
        since: date | None = None,
        until: date | None = None,
        k: int = 5,
        include_knowledge: bool = True,
    ) -> list[Hit]:
        """The `k` best chunks for `query` among the athlete's notes with since <= doc_date <= until
        (and knowledge chunks when `include_knowledge`): vector and full-text rankings, fused."""
        if k < 1:
            return []
        where = search_filter(athlete_id, since, until, include_knowledge)
        candidates = max(4 * k, 20)
        rows: dict[str, dict[str, Any]] = {}
        vector = (
            self._table.search(self._embedder.embed_query(query), vector_column_name="vector")
            .distance_type("cosine")
            .where(where, prefilter=True)
            .select([*HIT_COLUMNS, "_distance"])
            .limit(candidates)
            .to_arrow()
            .to_pylist()
        )
        rankings = [[row["chunk_id"] for row in vector]]
        rows.update((row["chunk_id"], row) for row in vector)
        if query.strip():
            text = (
                self._table.search(query, query_type="fts", fts_columns="search_text")
                .where(where, prefilter=True)
                .select([*HIT_COLUMNS, "_score"])
                .limit(candidates)
                .to_arrow()
                .to_pylist()
            )
            rankings.append([row["chunk_id"] for row in text])
            rows.update((row["chunk_id"], row) for row in text)
        hits = []
        for chunk, score in reciprocal_rank_fusion(rankings)[:k]:
            row = rows[chunk]
            hits.append(Hit(**{c: row[c] for c in HIT_COLUMNS}, score=score))
        return hits
