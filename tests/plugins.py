"""Register test sources through the real ``iocscope.sources`` entry-point group.

``registered_sources`` writes a minimal installed-distribution record (a
``.dist-info`` folder with ``entry_points.txt``) into a temporary folder and puts
that folder on ``sys.path``, which is exactly how an installed third-party plugin
package is discovered.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def registered_sources(folder: Path, entries: Mapping[str, str]) -> Iterator[None]:
    """Install entry points ``name = module:loader`` for the duration of a block."""
    dist_info = folder / "iocscope_test_plugin-1.0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: iocscope-test-plugin\nVersion: 1.0\n"
    )
    lines = ["[iocscope.sources]"] + [f"{k} = {v}" for k, v in entries.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
