"""Settings of monitoring inside ``transferops serve`` (fields are the flags of the same names)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transferops.errors import ConfigError

LOG_MODES = ("durable", "async")


@dataclass
class MonitorSettings:
    """The prediction log the server writes to. Without ``db_url`` monitoring is off and its routes
    (feedback, dashboard, drift JSON, champion swap, outcomes) are not mounted."""

    db_url: str | None = field(default=None, metadata={"help": "prediction log: a file path, sqlite:///x.db "
                                                               "or postgresql://..."})
    log_mode: str = field(default="durable", metadata={"help": "durable: a prediction is committed to the "
                                                               "log before its response; async: buffered"})

    def __post_init__(self) -> None:
        if self.log_mode not in LOG_MODES:
            raise ConfigError(f"log_mode: {self.log_mode!r} is not one of {', '.join(LOG_MODES)}")

    @property
    def enabled(self) -> bool:
        return bool(self.db_url)
