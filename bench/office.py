"""Office files into a SharePoint library: what the first run and a re-run cost.

    .venv/bin/python bench/office.py [--files 50] [--no-proof]

A library rewrites the Office files committed to it (the emulator does, as SharePoint does), so
each file's stored hash differs from the bytes sent and sharelift proves it part by part (one
download per file) before it records it. This runs `sharelift migrate` twice into the sample
tenant's team site library (`/sites/Team/Shared Documents/Office`) on a fresh emulator in its
own process, `--files` docx, xlsx and pptx of realistic sizes (sharelift.emulator.samples:
mostly tens to hundreds of KiB, some of several MiB), and prints, from the emulator's counters
(`/_emulator/stats`, reset before each run): requests (HTTP plus those inside `$batch`) by kind,
uploads (fragment PUTs) and downloads per file, and the re-run's requests per file. A copy goes
to bench/results/office.md.
"""

from __future__ import annotations

import argparse
import shutil

from common import DATA, PYTHON, RESULTS, Emulator, Run, clean_env, measure
from sharelift.emulator.samples import write_office_tree

TEAM_LIBRARY = "https://contoso.sharepoint.com/sites/Team/Shared Documents/Office"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--no-proof", action="store_true", help="--no-prove-office-files")
    args = parser.parse_args()
    source = DATA / f"office-{args.files}"
    if source.exists():
        shutil.rmtree(source)
    files = write_office_tree(source, args.files)
    total = sum(len(d) for d in files.values())
    emulator = Emulator("office")
    work = RESULTS / "office"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    command = [
        PYTHON, "-m", "sharelift", "migrate", str(source), TEAM_LIBRARY,
        "--emulator", str(emulator.data), "--state", str(work / "state.db"), "--quiet",
    ]  # fmt: skip
    if args.no_proof:
        command.append("--no-prove-office-files")
    env = clean_env(work, None)
    lines = [
        f"{args.files} Office files, {total / 2**20:.1f} MiB, into a library "
        f"({'proof off' if args.no_proof else 'proof on'})",
        "",
        "| run | exit | wall s | requests | by kind | uploads / file | downloads / file "
        "| requests / file |",
        "|---|---|---|---|---|---|---|---|",
    ]
    try:
        for name in ("first run", "re-run"):
            run = measure(Run(name, command), env, emulator, work / f"{name}.log")
            stats = run.stats
            kinds = {k: v for k, v in sorted(stats["by_kind"].items()) if k != "identity"}
            graph = sum(kinds.values())
            n = args.files
            lines.append(
                f"| {name} | {run.returncode} | {run.wall:.1f} | {graph} | "
                + ", ".join(f"{k} {v}" for k, v in kinds.items())
                + f" | {kinds.get('upload', 0) / n:.2f} | {kinds.get('download', 0) / n:.2f} "
                f"| {graph / n:.2f} |"
            )
    finally:
        emulator.stop()
    lines.append("")
    lines.append("Requests exclude sign-in (`identity`); a `$batch` counts as itself plus each")
    lines.append("request inside it.")
    text = "\n".join(lines)
    print(text)
    (RESULTS / "office.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
