"""`raygap dashboard DIR`: optuna-dashboard over a study's Optuna file, on 127.0.0.1 unless told
otherwise. The objectives carry their names and each trial its final metrics as user attributes
(raygap.study.optuna_search), so the dashboard shows them beside the objectives."""

from __future__ import annotations

import yaml

from raygap import results
from raygap.config import SpecError
from raygap.study.folder import optuna_path, optuna_storage, read_stored_spec


def study_database(location: str):
    """The Optuna study file of the study in `location` (local or URI); SpecError if there is none."""
    folder = results.ResultsFolder(location)
    name = (yaml.safe_load(read_stored_spec(folder)) or {}).get("name", "")
    database = optuna_path(folder, name)
    if not database.exists():
        raise SpecError(f"{folder}: no Optuna study at {database} (has the study started?)")
    return database


def serve(location: str, port: int = 8080, host: str = "127.0.0.1") -> int:
    """Serve until Ctrl-C; 0 then."""
    import optuna_dashboard

    database = study_database(location)
    _check_port(host, port)
    print(f"optuna-dashboard: http://{host}:{port}/dashboard ({database}); Ctrl-C stops it", flush=True)
    try:
        optuna_dashboard.run_server(optuna_storage(database), host=host, port=port)
    except KeyboardInterrupt:
        pass
    return 0


def _check_port(host: str, port: int) -> None:
    """SpecError unless `port` is a port number free on `host` (checked by binding it)."""
    import os
    import socket

    if not 1 <= port <= 65535:
        raise SpecError(f"--port: {port} is not a port number; expected 1 to 65535")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise SpecError(
            f"--port: cannot listen on {host}:{port} ({os.strerror(error.errno or 0)}); pick another port with --port"
        ) from None
