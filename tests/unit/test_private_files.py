"""gateway.cli.private_files: original documents are written readable by their owner alone."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli.private_files import write_private


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that takes nothing away: the mode is the one the file is created with."""
    saved = os.umask(0)
    yield
    os.umask(saved)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_a_new_file_is_created_with_mode_0600(tmp_path: Path) -> None:
    out = tmp_path / "crew.xml"
    write_private(out, b"<CrewList/>")
    assert (out.read_bytes(), _mode(out)) == (b"<CrewList/>", 0o600)
    assert [path.name for path in tmp_path.iterdir()] == ["crew.xml"]


@pytest.mark.usefixtures("open_umask")
def test_a_file_already_there_is_replaced_not_written_through(tmp_path: Path) -> None:
    out = tmp_path / "crew.xml"
    out.write_bytes(b"older and longer")
    out.chmod(0o644)
    before = out.stat().st_ino
    write_private(out, b"new")
    assert (out.read_bytes(), _mode(out)) == (b"new", 0o600)
    assert out.stat().st_ino != before


def test_a_symbolic_link_is_replaced_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.xml"
    target.write_bytes(b"untouched")
    link = tmp_path / "crew.xml"
    link.symlink_to(target)
    write_private(link, b"new")
    assert not link.is_symlink()
    assert (link.read_bytes(), _mode(link), target.read_bytes()) == (b"new", 0o600, b"untouched")


def test_what_is_no_regular_file_is_written_as_it_is(tmp_path: Path) -> None:
    write_private(Path(os.devnull), b"<CrewList/>")
    assert Path(os.devnull).exists()


def test_a_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_private(tmp_path / "missing" / "crew.xml", b"x")
    directory = tmp_path / "crew.xml"
    directory.mkdir()
    with pytest.raises(OSError):
        write_private(directory, b"x")
    assert [path.name for path in tmp_path.iterdir()] == ["crew.xml"]
