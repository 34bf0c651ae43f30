"""Rows out of a damaged SQLite database file, read page by page (no sqlite3 shell needed).

SQLite stops at the first damaged page of a table, so one bad page can hide every row behind it. This reader
walks the file's b-trees itself (https://www.sqlite.org/fileformat2.html): each table from its root page, and
then every page no tree reached (a destroyed interior page orphans its children) whose records have the shape
of exactly one table. Pages on the freelist are skipped (deleted data must not come back), the write-ahead log
(``-wal``) is applied the way SQLite applies it (committed frames with matching salts and checksums), and a page
that cannot be parsed loses only its own rows. Rows are checked against the tables' column types, so garbage
that happens to look like a page is not taken for data.

``read_tables(path, tables, on_rows)`` hands the rows found to ``on_rows`` in batches (the tables in the order
given, then the rows of orphaned pages) and returns, per table, how many rows it found and how many of its pages
could not be read; memory stays at one batch. ``Table`` describes a table's columns in the order SQLite stores
them (for a WITHOUT ROWID table: primary-key columns first).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_MAGIC = b"SQLite format 3\x00"
_INDEX_INTERIOR, _TABLE_INTERIOR, _INDEX_LEAF, _TABLE_LEAF = 2, 5, 10, 13
_PAGE_TYPES = (_INDEX_INTERIOR, _TABLE_INTERIOR, _INDEX_LEAF, _TABLE_LEAF)
_LOCK_BYTE = 1 << 30  # the page holding this offset is never used by SQLite
_SCHEMA_SHAPE = (
    "text",
    "text",
    "text",
    "integer",
    "text",
)  # sqlite_schema: type, name, tbl_name, rootpage, sql


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "text", "integer" or "real" (a real column may hold integers: SQLite stores 2.0 as 2)
    nullable: bool = False

    def accepts(self, v: object) -> bool:
        if v is None:
            return self.nullable
        if self.kind == "text":
            return isinstance(v, str)
        if self.kind == "integer":
            return isinstance(v, int)
        return isinstance(v, int | float)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]  # in storage order
    without_rowid: bool = True

    def accepts(self, row: tuple[object, ...]) -> bool:
        return len(row) == len(self.columns) and all(
            c.accepts(v) for c, v in zip(self.columns, row, strict=True)
        )


@dataclass
class TableRows:
    rows: int = 0  # rows found (handed to on_rows)
    pages_read: int = 0
    bad_pages: int = 0  # pages of this table (reached from its own tree) that could not be read
    bad_cells: int = 0  # rows on pages that were read whose record could not be decoded
    root_found: bool = False


@dataclass
class PageScan:
    tables: dict[str, TableRows]
    page_size: int
    pages: int
    unreadable_pages: int  # pages that belong to no tree found and are not b-tree pages (not free pages)
    wal_frames: int  # committed write-ahead-log frames applied


class _Damaged(Exception):
    pass


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    v = 0
    for k in range(9):
        if i + k >= len(buf):
            raise _Damaged("varint past the end of the page")
        b = buf[i + k]
        if k == 8:
            return (v << 8) | b, i + 9
        v = (v << 7) | (b & 0x7F)
        if b < 0x80:
            return v, i + k + 1
    raise _Damaged("bad varint")  # pragma: no cover


def decode_record(payload: bytes) -> tuple[object, ...]:
    """One record (https://www.sqlite.org/fileformat2.html#record_format) as Python values."""
    head, i = _varint(payload, 0)
    if head < 1 or head > len(payload):
        raise _Damaged("bad record header")
    types = []
    while i < head:
        t, i = _varint(payload, i)
        types.append(t)
    if i != head:
        raise _Damaged("record header overruns")
    out: list[object] = []
    pos = head
    for t in types:
        if t == 0:
            out.append(None)
            continue
        if t in (8, 9):
            out.append(t - 8)
            continue
        if t in (10, 11):
            raise _Damaged("reserved serial type")
        size = (1, 2, 3, 4, 6, 8, 8)[t - 1] if t <= 7 else (t - 12) // 2 if t % 2 == 0 else (t - 13) // 2
        chunk = payload[pos : pos + size]
        if len(chunk) != size:
            raise _Damaged("record shorter than its header says")
        pos += size
        if t == 7:
            out.append(struct.unpack(">d", chunk)[0])
        elif t <= 6:
            out.append(int.from_bytes(chunk, "big", signed=True))
        elif t % 2 == 0:
            out.append(bytes(chunk))
        else:
            try:
                out.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                raise _Damaged("text is not UTF-8") from None
    if pos != len(payload):
        raise _Damaged("record longer than its header says")
    return tuple(out)


class _File:
    """The database's pages: the main file with the committed frames of its write-ahead log on top."""

    def __init__(self, path: Path) -> None:
        self.fh = open(path, "rb")  # noqa: SIM115 (closed by close())
        self.size = os.fstat(self.fh.fileno()).st_size
        head = self._read(0, 100)
        self.page_size, reserved = _header_geometry(head)
        self.header_ok = self.page_size != 0
        wal_path = path.with_name(path.name + "-wal")
        if not self.header_ok:
            self.page_size, reserved = _wal_page_size(wal_path) or self._guess_page_size(), 0
        self.usable = self.page_size - reserved
        self.wal: dict[int, bytes] = {}
        self.wal_frames = 0
        self._load_wal(wal_path)
        self.count = max([(self.size + self.page_size - 1) // self.page_size, *self.wal])
        # pages the database has: the header's count (a truncated file has fewer), else what the file holds
        header_pages = struct.unpack(">I", head[28:32])[0] if self.header_ok else 0
        self.expected = max(self.count, header_pages if header_pages < 1 << 31 else 0)
        first = self.page(1)
        # the freelist is only trusted from a sound header (garbage there would hide live pages)
        trusted = first is not None and (1 in self.wal or self.header_ok) and first[:16] == _MAGIC
        self.freelist_head = struct.unpack(">II", first[32:40]) if trusted and first else (0, 0)

    def close(self) -> None:
        self.fh.close()

    def _read(self, offset: int, n: int) -> bytes:
        self.fh.seek(offset)
        return self.fh.read(n)

    def page(self, n: int) -> bytes | None:
        if n < 1:
            return None
        if n in self.wal:
            return self.wal[n]
        data = self._read((n - 1) * self.page_size, self.page_size)
        return data if len(data) == self.page_size else None

    def _guess_page_size(self) -> int:
        """The header is gone: the size at which most pages look like b-tree pages."""
        best, best_hits = 4096, -1
        for size in (4096, 1024, 2048, 8192, 16384, 32768, 65536, 512):
            hits = 0
            for n in range(2, min(self.size // size, 64) + 1):
                data = self._read((n - 1) * size, size)
                if len(data) == size and _looks_like_page(data, 0, size):
                    hits += 1
            if hits > best_hits:
                best, best_hits = size, hits
        return best

    def _load_wal(self, wal: Path) -> None:
        try:
            data = wal.read_bytes()
        except OSError:
            return
        if len(data) < 32:
            return
        magic, _version, psize, _seq, salt1, salt2, c1, c2 = struct.unpack(">8I", data[:32])
        if magic not in (0x377F0682, 0x377F0683) or psize != self.page_size:
            return
        order = ">" if magic & 1 else "<"
        s = _wal_checksum(data[:24], order, 0, 0)
        if s != (c1, c2):
            return
        pending: dict[int, bytes] = {}
        frame = 24 + self.page_size
        off = 32
        while off + frame <= len(data):
            pgno, commit, fs1, fs2, fc1, fc2 = struct.unpack(">6I", data[off : off + 24])
            if (fs1, fs2) != (salt1, salt2):
                break
            page = data[off + 24 : off + frame]
            s = _wal_checksum(data[off : off + 8], order, *s)
            s = _wal_checksum(page, order, *s)
            if s != (fc1, fc2):
                break
            pending[pgno] = page
            if commit:
                self.wal.update(pending)
                self.wal_frames += len(pending)
                pending = {}
            off += frame


def _wal_page_size(wal: Path) -> int:
    try:
        with open(wal, "rb") as fh:
            head = fh.read(32)
    except OSError:
        return 0
    if len(head) < 32:
        return 0
    magic, _v, psize = struct.unpack(">3I", head[:12])
    ok = magic in (0x377F0682, 0x377F0683) and 512 <= psize <= 65536 and not psize & (psize - 1)
    return psize if ok else 0


def _wal_checksum(data: bytes, order: str, s0: int, s1: int) -> tuple[int, int]:
    words = struct.unpack(f"{order}{len(data) // 4}I", data)
    for k in range(0, len(words), 2):
        s0 = (s0 + words[k] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[k + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _header_geometry(head: bytes) -> tuple[int, int]:
    if len(head) < 100 or head[:16] != _MAGIC:
        return 0, 0
    size = struct.unpack(">H", head[16:18])[0]
    size = 65536 if size == 1 else size
    if size < 512 or size > 65536 or size & (size - 1):
        return 0, 0
    reserved = head[20]
    return size, reserved if reserved < size - 480 else 0


def _looks_like_page(data: bytes, off: int, usable: int) -> bool:
    if data[off] not in _PAGE_TYPES:
        return False
    interior = data[off] in (_INDEX_INTERIOR, _TABLE_INTERIOR)
    ncells = struct.unpack(">H", data[off + 3 : off + 5])[0]
    hdr = 12 if interior else 8
    if off + hdr + 2 * ncells > usable:
        return False
    lo = off + hdr + 2 * ncells
    return all(lo <= struct.unpack(">H", data[p : p + 2])[0] < usable for p in range(off + hdr, lo, 2))


@dataclass
class _Page:
    kind: int
    children: list[int]
    cells: list[bytes]  # record payloads (table interior pages carry none)
    bad_cells: int
    overflow: list[int]  # overflow pages this page's cells use


class _Reader:
    def __init__(self, f: _File) -> None:
        self.f = f

    def parse(self, n: int) -> _Page:
        data = self.f.page(n)
        if data is None:
            raise _Damaged(f"page {n} is past the end of the file")
        off = 100 if n == 1 else 0
        usable = self.f.usable
        if not _looks_like_page(data, off, usable):
            raise _Damaged(f"page {n} is not a b-tree page")
        kind = data[off]
        interior = kind in (_INDEX_INTERIOR, _TABLE_INTERIOR)
        ncells = struct.unpack(">H", data[off + 3 : off + 5])[0]
        hdr = 12 if interior else 8
        children: list[int] = []
        if interior:
            children.append(struct.unpack(">I", data[off + 8 : off + 12])[0])
        page = _Page(kind, [], [], 0, [])
        for k in range(ncells):
            p = struct.unpack(">H", data[off + hdr + 2 * k : off + hdr + 2 * k + 2])[0]
            try:
                if interior:
                    children.append(struct.unpack(">I", data[p : p + 4])[0])
                    p += 4
                if kind == _TABLE_INTERIOR:
                    continue  # only a rowid key
                size, p = _varint(data, p)
                if kind == _TABLE_LEAF:
                    _, p = _varint(data, p)  # the rowid
                page.cells.append(self._payload(data, p, size, kind, page.overflow))
            except _Damaged:
                page.bad_cells += 1
        page.children = children  # a child past the end of the file (truncation) is one damaged page
        return page

    def _payload(self, data: bytes, p: int, size: int, kind: int, overflow: list[int]) -> bytes:
        u = self.f.usable
        x = u - 35 if kind == _TABLE_LEAF else (u - 12) * 64 // 255 - 23
        if size <= x:
            local = size
        else:
            m = (u - 12) * 32 // 255 - 23
            k = m + (size - m) % (u - 4)
            local = k if k <= x else m
        if p + local > u or size > 1 << 30:
            raise _Damaged("cell runs past the page")
        out = bytearray(data[p : p + local])
        if local < size:
            nxt = struct.unpack(">I", data[p + local : p + local + 4])[0]
            seen: set[int] = set()
            while len(out) < size:
                page = self.f.page(nxt) if nxt not in seen else None
                if page is None:
                    raise _Damaged("broken overflow chain")
                seen.add(nxt)
                overflow.append(nxt)
                out += page[4:u][: size - len(out)]
                nxt = struct.unpack(">I", page[:4])[0]
        return bytes(out)

    def walk(self, root: int, *, index: bool) -> Iterator[tuple[int, _Page | None]]:
        """Every page of the tree under ``root`` (None for one that cannot be read), each once. ``index``: an
        index b-tree (WITHOUT ROWID tables), else a table b-tree."""
        seen: set[int] = set()
        stack = [(root, _INDEX_INTERIOR if index else _TABLE_INTERIOR)]
        while stack:
            n, parent_kind = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            try:
                page = self.parse(n)
                if not _child_fits(parent_kind, page.kind):
                    raise _Damaged(f"page {n} is not the kind its parent expects")
            except _Damaged:
                yield n, None
                continue
            yield n, page
            stack.extend((c, page.kind) for c in reversed(page.children))


def _child_fits(parent: int, child: int) -> bool:
    if parent == _INDEX_INTERIOR:
        return child in (_INDEX_INTERIOR, _INDEX_LEAF)
    return child in (_TABLE_INTERIOR, _TABLE_LEAF)


def _freelist(f: _File) -> set[int]:
    free: set[int] = set()
    trunk, total = f.freelist_head
    while trunk and trunk not in free and len(free) <= total + 1:
        data = f.page(trunk)
        if data is None:
            break
        free.add(trunk)
        nxt, n = struct.unpack(">II", data[:8])
        if n > (f.usable - 8) // 4:
            break
        free.update(struct.unpack(f">{n}I", data[8 : 8 + 4 * n]))
        trunk = nxt
    return free


def _rows(page: _Page, table: Table) -> Iterator[tuple[object, ...]]:
    for payload in page.cells:
        try:
            row = decode_record(payload)
        except _Damaged:
            page.bad_cells += 1
            continue
        if table.accepts(row):
            yield row
        else:
            page.bad_cells += 1


Rows = list[tuple[object, ...]]
BATCH = 20_000


def read_tables(
    path: Path | str, tables: list[Table], on_rows: Callable[[Table, Rows], None], *, batch: int = BATCH
) -> PageScan:
    """Every row still readable from the database file ``path`` (and its ``-wal``), for the given tables, handed
    to ``on_rows(table, rows)`` in batches of about ``batch``."""
    f = _File(Path(path))
    try:
        return _scan(f, tables, _Batches(on_rows, batch))
    finally:
        f.close()


class _Batches:
    def __init__(self, on_rows: Callable[[Table, Rows], None], size: int) -> None:
        self.on_rows = on_rows
        self.size = size
        self.pending: dict[str, tuple[Table, Rows]] = {}

    def add(self, table: Table, rows: Iterator[tuple[object, ...]] | Rows) -> int:
        _, buf = self.pending.setdefault(table.name, (table, []))
        n = len(buf)
        buf.extend(rows)
        added = len(buf) - n
        if len(buf) >= self.size:
            self.flush(table.name)
        return added

    def flush(self, name: str | None = None) -> None:
        for key in [name] if name else list(self.pending):
            table, buf = self.pending.pop(key, (None, []))
            if table is not None and buf:
                self.on_rows(table, buf)


def _scan(f: _File, tables: list[Table], out_rows: _Batches) -> PageScan:
    reader = _Reader(f)
    out = {t.name: TableRows() for t in tables}
    names = {t.name for t in tables}
    used: set[int] = {1}
    roots: dict[str, int] = {}
    bad: dict[str, set[int]] = {t.name: set() for t in tables}  # pages a table's tree points at, unreadable
    parsed: set[int] = set()
    schema = Table("sqlite_schema", tuple(Column(str(i), k, nullable=True) for i, k in enumerate(_SCHEMA_SHAPE)),
                   without_rowid=False)  # fmt: skip
    for n, page in reader.walk(1, index=False):
        used.add(n)
        if page is None:
            continue
        used.update(page.overflow)
        for row in _rows(page, schema):
            if row[0] == "table" and row[1] in names and isinstance(row[3], int):
                roots[str(row[1])] = int(row[3])
    for table in tables:  # in the order asked for (the tape first)
        name = table.name
        if name not in roots:
            continue
        root, acc = roots[name], out[name]
        acc.root_found = True
        for n, page in reader.walk(root, index=table.without_rowid):
            used.add(n)
            if page is None:
                bad[name].add(n)
                continue
            parsed.add(n)
            acc.pages_read += 1
            used.update(page.overflow)
            acc.rows += out_rows.add(table, _rows(page, table))
            acc.bad_cells += page.bad_cells
        out_rows.flush(name)
    free = _freelist(f)
    lock_page = _LOCK_BYTE // f.page_size + 1
    unreadable = 0
    for n in range(2, f.count + 1):
        if n in used or n in free or n == lock_page:
            continue
        try:
            page = reader.parse(n)
        except _Damaged:
            unreadable += 1
            continue
        # an orphan (its parent was destroyed): its rows go to the one table whose shape they have
        parsed.add(n)
        used.update(page.overflow)
        for payload in page.cells:
            try:
                row = decode_record(payload)
            except _Damaged:
                continue
            index = page.kind in (_INDEX_INTERIOR, _INDEX_LEAF)
            fits = [t for t in tables if t.accepts(row) and t.without_rowid == index]
            if len(fits) == 1:
                out[fits[0].name].rows += out_rows.add(fits[0], [row])
    out_rows.flush()
    # A damaged parent's garbage pointers lead anywhere: only a page that exists in the database and was read
    # nowhere (not as an orphan either) is a lost page.
    for name, pages in bad.items():
        out[name].bad_pages = sum(1 for n in pages if n <= f.expected and n not in parsed)
    return PageScan(out, f.page_size, f.count, unreadable, f.wal_frames)
