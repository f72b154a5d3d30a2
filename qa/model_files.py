"""The folder of a model trained in the project (models/<name>/: config.json, model.onnx, tokenizer.json),
checked before anything is loaded, so that a missing, partial or corrupt folder fails naming the file and the fix."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import ConfigError


def write_config(folder: Path, config: dict) -> None:
    """config.json with the sha256 and size of model.onnx, so a truncated or swapped file is caught at load."""
    folder = Path(folder)
    data = (folder / "model.onnx").read_bytes()
    config = {**config, "model_sha256": hashlib.sha256(data).hexdigest(), "model_bytes": len(data)}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def checked_config(folder: Path, what: str, version: int, fix: str, needs: tuple[str, ...] = ("max_length",),
                   files: tuple[str, ...] = ("model.onnx", "tokenizer.json")) -> dict:
    """config.json of `folder`, once the folder checks out: the version this code reads, the keys it needs, and a
    model.onnx of the size and sha256 that config.json names. ConfigError naming the file, the problem and `fix`
    ("run ... or restore the folder from git") otherwise; `what` names the model ("answerability model"), `needs` the
    keys its config must have besides the model's size and sha256, `files` the files the folder must hold."""
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
    for key in (*needs, "model_sha256", "model_bytes"):
        if key not in config:
            raise ConfigError(f"{folder}/config.json lacks {key!r}; {fix}.")
    model_file = folder / "model.onnx"
    for f in (folder / name for name in files):
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


def replace_folder(new: Path, folder: Path) -> None:
    """The freshly written model folder `new` takes the place of `folder`, keeping its MODEL_CARD.md (written by
    hand, with the figures of the run it describes)."""
    if folder.exists():
        import shutil

        keep = folder / "MODEL_CARD.md"
        card = keep.read_bytes() if keep.is_file() else None
        shutil.rmtree(folder)
        if card is not None:
            (new / "MODEL_CARD.md").write_bytes(card)
    os.replace(new, folder)


def load_tokenizer(folder: Path, fix: str):
    """`tokenizers.Tokenizer` of folder/tokenizer.json; ConfigError naming the file and `fix` when it cannot be read."""
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as exc:  # tokenizers raises a bare Exception for a malformed file
        raise ConfigError(f"{folder}/tokenizer.json cannot be loaded ({exc}); {fix}.") from None


def open_session(folder: Path, threads: int | None, fix: str):
    """onnxruntime session of folder/model.onnx on the CPU (`threads`, else QA_THREADS, else up to 4);
    ConfigError naming the file and `fix` when it cannot be loaded."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or int(os.environ.get("QA_THREADS", "0")) or min(4, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for a truncated or corrupt file
        raise ConfigError(f"{folder}/model.onnx cannot be loaded ({type(exc).__name__}: {exc}); {fix}.") from None
