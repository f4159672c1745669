"""Command line of the components package: ``python -m components render --stack NAME --out DIR``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.config import ConfigError, load_from_stack_file
from components.render import render_stack, write_tree

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser(
        "render",
        help="write every file the stack would put on its hosts, one folder per host (secrets masked)",
        description="Render, for review, every file the stack would put on its hosts. Needs no Pulumi CLI "
        "and no network; secrets are masked.",
    )
    render.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    render.add_argument("--out", required=True, type=Path, help="output directory (replaced as a whole)")
    render.add_argument(
        "--stack-file", type=Path, help="explicit stack file (default: Pulumi.<stack>.yaml next to Pulumi.yaml)"
    )
    commands.add_parser("reference", help="print the configuration reference (the README section)")
    args = parser.parse_args(argv)
    if args.command == "reference":
        from components.reference import reference_markdown

        print(reference_markdown())
        return 0

    stack_file = args.stack_file or REPO_ROOT / f"Pulumi.{args.stack}.yaml"
    if not stack_file.exists():
        print(f"error: no stack file {stack_file}", file=sys.stderr)
        return 2
    unset: list[str] = []
    try:
        cfg = load_from_stack_file(str(stack_file), unset_secrets=unset)
        files = render_stack(cfg)
    except ConfigError as error:
        print(f"error: {stack_file.name}: {error}", file=sys.stderr)
        return 1
    for key in unset:
        print(f"note: secret {key} is not set yet (masked here; `pulumi up` requires it)", file=sys.stderr)
    for path in write_tree(files, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
