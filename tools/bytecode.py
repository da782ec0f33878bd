"""Add CPython bytecode to a deployment zip, compiled by the interpreter that runs this script.

    python3.12 tools/bytecode.py .serverless/overcast.zip

A function's filesystem is read-only, so a zip of sources makes every cold start compile every
module it imports (~30 ms of CPU for ours on this machine; several times that at Lambda's
fractional CPU). Bytecode must come from the runtime's own minor version, which is why this runs
under that interpreter (the Serverless plugin tools/sls/bytecode.js finds it), not the project's
venv, and uses the standard library only.

Each ``pkg/mod.py`` gets ``pkg/__pycache__/mod.cpython-3XY.pyc`` in checked-hash mode: the
interpreter hashes the source on import and ignores bytecode that does not match it, so a stale
.pyc is never run, and zip timestamps (2 s resolution, rewritten on extraction) do not matter.
"""

from __future__ import annotations

import importlib.util
import os
import py_compile
import sys
import tempfile
import zipfile
from pathlib import Path


def cache_name(source: str) -> str:
    """``a/b.py`` → ``a/__pycache__/b.cpython-3XY.pyc`` for this interpreter."""
    return Path(importlib.util.cache_from_source(source)).as_posix()


def add_bytecode(zip_path: Path) -> tuple[int, list[str]]:
    """Rewrite ``zip_path`` with a checked-hash .pyc beside each .py; (compiled, failed names).
    Entries already there are kept as they are; the zip is replaced only when complete."""
    with zipfile.ZipFile(zip_path) as archive:
        entries = archive.infolist()
        names = {e.filename for e in entries}
        sources = [e for e in entries if e.filename.endswith(".py") and cache_name(e.filename) not in names]
        compiled: dict[str, bytes] = {}
        failed: list[str] = []
        with tempfile.TemporaryDirectory() as scratch:
            for entry in sources:
                source = Path(scratch, "src", entry.filename)
                source.parent.mkdir(parents=True, exist_ok=True)
                source.write_bytes(archive.read(entry))
                target = Path(scratch, "pyc", entry.filename + "c")
                try:
                    py_compile.compile(
                        str(source),
                        cfile=str(target),
                        dfile=entry.filename,
                        doraise=True,
                        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                    )
                except py_compile.PyCompileError:
                    failed.append(entry.filename)  # imported as source, as before (or never)
                    continue
                compiled[cache_name(entry.filename)] = target.read_bytes()
        partial = zip_path.with_name(zip_path.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            for entry in entries:
                out.writestr(entry, archive.read(entry))
                pyc = cache_name(entry.filename) if entry.filename.endswith(".py") else None
                if pyc in compiled:
                    info = zipfile.ZipInfo(pyc, date_time=entry.date_time)
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    out.writestr(info, compiled[pyc])
    os.replace(partial, zip_path)
    return len(compiled), failed


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    zip_path = Path(argv[0])
    if not zip_path.is_file():
        print(f"bytecode: no zip at {zip_path}", file=sys.stderr)
        return 2
    count, failed = add_bytecode(zip_path)
    tag = sys.implementation.cache_tag
    print(f"bytecode: {count} modules compiled for {tag} (checked-hash) into {zip_path.name}")
    if failed:
        print(f"bytecode: {len(failed)} did not compile and ship as sources only: {', '.join(failed[:5])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
