"""Maps the top-level source folders onto the ``ferrymq`` namespace.

The product layout keeps ``core/``, ``namesrv/``, ``gateway/``, ``client/`` and ``cli/`` at the
top of the repository, but they must import as ``ferrymq.core`` and so on, in editable and wheel
installs alike, without putting generic names such as ``core`` into site-packages. The package
list is derived from the folders so that a new subpackage is never left out of the wheel.
"""

from pathlib import Path

from setuptools import setup

FOLDERS = ("core", "namesrv", "gateway", "client", "cli")


def _packages() -> tuple[list[str], dict[str, str]]:
    packages = ["ferrymq"]
    package_dir = {"ferrymq": "cli/_root"}
    for folder in FOLDERS:
        for init in sorted(Path(folder).rglob("__init__.py")):
            rel = init.parent.as_posix()
            if rel == "cli/_root":
                continue
            _add(packages, package_dir, rel)
        # data-only folders (the console's static files) are packages to setuptools too
        for data_dir in sorted(Path(folder).rglob("static")):
            if data_dir.is_dir() and not (data_dir / "__init__.py").exists():
                _add(packages, package_dir, data_dir.as_posix())
    return packages, package_dir


def _add(packages: list[str], package_dir: dict[str, str], rel: str) -> None:
    name = "ferrymq." + rel.replace("/", ".")
    packages.append(name)
    package_dir[name] = rel


packages, package_dir = _packages()
setup(packages=packages, package_dir=package_dir)
