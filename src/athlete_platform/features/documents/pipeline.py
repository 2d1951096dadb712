"""The `embed-documents` step: session notes (silver.sessions.notes) and knowledge articles
(`documents.knowledge_path`/*.md) -> chunks -> embeddings -> feature_store.document_chunks
(MERGE on chunk_id) -> the LanceDB document index.

Incremental, by the Change Data Feed of silver.sessions. The chunk table records, in its
properties (`athlete_platform.source.sessions_version`, as the feature pipeline records its
inputs), the silver.sessions version whose notes it last embedded. A run reads the sessions the
change feed names since then (inserted, updated or deleted) and re-chunks only their notes: new
or changed chunks are written, chunks of a note that got shorter, emptied or whose session was
deleted are removed, and equal chunks are left alone. Knowledge articles are few and small: every
run re-chunks them all and diffs them against the stored knowledge chunks by key (a deleted
article's chunks are removed; a missing folder leaves them as they are, with a warning).
Each chunk text is embedded once per model: a chunk whose `content_sha256` is already stored with
the same model reuses that embedding, and equal texts within a run are embedded once.
Everything is read at a pinned silver version, so a re-run for the same run date reads an empty
change feed and writes nothing, embeds nothing and commits nothing.

Every note silver holds is indexed whatever the run date: a note carries its session date and
the search filters on it (`until`), so a backfill never has to rewind the index.

A full pass (every note re-chunked, embeddings still reused by content hash) happens on the first
run, with `--full-refresh`, when the change feed can no longer be read (vacuumed), when silver
was re-created, and when the configured embedder differs from the stored model (then everything
is re-embedded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from athlete_platform.errors import ConfigError, SetupError
from athlete_platform.features.documents import index as doc_index
from athlete_platform.features.documents.chunking import KNOWLEDGE, SESSION_NOTE, Chunk, article_chunks, note_chunks
from athlete_platform.features.documents.embedder import Embedder, embedder_from_settings
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.delta import changes_between, current_version, table_properties
from athlete_platform.lakehouse.step import Step, StepContext, wall_clock
from athlete_platform.lakehouse.writes import merge_upsert, utc_timestamp

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from athlete_platform.config import Settings
    from athlete_platform.lakehouse.tables import TableNames

log = logging.getLogger(__name__)

SOURCE_VERSION_PROPERTY = tables.DOCUMENT_SOURCE_VERSION_PROPERTIES[tables.SESSIONS]


@dataclass(frozen=True)
class Note:
    """A session's note as silver holds it."""

    session_id: str
    athlete_id: str
    session_date: date
    notes: str | None


@dataclass(frozen=True)
class ChunkRecord:
    """A row of feature_store.document_chunks without its embedding and lineage."""

    chunk_id: str
    source: str
    source_id: str
    chunk_index: int
    athlete_id: str | None
    doc_date: date | None
    title: str | None
    text: str
    content_sha256: str
    model_name: str
    model_version: str

    @classmethod
    def of(cls, chunk: Chunk, model_name: str, model_version: str) -> ChunkRecord:
        return cls(
            chunk.chunk_id,
            chunk.source,
            chunk.source_id,
            chunk.chunk_index,
            chunk.athlete_id,
            chunk.doc_date,
            chunk.title,
            chunk.text,
            chunk.content_sha256,
            model_name,
            model_version,
        )

    @property
    def embedding_input(self) -> str:
        return Chunk(self.source, self.source_id, self.chunk_index, self.text, self.title).embedding_input


RECORD_COLUMNS = tuple(f.name for f in fields(ChunkRecord))


@dataclass(frozen=True)
class ChunkPlan:
    """What a run changes in the chunk table, and what it read (notes_read = notes_chunked + notes_empty)."""

    upserts: tuple[ChunkRecord, ...]  # new or changed chunks (to embed or reuse, then MERGE)
    deletes: tuple[str, ...]  # chunk_ids no longer produced by their note or article
    unchanged: int
    notes_read: int
    notes_chunked: int
    notes_empty: int
    articles_read: int


def plan_chunks(
    notes: Iterable[Note],
    articles: Mapping[str, str] | None,
    stored: Iterable[ChunkRecord],
    model_name: str,
    model_version: str,
    max_chars: int,
) -> ChunkPlan:
    """Pure: chunk `notes` and `articles` (stem -> markdown; None: leave knowledge alone) and diff
    them against `stored`, the stored chunks of exactly those sources (notes of the sessions read
    or deleted, and every knowledge chunk when `articles` is given)."""
    desired: dict[str, ChunkRecord] = {}
    notes_read = notes_chunked = 0
    for note in notes:
        notes_read += 1
        chunks = note_chunks(note.session_id, note.athlete_id, note.session_date, note.notes, max_chars)
        notes_chunked += bool(chunks)
        desired.update((c.chunk_id, ChunkRecord.of(c, model_name, model_version)) for c in chunks)
    for stem, markdown in sorted((articles or {}).items()):
        chunks = article_chunks(stem, markdown, max_chars)
        desired.update((c.chunk_id, ChunkRecord.of(c, model_name, model_version)) for c in chunks)
    existing = {row.chunk_id: row for row in stored}
    upserts = tuple(row for key, row in desired.items() if existing.get(key) != row)
    return ChunkPlan(
        upserts,
        tuple(sorted(set(existing) - set(desired))),
        len(desired) - len(upserts),
        notes_read,
        notes_chunked,
        notes_read - notes_chunked,
        len(articles or {}),
    )


def texts_to_embed(upserts: Sequence[ChunkRecord], reusable: Mapping[str, Any]) -> dict[str, str]:
    """Pure: content_sha256 -> text, for each distinct text of `upserts` with no reusable embedding."""
    return {row.content_sha256: row.embedding_input for row in upserts if row.content_sha256 not in reusable}


def read_articles(folder: Path) -> dict[str, str] | None:
    """stem -> markdown of every `*.md` in `folder` (README.md aside); None when the folder is missing."""
    if not folder.is_dir():
        return None
    return {
        path.stem: path.read_text(encoding="utf-8")
        for path in sorted(folder.glob("*.md"))
        if path.is_file() and path.name.lower() != "readme.md"
    }


@dataclass(frozen=True)
class EmbedInputs:
    notes: list[Note]
    articles: dict[str, str] | None
    stored: list[ChunkRecord]
    mode: str  # "incremental" | "full (<why>)"
    sessions_version: int
    recorded_version: int | None
    sessions_removed: int  # sessions the change feed named that silver no longer has
    embedder: Embedder
    max_chars: int


@dataclass(frozen=True)
class EmbedOutputs:
    plan: ChunkPlan
    inputs: EmbedInputs


@dataclass(frozen=True)
class EmbedResult:
    mode: str
    notes_read: int
    notes_chunked: int
    notes_empty: int
    sessions_removed: int
    articles_read: int
    chunks_written: int
    chunks_unchanged: int
    chunks_removed: int
    texts_embedded: int
    embeddings_reused: int
    embed_s: float
    sessions_version: int
    index: str

    def __str__(self) -> str:
        rate = f", {self.texts_embedded / self.embed_s:.1f} texts/s" if self.texts_embedded and self.embed_s else ""
        return (
            f"documents ({self.mode}, silver.sessions v{self.sessions_version}): {self.notes_read} notes read "
            f"({self.notes_chunked} chunked, {self.notes_empty} empty), {self.sessions_removed} sessions removed, "
            f"{self.articles_read} articles; chunks {self.chunks_written} written, {self.chunks_unchanged} unchanged, "
            f"{self.chunks_removed} removed; {self.texts_embedded} texts embedded in {self.embed_s:.1f} s{rate}, "
            f"{self.embeddings_reused} embeddings reused; index: {self.index}"
        )


def _records(frame: DataFrame) -> list[ChunkRecord]:
    return [ChunkRecord(**{c: row[c] for c in RECORD_COLUMNS}) for row in frame.select(*RECORD_COLUMNS).collect()]


def _ids_frame(spark: SparkSession, column: str, ids: Iterable[str]) -> DataFrame:
    return spark.createDataFrame([(i,) for i in ids], f"{column} string")


def _full_reason(
    params: Mapping[str, Any], recorded: int | None, version: int, models: set[tuple[str, str]], embedder: Embedder
) -> str | None:
    if params.get("full_refresh"):
        return "--full-refresh"
    if recorded is None:
        return "first run"
    if recorded > version:
        return "silver.sessions was re-created: its version is older than the one recorded"
    other = sorted(models - {(embedder.name, embedder.version)})
    if other:
        return f"embedder changed from {' '.join(other[0])} to {embedder.name} {embedder.version}"
    return None


class EmbedDocumentsStep(Step[EmbedInputs, EmbedOutputs, EmbedResult]):
    """silver.sessions.notes + knowledge/*.md -> feature_store.document_chunks -> the LanceDB index."""

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> EmbedInputs:
        from pyspark.sql import functions as F

        spark, names, settings = ctx.spark, ctx.names, ctx.settings
        sessions_table = names(tables.SESSIONS)
        if not spark.catalog.tableExists(sessions_table):
            raise SetupError(
                f"{sessions_table} does not exist yet: run the silver job first (`athlete-platform silver`)."
            )
        chunks_table = ensure_table(spark, names, tables.DOCUMENT_CHUNKS)
        embedder = embedder_from_settings(settings)
        version = current_version(spark, sessions_table)
        text = table_properties(spark, chunks_table).get(SOURCE_VERSION_PROPERTY)
        recorded = int(text) if text is not None and text.isdigit() else None
        stored_table = spark.table(chunks_table)
        models = {(r[0], r[1]) for r in stored_table.select("model_name", "model_version").distinct().collect()}
        reason = _full_reason(params, recorded, version, models, embedder)
        touched: list[str] = []
        if reason is None and recorded < version:
            try:
                changes = changes_between(spark, sessions_table, recorded, version)
                touched = sorted({r[0] for r in changes.select("session_id").distinct().collect() if r[0] is not None})
            except Exception as exc:  # noqa: BLE001 - any unreadable change feed: re-chunk every note
                first = str(exc).strip().splitlines()[0][:200]
                reason = f"change data feed unreadable since v{recorded} ({first})"
                log.warning("embed-documents: %s; re-chunking every note", reason)
        sessions = spark.read.format("delta").option("versionAsOf", version).table(sessions_table)
        sessions = sessions.select("session_id", "athlete_id", "session_date", "notes")
        articles = read_articles(settings.knowledge_dir)
        if articles is None:
            log.warning(
                "embed-documents: no knowledge folder at %s (documents.knowledge_path): stored knowledge chunks "
                "are left as they are",
                settings.knowledge_dir,
            )
        knowledge = F.col("source") == F.lit(KNOWLEDGE)
        if reason is None:  # the notes of the sessions the change feed named, and every knowledge chunk
            ids = _ids_frame(spark, "session_id", touched)
            sessions = sessions.join(ids, "session_id", "left_semi")
            stored_notes = stored_table.where(F.col("source") == F.lit(SESSION_NOTE)).join(
                ids.withColumnRenamed("session_id", "source_id"), "source_id", "left_semi"
            )
            stored = _records(stored_notes) if touched else []
        else:  # every note
            stored = _records(stored_table.where(~knowledge))
        if articles is not None:
            stored += _records(stored_table.where(knowledge))
        read = sessions.collect() if reason is not None or touched else []
        notes = [Note(r.session_id, r.athlete_id, r.session_date, r.notes) for r in read]
        removed = len(set(touched) - {n.session_id for n in notes}) if reason is None else 0
        return EmbedInputs(
            notes,
            articles,
            stored,
            "incremental" if reason is None else f"full ({reason})",
            version,
            recorded,
            removed,
            embedder,
            settings.documents.max_chunk_chars,
        )

    def transform(self, inputs: EmbedInputs) -> EmbedOutputs:
        embedder = inputs.embedder
        plan = plan_chunks(
            inputs.notes, inputs.articles, inputs.stored, embedder.name, embedder.version, inputs.max_chars
        )
        return EmbedOutputs(plan, inputs)

    def load(self, ctx: StepContext, out: EmbedOutputs) -> EmbedResult:
        spark, plan, inputs = ctx.spark, out.plan, out.inputs
        chunks_table = ctx.names(tables.DOCUMENT_CHUNKS)
        embedder = inputs.embedder
        reusable = stored_embeddings(spark, chunks_table, plan.upserts, embedder) if plan.upserts else {}
        missing = texts_to_embed(plan.upserts, reusable)
        started = time.monotonic()
        fresh = embedder.embed_passages(list(missing.values())) if missing else None
        embed_s = time.monotonic() - started
        vectors: dict[str, Any] = dict(reusable)
        if fresh is not None:
            vectors.update(zip(missing, fresh, strict=True))
        if plan.upserts:
            frame = chunk_frame(spark, plan.upserts, vectors, embedder.dim, ctx.run_id)
            merge_upsert(spark, chunks_table, frame, tables.DOCUMENT_CHUNKS.keys)
        if plan.deletes:
            delete_chunks(spark, chunks_table, plan.deletes)
        if inputs.recorded_version != inputs.sessions_version:  # metadata only; no commit when silver stood still
            version = inputs.sessions_version
            spark.sql(f"ALTER TABLE {chunks_table} SET TBLPROPERTIES ('{SOURCE_VERSION_PROPERTY}' = '{version}')")
        index = sync_index(spark, ctx.settings, chunks_table, embedder)
        result = EmbedResult(
            inputs.mode,
            plan.notes_read,
            plan.notes_chunked,
            plan.notes_empty,
            inputs.sessions_removed,
            plan.articles_read,
            len(plan.upserts),
            plan.unchanged,
            len(plan.deletes),
            len(missing),
            len({r.content_sha256 for r in plan.upserts}) - len(missing),
            embed_s,
            inputs.sessions_version,
            index,
        )
        log.info("embed-documents for %s: %s", ctx.run_date, result)
        return result


def stored_embeddings(
    spark: SparkSession, chunks_table: str, upserts: Sequence[ChunkRecord], embedder: Embedder
) -> dict[str, list[float]]:
    """content_sha256 -> a stored embedding of that text by the same model, for the texts of `upserts`."""
    from pyspark.sql import functions as F

    hashes = _ids_frame(spark, "content_sha256", sorted({r.content_sha256 for r in upserts}))
    same_model = (F.col("model_name") == embedder.name) & (F.col("model_version") == embedder.version)
    rows = (
        spark.table(chunks_table)
        .where(same_model)
        .join(F.broadcast(hashes), "content_sha256", "left_semi")
        .groupBy("content_sha256")
        .agg(F.first("embedding").alias("embedding"))
        .collect()
    )
    return {r["content_sha256"]: r["embedding"] for r in rows}


def chunk_frame(
    spark: SparkSession, upserts: Sequence[ChunkRecord], vectors: Mapping[str, Any], dim: int, run_id: str
) -> DataFrame:
    """The rows to MERGE, in the table's column order (built through Arrow: thousands of vectors)."""
    import numpy as np
    import pyarrow as pa
    from pyspark.sql import functions as F

    flat = np.asarray([np.asarray(vectors[r.content_sha256], dtype=np.float32) for r in upserts], dtype=np.float32)
    columns: dict[str, pa.Array] = {
        name: pa.array([getattr(r, name) for r in upserts], type=_arrow_type(name)) for name in RECORD_COLUMNS
    }
    columns["embedding"] = pa.ListArray.from_arrays(
        pa.array(np.arange(0, (len(upserts) + 1) * dim, dim, dtype=np.int32)), pa.array(flat.reshape(-1))
    )
    frame = spark.createDataFrame(pa.table(columns))
    types = tables.DOCUMENT_CHUNKS.column_types()
    return frame.select(
        *[
            F.col(c).cast(types[c]).alias(c)
            if c in columns
            else (utc_timestamp(wall_clock()) if c == "computed_at" else F.lit(run_id)).alias(c)
            for c in tables.DOCUMENT_CHUNKS.column_names
        ]
    )


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    return {"chunk_index": pa.int32(), "doc_date": pa.date32()}.get(name, pa.string())


def delete_chunks(spark: SparkSession, chunks_table: str, chunk_ids: Sequence[str]) -> None:
    """Delete `chunk_ids` in one MERGE (only the files holding them are rewritten)."""
    view = "_ap_stale_document_chunks"
    _ids_frame(spark, "chunk_id", chunk_ids).createOrReplaceTempView(view)
    try:
        spark.sql(f"MERGE INTO {chunks_table} t USING {view} s ON t.chunk_id = s.chunk_id WHEN MATCHED THEN DELETE")
    finally:
        spark.catalog.dropTempView(view)


# --- the LanceDB index, derived from the chunk table -----------------------------------------


def _index_rows(frame: DataFrame, dim: int) -> pa.Table:
    return doc_index.to_index_rows(frame.toArrow(), dim)


def sync_index(
    spark: SparkSession, settings: Settings, chunks_table: str, embedder: Embedder, rebuild: bool = False
) -> str:
    """Bring the LanceDB index to the chunk table's current version: from the table's Change Data
    Feed since the version the index records, or rebuilt from the whole table (no index yet, another
    table or model, a re-created table, an unreadable change feed, or `rebuild`). Returns what it did."""
    path = settings.documents_index_path
    version = current_version(spark, chunks_table)
    state = doc_index.read_state(path) if doc_index.index_exists(path) else None
    model = (embedder.name, embedder.version)
    reason = None
    if rebuild:
        reason = "rebuild asked"
    elif state is None:
        reason = "no index yet"
    elif state.table != chunks_table:
        reason = f"it was built from {state.table}"
    elif state.version > version:
        reason = "the chunk table was re-created"
    elif (state.model_name, state.model_version) != model:
        reason = "another embedding model"
    elif state.version == version:
        return f"up to date at v{version} ({state.rows} chunks)"
    snapshot = spark.read.format("delta").option("versionAsOf", version).table(chunks_table)
    new_state = doc_index.IndexState(chunks_table, version, *model, 0)
    if reason is None:
        try:
            changes = changes_between(spark, chunks_table, state.version, version)
            ids = {r[0] for r in changes.select("chunk_id").distinct().collect()}
        except Exception as exc:  # noqa: BLE001 - any unreadable change feed: rebuild
            reason = f"change data feed unreadable ({str(exc).strip().splitlines()[0][:200]})"
        else:
            changed = snapshot.join(_ids_frame(spark, "chunk_id", ids), "chunk_id", "left_semi")
            present = _index_rows(changed, embedder.dim)
            deletes = sorted(ids - set(present.column("chunk_id").to_pylist()))
            done = doc_index.apply_changes(path, present, deletes, new_state)
            return f"{present.num_rows} upserted, {len(deletes)} deleted at v{version} ({done.rows} chunks)"
    check_models(snapshot, embedder)
    done = doc_index.write_full(path, _index_rows(snapshot, embedder.dim), new_state)
    return f"rebuilt at v{version}: {reason} ({done.rows} chunks)"


def check_models(chunks: DataFrame, embedder: Embedder) -> None:
    """Every chunk embedded by `embedder`'s model, else an error saying what to run."""
    from pyspark.sql import functions as F

    other = (
        chunks.where((F.col("model_name") != embedder.name) | (F.col("model_version") != embedder.version))
        .select("model_name", "model_version")
        .distinct()
        .collect()
    )
    if other:
        found = ", ".join(f"{r[0]} {r[1]}" for r in other)
        raise ConfigError(
            f"feature_store.document_chunks holds embeddings of {found}, not of the configured embedder "
            f"{embedder.name} {embedder.version}: run `athlete-platform embed-documents` to re-embed them first."
        )


def rebuild_index(spark: SparkSession, names: TableNames, settings: Settings) -> str:
    """`athlete-platform index rebuild`: the whole index anew from feature_store.document_chunks."""
    chunks_table = names(tables.DOCUMENT_CHUNKS)
    if not spark.catalog.tableExists(chunks_table):
        raise SetupError(
            f"{chunks_table} does not exist yet: run `athlete-platform embed-documents` first (it fills the "
            "table and builds the index)."
        )
    return sync_index(spark, settings, chunks_table, embedder_from_settings(settings), rebuild=True)
