"""``python -m zoobot COMMAND ...``: zoobot's command line.

Commands:
    export: a finetuned checkpoint to ONNX (``python -m zoobot export --help``).
"""

from __future__ import annotations

import sys

USAGE = "usage: python -m zoobot export --checkpoint CKPT --out model.onnx [--task tree]"


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a command; usage on stderr and exit status 2 for an unknown one."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "export":
        print(f"{USAGE}\nunknown or missing command: {argv[:1]}", file=sys.stderr)
        return 2
    from zoobot.export import main as export_main

    return export_main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
