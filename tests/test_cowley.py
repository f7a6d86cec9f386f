"""Cowley 2023 V4 loaders on the real data (both zip layouts)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_shared

from neurocwm.datasets.cowley import load_cowley_stimuli, load_cowley_v4

EXPECTED = {"190923": 33, "201025": 89}


@pytest.mark.parametrize("session", sorted(EXPECTED))
def test_cowley_session_loads_aligned(session):
    root = require_shared("cowley_v4", "data_V4_responses")
    stimuli, asm = load_cowley_v4(session, root=root)
    assert len(stimuli) == 1200
    assert asm.shape == (1200, EXPECTED[session])
    raw = np.load(root / "responses_repeat_averaged" / f"responses_{session}.npy")
    assert raw.shape == (EXPECTED[session], 1200)
    # column j of the response file is image j+1, and the assembly keeps that pairing
    np.testing.assert_array_equal(asm.values, raw.T)
    np.testing.assert_array_equal(asm["stimulus_id"].values, stimuli.stimulus_ids)
    np.testing.assert_array_equal(asm["image_number"].values, np.arange(1, 1201))
    assert asm["stimulus_id"].values[41] == f"{session}_image0042"
    assert stimuli.get_path(f"{session}_image0042").endswith("image0042.jpg")
    assert set(asm["region"].values) == {"V4"}
    img = stimuli.open_image(f"{session}_image1200")
    assert img.size == (112, 112) and img.mode == "RGB"


def test_cowley_zip_layouts_differ_but_both_load():
    root = require_shared("cowley_v4", "data_V4_responses")
    a = load_cowley_stimuli("190923", root=root)
    b = load_cowley_stimuli("201025", root=root)
    member_a = a.paths[0].split("::", 1)[1]
    member_b = b.paths[0].split("::", 1)[1]
    assert member_a == "images_190923/image0001.jpg"  # top folder
    assert member_b == "image0001.jpg"  # zip root
    assert not set(a.stimulus_ids) & set(b.stimulus_ids)  # session-unique ids


def test_cowley_unknown_session_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="unknown Cowley V4 session"):
        load_cowley_v4("000000")
    with pytest.raises(ValueError, match="not found"):
        load_cowley_v4("190923", root=tmp_path)


def test_ceiling_recovers_planted_reliability_on_real_v4():
    """Real V4 tuning as signal + planted trial noise: the split-half ceiling finds the reliability."""
    from neurocwm.assemblies import make_assembly
    from neurocwm.predictivity import internal_consistency

    root = require_shared("cowley_v4", "data_V4_responses")
    _, asm = load_cowley_v4("201025", root=root)
    signal = asm.values  # (1200, 89) repeat-averaged rates
    rng = np.random.default_rng(0)
    n_rep, target = 8, 0.7
    var_s = signal.var(0)
    sd = np.sqrt(var_s * (1 / target - 1) * n_rep)  # reliability of the n_rep-trial mean = target
    trials = signal[:, None, :] + sd * rng.normal(size=(signal.shape[0], n_rep, signal.shape[1]))
    ids = asm["stimulus_id"].values
    trial_asm = make_assembly(
        trials.reshape(-1, signal.shape[1]),
        np.repeat(ids, n_rep),
        asm["neuroid_id"].values,
        repetition=np.tile(np.arange(n_rep), len(ids)),
    )
    ceiling = internal_consistency(trial_asm)
    assert ceiling.value == pytest.approx(target, abs=0.02)
