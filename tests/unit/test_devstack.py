"""The local stack's own logic that needs no server: plugin zips onto the classpath, `--wipe`."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from devstack import stack


def test_a_plugin_zip_adds_its_jars_to_the_classpath_folder(tmp_path: Path) -> None:
    (tmp_path / "shared-1.0.jar").write_bytes(b"from maven")
    bundle = tmp_path / "plugin-1.0.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("plugin-descriptor.properties", "name=plugin\n")
        archive.writestr("plugin-1.0.jar", b"plugin classes")
        archive.writestr("lib/shared-1.0.jar", b"from the zip")
    stack.unpack_jars(bundle, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugin-1.0.jar", "shared-1.0.jar"]
    assert (tmp_path / "plugin-1.0.jar").read_bytes() == b"plugin classes"
    assert (tmp_path / "shared-1.0.jar").read_bytes() == b"from maven"  # same artifact: kept once


def test_wipe_deletes_only_that_servers_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack, "STATE", tmp_path)
    for name in ("opensearch", "kafka"):
        (tmp_path / name / "data").mkdir(parents=True)
    stack.SERVERS["opensearch"].wipe()  # not running: nothing to stop
    assert not (tmp_path / "opensearch").exists()
    assert (tmp_path / "kafka" / "data").is_dir()


def test_wipe_goes_with_up_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        stack.main(["down", "--wipe"])
    assert exit_.value.code == 2
    assert "--wipe goes with up" in capsys.readouterr().err
