"""``make fuzz``: coverage-guided fuzzing of every target with atheris (libFuzzer), one process each.

    python -m fuzz.run [TARGET...]              # all targets, FUZZ_SECONDS each (default 60)
    python -m fuzz.run --child TARGET [libFuzzer args...]   # one libFuzzer run (used by the above)

Each target's corpus lives in .fuzz/corpus/<target> (seeded from fuzz/corpus.py, grown across runs);
a crash, hang (-timeout) or memory blow-up (-rss_limit_mb) is written to .fuzz/crashes/. Prints the
executions per target; exits 1 if anything was found.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("FUZZ_DIR", ROOT / ".fuzz"))
#: RSS a target may reach: a decoder trusting a size field of 2^31-1 goes far past it
RSS_LIMIT_MB = int(os.environ.get("FUZZ_RSS_MB", "768"))
#: seconds one input may take
INPUT_TIMEOUT = int(os.environ.get("FUZZ_TIMEOUT", "10"))


def _child(name: str, argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["ferrymq", "kio"]):
        from fuzz import targets
    target = targets.TARGETS[name]
    atheris.Setup([sys.argv[0], *argv], target)
    atheris.Fuzz()


def _seed(name: str, corpus: Path) -> None:
    from fuzz.corpus import SEEDS

    corpus.mkdir(parents=True, exist_ok=True)
    for seed in SEEDS[name]():
        (corpus / f"seed-{hashlib.sha1(seed).hexdigest()[:16]}").write_bytes(seed)


def _run(name: str, seconds: int) -> tuple[int, bool, str]:
    """(executions, found something, libFuzzer's last lines)."""
    corpus = WORK / "corpus" / name
    crashes = WORK / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    _seed(name, corpus)
    cmd = [
        sys.executable, "-m", "fuzz.run", "--child", name,
        f"-max_total_time={seconds}", f"-rss_limit_mb={RSS_LIMIT_MB}", f"-timeout={INPUT_TIMEOUT}",
        f"-artifact_prefix={crashes}/{name}-", "-print_final_stats=1", str(corpus),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    log = proc.stderr
    (WORK / f"{name}.log").write_text(log)
    runs = [int(m) for m in re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)]
    runs += [int(m) for m in re.findall(r"^#(\d+)\s", log, re.M)]
    found = proc.returncode != 0
    return max(runs, default=0), found, "\n".join(log.strip().splitlines()[-25:]) if found else ""


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        _child(argv[1], argv[2:])
        return 0
    from fuzz.targets import TARGETS

    names = argv or list(TARGETS)
    seconds = int(os.environ.get("FUZZ_SECONDS", "60"))
    failed = []
    for name in names:
        runs, found, tail = _run(name, seconds)
        print(
            f"{name:24} {runs:>10} executions in {seconds}s  {'FOUND A CRASH' if found else 'ok'}", flush=True
        )
        if found:
            failed.append(name)
            print(tail)
    if failed:
        print(f"findings in {', '.join(failed)}: inputs in {WORK / 'crashes'}, logs in {WORK}/<target>.log")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
