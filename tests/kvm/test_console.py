"""Reading a growing, untrusted serial console file."""

from __future__ import annotations

from hyperexport.kvm.console import MAX_CONSOLE_BYTES, ConsoleWatch
from hyperexport.kvm.models import (
    DEFAULT_FAILURE_MARKER,
    DEFAULT_MARKER,
    SAMPLE_MARKER_TEXT,
)


def test_marker_found_as_the_file_grows_and_escapes_are_stripped(tmp_path):
    console = tmp_path / "console.log"
    watch = ConsoleWatch(console, DEFAULT_MARKER, DEFAULT_FAILURE_MARKER)
    assert watch.poll() is None  # qemu has not created the file yet
    console.write_bytes(b"\x1bc\x1b[?7l\x1b[2JSeaBIOS\r\n" + b"x" * 100_000 + b"\nhyperexport-sam")
    assert watch.poll() is None and watch.poll() is None
    with open(console, "ab") as handle:
        handle.write(b"ple: root filesystem mounted, boot OK\r\n\x1b[=3h")
    assert watch.poll() == "marker"
    assert watch.tail(1) == SAMPLE_MARKER_TEXT


def test_login_prompt_and_failure_lines(tmp_path):
    console = tmp_path / "console.log"
    console.write_text("Debian GNU/Linux 12 web01 ttyS0\n\nweb01 login: ")
    assert ConsoleWatch(console, DEFAULT_MARKER, DEFAULT_FAILURE_MARKER).poll() == "marker"
    console.write_text("Booting from Hard Disk...\nBoot failed: not a bootable disk\nNo bootable device.\n")
    assert ConsoleWatch(console, DEFAULT_MARKER, DEFAULT_FAILURE_MARKER).poll() == "failure"
    assert ConsoleWatch(console, DEFAULT_MARKER, None).poll() is None


def test_a_flooding_guest_is_noticed_from_the_file_size(tmp_path):
    console = tmp_path / "console.log"
    with open(console, "wb") as handle:
        handle.truncate(MAX_CONSOLE_BYTES + 1)
    watch = ConsoleWatch(console, DEFAULT_MARKER)
    assert watch.flooded() and watch.tail(5) == ""  # NUL bytes are control characters, never shown
