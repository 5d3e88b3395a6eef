"""Yicun case engine: SpiffWorkflow + SQLAlchemy, with no knowledge of the web layer."""
from . import logs

logs.quiet_spiffworkflow()  # SpiffWorkflow's per-task INFO messages: off unless asked for (engine.logs)
