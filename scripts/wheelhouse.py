#!/usr/bin/env python3
"""`make wheelhouse [PY=3.12]`: everything an air-gapped node needs to install facewright, in one folder.

OUT/wheels: facewright's own wheel and a wheel of every pinned dependency (and theirs) for CPython PY on
manylinux x86_64, torch left out unless --with-torch (the node's own CUDA build of torch is kept);
OUT/assets: the asset cache (models and sample media, as `facewright assets fetch` verified them);
OUT/requirements.txt: the pins. On the node, `make install-offline OFFLINE=OUT` installs from it alone.
Uses only the standard library and pip, so it runs from any Python 3.11+.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "linux_x86_64")


def pinned(with_torch: bool) -> list[str]:
    """The project's dependencies from pyproject.toml (exact pins), torch dropped unless asked for."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [d for d in project["dependencies"] if with_torch or not d.lower().startswith("torch")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python-version", default="{}.{}".format(*sys.version_info[:2]),
                        help="the node's Python, X.Y")
    parser.add_argument("--out", default=str(ROOT / "dist" / "offline"))
    parser.add_argument("--with-torch", action="store_true", help="include torch (PyPI's build) as well")
    parser.add_argument("--assets", default=None, help="the asset cache to copy (default: facewright's own)")
    args = parser.parse_args(argv)
    if args.python_version not in ("3.11", "3.12", "3.13"):
        print(f"wheelhouse: Python {args.python_version} is not one facewright supports (3.11 to 3.13)",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    wheels = out / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)  # wheels of another Python or an older facewright must not stay
    wheels.mkdir(parents=True)
    requirements = pinned(args.with_torch)
    (out / "requirements.txt").write_text("\n".join(requirements) + "\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    abi = "cp" + args.python_version.replace(".", "")
    platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([*pip, "download", "--only-binary=:all:", "--implementation", "cp", "--python-version",
                    args.python_version, "--abi", abi, "--abi", "abi3", "--abi", "none", *platform_args,
                    "-d", str(wheels), *requirements], check=True)
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)], check=True)
    assets = Path(args.assets) if args.assets else _asset_cache()
    if assets.is_dir():
        shutil.copytree(assets, out / "assets", dirs_exist_ok=True)
    else:
        print(f"wheelhouse: no asset cache at {assets}: run `facewright assets fetch` first", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    count = len(list(wheels.glob("*.whl")))
    print(f"wheelhouse: {count} wheels for CPython {args.python_version} and the asset cache in {out} ({size:.0f} MB)"
          f"{'' if args.with_torch else '; torch left out: the node keeps its own'}\n"
          f"  on the node: make install-offline OFFLINE={out}")
    return 0


def _asset_cache() -> Path:
    home = os.environ.get("FACEWRIGHT_HOME") or Path.home() / ".cache" / "facewright"
    return Path(home).expanduser() / "assets"


if __name__ == "__main__":
    sys.exit(main())
