"""pretrained2d's checkpoint: built by bench itself on first use, then reused, content-addressed.

The key is a sha256 of the corpus's data hash, the network and training configuration, the training seed and
the source of the code that generates and trains (this package's corpus and training modules and SPOT's network,
crops and losses). The checkpoint lives in ``<cache>/pretrained2d/<key>/`` (the runner's
``RunContext.cache_dir``: ``<runs dir>/.cache/methods``), a folder bench marks as its own:

- ``model.pt``: the network's state, read back with ``torch.load(weights_only=True)`` (no pickle runs);
- ``meta.json``: the corpus (worlds and their data hashes, the corpus hash, sequence and box counts, every
  sequence's pixel fingerprint for the disjointness check), the configuration, the key, build CPU seconds;
- ``COMPLETE``, written last: the folder is built in a marked temporary folder and renamed into place, so a
  reader never sees half a checkpoint. One lock per key: two runs that need it at once build it once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from baselines.pretrained2d import corpus as corpus_module
from baselines.pretrained2d import train as train_module
from baselines.pretrained2d.corpus import World, corpus_hash, generate_corpus, world_hashes
from baselines.pretrained2d.train import PretrainConfig, pretrain
from baselines.spot import crops as spot_crops
from baselines.spot import model as spot_model
from baselines.spot import train as spot_train
from baselines.spot.model import SiameseTracker
from bench.locks import run_lock
from bench.ownership import is_owned, make_tmp_dir, publish_dir

COMPLETE = "COMPLETE"
# The code whose change means another checkpoint (inference code is not in the key: it does not change weights).
TRAINING_CODE = (corpus_module, train_module, spot_crops, spot_model, spot_train)


def training_code_version() -> str:
    digest = hashlib.sha256()
    for module in TRAINING_CODE:
        path = Path(str(module.__file__))
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def checkpoint_key(worlds: list[World], scale: str, network: dict[str, int], cfg: PretrainConfig, seed: int) -> str:
    payload = {"corpus": corpus_hash(worlds, scale), "network": network, "train": asdict(cfg), "seed": seed,
               "code": training_code_version()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def is_complete(folder: Path) -> bool:
    return is_owned(folder) and (folder / COMPLETE).is_file() and (folder / "model.pt").is_file()


def load_or_build(cache: Path, worlds: list[World], scale: str, network: dict[str, int], cfg: PretrainConfig,
                  seed: int, progress: Callable[[int, int, str], None] | None = None
                  ) -> tuple[SiameseTracker, dict[str, Any]]:
    """The pretrained network and its meta data, from the cache or built now (and cached)."""
    key = checkpoint_key(worlds, scale, network, cfg, seed)
    folder = Path(cache) / "pretrained2d" / key[:32]
    with run_lock(Path(cache) / "pretrained2d" / ".locks" / key[:32]):
        if not is_complete(folder):
            _build(folder, worlds, scale, cfg, seed, key, network, progress)
    model = SiameseTracker(**network)
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    model.eval()
    meta = json.loads((folder / "meta.json").read_text())
    meta["path"] = str(folder)
    return model, meta


def _build(folder: Path, worlds: list[World], scale: str, cfg: PretrainConfig, seed: int,
           key: str, network: dict[str, int], progress: Callable[[int, int, str], None] | None) -> None:
    cpu = time.process_time()  # measured for the record (meta.json) only: the budget is pretrain's step count
    videos = list(generate_corpus(worlds, scale))
    generate_cpu = time.process_time() - cpu
    torch.manual_seed(seed)
    model = SiameseTracker(**network)  # the same initial weights for the same seed, whatever ran before
    history = pretrain(model, videos, cfg, seed, progress)
    meta = {
        "key": key, "corpus_hash": corpus_hash(worlds, scale), "scale": scale,
        "worlds": world_hashes(worlds, scale), "sequences": len(videos),
        "frames": int(sum(len(v.frames) for v in videos)), "boxes": int(sum(len(v.tracks) for v in videos)),
        "fingerprints": {v.name: v.fingerprint for v in videos},
        "network": network, "train": asdict(cfg), "seed": seed, "code": training_code_version(),
        "final_loss": history["loss"][-1] if history["loss"] else None,
        "generate_cpu_s": round(generate_cpu, 1), "build_cpu_s": round(time.process_time() - cpu, 1),
    }
    tmp = make_tmp_dir(folder, "pretrained2d checkpoint")
    torch.save(model.state_dict(), tmp / "model.pt")  # inside the temporary folder: atomic by the rename
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    (tmp / COMPLETE).write_text(key + "\n")
    publish_dir(tmp, folder)


__all__ = ["checkpoint_key", "is_complete", "load_or_build", "training_code_version"]
