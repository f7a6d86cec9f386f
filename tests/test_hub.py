"""``neurocwm.hub``: the published-model catalogue and the offline-first download cache (file:// URLs only)."""

import hashlib
import json
from importlib import resources
from pathlib import Path

import pytest

from neurocwm import hub
from neurocwm.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_catalogue_copies_identical_and_valid():
    data = (REPO / "data" / "models.json").read_text()
    shipped = resources.files("neurocwm.imports").joinpath("models.json").read_text()
    assert data == shipped, "data/models.json and neurocwm/imports/models.json must be identical"
    cat = json.loads(data)
    names = [e["name"] for e in cat["models"]]
    assert len(names) == len(set(names))
    required = {"name", "family", "kind", "url", "filename", "size", "sha256", "citation", "licence"}
    for e in cat["models"]:
        assert required <= set(e), e["name"]
        assert e["family"] in hub.FAMILIES and e["kind"] in ("checkpoint", "positions")
        assert e["url"].startswith("https://")
        if e.get("manual"):
            assert e.get("notes"), f"{e['name']}: a manual entry must say where the file is"
    tdann = hub.entries("tdann", "checkpoint")
    sweep = {(e["variant"]["objective"], e["variant"]["alpha"]) for e in tdann if "alpha" in e["variant"]}
    assert {a for o, a in sweep if o == "simclr"} == {0.0, 0.1, 0.25, 0.5, 1.25, 2.5, 25.0}
    for e in tdann:
        pos = e["variant"].get("positions")
        assert pos is None or hub.entry(pos, "tdann")["kind"] == "positions"
    topo = hub.entries("toponets")
    assert sorted(e["variant"]["tau"] for e in topo) == [0.5, 1.0, 5.0, 10.0, 20.0, 50.0]
    for e in topo:
        assert e["url"] == f"https://huggingface.co/murtylab/topo-resnet18-imagenet/resolve/main/{e['filename']}"


def _entry(name, url, filename, family="tdann", kind="checkpoint", size=None, sha256=None, **more) -> dict:
    """A catalogue entry with placeholder citation and licence; ``more``: variant, manual, notes."""
    where = {"url": url, "filename": filename, "size": size, "sha256": sha256}
    return {"name": name, "family": family, "kind": kind, **where, "citation": "c", "licence": "l", **more}


@pytest.fixture
def catalogue(tmp_path, monkeypatch):
    """A catalogue of files made here, served through file:// URLs, with a fresh $NEUROCWM_HOME."""
    src = tmp_path / "server"
    src.mkdir()
    blob = bytes(range(256)) * 40_000  # ~10 MB: several progress lines
    (src / "model.pt").write_bytes(blob)
    sha = hashlib.sha256(blob).hexdigest()
    entries = [
        _entry("m-unchecked", (src / "model.pt").as_uri(), "model.pt"),
        _entry("m-checked", (src / "model.pt").as_uri(), "model.pt", size=len(blob), sha256=sha),
        _entry("m-wrongsha", (src / "model.pt").as_uri(), "model.pt", sha256="0" * 64),
        _entry("m-wrongsize", (src / "model.pt").as_uri(), "model.pt", size=5),
        _entry("m-offline", (src / "gone.pt").as_uri(), "gone.pt"),
        _entry(
            "m-manual",
            "https://osf.io/64qv3/",
            "posdir",
            kind="positions",
            manual=True,
            notes="folder tdann_data/tdann/positions/x of the OSF project",
        ),
        _entry("t-file", (src / "model.pt").as_uri(), "model.pt", family="toponets"),
    ]
    monkeypatch.setattr(hub, "catalogue", lambda: {"models": entries})
    home = tmp_path / "home"
    monkeypatch.setenv(hub.ENV_HOME, str(home))
    return src, home, blob, sha


def test_download_records_sha_then_works_offline(catalogue, capsys):
    src, home, blob, sha = catalogue
    path = hub.resolve("m-unchecked", "tdann")
    assert path == home / "tdann" / "m-unchecked" / "model.pt" and path.read_bytes() == blob
    assert (path.parent / "model.pt.sha256").read_text().split()[0] == sha
    err = capsys.readouterr().err
    assert "downloading model.pt: 50%" in err and "downloading model.pt: 100%" in err  # line-wise, not a TTY
    assert not list(path.parent.glob(".*"))  # no temporary file left behind
    # the family scopes names
    assert hub.resolve("t-file", "toponets", progress=False) == home / "toponets" / "t-file" / "model.pt"
    (src / "model.pt").unlink()  # the "network" is gone: the checked cached copy is used
    assert hub.resolve("m-unchecked", "tdann", progress=False) == path
    # a local path is returned as it is
    assert hub.resolve(str(path), "cwm") == path


def test_corrupt_cache_is_refused(catalogue):
    _, _, blob, _ = catalogue
    path = hub.resolve("m-unchecked", "tdann", progress=False)
    path.write_bytes(blob[:-1] + b"x")
    with pytest.raises(ValueError, match="corrupt or was replaced: delete it"):
        hub.resolve("m-unchecked", "tdann")
    path2 = hub.resolve("m-checked", "tdann", progress=False)  # catalogue sha256 checked on download
    path2.write_bytes(b"tampered")
    with pytest.raises(ValueError, match=r"\(the catalogue\)"):
        hub.resolve("m-checked", "tdann")


def test_mismatching_downloads_are_not_kept(catalogue):
    _, home, _, _ = catalogue
    with pytest.raises(ValueError, match="sha256 .* the catalogue says 000000000000"):
        hub.resolve("m-wrongsha", "tdann", progress=False)
    with pytest.raises(ValueError, match="bytes, the catalogue says 5"):
        hub.resolve("m-wrongsize", "tdann", progress=False)
    leftovers = [p for p in (home / "tdann").rglob("*") if p.is_file()]
    assert leftovers == []


def test_offline_and_manual_entries_say_where_to_put_the_file(catalogue):
    src, home, _, _ = catalogue
    with pytest.raises(hub.DownloadError) as info:
        hub.resolve("m-offline", "tdann", progress=False)
    msg = str(info.value)
    assert "\n" not in msg and (src / "gone.pt").as_uri() in msg
    assert str(home / "tdann" / "m-offline" / "gone.pt") in msg
    with pytest.raises(hub.DownloadError, match=r"no direct download link: download https://osf.io/64qv3/ by hand"):
        hub.resolve("m-manual", "tdann", kind="positions")
    folder = home / "tdann" / "m-manual" / "posdir"  # put there by hand: used, its digest recorded
    folder.mkdir(parents=True)
    (folder / "layer1.0.npz").write_bytes(b"abc")
    assert hub.resolve("m-manual", "tdann") == folder
    assert (folder.parent / "posdir.sha256").is_file()
    (folder / "layer1.0.npz").write_bytes(b"abd")
    with pytest.raises(ValueError, match="corrupt"):
        hub.resolve("m-manual", "tdann")
    with pytest.raises(FileNotFoundError, match="no tdann catalogue entry"):
        hub.resolve("nope", "tdann")
    with pytest.raises(ValueError, match="is a positions entry, expected a checkpoint"):
        hub.resolve("m-manual", "tdann", kind="checkpoint")


def test_cli_import_by_catalogue_name(tmp_path, monkeypatch, capsys):
    from test_import_tdann import positions_folder, vissl_checkpoint

    src = tmp_path / "server"
    src.mkdir()
    vissl_checkpoint(src / "model_final_checkpoint_phase199.torch")
    positions_folder(src / "positions", "npz")
    entries = [
        _entry(
            "tdann-x-alpha0.5-seed1",
            (src / "model_final_checkpoint_phase199.torch").as_uri(),
            "model_final_checkpoint_phase199.torch",
            variant={"objective": "simclr", "alpha": 0.5, "seed": 1, "positions": "tdann-x-pos"},
        ),
        _entry("tdann-x-pos", "https://osf.io/64qv3/", "positions", kind="positions", manual=True, notes="by hand"),
    ]
    monkeypatch.setattr(hub, "catalogue", lambda: {"models": entries})
    home = tmp_path / "home"
    monkeypatch.setenv(hub.ENV_HOME, str(home))
    monkeypatch.chdir(tmp_path)
    assert main(["import", "tdann", "tdann-x-alpha0.5-seed1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(home / "tdann" / "tdann-x-pos" / "positions") in err
    (home / "tdann" / "tdann-x-pos").mkdir(parents=True)
    (src / "positions").rename(home / "tdann" / "tdann-x-pos" / "positions")
    assert main(["import", "tdann", "tdann-x-alpha0.5-seed1", "--no-progress"]) == 0
    cfg = json.loads((tmp_path / "runs" / "tdann-x-alpha0.5-seed1" / "config.json").read_text())
    assert cfg["alpha"] == 0.5 and cfg["seed"] == 1
    assert cfg["imported"]["catalogue"]["checkpoint"]["name"] == "tdann-x-alpha0.5-seed1"
    assert cfg["imported"]["checkpoint"]["path"].startswith(str(home))
