"""Yicun case engine: SpiffWorkflow + SQLAlchemy, with no knowledge of the web layer."""
