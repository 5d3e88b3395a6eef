"""Logging of `yicun` processes: one handler on stderr, and SpiffWorkflow kept quiet.

Why a module: SpiffWorkflow logs every task state change at INFO on its `spiff.*` loggers — thousands of
lines per timer sweep that tell an operator nothing — and, while a logger's own level is unset, builds
each message's extras with the task data and (for a workflow) a walk over all its tasks, even when the
message is then dropped. So the engine sets those loggers to WARNING as soon as it is imported, and only
DEBUG turns them back on (`yicun --verbose …`, or YICUN_LOG_LEVEL=DEBUG for the scheduler and the server),
for someone tracing a process. One-shot commands show warnings and errors; the long-running ones
(`yicun scheduler`, `yicun serve`) log at `settings.get().log_level` (INFO unless YICUN_LOG_LEVEL says
otherwise).
"""
from __future__ import annotations

import logging

from . import settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: SpiffWorkflow 3.2's loggers; it reads each one's *own* level (`logger.level < 20`), so each is set
SPIFF_LOGGERS = ("spiff", "spiff.task", "spiff.workflow", "spiff.data", "spiff.dmn")

_handler: logging.Handler | None = None


def quiet_spiffworkflow(level: int = logging.WARNING) -> None:
    """SpiffWorkflow's loggers at `level`, WARNING unless that is DEBUG."""
    for name in SPIFF_LOGGERS:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))


def configure(level: int) -> None:
    """Log at `level` to stderr. A process whose logging someone else set up (a test runner, a WSGI server
    embedding the app) keeps its handlers and root level; only SpiffWorkflow's level is set either way."""
    global _handler
    root = logging.getLogger()
    if _handler is None and not root.handlers:
        _handler = logging.StreamHandler()
        _handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(_handler)
    if _handler is not None and _handler in root.handlers:
        root.setLevel(level)
    quiet_spiffworkflow(level)


def service_level(verbose: bool) -> int:
    """The level of a long-running process: DEBUG with --verbose, else the configured one."""
    return logging.DEBUG if verbose else settings.get().log_level_number
