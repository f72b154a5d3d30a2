"""The folder of a model trained in the project (models/<name>/: config.json, model.onnx, tokenizer.json),
checked before anything is loaded, so that a missing, partial or corrupt folder fails naming the file and the fix."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import ConfigError


def write_config(folder: Path, config: dict) -> None:
    """config.json with the sha256 and size of model.onnx, so a truncated or swapped file is caught at load."""
    folder = Path(folder)
    data = (folder / "model.onnx").read_bytes()
    config = {**config, "model_sha256": hashlib.sha256(data).hexdigest(), "model_bytes": len(data)}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def checked_config(folder: Path, what: str, version: int, fix: str) -> dict:
    """config.json of `folder`, once the folder checks out: the version this code reads, the keys it needs, and a
    model.onnx of the size and sha256 that config.json names. ConfigError naming the file, the problem and `fix`
    ("run ... or restore the folder from git") otherwise; `what` names the model ("answerability model")."""
    if not folder.is_dir():
        raise ConfigError(f"No {what} in {folder}/ (the folder does not exist); {fix}.")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{folder}/config.json cannot be read ({exc.strerror}); {fix}.") from None
    except ValueError as exc:
        raise ConfigError(f"{folder}/config.json is not valid JSON ({exc}); {fix}.") from None
    if not isinstance(config, dict) or config.get("version") != version:
        found = config.get("version") if isinstance(config, dict) else type(config).__name__
        raise ConfigError(f"{folder}/config.json has version {found!r}; this code reads version {version}; {fix}.")
    for key in ("max_length", "model_sha256", "model_bytes"):
        if key not in config:
            raise ConfigError(f"{folder}/config.json lacks {key!r}; {fix}.")
    model_file, tok_file = folder / "model.onnx", folder / "tokenizer.json"
    for f in (model_file, tok_file):
        if not f.is_file():
            raise ConfigError(f"{f} is missing; {fix}.")
    size = model_file.stat().st_size
    if size != config["model_bytes"]:
        hint = " (a Git LFS pointer: run `git lfs pull`)" if size < 1000 else ""
        raise ConfigError(f"{model_file} has {size:,} bytes, config.json says {config['model_bytes']:,}{hint}; {fix}.")
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    if digest != config["model_sha256"]:
        raise ConfigError(f"{model_file} has sha256 {digest[:12]}…, config.json says {config['model_sha256'][:12]}…; {fix}.")
    return config
