"""The document pipeline's pure parts: chunking, the chunk plan (what is written, kept, removed,
embedded), the index's filter and rank fusion."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from athlete_platform.features.documents.chunking import (
    KNOWLEDGE,
    SESSION_NOTE,
    article_chunks,
    chunk_id,
    note_chunks,
    parse_article,
    sha256_hex,
    split_text,
)
from athlete_platform.features.documents.index import reciprocal_rank_fusion, search_filter
from athlete_platform.features.documents.pipeline import ChunkRecord, Note, plan_chunks, read_articles, texts_to_embed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "knowledge"
DAY = date(2024, 3, 4)
MODEL = ("model-a", "1")

# --- chunking ---------------------------------------------------------------------------------


@pytest.mark.parametrize("empty", [None, "", "   ", "\n\t \n"])
def test_an_empty_or_whitespace_note_gives_no_chunk(empty):
    assert split_text(empty, 100) == []
    assert note_chunks("s1", "ath_0001", DAY, empty, 100) == []


def test_a_short_note_is_one_chunk_with_whitespace_collapsed_and_emoji_kept():
    [chunk] = note_chunks("s1", "ath_0001", DAY, "  legs  heavy\n\nafter the long run 🙂 ", 100)
    assert chunk.text == "legs heavy after the long run 🙂"
    assert (chunk.source, chunk.source_id, chunk.chunk_index) == (SESSION_NOTE, "s1", 0)
    assert (chunk.athlete_id, chunk.doc_date, chunk.title) == ("ath_0001", DAY, None)
    assert chunk.chunk_id == sha256_hex("session_note|s1|0") == chunk_id(SESSION_NOTE, "s1", 0)
    assert chunk.content_sha256 == sha256_hex(chunk.text)


def test_a_long_note_is_cut_at_sentence_ends_within_the_bound_and_loses_no_word():
    sentences = [f"Sentence number {i} says the calf was tight at kilometre {i}." for i in range(40)]
    note = " ".join(sentences)
    chunks = split_text(note, 200)
    assert len(chunks) > 5
    assert all(len(c) <= 200 for c in chunks)
    assert all(c.endswith(".") for c in chunks)  # cut between sentences, never inside one
    assert " ".join(chunks) == note


def test_a_sentence_or_word_longer_than_the_bound_is_cut_by_words_then_hard():
    text = "word " * 60 + "x" * 250
    chunks = split_text(text, 100)
    assert all(len(c) <= 100 for c in chunks)
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")


def test_an_article_is_cut_by_section_with_its_title_and_heading():
    title, sections = parse_article("acwr", (FIXTURES / "acwr.md").read_text())
    assert title == "Acute:chronic workload ratio (ACWR)"
    assert [s.heading for s in sections] == [None, "Thresholds", "What to do"]
    chunks = article_chunks("acwr", (FIXTURES / "acwr.md").read_text(), 600)
    assert [c.title for c in chunks] == [
        "Acute:chronic workload ratio (ACWR)",
        "Acute:chronic workload ratio (ACWR) — Thresholds",
        "Acute:chronic workload ratio (ACWR) — What to do",
    ]
    assert [c.chunk_index for c in chunks] == [0, 1, 2]
    assert all(c.source == KNOWLEDGE and c.athlete_id is None and c.doc_date is None for c in chunks)
    assert chunks[1].embedding_input == chunks[1].title + "\n" + chunks[1].text
    assert chunks[1].content_sha256 == sha256_hex(chunks[1].embedding_input)


def test_a_long_article_section_is_packed_by_paragraph_within_the_bound():
    body = "\n\n".join(f"Paragraph {i}: " + "easy days matter. " * 8 for i in range(10))
    chunks = article_chunks("recovery", f"# Recovery\n\n## Why\n\n{body}", 400)
    assert len(chunks) > 2
    assert all(len(c.text) <= 400 for c in chunks)
    assert {c.title for c in chunks} == {"Recovery — Why"}


def test_an_article_without_a_title_is_named_after_its_file():
    assert parse_article("race_pacing", "Even splits win.")[0] == "race pacing"


# --- the chunk plan ---------------------------------------------------------------------------


def _records(notes, articles=None, model=MODEL, max_chars=100):
    return list(plan_chunks(notes, articles, [], *model, max_chars).upserts)


def test_plan_counts_every_note_and_writes_only_new_or_changed_chunks():
    notes = [
        Note("s1", "ath_0001", DAY, "legs heavy"),
        Note("s2", "ath_0001", DAY, "   "),
        Note("s3", "ath_0002", DAY, None),
        Note("s4", "ath_0002", DAY, "slept badly"),
    ]
    first = plan_chunks(notes, {}, [], *MODEL, 100)
    assert (first.notes_read, first.notes_chunked, first.notes_empty) == (4, 2, 2)
    assert first.notes_read == first.notes_chunked + first.notes_empty
    assert len(first.upserts) == 2 and first.deletes == () and first.unchanged == 0

    again = plan_chunks(notes, {}, first.upserts, *MODEL, 100)  # nothing changed: nothing to do
    assert (again.upserts, again.deletes, again.unchanged) == ((), (), 2)


def test_plan_removes_the_chunks_of_an_emptied_shortened_or_deleted_note():
    long_note = "One. " * 60
    stored = _records(
        [Note("s1", "ath_0001", DAY, long_note), Note("s2", "ath_0001", DAY, "ok"), Note("s3", "a", DAY, "x")]
    )
    assert len([r for r in stored if r.source_id == "s1"]) > 1
    plan = plan_chunks(
        [Note("s1", "ath_0001", DAY, "now short"), Note("s2", "ath_0001", DAY, "")],  # s3 deleted from silver
        None,
        stored,
        *MODEL,
        100,
    )
    assert [(r.source_id, r.chunk_index, r.text) for r in plan.upserts] == [("s1", 0, "now short")]
    removed = {r.chunk_id: r for r in stored if r.chunk_id in plan.deletes}
    assert sorted((r.source_id, r.chunk_index) for r in removed.values()) == sorted(
        [("s1", i) for i in range(1, len([r for r in stored if r.source_id == "s1"]))] + [("s2", 0), ("s3", 0)]
    )


def test_a_moved_session_rewrites_its_chunk_and_another_model_rewrites_every_chunk():
    stored = _records([Note("s1", "ath_0001", DAY, "legs heavy")])
    moved = plan_chunks([Note("s1", "ath_0001", date(2024, 3, 5), "legs heavy")], None, stored, *MODEL, 100)
    assert [r.doc_date for r in moved.upserts] == [date(2024, 3, 5)]
    other = plan_chunks([Note("s1", "ath_0001", DAY, "legs heavy")], None, stored, "model-b", "1", 100)
    assert [r.model_name for r in other.upserts] == ["model-b"]


def test_plan_diffs_articles_and_leaves_knowledge_alone_without_a_folder():
    articles = read_articles(FIXTURES)
    assert sorted(articles) == ["acwr", "tapering"]
    stored = _records([], articles)
    gone = plan_chunks([], {"acwr": articles["acwr"]}, stored, *MODEL, 100)  # tapering.md deleted
    assert gone.articles_read == 1 and gone.upserts == ()
    assert {r.source_id for r in stored if r.chunk_id in gone.deletes} == {"tapering"}
    left_alone = plan_chunks([], None, [], *MODEL, 100)
    assert (left_alone.articles_read, left_alone.upserts, left_alone.deletes) == (0, (), ())
    assert read_articles(FIXTURES / "missing") is None


def test_each_distinct_text_is_embedded_once_and_stored_embeddings_are_reused():
    notes = [Note(f"s{i}", "ath_0001", DAY, "easy run") for i in range(5)] + [Note("s9", "ath_0001", DAY, "fartlek")]
    upserts = _records(notes)
    assert len(upserts) == 6
    assert texts_to_embed(upserts, {}) == {sha256_hex("easy run"): "easy run", sha256_hex("fartlek"): "fartlek"}
    assert texts_to_embed(upserts, {sha256_hex("easy run"): [0.0]}) == {sha256_hex("fartlek"): "fartlek"}
    knowledge = _records([], {"tapering": (FIXTURES / "tapering.md").read_text()})
    [(digest, text)] = texts_to_embed(knowledge, {}).items()
    assert text.startswith("Tapering\n") and digest == knowledge[0].content_sha256


def test_a_chunk_record_is_what_the_table_stores():
    [record] = _records([Note("s1", "ath_0001", DAY, "legs heavy")])
    assert record == ChunkRecord(
        chunk_id("session_note", "s1", 0), "session_note", "s1", 0, "ath_0001", DAY, None, "legs heavy",
        sha256_hex("legs heavy"), *MODEL,
    )  # fmt: skip


# --- the index's filter and fusion ------------------------------------------------------------


def test_the_filter_keeps_the_athletes_notes_in_the_window_and_knowledge():
    assert search_filter("ath_0001", date(2024, 1, 1), date(2024, 1, 31), True) == (
        "(source = 'session_note' AND athlete_id = 'ath_0001' AND doc_date >= date '2024-01-01' "
        "AND doc_date <= date '2024-01-31') OR source = 'knowledge'"
    )
    assert search_filter("ath_0001", None, None, False) == "(source = 'session_note' AND athlete_id = 'ath_0001')"


def test_a_quote_in_the_athlete_id_cannot_widen_the_filter():
    where = search_filter("x' OR '1'='1", None, None, False)
    assert where == "(source = 'session_note' AND athlete_id = 'x'' OR ''1''=''1')"


@pytest.mark.parametrize(
    ("athlete_id", "since", "until"), [("", None, None), (None, None, None), ("a", date(2024, 2, 1), date(2024, 1, 1))]
)
def test_a_bad_filter_is_refused(athlete_id, since, until):
    with pytest.raises(ValueError):
        search_filter(athlete_id, since, until, True)


def test_reciprocal_rank_fusion_rewards_agreement_and_keeps_first_seen_order_on_ties():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "b", "d"]], k=60)
    assert [key for key, _ in fused] == ["c", "b", "a", "d"]  # found by both beats first in one
    scores = dict(fused)
    assert scores["b"] == pytest.approx(2 / 62)
    assert scores["a"] == pytest.approx(1 / 61) and scores["d"] == pytest.approx(1 / 63)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert [key for key, _ in reciprocal_rank_fusion([["x", "y"], ["y", "x"]])] == ["x", "y"]  # a tie
    assert reciprocal_rank_fusion([[], []]) == []
