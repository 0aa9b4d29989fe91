"""`raygap study submit`: a study as a Ray Job on a running cluster, so the dashboard's Jobs page
shows it with its logs. The job runs `raygap study run` on the cluster with the spec (validated
here first) and this checkout's raygap package shipped beside it."""

from __future__ import annotations

import os
import shlex
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Callable

import yaml
from ray.job_submission import JobStatus, JobSubmissionClient

from raygap.config import StudySpec
from raygap.results import ResultsFolder

RAYGAP_PACKAGE = Path(__file__).resolve().parents[1]  # this checkout's raygap/, shipped with the job
DONE = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}


def token_headers(address: str = "http://127.0.0.1") -> dict[str, str]:
    """Ray's token as an HTTP header, where there is one (RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH
    names, or ~/.ray/auth_token): a cluster with token authentication refuses a job without it. It
    goes only to this machine's clusters, or anywhere when RAY_AUTH_MODE=token says it should."""
    host = urllib.parse.urlparse(address if "://" in address else f"http://{address}").hostname
    if host not in ("127.0.0.1", "localhost", "::1") and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return {}
    token = os.environ.get("RAY_AUTH_TOKEN")
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if not token and path.is_file():
        token = path.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def submit_study(
    spec: StudySpec, folder: ResultsFolder, address: str, echo: Callable[[str], None] = print
) -> tuple[JobSubmissionClient, str]:
    """Submit the study; return the client and the job's submission id. The results folder must be
    one the cluster can reach (an absolute path on its head, a shared disk, or a URI)."""
    client = JobSubmissionClient(address, headers=token_headers(address))
    submission_id = f"raygap-{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with tempfile.TemporaryDirectory(prefix="raygap-submit-") as scratch:
        Path(scratch, "spec.yaml").write_text(yaml.safe_dump(spec.raw, sort_keys=False))
        entrypoint = f"python -m raygap study run spec.yaml --address auto --results {shlex.quote(str(folder))}"
        runtime_env = {"working_dir": scratch, "py_modules": [str(RAYGAP_PACKAGE)]}
        client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env, submission_id=submission_id, metadata={"raygap.study": spec.name})
    echo(f"submitted {submission_id} to {address}: its logs are on the dashboard's Jobs page ({address}/#/jobs)")
    echo(f"progress: raygap study status {folder}; logs: ray job logs --address {address} --follow {submission_id}")
    return client, submission_id


def wait_for(client: JobSubmissionClient, submission_id: str, poll_s: float = 2.0, timeout_s: float | None = None) -> JobStatus:
    """Poll until the job ends (or `timeout_s` passes); its last status."""
    started = time.monotonic()
    while (status := client.get_job_status(submission_id)) not in DONE:
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            break
        time.sleep(poll_s)
    return status
