"""The CLI's --shard I/N and --skip-existing: sharded and resumed runs write the bytes of
one whole run (saliency), and shards print the lines of one run (classify)."""

import pathlib

from conftest import run_cli


def names(d):
    return sorted(f.name for f in pathlib.Path(d).iterdir())


def test_saliency_shards_and_resume_write_the_whole_runs_bytes(forty, tmp_path):
    images = sorted(str(p) for p in pathlib.Path(forty).iterdir())
    run_cli("saliency", "-o", tmp_path / "full", *images)
    for i in (1, 2):
        run_cli("saliency", "--shard", f"{i}/2", "-o", tmp_path / "sharded", *images)
    full = [n for n in names(tmp_path / "full") if n != "figure.png"]
    assert names(tmp_path / "sharded") == full  # no figure from a partial run
    for n in full:
        assert (tmp_path / "full" / n).read_bytes() == (tmp_path / "sharded" / n).read_bytes(), n
    # Lose two files, resume: they come back, the same bytes; nothing else is touched.
    lost = [full[0], full[-1]]
    for n in lost:
        (tmp_path / "sharded" / n).unlink()
    p = run_cli("saliency", "--skip-existing", "--json", "-o", tmp_path / "sharded", *images)
    # Only the blocks holding a lost file ran: the first (32 images) and the last (8).
    # 40 result lines, then the run's manifest.
    assert len(p.stdout.splitlines()) == 41
    for n in lost:
        assert (tmp_path / "full" / n).read_bytes() == (tmp_path / "sharded" / n).read_bytes(), n
    p = run_cli("saliency", "--skip-existing", "-o", tmp_path / "sharded", *images)
    assert p.stdout == "" and "nothing to do" in p.stderr
    # Without --skip-existing an existing output is still refused.
    p = run_cli("saliency", "-o", tmp_path / "sharded", *images, check=False)
    assert p.returncode != 0 and "already exists" in p.stderr


def test_classify_shards_print_the_whole_runs_lines(forty):
    images = sorted(str(p) for p in pathlib.Path(forty).iterdir())
    whole = run_cli("classify", "--json", *images).stdout.splitlines()
    parts = [run_cli("classify", "--json", "--shard", f"{i}/3", *images).stdout.splitlines()
             for i in (1, 2, 3)]
    assert sorted(sum(parts, [])) == sorted(whole)
    assert len(parts[0]) == 32 and len(parts[1]) == 8 and parts[2] == []
    p = run_cli("classify", "--shard", "4/3", *images, check=False)
    assert p.returncode != 0 and "I/N" in p.stderr
