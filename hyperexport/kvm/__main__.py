"""``python -m hyperexport.kvm DEST.ova [--efi]``: build the bootable sample VM as an OVA."""

from __future__ import annotations

from pathlib import Path

from .sample_ova import make_bootable_ova


def main(argv: list[str] | None = None) -> int:
    """``python -m hyperexport.kvm DEST.ova [--efi]``: build the bootable sample as an OVA."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hyperexport.kvm", description=main.__doc__)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--efi", action="store_true", help="mark the VM as UEFI in the OVF")
    parser.add_argument("--name", default="bootable-sample")
    args = parser.parse_args(argv)
    print(make_bootable_ova(args.dest, args.name, efi=args.efi))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
