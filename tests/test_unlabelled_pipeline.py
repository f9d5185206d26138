"""The unlabelled regime end to end (slow tier): a user's labelled folder and a folder of unlabelled images, both
`dvc add`ed; a style GAN (DAPPER in its W space) or a diffusion model (DDIM inversion) pre-trained on the unlabelled
images, pseudo-labelling of the same images; one `dvc repro` each."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import PIPELINE
from tests.project import commit_all, dvc, new_project, write_digit_folder

UNLABELLED = {
    **PIPELINE,
    "data": {**PIPELINE["data"], "unlabelled": "folder", "unlabelled_root": "data/unlabelled"},
    "gan": PIPELINE["gan"],
    "experiments": {
        **PIPELINE["experiments"],
        "samplers": ["pseudo-label", "dapper"],
        "ratios": [0.1],  # 3 per class: within the DAPPER pool (2 projected x 3 per class)
        "seeds": [0],
        "replace": [],
        "counts": [],
        "own": [],
    },
}


def write_unlabelled_digits(folder, start: int, stop: int) -> None:
    """The digits ``start:stop`` of each class as ``<digit index>.png``, without class folders."""
    from sklearn.datasets import load_digits

    d = load_digits()
    folder.mkdir(parents=True)
    for c in range(10):
        for idx in np.flatnonzero(d.target == c)[start:stop]:
            Image.fromarray(np.rint(d.images[idx] * 255 / 16).astype(np.uint8), "L").save(folder / f"{idx:04d}.png")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("gan", "space"),
    [
        pytest.param({"arch": "style", "z_dim": 32}, "w", id="style"),
        pytest.param({"arch": "ddpm", "unet_width": 8, "sample_steps": 5}, "noise", id="ddpm"),
    ],
)
def test_a_generator_pre_trained_on_unlabelled_images_projection_and_pseudo_labels_run_as_one_pipeline(
    tmp_path, gan, space
):
    root = new_project(tmp_path / "project", {**UNLABELLED, "gan": {**UNLABELLED["gan"], **gan}})
    write_digit_folder(root / "data/images", 95)
    write_unlabelled_digits(root / "data/unlabelled", 95, 170)
    dvc(root, "add", "data/images", "data/unlabelled")
    commit_all(root, "labelled and unlabelled images")
    dvc(root, "repro")

    classes = json.loads((root / "data/prepared/classes.json").read_text())
    assert classes["unlabelled"]["images"] == 750 and "dropped" not in classes["unlabelled"]
    gan = json.loads((root / "reports/metrics/gan.json").read_text())
    assert gan["learned_from"] == "unlabelled" and gan["images"] == 750 and "label_agreement" not in gan
    pool = json.loads((root / "data/synthetic/pool/meta.json").read_text())
    assert pool["kind"] == "labelled-by-scorer" and pool["count"] > 0
    projection = json.loads((root / "reports/metrics/projection.json").read_text())
    assert projection["space"] == space and projection["projected"] == 20
    pseudo = json.loads((root / "data/synthetic/pseudo/meta.json").read_text())
    assert pseudo["kind"] == "pseudo-label" and pseudo["count"] == 750
    quality = json.loads((root / "reports/metrics/pool.json").read_text())
    assert {"pool", "projection", "pseudo"} <= set(quality)
    # the scorer's pseudo-labels are mostly the true classes (chance: 10 %)
    from sklearn.datasets import load_digits

    truth = load_digits().target
    ids = np.load(root / "data/synthetic/pseudo/source_ids.npy")
    given = np.load(root / "data/synthetic/pseudo/labels.npy")
    right = np.mean([truth[int(i.split("/")[-1][:4])] == y for i, y in zip(ids, given)])
    assert right > 0.6, right

    chosen = pd.read_parquet(root / "data/selected/augment/pseudo-label-0.1-s0.parquet")
    assert (chosen["source"] == "pseudo").all() and len(chosen) == 30
    dapper = pd.read_parquet(root / "data/selected/augment/dapper-0.1-s0.parquet")
    assert (dapper["source"] == "projection").all() and len(dapper) == 30
    summary = (root / "reports/summary.md").read_text()
    assert "pseudo-label" in summary and "dapper" in summary
    assert "pseudo_label" not in dvc(root, "status")  # nothing left to run
