"""Which VHDs are fixed beyond doubt, so that the bytes before the footer are the guest's disk."""

from __future__ import annotations

import struct

import pytest
from support.azure_vhd import footer

from hyperexport.transfer.prefix import PrefixSource
from hyperexport.transfer.source import DataRange, SourceInfo
from hyperexport.vhd_footer import fixed_data_size, read_footer

SIZE = 16 * 2**20


def _with_checksum(data: bytearray) -> bytes:
    struct.pack_into(">I", data, 64, ~sum(data[:64] + data[68:]) & 0xFFFFFFFF)
    return bytes(data)


def test_an_intact_fixed_footer_giving_the_exact_size_makes_the_bytes_before_it_the_disk():
    assert fixed_data_size(bytes(4096), footer(SIZE), SIZE + 512) == SIZE
    parsed = read_footer(footer(SIZE))
    assert parsed is not None and parsed.intact and parsed.current_size == SIZE and parsed.creator == "win "


def _damaged() -> bytes:
    data = bytearray(footer(SIZE))
    data[40] ^= 0xFF
    return bytes(data)


def _dynamic() -> bytes:
    data = bytearray(footer(SIZE))
    struct.pack_into(">I", data, 60, 3)
    return _with_checksum(data)


@pytest.mark.parametrize(("head", "tail", "size"), [
    (bytes(4096), _damaged(), SIZE + 512),  # the checksum fails
    (bytes(4096), _dynamic(), SIZE + 512),  # a dynamic VHD's type
    (bytes(4096), footer(SIZE - 4096), SIZE + 512),  # the footer says less than the data
    (bytes(4096), footer(SIZE + 4096), SIZE + 512),  # or more
    (footer(SIZE) + bytes(3584), footer(SIZE), SIZE + 512),  # a footer copy at the start: not a fixed VHD
    (bytes(4096), bytes(512), SIZE + 512),  # no cookie
])  # fmt: skip
def test_anything_less_certain_is_not_taken_for_a_fixed_vhd(head, tail, size):
    assert fixed_data_size(head, tail, size) is None


class _Source:
    name = "disk.vhd"

    def describe(self) -> SourceInfo:
        return SourceInfo(size=SIZE + 512, identity="etag-1", checksums={"md5": "0" * 32},
                          data_ranges=[DataRange(0, 2**20), DataRange(SIZE - 2**20, 2**20 + 512)])  # fmt: skip

    def read_range(self, offset, length):
        yield bytes(length)


def test_a_prefix_of_a_source_offers_no_whole_file_checksum_and_its_own_identity():
    info = PrefixSource(_Source(), SIZE).describe()
    assert info.size == SIZE and info.checksums == {} and info.identity == f"etag-1:first:{SIZE}"
    assert info.data_ranges == [DataRange(0, 2**20), DataRange(SIZE - 2**20, 2**20)]
