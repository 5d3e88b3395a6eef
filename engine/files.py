"""Attachments' bytes (scans and photos of an application's materials), stored outside the database.

A content-addressed store: a file lives at `<root>/ab/cd/<sha256>` (the root is `files/` in the instance
folder unless YICUN_FILES_DIR says otherwise), so the same scan uploaded twice is kept once, a name can
never be chosen by an uploader (no path to traverse), and the row that points at it (`attachments.sha256`)
also proves what it held. Files are immutable: removing an attachment marks its row, the bytes stay (the
audit trail may still name them).

What may come in is decided here, on the bytes: at most `YICUN_ATTACHMENT_MAX_MB`, and one of the types
the store recognises by their first bytes (JPEG, PNG, PDF — narrowed by YICUN_ATTACHMENT_TYPES). The type a
browser declares is taken from the file's name and proves nothing (an .exe renamed .png is declared
image/png), so it is never what decides; the stored type is the one the bytes showed, and pages serve the
file with it (and `nosniff`).

Order of writing, for crash safety: the verb (`cases.add_attachment`) checks and hashes the bytes and
writes them to a temporary file in the store *before* it locks the case (the slow part, outside the
lock), then, under the lock and after every check passed, renames the file into place (atomic on one
file system) and only then inserts the row. A crash or a refusal at any point leaves at most an orphan
file (or a temporary one, removed on refusal) — never a row whose bytes are missing. Orphans are
harmless (content-addressed, never served without a row) and a sweep may delete them.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import forms, settings
from .errors import InvalidInput, NotFound

#: The first bytes of each type the store accepts (its "magic"): the test that decides what a file is.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
}
#: The file name endings of each type; a name that ends otherwise gets the first one appended, so a file
#: saved from the page opens with the right program.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "application/pdf": (".pdf",),
}
#: How a type is named in a refusal ("only JPEG, PNG or PDF").
TYPE_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG", "application/pdf": "PDF"}
#: The longest file name kept (the column holds 200 characters); longer ones are shortened, not refused.
MAX_FILENAME = 200
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sniff(data: bytes) -> str | None:
    """The type the bytes are (by their signature), or None when they are none of the known ones."""
    for content_type, magics in SIGNATURES.items():
        if data.startswith(magics):
            return content_type
    return None


@dataclass(frozen=True)
class Upload:
    """Bytes that passed the checks: their hash, size and the type they showed."""
    data: bytes
    sha256: str
    size: int
    content_type: str


def check(data: bytes) -> Upload:
    """The bytes as an attachment may hold them, or `InvalidInput`: empty, too large (the size is compared
    before anything reads the bytes), or of a type not allowed — by their signature, whatever was declared.
    Pure: hashing and sniffing happen here, before the caller takes any lock."""
    limits = settings.get()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInput("an attachment must be the bytes of a file", reason="attachment.not_a_file")
    data = bytes(data)
    if not data:
        raise InvalidInput("the file is empty", reason="attachment.empty")
    if len(data) > limits.attachment_max_bytes:
        raise InvalidInput(f"the file is larger than {limits.attachment_max_mb} MB", reason="attachment.too_large",
                           max_mb=limits.attachment_max_mb, size=len(data))
    content_type = sniff(data)
    if content_type is None or content_type not in limits.attachment_types:
        allowed = ", ".join(TYPE_NAMES[t] for t in limits.attachment_types)
        raise InvalidInput(f"only {allowed} files may be attached (judged by their content, not their name)",
                           reason="attachment.type_not_allowed", types=allowed)
    return Upload(data, hashlib.sha256(data).hexdigest(), len(data), content_type)


def safe_filename(name: object, content_type: str) -> str:
    """The name a file is listed and downloaded under: its last path segment (old browsers send
    C:\\fakepath\\…), control characters refused, at most MAX_FILENAME characters (the stem shortened),
    ending as its type does (a PNG named scan.exe becomes scan.exe.png). An empty name becomes 附件."""
    text = forms.clean_text(name if isinstance(name, str) else None, "the file name", 1000, required=False,
                            field="file")
    text = re.split(r"[\\/]", text)[-1].strip().lstrip(".") or "附件"
    endings = EXTENSIONS[content_type]
    if not text.lower().endswith(endings):
        text += endings[0]
    if len(text) > MAX_FILENAME:
        stem, dot, ext = text.rpartition(".")
        text = stem[:MAX_FILENAME - len(ext) - 1] + dot + ext
    return text


class Staged:
    """Bytes written to a temporary file of the store, not yet in place: `commit()` renames them in."""

    def __init__(self, store: FileStore, upload: Upload, temp: Path) -> None:
        self.store, self.upload, self.temp = store, upload, temp
        self.committed = False

    def commit(self) -> Path:
        """Put the file at its address (a rename, atomic on one file system) — or, when the same bytes are
        there already, keep those (deduplicated). Returns the path."""
        target = self.store.path(self.upload.sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if target.stat().st_size == self.upload.size:
                self.temp.unlink(missing_ok=True)
                self.committed = True
                return target
        except FileNotFoundError:
            pass
        os.replace(self.temp, target)  # also mends a truncated file left at the address by a crash
        _sync_folder(target.parent)
        self.committed = True
        return target


class FileStore:
    """The content-addressed store under `root` (see the module doc)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        """Where the file with this hash lives (whether or not it does). Only a 64-digit lower-case hex
        hash names a file: anything else is NotFound, so no caller can reach outside the store."""
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise NotFound("no stored file with that name", reason="attachment.file_missing", filename=str(sha256)[:80])
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"the stored file {sha256} is missing", reason="attachment.file_missing",
                           filename=sha256) from None

    @contextlib.contextmanager
    def staged(self, upload: Upload) -> Iterator[Staged]:
        """Write `upload` to a temporary file in the store (flushed to disk) and yield it; whatever is not
        committed by the end of the block is deleted, so a refused upload leaves nothing behind."""
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=upload.sha256[:16] + ".", suffix=".part")
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(upload.data)
                fh.flush()
                os.fsync(fh.fileno())
            staged = Staged(self, upload, temp)
            yield staged
        finally:
            temp.unlink(missing_ok=True)  # committed: already renamed away (or deduplicated)

    def put(self, upload: Upload) -> Path:
        """Store `upload` at once (stage and commit): for callers with no check between the two."""
        with self.staged(upload) as staged:
            return staged.commit()


def _sync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX: fsync the folder); a platform that cannot is left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def store_for(instance_dir: Path | None = None) -> FileStore:
    """The store of this installation: YICUN_FILES_DIR, else `files/` in the instance folder — the one
    given (the web passes its app's) or YICUN_INSTANCE_DIR's (default ./instance)."""
    config = settings.get()
    root = config.files_dir or Path(instance_dir or config.instance_dir) / "files"
    return FileStore(root.absolute())
