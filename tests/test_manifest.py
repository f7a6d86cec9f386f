import pytest
from conftest import require_shared

from neurocwm.datasets.manifest import load_manifest, verify_dataset


def test_manifest_has_sources_licences_citations():
    m = load_manifest()
    for name in ("ringach2002", "cowley_v4", "floc", "bsds500", "kodak"):
        assert {"source", "licence", "citation", "layout"} <= set(m[name])


def test_real_files_match_checksums():
    root = require_shared()
    for name in ("ringach2002", "cowley_v4"):
        result = verify_dataset(name, root)
        assert result and all(result.values()), result


def test_unknown_and_missing(tmp_path):
    with pytest.raises(KeyError):
        verify_dataset("nsd", tmp_path)
    with pytest.raises(FileNotFoundError):
        verify_dataset("ringach2002", tmp_path)
