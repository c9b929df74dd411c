"""A real uvicorn server on a free loopback port, in a thread or as a separate process."""

from __future__ import annotations

from server_testing import free_port, running, server_process

__all__ = ["free_port", "running", "server_process"]
