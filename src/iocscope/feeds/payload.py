"""Turn downloaded or imported bytes into feed text.

gzip, bzip2 and single-file zip archives are unpacked, recognized by their
magic bytes and not by the file name. Text is decoded as UTF-8 with a BOM
allowed. Invalid bytes become U+FFFD, so the line that contains them is
reported as a bad line instead of failing the whole file.
"""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
import zlib
from typing import Protocol

from iocscope.errors import FeedError

# Largest unpacked feed accepted, in bytes. By estimate, Tranco's top-1M CSV,
# the largest feed in the catalog, unpacks to about 22 MB (1M short lines).
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
_CHUNK = 1024 * 1024


def decode_payload(data: bytes, name: str, max_bytes: int = MAX_UNPACKED_BYTES) -> str:
    """Unpack ``data`` when it is compressed and decode it as UTF-8.

    Raises FeedError naming ``name`` when the archive is broken, contains more
    than one file or unpacks to more than ``max_bytes``.
    """
    try:
        raw = _unpack(data, name, max_bytes)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise FeedError(f"cannot unpack {name}: {exc}") from None
    return raw.decode("utf-8-sig", errors="replace")


def _unpack(data: bytes, name: str, max_bytes: int) -> bytes:
    if data.startswith(b"\x1f\x8b"):
        return _read_capped(gzip.GzipFile(fileobj=io.BytesIO(data)), name, max_bytes)
    if data.startswith(b"BZh"):
        return _read_capped(bz2.BZ2File(io.BytesIO(data)), name, max_bytes)
    if data.startswith(b"PK\x03\x04"):
        return _unzip(data, name, max_bytes)
    if len(data) > max_bytes:
        raise FeedError(_too_large(name, max_bytes))
    return data


def _unzip(data: bytes, name: str, max_bytes: int) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            raise FeedError(
                f"{name} is a zip archive with {len(members)} files; "
                "extract the one to import and import that file"
            )
        with archive.open(members[0]) as member:
            return _read_capped(member, name, max_bytes)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _read_capped(stream: _Readable, name: str, max_bytes: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise FeedError(_too_large(name, max_bytes))
        parts.append(chunk)
    return b"".join(parts)


def _too_large(name: str, max_bytes: int) -> str:
    return f"{name} is larger than {max_bytes // (1024 * 1024)} MiB unpacked"
