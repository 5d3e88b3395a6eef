"""Pages of the process designers (issue 11). Every member of staff may read the processes (clerks look up an
item's process there); only designers see the actions that change them (deploy, migrate).

One module per part: `versions` the process list, a process's versions, their files and diagrams, the diff."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("design", __name__)

from . import (  # noqa: E402,F401  (views modules: register their routes on bp)
    migrations,  # noqa: E402,F401  (views module: running cases moved to another version, dry run, rollback)
    modeler,  # noqa: E402,F401  (views module: the modeler in the browser, check, deploy, upload)
    scenarios,  # noqa: E402,F401  (views module: a process's tests, run in a throwaway database)
    versions,  # noqa: E402,F401  (views module: the process list, versions, files, diagrams, the diff)
)
