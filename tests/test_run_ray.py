"""A real Ray Tune run of a tiny grid through the command line."""

import json

from bench.cli import main
from bench.record import validate_record


def test_bench_run_runs_the_grid_as_tune_trials(ray_session, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["run", "--protocol", "tiny", "--method", "baseline,loss-refurb", "--noise", "systematic:0.5", "--seeds", "1", "--out", str(out)]
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 0, captured.out + captured.err
    records = sorted(out.glob("tiny/v1/*/*/seed*.json"))
    assert [p.relative_to(out).parts[2] for p in records] == ["baseline", "loss-refurb"]
    for path in records:
        record = json.loads(path.read_text())
        assert validate_record(record) == []
        assert record["status"] == "ok"
        assert record["provenance"]["device"]["torch_threads"] == 1  # from the trial's CPU share
    # the summary table names both methods and the per-structure Dice columns
    assert "Dice LV" in captured.out and "Dice MYO" in captured.out and "Dice LA" in captured.out
    assert "baseline" in captured.out and "loss-refurb" in captured.out
    assert not list(out.rglob("*.tmp"))
