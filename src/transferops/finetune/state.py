"""Resumable training state in safetensors + JSON only (no pickle is ever read back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from transferops._util import read_json, write_json


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    missing = [k for k in state if k not in params]
    if missing:
        raise RuntimeError(f"saved state does not match the model (e.g. {missing[0]})")
    with torch.no_grad():
        for k, v in state.items():
            params[k].copy_(v.to(params[k].device))


def save_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"param_groups": sd["param_groups"], "scalars": {}}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                meta["scalars"][f"{idx}.{k}"] = v
    save_file(tensors, str(path.with_suffix(".safetensors")))
    write_json(path.with_suffix(".json"), meta)


def load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    tensors = load_file(str(path.with_suffix(".safetensors")))
    meta = read_json(path.with_suffix(".json"))
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    for key, v in meta["scalars"].items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


RNG_FILE = "rng.safetensors"
RNG_META = "rng.json"


def save_rng_state(dir_: Path) -> None:
    """Python, NumPy, torch (and CUDA) generator states, so a resumed run draws the same dropout
    masks and shuffles as an uninterrupted one (safetensors + JSON, no pickle)."""
    import random

    import numpy as np

    tensors = {"torch": torch.get_rng_state().contiguous()}
    if torch.cuda.is_available():
        for i, st in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = st.contiguous()
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy.keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    py_version, py_state, py_gauss = random.getstate()
    save_file(tensors, str(dir_ / RNG_FILE))
    write_json(dir_ / RNG_META, {"numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss),
                                           "gauss": float(gauss)},
                                 "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss}})


def load_rng_state(dir_: Path) -> bool:
    """Restore what :func:`save_rng_state` wrote; False for checkpoints from before it existed."""
    import random

    import numpy as np

    if not (dir_ / RNG_FILE).exists() or not (dir_ / RNG_META).exists():
        return False
    tensors = load_file(str(dir_ / RNG_FILE))
    meta = read_json(dir_ / RNG_META)
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    n = meta["numpy"]
    np.random.set_state((n["kind"], tensors["numpy.keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["gauss"]))
    py = meta["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    return True


def save_checkpoint(dir_: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any,
                    info: dict[str, Any], best: dict[str, torch.Tensor] | None) -> None:
    """Write to a temp folder and rename, so a kill mid-write keeps the previous checkpoint."""
    tmp = dir_.with_name(dir_.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    if best is not None:
        save_file(best, str(tmp / "best.safetensors"))
    save_optimizer(opt, tmp / "optimizer")
    write_json(tmp / "scheduler.json", {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"})
    save_rng_state(tmp)
    write_json(tmp / "state.json", info)
    old = dir_.with_name(dir_.name + ".old")
    if dir_.exists():
        dir_.rename(old)
    tmp.rename(dir_)
    if old.exists():
        import shutil

        shutil.rmtree(old)


def _live_dir(dir_: Path) -> Path:
    """``dir_``, or its ``.old`` copy when a kill fell between the two renames of a save."""
    if not (dir_ / "state.json").exists():
        old = dir_.with_name(dir_.name + ".old")
        if (old / "state.json").exists():
            return old
    return dir_


def checkpoint_info(dir_: Path) -> dict[str, Any]:
    """The loop counters and method state (``state.json``) of a checkpoint, without loading weights."""
    return read_json(_live_dir(dir_) / "state.json")  # type: ignore[no-any-return]


def load_checkpoint(dir_: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any
                    ) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    dir_ = _live_dir(dir_)
    load_trainable(model, load_file(str(dir_ / "trainable.safetensors")))
    load_optimizer(opt, dir_ / "optimizer")
    sd = sched.state_dict()
    sd.update(read_json(dir_ / "scheduler.json"))
    sched.load_state_dict(sd)
    best = load_file(str(dir_ / "best.safetensors")) if (dir_ / "best.safetensors").exists() else None
    load_rng_state(dir_)
    return read_json(dir_ / "state.json"), best


def has_checkpoint(dir_: Path) -> bool:
    return (dir_ / "state.json").exists() or (dir_.with_name(dir_.name + ".old") / "state.json").exists()
