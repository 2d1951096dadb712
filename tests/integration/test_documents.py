"""The embed-documents step on real Delta tables: a few sessions written straight into the
module's own silver.sessions, two fixture articles; first run, a re-run that does nothing,
an incremental run after notes changed and a session was deleted, and a rebuilt index that
equals the incremental one. (No lakehouse is built: the step only reads silver.sessions.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from athlete_platform.features.documents import index as doc_index
from athlete_platform.features.documents.pipeline import SOURCE_VERSION_PROPERTY, rebuild_index
from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.delta import current_version, table_properties
from athlete_platform.lakehouse.tables import DOCUMENT_CHUNKS, SESSIONS
from tests.own_lake import own_names, own_settings  # noqa: F401  (the module's own lakehouse)

pytestmark = pytest.mark.integration

KNOWLEDGE = Path(__file__).resolve().parents[1] / "fixtures" / "knowledge"
RUN_DATE = dt.date(2024, 3, 31)
LONG = " ".join(f"Kilometre {i} felt heavier than the one before, calves tight." for i in range(30))
NOTES = {  # session_id -> (athlete, day, note)
    "d1": ("doc_a", dt.date(2024, 3, 1), "Left knee hurt on the downhill, stopped after 8 km."),
    "d2": ("doc_a", dt.date(2024, 3, 2), "   "),
    "d3": ("doc_b", dt.date(2024, 3, 3), "Left knee hurt on the downhill, stopped after 8 km."),  # same text as d1
    "d4": ("doc_b", dt.date(2024, 3, 4), LONG),
    "d5": ("doc_b", dt.date(2024, 3, 5), None),
}


def session_row(session_id: str) -> tuple:
    athlete, day, note = NOTES[session_id]
    start = dt.datetime.combine(day, dt.time(7))
    return (session_id, athlete, "run", start, day, 3600.0, 10000.0, 50.0, 140.0, 160.0, 4, note, "app", False,
            60.0, False, start, "test")  # fmt: skip


def index_contents(path: Path) -> list[dict]:
    rows = doc_index._connect(path).open_table(doc_index.TABLE).to_arrow().to_pylist()
    for row in rows:
        row["vector"] = np.round(np.asarray(row["vector"], dtype=np.float32), 6).tolist()
    return sorted(rows, key=lambda r: r["chunk_id"])


def test_embed_documents_first_run_rerun_incremental_and_rebuild(spark, module_lake):
    names = module_lake.names
    documents = module_lake.settings.documents.model_copy(update={"knowledge_path": KNOWLEDGE})
    settings = module_lake.settings.model_copy(update={"documents": documents})
    sessions = ensure_table(spark, names, SESSIONS)
    spark.createDataFrame([session_row(s) for s in NOTES], SESSIONS.struct()).writeTo(sessions).append()

    first = module_lake.run("embed-documents", RUN_DATE, "doc-1", settings=settings)
    assert first.mode == "full (first run)"
    assert (first.notes_read, first.notes_chunked, first.notes_empty, first.articles_read) == (5, 3, 2, 2)
    chunks = names(DOCUMENT_CHUNKS)
    stored = spark.table(chunks)
    long_chunks = stored.where("source_id = 'd4'").count()
    assert long_chunks > 1  # the long note was cut
    knowledge_chunks = stored.where("source = 'knowledge'").count()
    assert first.chunks_written == stored.count() == 2 + long_chunks + knowledge_chunks
    assert first.texts_embedded == first.chunks_written - 1  # d1 and d3 share a text: embedded once
    assert stored.where("size(embedding) <> 384 OR athlete_id IS NULL AND source = 'session_note'").count() == 0
    assert table_properties(spark, chunks)[SOURCE_VERSION_PROPERTY] == str(current_version(spark, sessions))
    assert first.index.startswith("rebuilt")

    version = current_version(spark, chunks)
    again = module_lake.run("embed-documents", RUN_DATE, "doc-2", settings=settings)
    assert (again.mode, again.notes_read, again.chunks_written, again.chunks_removed, again.texts_embedded) == (
        "incremental", 0, 0, 0, 0,
    )  # fmt: skip
    assert current_version(spark, chunks) == version  # nothing committed
    assert again.index.startswith("up to date")

    spark.sql(f"UPDATE {sessions} SET notes = 'Heat: 33 degrees, walked the hills.' WHERE session_id = 'd1'")
    spark.sql(f"UPDATE {sessions} SET notes = '{NOTES['d1'][2]}' WHERE session_id = 'd2'")  # reuses d3's vector
    spark.sql(f"DELETE FROM {sessions} WHERE session_id = 'd4'")
    third = module_lake.run("embed-documents", RUN_DATE, "doc-3", settings=settings)
    assert third.mode == "incremental"
    assert (third.notes_read, third.notes_chunked, third.notes_empty, third.sessions_removed) == (2, 2, 0, 1)
    assert (third.chunks_written, third.chunks_removed, third.texts_embedded, third.embeddings_reused) == (
        2, long_chunks, 1, 1,
    )  # fmt: skip
    assert third.chunks_unchanged == knowledge_chunks
    assert stored.where("source_id = 'd4'").count() == 0
    assert "upserted" in third.index

    index = doc_index.DocumentIndex.open(settings)
    hits = index.search("hot weather", athlete_id="doc_a", k=3, include_knowledge=False)
    assert [h.source_id for h in hits][:1] == ["d1"] and {h.athlete_id for h in hits} == {"doc_a"}
    assert index.search("calves tight", athlete_id="doc_b", k=5, include_knowledge=False)[0].source_id == "d3"
    assert index.search("knee", athlete_id="doc_a", until=dt.date(2024, 3, 1), include_knowledge=False)[
        0
    ].text.startswith("Heat")

    incremental = index_contents(settings.documents_index_path)
    assert len(incremental) == stored.count()
    assert rebuild_index(spark, names, settings).startswith("rebuilt")
    assert index_contents(settings.documents_index_path) == incremental
