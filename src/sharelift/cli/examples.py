"""The "Examples" section at the end of every `--help` page.

Each command has a few examples a person would type first. The closing lines are made from the
command's options in sharelift.config: how one of them is set from the environment and from a
config file, so that every page says where else its flags can come from.
"""

from __future__ import annotations

import argparse
import textwrap

from sharelift.config import options_for

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "scan": [
        ("sharelift scan /mnt/dept", "what in /mnt/dept cannot go as it is, and why"),
        (
            "sharelift scan /mnt/dept onedrive:megan@contoso.com/Dept --report ./scan",
            "paths counted under megan's OneDrive folder; CSV and JSON reports in ./scan",
        ),
        (
            "sharelift scan /mnt/dept drive:b!Xyz/Dept --emulator ./tenant",
            "TARGET resolved through Graph (here the local emulator)",
        ),
        ("sharelift scan /mnt/dept --fail-on-findings --json", "for CI: exit 1 on any finding"),
    ],
    "migrate": [
        (
            "sharelift migrate /mnt/dept 'https://contoso.sharepoint.com/sites/Team/"
            "Shared Documents/Dept'",
            "the contents of /mnt/dept into a library folder (run again: only what changed)",
        ),
        (
            "sharelift migrate ./share onedrive:megan@contoso.com/Share --emulator ./tenant",
            "into the local emulator, no tenant needed (start it: sharelift emulator --data "
            "./tenant)",
        ),
        (
            "sharelift migrate /mnt/dept onedrive:megan@contoso.com --dry-run --json",
            "the plan as JSON lines, one per item; nothing changes",
        ),
        (
            "sharelift migrate --jobs jobs.csv --dry-run",
            "pre-flight of an SPMT job file: every row checked, nothing written",
        ),
        (
            "sharelift migrate --jobs jobs.csv --provision --max-parallel-jobs 8",
            "every row, OneDrives created first",
        ),
        (
            "sharelift migrate /mnt/dept onedrive:megan@contoso.com --dashboard 8765",
            "with the web dashboard beside the run, while it lasts",
        ),
        (
            "sharelift migrate --jobs jobs.csv --broker redis://queue.corp:6379/0 "
            "--state postgresql://sharelift@db.corp/sharelift",
            "every row handed to the cluster's workers, and followed (docs/scale-out.md)",
        ),
    ],
    "provision": [
        ("sharelift provision megan@contoso.com alex@contoso.com", "two OneDrives, waited for"),
        ("sharelift provision --users wave1.csv --no-wait", "ask for them all, do not wait"),
        ("sharelift provision --jobs jobs.csv", "the OneDrive targets of a job file"),
    ],
    "versions": [
        (
            "sharelift versions prune 'https://contoso.sharepoint.com/sites/Team/"
            "Shared Documents/Dept'",
            "remove the old versions of every file under a library folder (`sharelift "
            "versions prune --help`)",
        ),
    ],
    "versions prune": [
        (
            "sharelift versions prune 'https://contoso.sharepoint.com/sites/Team/"
            "Shared Documents/Dept' --dry-run",
            "count the old versions of every file under the folder and the space they hold",
        ),
        (
            "sharelift versions prune onedrive:megan@contoso.com/Share --auth certificate "
            "--tenant contoso.com --client-id 1111-2222 --certificate app.pem",
            "remove them, unattended; stopped, it resumes where it was",
        ),
    ],
    "status": [
        ("sharelift status", "every job, its last round and progress (also during a run)"),
        ("sharelift status --jobs jobs.csv --json", "only the jobs of one job file, as JSON"),
    ],
    "report": [
        ("sharelift report --out ./reports", "the last round's reports, rebuilt"),
        ("sharelift report --job 3 --round 2 --out ./r", "one round of one job"),
    ],
    "worker": [
        (
            "sharelift worker --broker redis://queue.corp:6379/0 "
            "--state postgresql://sharelift@db.corp/sharelift --profile nightly",
            "one worker machine of a cluster; it signs in with its own profile",
        ),
        (
            "sharelift worker --broker redis://queue.corp:6379/0 "
            "--state postgresql://sharelift@db.corp/sharelift --queue emea",
            "a worker of the emea group (job-file rows whose Agent Group is emea)",
        ),
    ],
    "login": [
        (
            "sharelift login --tenant contoso.com --client-id 1111-2222",
            "sign in once by device code; later runs need no prompt",
        ),
        (
            "sharelift login --auth certificate --tenant contoso.com --client-id 1111-2222 "
            "--certificate app.pem --profile nightly",
            "save an unattended profile (use it with --profile nightly)",
        ),
    ],
    "logout": [("sharelift logout --profile nightly", "forget a profile and its tokens")],
    "emulator": [
        ("sharelift emulator --data ./tenant", "a local tenant on a free port"),
        (
            "sharelift emulator --data ./tenant --ru-per-minute 600 --error-rate 0.01",
            "with throttling and random server errors",
        ),
    ],
    "dashboard": [
        (
            "sharelift dashboard",
            "the jobs of the default state store, on 127.0.0.1 (a free port, printed)",
        ),
        (
            "sharelift dashboard --state /srv/sharelift/state.db --host 0.0.0.0 --port 8080",
            "for the whole team (a token is printed; put it behind TLS)",
        ),
    ],
    "demo": [
        ("sharelift demo", "scan and migrate a sample share into a throwaway emulator"),
        ("sharelift demo --via migration-api", "the same through the SharePoint Migration API"),
    ],
    "config": [
        ("sharelift config show migrate --emulator ./tenant", "what a run would use, and why"),
        ("sharelift config docs > options.md", "the options reference"),
    ],
    "config show": [
        ("sharelift config show migrate", "each setting of migrate and where it came from"),
        ("SHARELIFT_WORKERS=8 sharelift config show migrate", "an environment variable wins"),
    ],
    "config docs": [("sharelift config docs", "every option, its variable and config key")],
}


def epilog(command: str) -> str:
    """The Examples section of `command` ("config show" for a subcommand)."""
    lines = ["Examples:"]
    for example, what in EXAMPLES[command]:
        lines += [f"  {example}", f"      {what}"]
    flagged = [o for o in options_for(command.split()[0]) if o.flag and o.key and not o.secret]
    if flagged:
        # One of the command's own options says more than those every command shares.
        shared = ("general", "connection")
        option = next((o for o in flagged if o.group not in shared), flagged[-1])
        section, _, key = option.key.rpartition(".") if option.key else ("", "", "")
        where = f"[{section}] {key} = ..." if section else f"{key} = ..."
        text = (
            f"Every option can also come from the environment ({option.flag} is "
            f"{option.env}) or from a config file given with --config ({where}); "
            f"`sharelift config show {command.split()[0]}` shows what a run would use."
        )
        lines += ["", *textwrap.wrap(text, 78)]
    return "\n".join(lines)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that the Examples section keeps its lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("Examples:"):
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


def add_examples(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Give every subcommand's parser below `parser` its Examples section."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                command = f"{prefix} {name}".strip()
                sub.epilog = epilog(command)
                sub.formatter_class = HelpFormatter
                add_examples(sub, command)
