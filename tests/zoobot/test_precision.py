"""Precision names and ``auto``: bf16 only where the hardware has bf16 units."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from zoobot.precision import PRECISIONS, cpu_has_bf16_units, resolve_precision

EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma bmi2 sha_ni
"""
SAPPHIRE_RAPIDS = EPYC_AVX2.replace("avx2", "avx2 avx512f avx512_bf16 amx_bf16 amx_tile")


def test_bf16_units_are_read_from_the_cpu_flags():
    assert not cpu_has_bf16_units(EPYC_AVX2)
    assert cpu_has_bf16_units(SAPPHIRE_RAPIDS)
    assert cpu_has_bf16_units(EPYC_AVX2.replace("avx2", "avx2 avx512_bf16"))


def test_auto_is_bf16_only_with_bf16_units():
    assert resolve_precision("auto", "cpu", bf16_units=False) == "32"
    assert resolve_precision("auto", "cpu", bf16_units=True) == "bf16-mixed"
    on_this_cpu = resolve_precision("auto", "cpu")
    assert on_this_cpu == ("bf16-mixed" if cpu_has_bf16_units() else "32")


def test_explicit_bf16_without_units_warns_that_it_is_slower(caplog):
    with caplog.at_level(logging.WARNING, logger="zoobot.precision"):
        assert resolve_precision("bf16-mixed", "cpu", bf16_units=False) == "bf16-mixed"
    assert "slower" in caplog.text and "auto" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="zoobot.precision"):
        resolve_precision("bf16-mixed", "cpu", bf16_units=True)
    assert caplog.text == ""


def test_names_and_aliases():
    assert resolve_precision(None, "cpu") == "32"
    assert resolve_precision("32-true", "cpu") == "32"
    assert resolve_precision("16-mixed", "cpu") == "16-mixed"
    with pytest.raises(ValueError, match="precision 'fp8'"):
        resolve_precision("fp8", "cpu")


def test_one_precision_list_and_torch_free_config():
    from prioritiser.cli import build_parser
    from prioritiser.config import PrioritiserSettings

    assert PrioritiserSettings.__dataclass_fields__["precision"].metadata["choices"] is PRECISIONS
    args = build_parser().parse_args(["score", "--catalog", "c", "--checkpoint", "k", "--out", "o"])
    assert args.precision == "auto"
    code = "import sys, zoobot.precision, prioritiser.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
