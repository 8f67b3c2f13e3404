"""The offline install of an air-gapped node: `scripts/wheelhouse.py` (make wheelhouse) writes the wheels and the
asset cache; `make install-offline` installs a fresh venv from that folder alone, the network unreachable."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "http://127.0.0.1:9"  # a proxy that refuses: any download attempt fails


@pytest.mark.slow
def test_wheelhouse_installs_a_fresh_venv_without_the_network(tmp_path):
    offline, venv, home = tmp_path / "offline", tmp_path / "venv", tmp_path / "home"
    version = "{}.{}".format(*sys.version_info[:2])
    built = subprocess.run([sys.executable, str(ROOT / "scripts" / "wheelhouse.py"), "--python-version", version,
                            "--with-torch", "--out", str(offline)], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    wheels = {p.name.split("-")[0].lower() for p in (offline / "wheels").glob("*.whl")}
    assert {"facewright", "torch", "av", "mediapipe", "c2pa_python", "cryptography", "numpy"} <= wheels
    assert (offline / "assets").is_dir() and "torch==" in (offline / "requirements.txt").read_text()

    env = {**os.environ, "FACEWRIGHT_HOME": str(home), "http_proxy": UNREACHABLE, "https_proxy": UNREACHABLE,
           "HTTP_PROXY": UNREACHABLE, "HTTPS_PROXY": UNREACHABLE, "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": "",
           # pip's byte-compiling of every installed module (half the install's time, torch's mostly) is not under
           # test (pip goes on past a file that does not compile); the imports below compile what they load.
           # PIP_COMPILE=0, not PIP_NO_COMPILE=1: pip reads the latter as --compile.
           "PIP_COMPILE": "0"}
    env.pop("MAKEFLAGS", None)
    installed = subprocess.run(["make", "-C", str(ROOT), "install-offline", f"OFFLINE={offline}", f"VENV={venv}",
                                f"NODE_PYTHON={sys._base_executable}"], capture_output=True, text=True, env=env,
                               timeout=900)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    assert "sha256 ok" in installed.stdout  # the copied assets, checked where they landed
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import facewright, facewright.api, facewright.bench.gpu_node; print(facewright.__file__)"],
                           capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert str(venv) in check.stdout  # the installed wheel, not this checkout
