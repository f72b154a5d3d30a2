"""The repository runs as a Hugging Face Space as it is: front matter, requirements, entry point."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def front_matter() -> dict:
    import yaml

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md must start with a --- front matter block for the Space"
    return yaml.safe_load(match.group(1))


def requirement_names() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_front_matter_describes_a_gradio_space():
    meta = front_matter()
    assert meta["sdk"] == "gradio"
    assert meta["app_file"] == "app.py" and (ROOT / "app.py").is_file()
    assert str(meta["python_version"]) == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert meta["title"] and meta["short_description"]
    assert len(meta["short_description"]) <= 60  # the Hub rejects longer ones


def test_sdk_version_is_the_pinned_and_installed_gradio():
    meta = front_matter()
    pyproject = (ROOT / "pyproject.toml").read_text()
    pinned = re.search(r'"gradio==([\d.]+)"', pyproject).group(1)
    assert str(meta["sdk_version"]) == pinned == version("gradio")


def test_torch_is_pinned_in_requirements_only_once():
    lines = [l for l in (ROOT / "requirements.txt").read_text().splitlines() if l.startswith("torch")]
    assert lines == ["torch==2.13.0"]
    assert "gradio" not in requirement_names()  # the Space's sdk_version decides gradio


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


# the training commands run at build time, never in the app: they may also use pyproject's `build` extra (onnx)
TRAINING_COMMANDS = {"training.py", "resolver_training.py"}


def _build_extra() -> set[str]:
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["build"]
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in extra}


def test_every_third_party_import_of_the_app_is_in_requirements():
    modules, training = _imports(ROOT / "app.py"), set()
    for f in (ROOT / "qa").glob("*.py"):
        (training if f.name in TRAINING_COMMANDS else modules).update(_imports(f))
    dists = packages_distributions()
    required = requirement_names() | {"gradio"}
    missing = []
    for m, allowed in [(m, required) for m in sorted(modules)] + [(m, required | _build_extra()) for m in sorted(training)]:
        if m in sys.stdlib_module_names or m in ("qa", "__future__"):
            continue
        names = {d.lower().replace("_", "-") for d in dists.get(m, [])}
        if not names:
            missing.append(f"{m} (not installed)")
        elif not names & allowed and not any(_required_by(n, allowed) for n in names):
            missing.append(f"{m} ({', '.join(sorted(names))})")
    assert not missing, f"imported but not in requirements.txt: {missing}"
    assert "onnx" in _build_extra() and "onnx" not in modules  # only the training commands import it


def _required_by(dist: str, required: set[str]) -> bool:
    """True when `dist` comes in as a dependency of something in requirements.txt (e.g. tqdm, yaml)."""
    from importlib.metadata import PackageNotFoundError, requires

    for r in required:
        try:
            deps = requires(r) or []
        except PackageNotFoundError:
            continue
        if any(re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-") == dist for d in deps):
            return True
    return False


@pytest.mark.parametrize("module", ["onnx", "onnxscript"])
def test_build_only_tools_are_not_needed_by_the_app(module):
    """The Space serves from the committed ONNX export; exporting (onnx) is a build-time extra."""
    assert module not in _imports(ROOT / "app.py")
