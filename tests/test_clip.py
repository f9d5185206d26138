"""CLIP from a local folder: a tiny CLIP trained on digits with captions (tests.conftest.tiny_clip) tells correct
labels from swapped ones, the clip sampler keeps the correct ones, it loads offline, bad folders stop in one line,
and score.features: clip puts CLIP's features in the score files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from ganaug.errors import GanaugError
from ganaug.sampling.samplers import select
from ganaug.sampling.scores import Scores, margins
from tests.conftest import params_with

CPU = torch.device("cpu")


def clip_of(tiny_clip):
    from ganaug.clip import load_clip

    return load_clip(tiny_clip.path, batch_size=128, device=CPU)


def test_a_tiny_clip_ranks_correct_labels_above_swapped_ones_on_digits_it_never_saw(tiny_clip):
    from ganaug.clip import zero_shot_logits

    logits = torch.from_numpy(zero_shot_logits(clip_of(tiny_clip), tiny_clip.images, tiny_clip.prompts))
    truth = torch.from_numpy(tiny_clip.labels)
    swapped = (truth + 1 + torch.from_numpy(np.random.default_rng(0).integers(0, 9, len(truth)))) % 10  # never truth
    assert (swapped != truth).all()
    right, wrong = margins(logits, truth), margins(logits, swapped)
    assert (right > wrong).float().mean() > 0.8  # chance: 0.5
    assert (logits.argmax(1) == truth).float().mean() > 0.6  # zero-shot accuracy; chance: 0.1
    # the margin is > 0 exactly when the zero-shot label is the image's own
    assert torch.equal(right > 0, logits.argmax(1) == truth)


def test_the_clip_sampler_keeps_the_correctly_labelled_images_of_a_mixed_pool(tiny_clip):
    """A pool of held-out digits, half of them under a wrong label: scored by CLIP, the clip sampler's picks are
    nearly all correctly labelled, far more often than random's."""
    from ganaug.clip import zero_shot_logits

    rng = np.random.default_rng(1)  # not random's draw (seed 0), which would otherwise pick exactly the right ones
    truth = tiny_clip.labels
    wrong = rng.random(len(truth)) < 0.5
    labels = np.where(wrong, (truth + rng.integers(1, 10, len(truth))) % 10, truth)
    logits = torch.from_numpy(zero_shot_logits(clip_of(tiny_clip), tiny_clip.images, tiny_clip.prompts))
    table = pd.DataFrame(
        {
            "id": np.arange(len(labels)),
            "label": labels,
            "clip_label": logits.argmax(1).numpy(),
            "clip_margin": margins(logits, torch.from_numpy(labels)).numpy(),
        }
    )
    quota = np.full(10, 20)
    correct = {name: (~wrong[select(name, Scores(table), quota, 0)]).mean() for name in ("clip", "random")}
    assert correct["clip"] > 0.9 and correct["random"] < 0.7, correct
    kept = table.set_index("id").loc[select("clip", Scores(table), quota, 0)]
    assert (kept["clip_label"] == kept["label"]).all()  # each class has 20+ images CLIP labels as their own


def test_the_clip_sampler_without_clip_scores_says_to_set_clip_path():
    table = pd.DataFrame({"id": [0, 1], "label": [0, 1], "confidence": [0.5, 0.5]})
    with pytest.raises(GanaugError) as err:
        select("clip", Scores(table), np.array([1, 1]), 0)
    assert "set clip.path" in str(err.value) and "\n" not in str(err.value)


def test_clip_loads_offline_from_its_folder(tiny_clip):
    """In a fresh process with the hub off: the model, its tokenizer and its saved normalisation."""
    probe = (
        "import json, sys, torch; from ganaug.clip import load_clip; "
        f"c = load_clip({str(tiny_clip.path)!r}, 8, torch.device('cpu')); "
        "x = torch.zeros(2, 1, 16, 16, dtype=torch.uint8); f = c(x); "
        "print(json.dumps([c.image_size, c.num_features, list(f.shape), c.mean.tolist()]))"
    )
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "", "PYTHONPATH": ":".join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    size, width, shape, mean = json.loads(proc.stdout.strip().splitlines()[-1])
    saved = json.loads((tiny_clip.path / "preprocessor_config.json").read_text())["image_mean"]
    assert (size, shape) == (32, [2, width]) and mean == pytest.approx(saved)


def _bert_folder(folder):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))


def _no_weights(folder):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "clip"}))


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda f: None, "not a folder (expected a transformers CLIPModel folder"),
        (lambda f: f.mkdir(), "no config.json in it (expected a transformers CLIPModel folder"),
        (_bert_folder, "config.json is a 'bert' config (expected a transformers CLIPModel folder"),
        (_no_weights, "the model does not load ("),
    ],
    ids=["missing", "empty", "not-clip", "no-weights"],
)
def test_a_missing_or_wrong_clip_folder_stops_in_one_line_naming_it(tmp_path, make, says):
    from ganaug.clip import load_clip

    folder = tmp_path / "clip"
    make(folder)
    with pytest.raises(GanaugError) as err:
        load_clip(folder, 8, CPU)
    line = str(err.value)
    assert line.startswith(f"clip.path: {folder}: ") and says in line and "\n" not in line, line


def test_a_clip_folder_without_its_tokenizer_stops_in_one_line(tiny_clip, tmp_path):
    import shutil

    from ganaug.clip import load_clip

    folder = tmp_path / "clip"
    shutil.copytree(tiny_clip.path, folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(GanaugError) as err:
        load_clip(folder, 8, CPU)
    assert str(err.value).startswith(f"clip.path: {folder}: no usable tokenizer") and "\n" not in str(err.value)


def test_score_features_clip_puts_clip_features_and_columns_in_the_score_files(tiny_clip, tmp_path):
    """Scored with CLIP, a pool's table gains clip_label and clip_margin; with score.features: clip its features
    file holds CLIP's (normalised) features instead of the scorer's; without CLIP nothing changes."""
    import timm

    from ganaug.classify.normalize import Normalizer
    from ganaug.gan.networks import Discriminator
    from ganaug.metrics.features import ClassifierFeatures
    from ganaug.prompts import load_prompts
    from ganaug.sampling.scores import load_scores, score_pool

    torch.manual_seed(0)
    extractor = ClassifierFeatures(
        timm.create_model("resnet10t", num_classes=10, in_chans=1), Normalizer([0.5], [0.25])
    )
    D = Discriminator(10, 1, 16, width=8, min_width=8).eval()
    images, labels = tiny_clip.images[:40], tiny_clip.labels[:40]
    clip = clip_of(tiny_clip).set_prompts(load_prompts([str(c) for c in range(10)]))

    def scored(name, **kw):
        table = score_pool(images, labels, extractor, D, CPU, tmp_path, name, batch_size=16, **kw)
        return table, load_scores(tmp_path, name).features

    plain, plain_feats = scored("plain")
    with_clip, scorer_feats = scored("columns", clip=clip)
    clip_table, clip_feats = scored("features", clip=clip, clip_features=True)
    assert "clip_margin" not in plain and plain_feats.shape == (40, extractor.num_features)
    np.testing.assert_array_equal(scorer_feats, plain_feats)  # CLIP's columns alone leave the features as they were
    pd.testing.assert_frame_equal(with_clip[plain.columns], plain)
    assert clip_feats.shape == (40, clip.num_features) != plain_feats.shape
    np.testing.assert_allclose(np.linalg.norm(clip_feats.astype(np.float32), axis=1), 1, atol=1e-2)
    assert (clip_table["clip_label"] == labels).mean() > 0.6  # the zero-shot labels of held-out digits
    assert ((clip_table["clip_margin"] > 0) == (clip_table["clip_label"] == clip_table["label"])).all()


def test_score_features_clip_without_clip_path_is_refused_in_one_line():
    from ganaug.stages.score import load_scoring_clip

    with pytest.raises(GanaugError) as err:
        load_scoring_clip(params_with({"score": {"features": "clip"}}), ["a", "b"], CPU)
    line = str(err.value)
    assert (
        line.startswith("score.features: clip needs CLIP weights, but clip.path is weights/none") and "\n" not in line
    )
    assert load_scoring_clip(params_with({}), ["a", "b"], CPU) is None  # the default: no CLIP, nothing loaded


def test_fid_in_clip_features_tells_digits_from_noise(tiny_clip):
    """CLIP as the quality evaluator's feature extractor: held-out digits are far closer to the real ones than
    noise is."""
    from ganaug.metrics.quality import QualityEvaluator

    clip = clip_of(tiny_clip).set_prompts(tiny_clip.prompts)
    evaluator = QualityEvaluator(clip, tiny_clip.train_images[:300], tiny_clip.train_labels[:300], 10, CPU, 200)
    noise = np.random.default_rng(0).integers(0, 256, (200, 16, 16, 1), dtype=np.uint8)
    digits = evaluator.evaluate(tiny_clip.images[:200], tiny_clip.labels[:200])
    assert digits["fid"] < 0.5 * evaluator.evaluate(noise, tiny_clip.labels[:200])["fid"]
    assert digits["label_agreement"] > 0.6  # here: CLIP's zero-shot labels
