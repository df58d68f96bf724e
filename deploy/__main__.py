"""``python -m deploy``: build the functions' bundles and check terraform against the code."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from deploy.requirements import REPO_ROOT

DEFAULT_OUT = REPO_ROOT / "build" / "bundles"

EPILOG = """\
examples:
  python -m deploy bundle                       every function into build/bundles/
  python -m deploy bundle decide notify         only these two
  python -m deploy bundle --out /tmp/b retrain  elsewhere
  python -m deploy requirements retrain         print retrain's requirements.txt
  python -m deploy graph decide                 what decide's code imports, and from where
  python -m deploy check                        terraform/ against shared/ and schedules/

A bundle is <name>.zip: main.py (functions/<name>/main.py), the shared package with its
package data, and a requirements.txt holding only what that function's code imports,
pinned with hashes from requirements.lock. Zips are deterministic (sorted entries, fixed
timestamps), so terraform redeploys a function only when its bundle's content changes.
"""


def _functions() -> list[str]:
    from shared.topology import FUNCTIONS

    return [f.name for f in FUNCTIONS]


def _source(name: str) -> str:
    from shared.topology import FUNCTIONS

    for f in FUNCTIONS:
        if f.name == name:
            return f.source
    raise SystemExit(f"unknown function {name!r}; known: {', '.join(_functions())}")


def cmd_bundle(args: argparse.Namespace) -> int:
    from deploy.bundle import build_all

    started = time.perf_counter()
    try:
        bundles = build_all(args.out, args.names or None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for b in bundles:
        size = b.path.stat().st_size / 1024
        print(f"  {b.function:<12} {size:8.1f} KiB  {len(b.requirements.pins):3d} pinned "
              f"distributions  sha256 {b.sha256[:16]}  {b.path}")
    print(f"built {len(bundles)} bundle(s) in {time.perf_counter() - started:.2f} s")
    return 0


def cmd_requirements(args: argparse.Namespace) -> int:
    from deploy.requirements import function_requirements

    sys.stdout.write(function_requirements(args.name, _source(args.name)).text())
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from deploy.requirements import NOT_RUN, function_requirements

    reqs = function_requirements(args.name, _source(args.name))
    print(f"{args.name}: {len(reqs.graph.modules)} first-party modules")
    for top, importers in reqs.graph.third_party.items():
        note = f"   NOT RUN: {NOT_RUN[args.name][top]}" if top in NOT_RUN.get(args.name, {}) else ""
        print(f"  {top:<26} <- {', '.join(importers)}{note}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from deploy.consistency import check_repository

    problems = check_repository(REPO_ROOT, args.terraform)
    for p in problems:
        print(f"  MISMATCH  {p}")
    print("terraform matches the code" if not problems else f"{len(problems)} mismatch(es)")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("bundle", help="build per-function zip bundles",
                       description="Build <out>/<name>.zip for each function (default: all six) "
                                   "and update <out>/manifest.json.")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="function names (chain_poll, news_ingest, decide, risk_check, retrain, "
                        "notify); default: all")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"output directory (default: {DEFAULT_OUT.relative_to(REPO_ROOT)})")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("requirements", help="print one function's requirements.txt")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_requirements)

    p = sub.add_parser("graph", help="show one function's third-party imports and importers")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("check", help="compare terraform/ with the code (exit 1 on a mismatch)")
    p.add_argument("--terraform", type=Path, default=REPO_ROOT / "terraform",
                   help="terraform root module (default: terraform/)")
    p.set_defaults(func=cmd_check)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
