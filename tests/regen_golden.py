"""Regenerate fixtures/fix/*/after from before: python tests/regen_golden.py (review the diff!)."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    for case in sorted((ROOT / "fixtures" / "fix").iterdir()):
        after = case / "after"
        shutil.rmtree(after, ignore_errors=True)
        shutil.copytree(case / "before", after)
        subprocess.run([sys.executable, "-m", "redis_pool_lint", "fix", "."], cwd=after,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        print(case.name)


if __name__ == "__main__":
    main()
