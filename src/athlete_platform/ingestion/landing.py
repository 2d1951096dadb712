"""The landing folder as a confinement boundary, and its files read as literal paths, line by line.

Pure Python I/O for bronze's `extract` (no Spark): Hadoop would read a landing file's name as a
glob or a URI (`export[1].jsonl`, `a:b.jsonl`) and follow any symlink, so bronze lists and reads
the files itself.

Rules (issue 10):
* Paths are literal. A path is recorded as listed: the resolved landing folder + the names
  walked, symlinks *not* resolved, so a link's own folder (the athlete of a device file) stays.
* No symlink (file or folder) may lead outside the landing folder: such an entry is refused with
  a reason and never opened or listed. A link whose target is inside is followed; each real
  folder is walked once (no cycles). Special files (FIFOs, devices, sockets) are refused too:
  opening a FIFO would block the run.
* A file is opened by its resolved path with O_NOFOLLOW | O_NONBLOCK and re-checked after
  opening (fstat: a regular file; /proc/self/fd: still inside), so a link swapped between the
  check and the open cannot lead out either.
* Lines are split on b"\\n" only (a trailing "\\r" belongs to the terminator); blank lines are
  skipped but keep their place in the numbering. A UTF-8 BOM at the start of a file is dropped.
  A line over MAX_LINE_BYTES, or not valid UTF-8, comes back with a `read_error` for bronze to
  quarantine; memory stays bounded by MAX_LINE_BYTES whatever the file's size.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_LINE_BYTES = 1 << 20  # 1 MiB: an app-export record is < 1 KiB; a longer line is not a record
# bronze.quarantine keeps only the head of a too-long line (the reason gives its full size).
QUARANTINE_HEAD_BYTES = 4096
_BOM = codecs.BOM_UTF8
_JSON_WHITESPACE = b" \t\r\n"


class LandingRefused(Exception):  # noqa: N818 - a refusal with its reason, not an error of ours
    """Why a landing entry must not be read (the message is the quarantine reason)."""


@dataclass(frozen=True)
class LandingEntry:
    """One file (or refused entry) found in the landing folder.

    path:    the plain path as listed (links not resolved): what bronze records
    real:    the resolved target, inside the landing folder; None when refused
    folder:  the name of the entry's own parent folder as listed (a device file's athlete)
    refusal: why it is not read (symlink leading out, not a regular file, ...); None if readable
    link_target: the symlink's own text when the entry is a link (shown in quarantine)
    """

    path: str
    real: str | None
    folder: str
    refusal: str | None = None
    link_target: str | None = None


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip("/") + "/")


def shown(path: str) -> str:
    """A path as UTF-8 text: a name that is not UTF-8 shows its bytes as \\xNN (tables hold text)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _name_problem(name: str) -> str | None:
    """A file name bronze cannot record faithfully: it is refused (and shown escaped)."""
    if shown(name) != name:
        return "file name is not valid UTF-8: rename the file"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "file name has control characters: rename the file"
    return None


def list_landing(root: Path, sub: str, *, recursive: bool, suffix: str | None = None) -> list[LandingEntry]:
    """The entries of `root/sub` (recursively for device folders), sorted by path.

    Only names ending in `suffix` are considered when it is given (others are not touched).
    Folders are never returned; a folder link leading out is returned as a refused entry.
    """
    root_real = os.path.realpath(root)
    start = os.path.join(root_real, sub)
    found: list[LandingEntry] = []
    visited: set[str] = set()

    def refuse_link(path: str, parent: str, target: str | None, real: str) -> None:
        found.append(
            LandingEntry(
                shown(path),
                None,
                shown(os.path.basename(parent)),
                f"symlink leads outside the landing folder (to {shown(real)}): not read",
                None if target is None else shown(target),
            )
        )

    def walk(folder: str) -> None:
        real_folder = os.path.realpath(folder)
        if real_folder in visited:
            return
        visited.add(real_folder)
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return  # vanished or unreadable folder: nothing to ingest from it this run
        for name in names:
            path = os.path.join(folder, name)
            try:
                lst = os.lstat(path)
            except OSError:
                continue  # vanished between listing and lstat
            is_link = stat.S_ISLNK(lst.st_mode)
            target = shown(os.readlink(path)) if is_link else None
            real = os.path.realpath(path)
            if is_link and not _inside(real, root_real):
                if recursive or suffix is None or name.endswith(suffix):
                    refuse_link(path, folder, target, real)
                continue
            try:
                st = os.stat(real)
            except OSError as exc:  # dangling link, or a cycle of links
                if suffix is None or name.endswith(suffix):
                    reason = f"cannot be read: {exc.strerror}"
                    found.append(LandingEntry(shown(path), None, shown(os.path.basename(folder)), reason, target))
                continue
            if stat.S_ISDIR(st.st_mode):
                if recursive:
                    walk(path)
                continue
            if suffix is not None and not name.endswith(suffix):
                continue
            refusal = _name_problem(name)
            if refusal is None and not stat.S_ISREG(st.st_mode):
                refusal = "not a regular file (FIFO, device or socket): not read"
            found.append(
                LandingEntry(shown(path), None if refusal else real, shown(os.path.basename(folder)), refusal, target)
            )

    # The sub-folder itself may be a link: the same rule applies before it is listed.
    if os.path.islink(start) and not _inside(os.path.realpath(start), root_real):
        refuse_link(start, root_real, os.readlink(start), os.path.realpath(start))  # never listed
    elif os.path.isdir(start):
        walk(start)
    return sorted(found, key=lambda e: e.path)


def open_confined(entry: LandingEntry, root: Path) -> BinaryIO:
    """Open a listed entry for reading without following a link out of `root`.

    Raises:
        LandingRefused: the entry was refused, or what was opened is not a regular file inside root.
        OSError: the file cannot be read (vanished, permissions).
    """
    if entry.refusal or entry.real is None:
        raise LandingRefused(entry.refusal or "not readable")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(entry.real, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LandingRefused("not a regular file (FIFO, device or socket): not read")
        proc = f"/proc/self/fd/{fd}"
        if os.path.exists(proc) and not _inside(os.readlink(proc), os.path.realpath(root)):
            raise LandingRefused("path changed while read: it leads outside the landing folder")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class LandingLine:
    """One non-blank line: its 1-based number, its text, and why it cannot be a record (or None)."""

    line_number: int
    line: str
    read_error: str | None = None


def read_lines(handle: BinaryIO) -> Iterator[LandingLine]:
    """The non-blank lines of a binary stream, decoded as UTF-8 (see the module's rules)."""
    number = 0
    while True:
        chunk = handle.readline(MAX_LINE_BYTES + 2)  # + "\r\n"
        if not chunk:
            return
        number += 1
        if number == 1 and chunk.startswith(_BOM):
            chunk = chunk[len(_BOM) :]
        complete = chunk.endswith(b"\n")
        body = chunk.rstrip(b"\n").removesuffix(b"\r") if complete else chunk
        if len(body) > MAX_LINE_BYTES:
            size = len(body)
            while not complete:  # skip the rest of the line, counting it, without holding it
                more = handle.readline(1 << 20)
                if not more:
                    break
                complete = more.endswith(b"\n")
                size += len(more.rstrip(b"\n").removesuffix(b"\r") if complete else more)
            head = body[:QUARANTINE_HEAD_BYTES].decode("utf-8", "ignore")  # may cut a character
            yield LandingLine(
                number,
                head,
                f"line_too_long: {size} bytes, over the limit of {MAX_LINE_BYTES} bytes per line "
                f"(payload keeps the first {QUARANTINE_HEAD_BYTES} bytes)",
            )
            continue
        if not body.strip(_JSON_WHITESPACE):
            continue
        try:
            yield LandingLine(number, body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield LandingLine(
                number,
                body.decode("utf-8", "backslashreplace"),  # the bad bytes stay visible as \xNN
                f"invalid_utf8: byte 0x{body[exc.start]:02x} at byte {exc.start} of the line (files must be UTF-8)",
            )
