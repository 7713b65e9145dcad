"""Checkpoints of the whole training state, for exact resume after any interruption.

A checkpoint is one `.npz` file: every array of the seed-batched TrainState (parameters,
optimizer moments, target network, replay buffer, RNG keys), the Python-side history of
evaluations, and a small JSON header. It is written to a temporary name and renamed, so a
reader sees either the old file or the whole new one, never half of it. A SHA-256 over every
array (name, dtype, shape and bytes) is stored inside and checked on load; NumPy loads it with
`allow_pickle=False`, so opening a checkpoint runs no code.

The replay buffer is stored only up to the slots filled so far: the rest of the ring is still
the zeros it was created with, which `restore` puts back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import zipfile
from pathlib import Path

import jax
import numpy as np

from qtran.errors import UserError

# 2: the replay buffer's compact layout (environment records and int8 actions).
# A checkpoint of another format is refused (`check_format`): its arrays do not fit this code.
FORMAT = 2
_NAME = re.compile(r"^ckpt-(\d{8})\.npz$")
_CHECKSUM_KEY = "__sha256__"
_HEADER_KEY = "__header__"
_BUFFER_PREFIX = "state/buffer/data/"


class CheckpointError(UserError):
    """A checkpoint file that is missing, truncated, corrupted or from another configuration."""


def _leaf_name(path) -> str:
    return "/".join(str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k)))) for k in path)


def flatten(tree, prefix: str) -> dict[str, np.ndarray]:
    """A pytree as {"prefix/path/to/leaf": array}."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {f"{prefix}/{_leaf_name(p)}": np.asarray(v) for p, v in leaves}


def checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def path_for(directory: Path, chunk: int) -> Path:
    return directory / f"ckpt-{chunk:08d}.npz"


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(chunk, path) of every checkpoint in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def save(directory: Path, chunk: int, states, history: dict[str, np.ndarray], header: dict,
         keep: int) -> Path:
    """Write checkpoint `chunk` atomically and delete all but the newest `keep` ones."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = flatten(states, "state")
    filled = int(np.max(np.asarray(states.buffer.size)))  # equal in every run of the batch
    for name in arrays:
        if name.startswith(_BUFFER_PREFIX):
            arrays[name] = arrays[name][:, :filled]
    arrays.update({f"history/{k}": np.asarray(v) for k, v in history.items()})
    arrays[_HEADER_KEY] = np.asarray(json.dumps(dict(header, format=FORMAT, chunk=chunk)))
    arrays[_CHECKSUM_KEY] = np.asarray(checksum(arrays))
    final = path_for(directory, chunk)
    tmp = final.with_name(final.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(final)
    for _, old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def read(path: Path) -> dict[str, np.ndarray]:
    """Every array of a checkpoint, after checking its integrity; CheckpointError if broken."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or corrupted: "
                              f"{type(err).__name__})") from None
    stored = arrays.pop(_CHECKSUM_KEY, None)
    if stored is None or str(stored) != checksum(arrays):
        raise CheckpointError(f"checkpoint {path} fails its checksum (corrupted); refusing it")
    return arrays


def header(arrays: dict[str, np.ndarray]) -> dict:
    return json.loads(str(arrays[_HEADER_KEY]))


def check_format(arrays: dict[str, np.ndarray], path: Path) -> None:
    """CheckpointError (one line) unless the checkpoint was written in this code's FORMAT."""
    found = header(arrays).get("format")
    if found != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {found}, this qtran reads format {FORMAT} "
                              f"only; re-run the training from the start (delete {path.parent} first)")


def restore(arrays: dict[str, np.ndarray], template, path: Path):
    """The TrainState in `arrays`, shaped like `template` (the freshly initialised state)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for p, like in flat:
        name = f"state/{_leaf_name(p)}"
        if name not in arrays:
            raise CheckpointError(f"checkpoint {path} does not match this configuration (no {name})")
        value = arrays[name]
        if name.startswith(_BUFFER_PREFIX) and value.shape[1] < like.shape[1]:
            full = np.zeros(like.shape, like.dtype)
            full[:, : value.shape[1]] = value
            value = full
        if value.shape != like.shape or value.dtype != like.dtype:
            raise CheckpointError(f"checkpoint {path} does not match this configuration "
                                  f"({name}: {value.dtype}{list(value.shape)}, expected "
                                  f"{like.dtype}{list(like.shape)})")
        leaves.append(value)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def history(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name[len("history/"):]: v for name, v in arrays.items() if name.startswith("history/")}


def load_latest(directory: Path, config_hash: str):
    """(arrays, path) of the newest intact checkpoint made with this config, or None.

    A corrupt newest checkpoint is reported on stderr and skipped in favour of the one before
    it; if checkpoints exist but none is intact, that is an error rather than a silent restart.
    """
    found = list_checkpoints(directory)
    for _, path in reversed(found):
        try:
            arrays = read(path)
        except CheckpointError as err:
            print(f"qtran: warning: {err}; trying the previous checkpoint", file=sys.stderr)
            continue
        check_format(arrays, path)
        if header(arrays).get("config_hash") != config_hash:
            raise CheckpointError(f"checkpoint {path} was written with another configuration "
                                  "than this run directory's config.yaml")
        return arrays, path
    if found:
        raise CheckpointError(f"every checkpoint in {directory} is corrupted; delete the folder "
                              "to train this run again from the start")
    return None
