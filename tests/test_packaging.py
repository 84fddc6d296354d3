"""The wheel a plain `pip install .` makes holds every module: the dev install (`pip install
-e`) imports from the checkout, so a subpackage left out of the packaging config goes
unnoticed until a user installs the wheel and `probe` fails to start."""

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools")
def test_wheel_holds_every_module_and_asset(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert "would be ignored" not in build.stderr, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("probe-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    for package in ("probe", "dashboards"):
        for path in (ROOT / package).rglob("*"):
            if path.suffix in (".py", ".js", ".css") and "__pycache__" not in path.parts:
                assert path.relative_to(ROOT).as_posix() in packed
