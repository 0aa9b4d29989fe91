from pathlib import Path

import pytest

from raygap.config import SpecError
from raygap.study.slurm import SlurmJob, sbatch_script


def directives(script: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH ")]


def test_the_script_asks_for_what_the_job_names(tmp_path):
    job = SlurmJob(
        tmp_path / "flt.yaml",
        "/shared/results/flt",
        nodes=4,
        cpus_per_node=16,
        gpus_per_node=8,
        partition="gpu",
        account="lab",
        time="1-00:00:00",
        signal_seconds=120,
        name="raygap-flt",
    )
    script = sbatch_script(job, bin_dir=Path("/opt/raygap/bin"))
    assert directives(script) == [
        "--job-name=raygap-flt",
        "--nodes=4",
        "--ntasks-per-node=1",
        "--cpus-per-task=16",
        "--gpus-per-node=8",
        "--partition=gpu",
        "--account=lab",
        "--time=1-00:00:00",
        "--requeue",
        "--open-mode=append",
        "--signal=B:TERM@120",
    ]
    assert f"STUDY={tmp_path / 'flt.yaml'}\n" in script and "RESULTS=/shared/results/flt\n" in script
    assert "RAYGAP=/opt/raygap/bin/raygap\n" in script and "NODES=4\n" in script and "GPUS=8\n" in script
    assert '--resume --address "$head_ip:$port" --nodes "$NODES"' in script  # a requeued job continues the study
    assert "--dashboard-host 127.0.0.1" in script and "REQUEUE=1\n" in script


def test_the_defaults_leave_partition_account_and_time_to_the_cluster(tmp_path):
    script = sbatch_script(SlurmJob(tmp_path / "s.yaml", "/r", requeue=False))
    asked = directives(script)
    assert not any(d.startswith(("--partition", "--account", "--time", "--gpus-per-node")) for d in asked)
    assert "--no-requeue" in asked and "REQUEUE=0\n" in script


def test_paths_with_spaces_are_quoted_for_the_shell(tmp_path):
    script = sbatch_script(SlurmJob(tmp_path / "my study.yaml", "/shared/my results"))
    assert f"STUDY='{tmp_path / 'my study.yaml'}'\n" in script and "RESULTS='/shared/my results'\n" in script


@pytest.mark.parametrize(
    "change, message",
    [({"nodes": 0}, "--nodes: expected 1 or more, got 0"), ({"cpus_per_node": 0}, "--cpus-per-node"), ({"gpus_per_node": -1}, "0 or more")],
)
def test_impossible_allocations_are_refused(tmp_path, change, message):
    with pytest.raises(SpecError, match=message):
        sbatch_script(SlurmJob(tmp_path / "s.yaml", "/r", **change))
