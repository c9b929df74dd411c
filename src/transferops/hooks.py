"""Extension points that later stages plug into, so that an earlier stage never imports a later one.

``transferops.train`` (and the adapt stage's own writers) end by running the *post-train hooks* on the
fresh artifact folder: calibration stores its temperature, monitoring stores the reference profile.
The training stage knows only this registry; each later stage registers its hook where it defines it:

>>> from transferops.hooks import register_post_train
>>> @register_post_train("my-report", order=50)            # doctest: +SKIP
... def post_train(artifact_dir, config):
...     ...

Hooks run in ``order`` (then name). :data:`BUILTIN_PLUGINS` is the composition root's list of the
package's own stage modules that register hooks when imported (as PEFT's ``tuners/__init__`` imports
every method): it is read only when hooks are run, so ``import transferops`` stays light and a build
without one of those stages (an absent optional module) simply has fewer hooks.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: ``hook(artifact_dir, config) -> dict | None``; the hook writes its own results into the folder.
PostTrainHook = Callable[[Path, Any], Any]

#: Package modules whose import registers post-train hooks (calibration, monitoring reference profile).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "transferops.evaluate.calibration",
    "transferops.monitor.profile",
    "transferops.monitor.multitask",  # per-task reference profiles of a multi-task artifact
)


@dataclass(frozen=True)
class _Hook:
    name: str
    order: int
    fn: PostTrainHook


_POST_TRAIN: dict[str, _Hook] = {}


def module_exists(name: str) -> bool:
    """True when ``name`` can be imported (its parent package may itself be absent)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def register_post_train(name: str, *, order: int = 100) -> Callable[[PostTrainHook], PostTrainHook]:
    """Decorator: run ``fn(artifact_dir, config)`` after every training run that writes an artifact.
    Registering the same name again replaces the hook (a module re-imported in a test)."""

    def deco(fn: PostTrainHook) -> PostTrainHook:
        _POST_TRAIN[name] = _Hook(name, order, fn)
        return fn

    return deco


def load_builtin_plugins() -> None:
    for mod_name in BUILTIN_PLUGINS:
        if module_exists(mod_name):
            importlib.import_module(mod_name)


def post_train_hooks() -> list[tuple[str, PostTrainHook]]:
    """The registered hooks, built-in stages loaded first, in run order."""
    load_builtin_plugins()
    return [(h.name, h.fn) for h in sorted(_POST_TRAIN.values(), key=lambda h: (h.order, h.name))]


def run_post_train(artifact_dir: Path, config: Any) -> None:
    """Run every post-train hook on a fresh artifact folder."""
    for _name, fn in post_train_hooks():
        fn(Path(artifact_dir), config)


__all__ = ["BUILTIN_PLUGINS", "PostTrainHook", "load_builtin_plugins", "module_exists", "post_train_hooks",
           "register_post_train", "run_post_train"]
