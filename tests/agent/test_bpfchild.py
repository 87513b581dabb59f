"""The compiler process answers bcc's one kallsyms question beforehand, and bcc builds the same program."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from rezolus_agent import bpfchild
from support.env import need_tool

# bcc maps bpf_probe_read_kernel to bpf_probe_read (another helper id) when kallsyms lacks the symbol.
_PROGRAM = """
import os, sys
from rezolus_agent import bpfchild
narrowed = bpfchild.narrow_kallsyms() if sys.argv[1] == "narrow" else False
from bcc import BPF
b = BPF(text="int f(void *ctx) { u64 v = 0; bpf_probe_read_kernel(&v, sizeof(v), ctx); return (int)v; }")
with open("/proc/kallsyms", "rb") as symbols:
    lines = sum(1 for _ in symbols)
print(narrowed, lines, b.dump_func("f").hex(), flush=True)
os._exit(0)
"""


_EMPTY_KALLSYMS = 'mount --bind /dev/null /proc/kallsyms && exec "$@"'


def _compile(mode: str, wrap: list[str] | None = None) -> tuple[str, int, str]:
    out = subprocess.run(
        [*(wrap or []), sys.executable, "-c", _PROGRAM, mode], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    return out[0], int(out[1]), out[2]


def test_function_line_is_the_first_line_naming_the_symbol(tmp_path: Path) -> None:
    """The line is returned only when the first line naming the symbol is a function."""
    symbols = tmp_path / "kallsyms"
    symbols.write_text(
        "ffffffff81000000 T _stext\n"
        "ffffffff814cc000 T bpf_probe_read_kernel_str\n"
        "ffffffff814cc020 T bpf_probe_read_kernel\n"
        "ffffffff814cc040 t bpf_probe_read_kernel\t[mod]\n"
    )
    found = bpfchild._function_line(str(symbols), "bpf_probe_read_kernel")
    assert found == b"ffffffff814cc020 T bpf_probe_read_kernel\n"
    assert bpfchild._function_line(str(symbols), "bpf_probe_read") is None
    symbols.write_text("ffffffff82000000 D bpf_probe_read_kernel\nffffffff814cc020 T bpf_probe_read_kernel\n")
    assert bpfchild._function_line(str(symbols), "bpf_probe_read_kernel") is None


def test_unreadable_kallsyms_or_no_temporary_file_leaves_everything_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No symbol file, or nowhere to write the narrowed one: False, and no namespace is entered."""

    def refuse(*_: object) -> bool:
        raise AssertionError("a namespace was entered")

    monkeypatch.setattr(bpfchild, "_bind_privately", refuse)
    monkeypatch.setattr(bpfchild, "_KALLSYMS", str(tmp_path / "missing"))
    assert bpfchild.narrow_kallsyms() is False
    symbols = tmp_path / "kallsyms"
    symbols.write_text("ffffffff814cc020 T bpf_probe_read_kernel\n")
    monkeypatch.setattr(bpfchild, "_KALLSYMS", str(symbols))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-dir"))
    assert bpfchild.narrow_kallsyms() is False


@pytest.mark.usefixtures("root_bpf")
def test_narrowed_kallsyms_gives_the_same_program_and_stays_private() -> None:
    """Same instructions as with the full kallsyms, other ones without the symbol; the host never sees the bind."""
    unshare = need_tool("unshare")
    full = _compile("full")
    narrow = _compile("narrow")
    empty = _compile("full", [unshare, "-m", "--propagation", "private", "sh", "-c", _EMPTY_KALLSYMS, "sh"])
    assert full[0] == "False"
    assert full[1] > 1
    assert narrow[:2] == ("True", 1)
    assert narrow[2] == full[2]
    assert empty[1] == 0
    assert empty[2] != full[2]
    with Path("/proc/kallsyms").open("rb") as symbols:
        assert sum(1 for _ in symbols) > 1
    assert " /proc/kallsyms " not in Path("/proc/self/mountinfo").read_text()
