"""Score redis-pool-lint on real code: a hand-labelled manifest and an exported corpus.

    python benchmarks/realworld.py --corpus CORPUS [--manifest M.json ...] [--flake8] [--fix]

``CORPUS`` holds one folder per repository, named ``owner__repo`` (what
``shared/realworld/export`` writes; export the project's own manifest with
``export --mirrors M --out EXTRA --manifest benchmarks/realworld.json``, its commits pinned).
Repositories of a manifest that are not in ``CORPUS`` are listed and left out. The manifests are
lists of labelled files
(``repo``, ``commit``, ``path``, ``lines.construction``, ``lines.handler``, ``kind``,
``verdict``, ``note``); the default is ``../shared/realworld/manifest.json`` and the project's own
``benchmarks/realworld.json``. Third-party code is only read from ``CORPUS``; nothing of it is
stored in the project.

For every repository ``check --extend-select=RPL107`` runs once, in the repository's folder (its
own configuration applies, as for a user). A per-request finding is one of RPL0xx or RPL1xx. Each
``SHOULD_FLAG`` file is *cited* (a per-request finding on one of its labelled lines), *elsewhere*
(findings in the file, none on those lines) or *missed*; each ``SHOULD_NOT_FLAG`` file with a
per-request finding is a *false positive*. ``--flake8`` scores flake8 with the plugin the same way
and lists any file where the two faces disagree. ``--fix`` copies each repository, runs
``fix --extend-select=RPL107`` on the copy and counts the positive files that lost their per-request
findings (``NO-AUTOFIX`` files, whose clients depend on the request, are counted apart).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Set, Tuple

HERE = Path(__file__).resolve().parent
DEFAULT_MANIFESTS = [HERE.parent.parent / "shared" / "realworld" / "manifest.json", HERE / "realworld.json"]
SELECT = "--extend-select=RPL107"

#: (relative path, line, code) of a finding
Finding = Tuple[str, int, str]


def per_request(code: str) -> bool:
    return code.startswith(("RPL0", "RPL1")) and code != "RPL000"


def load_manifests(paths: Iterable[Path]) -> List[dict]:
    entries = []
    for p in paths:
        if p.is_file() and p.stat().st_size:
            entries.extend(json.loads(p.read_text()))
    return entries


def run_check(repo_dir: Path, *extra: str) -> Tuple[Set[Finding], str]:
    """Findings of ``check`` on one repository, and its stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "redis_pool_lint", "check", SELECT, "--output-format=json", "--exit-zero",
         "--jobs", "1", *extra, "."],
        cwd=repo_dir, capture_output=True, text=True,
    )
    try:
        rows = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return set(), f"unreadable output (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
    found = {(os.path.relpath(os.path.join(repo_dir, r["filename"]), repo_dir), r["location"]["row"], r["code"])
             for r in rows}
    return found, proc.stderr.strip()


def run_flake8(repo_dir: Path, paths: List[str]) -> Tuple[Set[Finding], str]:
    """flake8 on the labelled files only, as pre-commit runs it: the plugin still reads the project."""
    proc = subprocess.run(
        [sys.executable, "-m", "flake8", "--select=RPL", "--extend-select=RPL107", "--exit-zero", "-j1",
         "--format=%(path)s\t%(row)d\t%(code)s", *paths],
        cwd=repo_dir, capture_output=True, text=True,
    )
    found = set()
    for line in proc.stdout.splitlines():
        path, row, code = line.split("\t")
        found.add((os.path.normpath(path), int(row), code))
    return found, proc.stderr.strip()


def score(entries: List[dict], findings: Dict[str, Set[Finding]]) -> Dict[str, collections.Counter]:
    """Per kind: cited / elsewhere / missed for positives, fp / clean for negatives."""
    by_kind: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for e in entries:
        if e["repo"] not in findings:
            continue
        rows = {line for (p, line, code) in findings[e["repo"]] if p == os.path.normpath(e["path"]) and per_request(code)}
        cited = set(e["lines"].get("construction", [])) | set(e["lines"].get("handler", []))
        if e["verdict"] == "SHOULD_FLAG":
            outcome = "cited" if rows & cited else "elsewhere" if rows else "missed"
        else:
            outcome = "fp" if rows else "clean"
        e["_outcome"] = outcome
        by_kind[e["kind"]][outcome] += 1
    return by_kind


def print_table(title: str, by_kind: Dict[str, collections.Counter], entries: List[dict], verbose: bool) -> None:
    total = collections.Counter()
    for c in by_kind.values():
        total.update(c)
    pos = total["cited"] + total["elsewhere"] + total["missed"]
    neg = total["fp"] + total["clean"]
    print(f"\n## {title}\n")
    print("| kind | files | cited | elsewhere | missed | false positive |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in sorted(by_kind):
        c = by_kind[kind]
        print(f"| {kind} | {sum(c.values())} | {c['cited']} | {c['elsewhere']} | {c['missed']} | {c['fp']} |")
    print(f"| **all** | {pos + neg} | {total['cited']} | {total['elsewhere']} | {total['missed']} | {total['fp']} |")
    if pos:
        print(f"\npositives found on cited lines: {total['cited']}/{pos} = {total['cited'] / pos:.2f}; "
              f"anywhere in the file: {(total['cited'] + total['elsewhere']) / pos:.2f}; "
              f"negatives flagged: {total['fp']}/{neg}")
    if verbose:
        for e in entries:
            if e.get("_outcome") in ("missed", "elsewhere", "fp"):
                print(f"  {e['_outcome']:9} {e['kind']:38} {e['repo']}/{e['path']}")


def run_fix(repo_dir: Path, scratch: Path) -> Tuple[Path, str]:
    copy = scratch / repo_dir.name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(repo_dir, copy, symlinks=True)
    proc = subprocess.run(
        [sys.executable, "-m", "redis_pool_lint", "fix", SELECT, "--jobs", "1", "--show-fixes", "."],
        cwd=copy, capture_output=True, text=True,
    )
    return copy, proc.stdout + proc.stderr


def api_beyond_pin(original: Path, fixed: Path) -> List[str]:
    """Files the fix gave ``from_pool()``/``aclose()`` in a project whose files pin a redis-py
    without them (the version installed here does not count: the project's does)."""
    import importlib.util

    # this checkout's reader, whatever version of the tool PYTHONPATH puts under test
    spec = importlib.util.spec_from_file_location(
        "rpl_versions", Path(__file__).resolve().parent.parent / "redis_pool_lint" / "analysis" / "versions.py")
    versions = sys.modules.setdefault("rpl_versions", importlib.util.module_from_spec(spec))
    if not hasattr(versions, "read_pins"):
        spec.loader.exec_module(versions)
    pin = versions.read_pins(str(original), None)["redis"]
    FROM_POOL = versions.FROM_POOL
    if pin.source.startswith("installed") or pin.version is None or pin.version >= FROM_POOL:
        return []
    out = []
    for new in sorted(fixed.rglob("*.py")):
        old = original / new.relative_to(fixed)
        before = old.read_text(errors="replace") if old.exists() else ""
        after = new.read_text(errors="replace")
        if any(after.count(api) > before.count(api) for api in (".from_pool(", ".aclose(")):
            out.append(str(new.relative_to(fixed)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, required=True, help="folder of owner__repo folders")
    ap.add_argument("--manifest", type=Path, action="append", help="labelled files (default: the shared and the project's)")
    ap.add_argument("--flake8", action="store_true", help="score the flake8 plugin too and compare")
    ap.add_argument("--fix", action="store_true", help="fix copies and count the positives fixed")
    ap.add_argument("--repo", action="append", help="only these repositories (owner/repo)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every file not found or flagged wrongly")
    ap.add_argument("--json", type=Path, help="write every outcome here")
    a = ap.parse_args(argv)

    entries = load_manifests(a.manifest or DEFAULT_MANIFESTS)
    if a.repo:
        entries = [e for e in entries if e["repo"] in a.repo]
    repos = sorted({e["repo"] for e in entries})
    absent = [r for r in repos if not (a.corpus / r.replace("/", "__")).is_dir()]
    if absent:
        print(f"not in the corpus (export them first): {', '.join(absent)}", file=sys.stderr)
    repos = [r for r in repos if r not in absent]

    check: Dict[str, Set[Finding]] = {}
    flake: Dict[str, Set[Finding]] = {}
    crashes = []
    for repo in repos:
        d = a.corpus / repo.replace("/", "__")
        check[repo], err = run_check(d)
        if "Traceback" in err or "unreadable output" in err:
            crashes.append((repo, err.splitlines()[-1]))
        if a.flake8:
            flake[repo], err = run_flake8(d, sorted({e["path"] for e in entries if e["repo"] == repo}))
            if "Traceback" in err:
                crashes.append((repo + " (flake8)", err.splitlines()[-1]))

    print(f"# Real-code benchmark: {len(entries)} labelled files in {len(repos)} repositories")
    print_table("check " + SELECT, score(entries, check), entries, a.verbose)
    outcomes = {(e["repo"], e["path"]): e.get("_outcome") for e in entries}
    if a.flake8:
        print_table("flake8 --select=RPL " + SELECT, score(entries, flake), entries, a.verbose)
        differ = []
        for repo in repos:
            labelled = {os.path.normpath(e["path"]) for e in entries if e["repo"] == repo}
            c = {f for f in check[repo] if per_request(f[2]) and f[0] in labelled}
            f8 = {f for f in flake[repo] if per_request(f[2])}
            if c != f8:
                differ.append((repo, sorted(c ^ f8)[:4]))
        print(f"\nrepositories where flake8 and check differ on the labelled files: {len(differ)}")
        for repo, diff in differ:
            print(f"  {repo}: {diff}")
    if crashes:
        print(f"\ncrashes: {len(crashes)}")
        for repo, line in crashes:
            print(f"  {repo}: {line}")

    if a.fix:
        fixed_by_kind: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        reasons = collections.Counter()
        unsafe: List[str] = []
        left_lines: Dict[Tuple[str, str], List[str]] = {}
        with tempfile.TemporaryDirectory(prefix="rpl-fix-") as scratch:
            for repo in repos:
                mine = [e for e in entries if e["repo"] == repo and e["verdict"] == "SHOULD_FLAG"]
                if not mine:
                    continue
                copy, out = run_fix(a.corpus / repo.replace("/", "__"), Path(scratch))
                for line in out.splitlines():
                    if "not fixed" in line:
                        reasons[line.split("not fixed", 1)[1].strip(" :")[:110]] += 1
                        left_lines.setdefault((repo, os.path.normpath(line.split(":", 1)[0])), []).append(line)
                unsafe.extend(f"{repo}/{p}" for p in api_beyond_pin(a.corpus / repo.replace("/", "__"), copy))
                after, _ = run_check(copy)
                for e in mine:
                    left = {f for f in after if f[0] == os.path.normpath(e["path"]) and per_request(f[2])}
                    kind = "request-dependent (NO-AUTOFIX)" if "NO-AUTOFIX" in e.get("note", "") else e["kind"]
                    before = outcomes[(e["repo"], e["path"])]
                    if before == "missed":
                        fixed_by_kind[kind]["not detected"] += 1
                    else:
                        fixed_by_kind[kind]["fixed" if not left else "left"] += 1
                    e["_fix"] = "fixed" if before != "missed" and not left else "left"
        print("\n## fix " + SELECT + " (on copies)\n")
        print("| kind | positive files | fixed | left | not detected |")
        print("|---|---:|---:|---:|---:|")
        tot = collections.Counter()
        for kind in sorted(fixed_by_kind):
            c = fixed_by_kind[kind]
            if not kind.startswith("request-dependent"):
                tot.update(c)
            print(f"| {kind} | {sum(c.values())} | {c['fixed']} | {c['left']} | {c['not detected']} |")
        n = sum(tot.values())
        if n:
            print(f"\nfixable positives fixed: {tot['fixed']}/{n} = {tot['fixed'] / n:.2f}")
        if reasons:
            print("\nreasons printed for findings left:")
            for r, k in reasons.most_common():
                print(f"  {k:3} {r}")
        print(f"\nrewrites that use API the pinned redis-py lacks (from_pool/aclose before 5.0.1): {len(unsafe)}")
        for path in unsafe:
            print(f"  {path}")
        if a.verbose:
            for e in entries:
                if e.get("_fix") == "left":
                    print(f"  left      {e['kind']:38} {e['repo']}/{e['path']}")
                    for line in left_lines.get((e["repo"], os.path.normpath(e["path"])), [])[:3]:
                        print(f"              {line[:150]}")
    if a.json:
        a.json.write_text(json.dumps([{k: v for k, v in e.items()} for e in entries], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
