"""The training distribution recorded with a model and the population stability index it is compared with."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from common.monitoring import drift
from common.training import FEATURES, LABELS, synthetic_dataset, train


def test_quantile_edges_cut_at_deciles_and_merge_repeated_ones():
    assert drift.quantile_edges(range(101)) == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
    assert drift.quantile_edges([0] * 50 + [1] * 30 + [2] * 20) == [0.0, 1.0]  # three bins for three values
    with pytest.raises(ValueError):
        drift.quantile_edges([])


def test_a_value_falls_in_the_bin_whose_upper_edge_it_reaches():
    assert drift.bin_shares([0, 1, 1.5, 2, 3], [1.0, 2.0]) == [0.4, 0.4, 0.2]


def test_psi_is_zero_for_the_same_shares_small_for_noise_and_large_for_a_shift():
    rng = random.Random(3)
    training = [rng.gauss(100, 15) for _ in range(5000)]
    edges = drift.quantile_edges(training)
    expected = drift.bin_shares(training, edges)
    same = drift.psi(expected, expected)
    noise = drift.psi(expected, drift.bin_shares([rng.gauss(100, 15) for _ in range(5000)], edges))
    shifted = drift.psi(expected, drift.bin_shares([rng.gauss(115, 15) for _ in range(5000)], edges))
    assert same == 0.0
    assert noise < drift.WATCH and drift.verdict(noise) == "ok"
    assert shifted > drift.DRIFT and drift.verdict(shifted) == "drift"
    assert drift.verdict(0.15) == "watch"
    empty_bin = drift.psi([0.5, 0.5], [1.0, 0.0])  # an empty recent bin costs a finite amount
    assert 0 < empty_bin < 10


def test_training_records_each_features_bins_and_the_label_share(tmp_path: Path):
    frame = synthetic_dataset(rows=1200)
    train(frame, tmp_path / "m", "synthetic")
    recorded = json.loads((tmp_path / "m" / "metadata.json").read_text())["training_distribution"]
    assert recorded["bins"] == drift.BINS and set(recorded["features"]) == set(FEATURES)
    for name, feature in recorded["features"].items():
        assert feature["edges"] == sorted(set(feature["edges"])), name
        assert len(feature["shares"]) == len(feature["edges"]) + 1 and abs(sum(feature["shares"]) - 1) < 1e-4
        assert all(share > 0 for share in feature["shares"]), name  # every bin holds training rows
    assert set(recorded["labels"]) == set(LABELS) and abs(sum(recorded["labels"].values()) - 1) < 1e-4
    # fit on the 70% training split: its label share is the data's, as the split is stratified
    assert abs(recorded["labels"]["diabetic"] - frame["Diabetic"].mean()) < 0.01
