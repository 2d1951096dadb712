"""Pure chunkers: session notes and markdown articles -> bounded chunks with stable ids.

A note is one document: whitespace is collapsed, an empty or whitespace-only note gives no
chunk, and a note longer than `max_chars` is cut at sentence ends (a sentence longer than that
at word boundaries, a word longer than that hard) into chunks of at most `max_chars`.
An article (`knowledge/<stem>.md`) is cut by section: its `# Title` names it, every `##`
(or deeper) heading starts a section, and each section's paragraphs are packed into chunks of at
most `max_chars`; a chunk's `title` is "Article title — Section heading".

`chunk_id` is the SHA-256 of `source|source_id|chunk_index` (a note edited in place keeps its
ids, only their text changes); `content_sha256` is the SHA-256 of exactly the text the model
embeds (`embedding_input`), so equal texts are embedded once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

SESSION_NOTE = "session_note"
KNOWLEDGE = "knowledge"

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Chunk:
    """One chunk of a note or article, before it is embedded."""

    source: str  # SESSION_NOTE | KNOWLEDGE
    source_id: str  # session_id | article file stem
    chunk_index: int
    text: str
    title: str | None = None  # articles: "Title — Section"
    athlete_id: str | None = None  # notes only
    doc_date: date | None = None  # notes only: the session's date

    @property
    def chunk_id(self) -> str:
        return chunk_id(self.source, self.source_id, self.chunk_index)

    @property
    def embedding_input(self) -> str:
        """The exact text embedded: the title line (articles) and the text."""
        return f"{self.title}\n{self.text}" if self.title else self.text

    @property
    def content_sha256(self) -> str:
        return sha256_hex(self.embedding_input)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(source: str, source_id: str, chunk_index: int) -> str:
    return sha256_hex(f"{source}|{source_id}|{chunk_index}")


def collapse_whitespace(text: str | None) -> str:
    return " ".join((text or "").split())


def _words(sentence: str, max_chars: int) -> list[str]:
    """A sentence longer than `max_chars` as pieces of whole words (a longer word cut hard)."""
    pieces: list[str] = []
    for word in sentence.split(" "):
        pieces.extend(word[i : i + max_chars] for i in range(0, len(word), max_chars))
    return _pack(pieces, max_chars)


def _pack(pieces: list[str], max_chars: int, joiner: str = " ") -> list[str]:
    """Greedy: consecutive pieces joined while the result stays within `max_chars`."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{joiner}{piece}" if current else piece
        if len(candidate) <= max_chars:
            current = candidate
        else:
            if current:
                chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def split_text(text: str | None, max_chars: int) -> list[str]:
    """Whitespace-collapsed `text` in chunks of at most `max_chars`, cut at sentence ends (then
    words); [] for empty or whitespace-only text."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, not {max_chars}")
    text = collapse_whitespace(text)
    if len(text) <= max_chars:
        return [text] if text else []
    sentences: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentences.extend([sentence] if len(sentence) <= max_chars else _words(sentence, max_chars))
    return _pack(sentences, max_chars)


def note_chunks(session_id: str, athlete_id: str, session_date: date, notes: str | None, max_chars: int) -> list[Chunk]:
    """A session's note as chunks ([] when the note is empty or whitespace)."""
    return [
        Chunk(SESSION_NOTE, session_id, index, text, None, athlete_id, session_date)
        for index, text in enumerate(split_text(notes, max_chars))
    ]


@dataclass(frozen=True)
class Section:
    heading: str | None  # None: the text before the first section heading
    body: str


def parse_article(stem: str, markdown: str) -> tuple[str, list[Section]]:
    """(title, sections) of a markdown article: the first `# ` heading is the title (else the file
    stem, underscores as spaces); every other heading starts a section."""
    title: str | None = None
    sections: list[Section] = []
    heading: str | None = None
    lines: list[str] = []
    for line in markdown.splitlines():
        match = _HEADING.match(line)
        if not match:
            lines.append(line)
            continue
        if match.group(1) == "#" and title is None:
            title = match.group(2)
        else:
            sections.append(Section(heading, "\n".join(lines)))
            heading = match.group(2)
        lines = []
    sections.append(Section(heading, "\n".join(lines)))
    return title or stem.replace("_", " ").replace("-", " "), [s for s in sections if s.body.strip()]


def article_chunks(stem: str, markdown: str, max_chars: int) -> list[Chunk]:
    """An article as chunks, by section; paragraphs packed up to `max_chars` (longer ones split)."""
    title, sections = parse_article(stem, markdown)
    chunks: list[Chunk] = []
    for section in sections:
        paragraphs: list[str] = []
        for paragraph in re.split(r"\n\s*\n", section.body):
            paragraphs.extend(split_text(paragraph, max_chars))
        label = f"{title} — {section.heading}" if section.heading else title
        for text in _pack(paragraphs, max_chars, "\n\n"):
            chunks.append(Chunk(KNOWLEDGE, stem, len(chunks), text, label))
    return chunks
