"""Per-function source bundles: ``main.py`` + the ``shared`` package + ``requirements.txt``.

A bundle is what Cloud Functions builds from (terraform uploads it; modules/function),
laid out as the functions-framework expects at the root of the source:

    main.py            functions/<name>/main.py
    requirements.txt   the function's own pins (deploy.requirements)
    shared/...         the shared package: its modules and the package data pyproject.toml
                       declares (migrations, dated market rules)

Zips are deterministic: sorted entries, a fixed timestamp and fixed permissions, so the
bundle's SHA-256 (terraform names the uploaded object by it) changes only when a file
does.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from deploy.requirements import REPO_ROOT, FunctionRequirements, function_requirements

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
_SKIP_DIRS = {"__pycache__"}


@dataclass(frozen=True)
class Bundle:
    function: str
    path: Path
    sha256: str
    files: tuple[str, ...]
    requirements: FunctionRequirements

    def manifest(self) -> dict[str, object]:
        return {"function": self.function, "zip": self.path.name, "sha256": self.sha256,
                "files": len(self.files), "distributions": list(self.requirements.distributions),
                "not_run": self.requirements.not_run}


def package_files(root: Path = REPO_ROOT, package: str = "shared") -> list[tuple[str, Path]]:
    """The files an installed ``package`` holds: every module of its package tree and the
    package data of pyproject.toml's ``[tool.setuptools.package-data]``."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    data = pyproject.get("tool", {}).get("setuptools", {}).get("package-data", {})
    base = root / package
    found: dict[str, Path] = {}
    for path in base.rglob("*.py"):
        rel = path.relative_to(root)
        if _SKIP_DIRS.isdisjoint(rel.parts):
            found[rel.as_posix()] = path
    for pkg, patterns in data.items():
        pkg_dir = root.joinpath(*pkg.split("."))
        for pattern in patterns:
            for path in pkg_dir.glob(pattern):
                if path.is_file():
                    found[path.relative_to(root).as_posix()] = path
    return sorted(found.items())


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix, so the permissions below mean the same everywhere
    info.external_attr = 0o100644 << 16
    return info


def write_zip(path: Path, files: list[tuple[str, bytes]]) -> str:
    """Write ``files`` (archive name, content) deterministically; returns the SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, content in sorted(files):
            zf.writestr(_entry(name), content, compresslevel=9)
    tmp.replace(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_bundle(function: str, source: str, out_dir: Path, *, root: Path = REPO_ROOT) -> Bundle:
    """Build ``out_dir/<function>.zip`` for the function whose folder is ``source``."""
    reqs = function_requirements(function, source, root=root)
    main = root / source / "main.py"
    files: list[tuple[str, bytes]] = [
        ("main.py", main.read_bytes()),
        ("requirements.txt", reqs.text().encode()),
    ]
    files += [(name, path.read_bytes()) for name, path in package_files(root)]
    names = [name for name, _ in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{function}: duplicate bundle entries {dupes}")
    zip_path = out_dir / f"{function}.zip"
    digest = write_zip(zip_path, files)
    return Bundle(function, zip_path, digest, tuple(sorted(names)), reqs)


def build_all(out_dir: Path, names: list[str] | None = None, *,
              root: Path = REPO_ROOT) -> list[Bundle]:
    """Build the bundles of ``names`` (default: every function of shared.topology) and
    write ``manifest.json`` beside them."""
    from shared.topology import FUNCTIONS

    specs = {f.name: f for f in FUNCTIONS}
    wanted = names or list(specs)
    unknown = sorted(set(wanted) - set(specs))
    if unknown:
        raise ValueError(f"unknown function(s) {unknown}; known: {sorted(specs)}")
    bundles = [build_bundle(n, specs[n].source, out_dir, root=root) for n in wanted]
    manifest = out_dir / "manifest.json"
    previous = json.loads(manifest.read_text()) if manifest.is_file() else {}
    previous.update({b.function: b.manifest() for b in bundles})
    manifest.write_text(json.dumps(dict(sorted(previous.items())), indent=2) + "\n")
    return bundles
