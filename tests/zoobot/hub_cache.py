"""A Hugging Face cache laid out exactly as the hub lays it out, for offline tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def lay_out_hub_cache(cache: Path, repo_id: str, files: dict[str, Path]) -> None:
    """models--ORG--NAME/{blobs,refs/main,snapshots/COMMIT}, snapshot files linked to blobs.

    The hub names a blob by its git object id: sha256 for LFS files (weights), git's sha1 of the
    blob for small ones (config.json).
    """
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    blobs, snapshot = repo / "blobs", repo / "snapshots" / COMMIT
    for folder in (blobs, snapshot, repo / "refs"):
        folder.mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for name, source in files.items():
        data = source.read_bytes()
        if name.endswith(".safetensors"):
            blob = hashlib.sha256(data).hexdigest()
        else:
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        (blobs / blob).write_bytes(data)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob))
