"""``python -m blocks``: register hyperexport's block types with the server at PREFECT_API_URL."""

from __future__ import annotations

import sys

from . import register_block_types


def main() -> int:
    registered, skipped = register_block_types()
    for slug in registered:
        print(f"registered block type {slug}")
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
