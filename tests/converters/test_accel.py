"""KVM or TCG for the appliance: one bounded probe on a host whose KVM hangs, then the cached verdict."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hyperexport.converters import accel
from hyperexport.converters.guestfs_env import guestfs_environment
from hyperexport.errors import InvalidInputError

from .fakes import hanging_kvm_qemu
from support.procwatch import descendants


def test_a_hanging_kvm_probe_is_abandoned_for_tcg_and_remembered(tmp_path):
    hv = hanging_kvm_qemu(tmp_path / "bin")
    base = {**os.environ, "LIBGUESTFS_HV": str(hv), accel.PROBE_ENV: "8"}
    kvm_env = {**base, **guestfs_environment(tmp_path / "work", force_tcg=False, base=base)}
    lines: list[str] = []

    started = time.monotonic()
    assert accel.choose(base, True, kvm_env, lines.append) == "tcg"
    assert 8 <= time.monotonic() - started < 20
    assert any("did not boot in 8s; using TCG" in line for line in lines), lines
    assert descendants() == {}, "the probe's appliance outlived the probe"

    accel._memo.clear()  # a new process: the verdict comes from the cache file, without a second probe
    started = time.monotonic()
    assert accel.choose(base, True, kvm_env) == "tcg"
    assert time.monotonic() - started < 1
    cached = Path(os.environ["XDG_CACHE_HOME"]) / "hyperexport" / "guestfs-accel.json"
    assert str(hv) in cached.read_text()


@pytest.mark.parametrize("value", ["kvm", "tcg", "TCG "])
def test_an_explicit_choice_is_obeyed_without_a_probe(value):
    env = {accel.ACCEL_ENV: value, "LIBGUESTFS_HV": "/nonexistent/qemu"}
    assert accel.choose(env, True, env) == value.strip().lower()


def test_an_unknown_choice_is_refused_with_the_accepted_values():
    with pytest.raises(InvalidInputError, match=r"HYPEREXPORT_GUESTFS_ACCEL='fast' is not one of auto, kvm, tcg"):
        accel.choose({accel.ACCEL_ENV: "fast"}, True, {})


def test_without_a_usable_kvm_tcg_is_chosen_without_a_probe():
    env = {"LIBGUESTFS_HV": "/nonexistent/qemu"}
    assert accel.choose(env, False, env) == "tcg"
