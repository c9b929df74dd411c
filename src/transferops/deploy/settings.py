"""Settings of ``transferops serve``: one small settings object per router or component, composed
into :class:`ServeSettings`.

Each part is validated where it is defined and handed only to the code that uses it:

==================  ==========================================  ==========================
part                used by                                     defined in
==================  ==========================================  ==========================
``hub``             :class:`~transferops.deploy.hub.ModelHub`   ``deploy/hub.py``
``hub.batching``    :class:`~transferops.deploy.batching.DynamicBatcher`  ``deploy/batching.py``
``edge``            the ASGI edge middleware                    ``deploy/edge.py``
``predict``         the predict router                          here
``admin``           ``AdminDep`` (every admin route)            here
``experiments``     the experiments router (A/B)                ``abtest/assignment.py``
``monitoring``      the monitoring and outcomes routers         ``monitor/settings.py``
==================  ==========================================  ==========================

``ServeSettings(max_batch_size=8, db_url=...)`` takes the flat flag names of ``transferops serve``
and hands each to the part that declares it; ``to_dict()`` gives them back flat.
Nothing here imports FastAPI: settings can be built and checked without the ``serve`` extra.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from transferops.abtest.assignment import ExperimentSettings
from transferops.deploy.batching import BatchSettings
from transferops.deploy.edge import EdgeSettings
from transferops.deploy.hub import HubSettings
from transferops.errors import ConfigError
from transferops.monitor.settings import LOG_MODES, MonitorSettings

ADMIN_TOKEN_ENV = "TRANSFEROPS_ADMIN_TOKEN"
#: Tokens that are obviously placeholders are refused (FastAPI template habit).
PLACEHOLDER_TOKENS = {"changeme", "changethis", "secret", "password", "admin", "token", "test"}
#: Words that mark a token copied from documentation (compared on lower-case letters and digits).
PLACEHOLDER_WORDS = ("changeme", "changethis", "yourtoken", "tokenhere", "placeholder", "example",
                     "password", "xxxxxx", "123456789012")
MIN_TOKEN_CHARS = 16
MIN_TOKEN_DISTINCT = 8

__all__ = ["ADMIN_TOKEN_ENV", "LOG_MODES", "AdminSettings", "BatchSettings", "EdgeSettings",
           "ExperimentSettings", "HubSettings", "MonitorSettings", "PredictSettings", "ServeSettings",
           "check_admin_token"]


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        v = getattr(obj, name)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            raise ConfigError(f"{name}: must be a positive number, got {v!r}")


def check_admin_token(token: str) -> None:
    """Refuse tokens without real entropy: short, whitespace, few distinct characters, placeholders.

    The rule (documented in docs/reliability.md): at least 16 characters, no whitespace, at least 8
    distinct characters, no placeholder word. ``secrets.token_urlsafe()`` always passes."""
    fix = "generate one with `python -c 'import secrets; print(secrets.token_urlsafe())'`"
    squashed = "".join(ch for ch in token.lower() if ch.isalnum())
    if token.lower() in PLACEHOLDER_TOKENS or any(w in squashed for w in PLACEHOLDER_WORDS):
        raise ConfigError(f"admin_token: refusing a placeholder token; {fix}")
    if any(ch.isspace() for ch in token):
        raise ConfigError(f"admin_token: contains whitespace (a copy-paste accident?); {fix}")
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"admin_token: refusing a short token ({len(token)} < {MIN_TOKEN_CHARS} "
                          f"characters); {fix}")
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        raise ConfigError(f"admin_token: too little entropy ({len(set(token))} distinct characters, need "
                          f"{MIN_TOKEN_DISTINCT}); {fix}")


@dataclass
class PredictSettings:
    """Limits of the predict routes and the hand-over of their records to listeners."""

    max_texts_per_request: int = 1024
    max_chars_per_text: int = 20_000
    request_timeout_s: float = field(default=30.0, metadata={"help": "a request still queued after this "
                                                                     "long is dropped (504), not computed"})
    listener_queue: int = field(default=1000, metadata={"help": "records waiting for the listeners"})
    fast_path: bool = field(default=True, metadata={"help": "answer well-formed text predict requests "
                                                            "without the FastAPI stack (deploy/fastpath.py)"})

    def __post_init__(self) -> None:
        _positive(self, "max_texts_per_request", "max_chars_per_text", "listener_queue", "request_timeout_s")
        if not isinstance(self.fast_path, bool):
            raise ConfigError(f"fast_path: must be true or false, got {self.fast_path!r}")


@dataclass
class AdminSettings:
    """The admin routes: the token (else ``TRANSFEROPS_ADMIN_TOKEN``; none = admin disabled, 403)
    and extra folders ``POST /admin/models`` may load from."""

    admin_token: str | None = None
    model_roots: list[str] = field(default_factory=list,
                                   metadata={"help": "folders POST /admin/models may load from"})

    def __post_init__(self) -> None:
        if self.admin_token is None:
            self.admin_token = os.environ.get(ADMIN_TOKEN_ENV) or None
        if self.admin_token is not None:
            check_admin_token(self.admin_token)


#: The parts of :class:`ServeSettings` and the class each one is (``hub.batching`` is nested).
_PARTS: dict[str, type] = {"hub": HubSettings, "predict": PredictSettings, "edge": EdgeSettings,
                           "admin": AdminSettings, "experiments": ExperimentSettings,
                           "monitoring": MonitorSettings}


def _flag_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.name != "batching"]


@dataclass(init=False)
class ServeSettings:
    """Everything ``transferops serve`` accepts: what to serve, where to listen, and one settings
    object per part (see the module docstring), each validated in its own ``__post_init__``.

    >>> s = ServeSettings(models={"news": "runs/news-onnx"}, max_batch_size=16)   # doctest: +SKIP
    >>> s.hub.batching.max_batch_size, s.monitoring.enabled                        # doctest: +SKIP
    (16, False)
    """

    models: dict[str, str]
    adapters: str | None
    host: str
    port: int
    hub: HubSettings
    predict: PredictSettings
    edge: EdgeSettings
    admin: AdminSettings
    experiments: ExperimentSettings
    monitoring: MonitorSettings

    def __init__(self, *, models: dict[str, str] | None = None, adapters: str | None = None,
                 host: str = "127.0.0.1", port: int = 8000, **flags: Any) -> None:
        self.models = dict(models or {})
        self.adapters = adapters
        self.host = host
        self.port = port
        known = {n for cls in (*_PARTS.values(), BatchSettings) for n in _flag_names(cls)}
        for name in flags:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{name}: not a serve setting{hint}")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"port: {port!r} is not a TCP port")

        def pick(cls: type) -> dict[str, Any]:
            return {n: flags[n] for n in _flag_names(cls) if n in flags}

        self.hub = HubSettings(batching=BatchSettings(**pick(BatchSettings)), **pick(HubSettings))
        self.predict = PredictSettings(**pick(PredictSettings))
        self.edge = EdgeSettings(**pick(EdgeSettings))
        self.admin = AdminSettings(**pick(AdminSettings))
        self.experiments = ExperimentSettings(**pick(ExperimentSettings))
        self.monitoring = MonitorSettings(**pick(MonitorSettings))
        self._check_across_parts()

    def _check_across_parts(self) -> None:
        limit, queue = self.predict.max_texts_per_request, self.hub.batching.queue_size
        if limit > queue:
            raise ConfigError(f"max_texts_per_request: {limit} exceeds queue_size {queue}; such a request "
                              "could never be queued")
        clash = set(self.experiments.ab or {}) & set(self.models)
        if clash:
            raise ConfigError(f"ab: arm names {sorted(clash)} clash with --model names; rename one")
        if not self.models and not self.adapters and not self.experiments.enabled:
            raise ConfigError("models: nothing to serve; pass --model PATH, --adapters DIR or --ab ...")

    @property
    def served(self) -> dict[str, str]:
        """Models loaded at start, by name: the ``--model`` ones and the A/B arms."""
        return {**self.models, **(self.experiments.ab or {})}

    @property
    def adapters_root(self) -> Path | None:
        return Path(self.adapters).resolve() if self.adapters else None

    @property
    def model_roots(self) -> list[Path]:
        """Folders ``POST /admin/models`` may load from: ``--model-root``, the parent folders of the
        models served at start, and the adapters folder."""
        roots = [Path(r).resolve() for r in self.admin.model_roots]
        roots += [Path(p).resolve().parent for p in self.served.values()]
        return roots + ([self.adapters_root] if self.adapters_root is not None else [])

    def to_dict(self) -> dict[str, Any]:
        """The flat flags (as ``transferops serve`` takes them); the admin token is masked."""
        d: dict[str, Any] = {"models": dict(self.models), "adapters": self.adapters, "host": self.host,
                             "port": self.port}
        for part in (self.hub.batching, *(getattr(self, name) for name in _PARTS)):
            d.update({n: v for n, v in asdict(part).items() if n != "batching"})
        d["admin_token"] = "***" if self.admin.admin_token else None
        return d
