import pytest
import yaml

from ganaug.errors import GanaugError
from ganaug.params import flatten, load_params, overlay, parse_params
from tests.conftest import PARAMS_YAML, params_with


def project_raw() -> dict:
    return yaml.safe_load(PARAMS_YAML.read_text())


def flatten_raw(raw: dict, prefix: str = "") -> set[str]:
    keys = set()
    for k, v in raw.items():
        keys |= flatten_raw(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return keys


def test_the_project_params_file_is_valid_and_complete():
    p = load_params(PARAMS_YAML)
    assert p.data.name == "fashion-mnist" and p.experiments.epochs == 12
    # every key params.yaml holds is one the schema knows (a key it dropped would be refused as unknown)
    assert set(flatten(p)) == flatten_raw(project_raw())


@pytest.mark.parametrize("key", ["gan.z_dim", "train.augment.crop_padding", "experiments.own", "mlflow"])
def test_a_missing_key_is_refused_in_one_line_naming_it(key):
    """params.yaml is the complete file: the code has no default to fall back on."""
    raw = project_raw()
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        node = node[part]
    del node[last]
    with pytest.raises(GanaugError) as err:
        parse_params(raw)
    assert (
        str(err.value) == f"params.yaml: {key}: missing (every key is in the project's params.yaml; copy it from there)"
    )


def test_an_empty_params_file_names_its_first_missing_section(tmp_path):
    (tmp_path / "params.yaml").write_text("")
    with pytest.raises(GanaugError, match=r"params.yaml: data: missing \(every key"):
        load_params(tmp_path / "params.yaml")


def test_overrides_merge_into_their_section_and_dotted_keys_name_nested_ones():
    base = {"gan": {"arch": "cgan", "steps": 800}, "experiments": {"samplers": ["random", "cl-sam"]}}
    merged = overlay(base, {"gan": {"steps": 3}, "experiments.samplers": ["rl"]})
    assert merged == {"gan": {"arch": "cgan", "steps": 3}, "experiments": {"samplers": ["rl"]}}  # a list replaces
    assert base["gan"]["steps"] == 800  # the base is not changed
    p = params_with({"gan": {"steps": 3}, "train.augment.crop_padding": 0})
    assert (p.gan.steps, p.gan.z_dim, p.train.augment.crop_padding) == (3, 128, 0)  # the rest is params.yaml's


@pytest.mark.parametrize(
    "raw, named",
    [
        ({"data": {"per_clas": 10}}, "unknown key 'data.per_clas'"),
        ({"trian": {}}, "unknown key 'trian'"),
        ({"data": {"per_class": -3}}, "data.per_class"),
        ({"data": {"per_class": "some"}}, "data.per_class"),
        ({"data": {"name": "cifar100"}}, "data.name"),
        ({"data": {"image_size": 4}}, "data.image_size"),
        ({"data": {"imbalance": 0.5}}, "data.imbalance"),
        ({"data": {"imbalance": [1.0, 0.0]}}, "data.imbalance"),
        ({"train": {"lr": 0}}, "train.lr"),
        ({"train": {"epochs": "many"}}, "train.epochs"),
        ({"train": {"augment": {"crop_padding": -1}}}, "train.augment.crop_padding"),
        ({"train": {"optimizer": "lbfgs"}}, "train.optimizer"),
        ({"data": {"name": "folder", "root": ""}}, "data.root"),
        ({"data": {"test_per_class": 1.0}}, "data.test_per_class"),
        ({"data": {"val_per_class": 0}}, "data.val_per_class"),
        ({"data": {"image_size": 300}}, "data.image_size"),
        ({"data": {"resize": "squash"}}, "data.resize"),
        ({"train": {"pretrained": True}}, "train.pretrained_path"),
        ({"experiments": {"seeds": []}}, "experiments.seeds"),
        ({"experiments": {"seeds": [0, 0]}}, "experiments.seeds"),
        ({"experiments": {"baseline_at": [-1]}}, "experiments.baseline_at"),
        ({"data": {"background": 256}}, "data.background"),
        ({"data": {"duplicates": "keep-all"}}, "data.duplicates"),
        # pretrain normalises by the real images, and replace 1.0 leaves none
        ({"experiments": {"recipe": "pretrain", "finetune_epochs": 1, "replace": [0.5, 1.0]}}, "experiments.replace"),
        # real_epochs gives a 2x run 3x the steps of real-only: without a real-only row at 2x it is refused
        ({"experiments": {"match": "real_epochs", "ratios": [1, 2], "baseline_at": [0, 1]}}, "experiments.baseline_at"),
        (
            {"experiments": {"per_class": [10]}},
            "unknown key 'experiments.per_class'",
        ),  # the leaky in-pipeline sweep is gone
    ],
)
def test_bad_params_are_refused_with_one_line_naming_the_key(raw, named):
    with pytest.raises(GanaugError) as err:
        params_with(raw)
    message = str(err.value)
    assert named in message and "\n" not in message


def test_real_epochs_with_matched_baselines_is_accepted():
    p = params_with({"experiments": {"match": "real_epochs", "ratios": [1, 2], "baseline_at": [0, 1, 2]}})
    assert p.experiments.baseline_at == [0, 1, 2] and len(p.experiments.seeds) >= 3  # several seeds by default


def test_missing_and_malformed_params_files(tmp_path):
    with pytest.raises(GanaugError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(GanaugError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(GanaugError, match="expected a mapping"):
        load_params(bad)


def test_flatten_gives_dotted_keys():
    flat = flatten(params_with())
    assert flat["train.augment.hflip"] is True and flat["data.per_class"] == 100


@pytest.mark.parametrize(
    "name, flips", [("digits", False), ("mnist", False), ("fashion-mnist", True), ("cifar10", True), ("folder", True)]
)
def test_hflip_null_takes_the_dataset_choice_and_a_set_value_wins(name, flips):
    assert params_with({"data": {"name": name}}).train.augment.hflip is flips  # null: a mirrored digit is no digit
    for forced in (True, False):
        assert (
            params_with({"data": {"name": name}, "train": {"augment": {"hflip": forced}}}).train.augment.hflip is forced
        )


@pytest.mark.parametrize("value", [True, "0.5", 1.0, 0, -0.1])
def test_split_sizes_are_counts_or_fractions_and_nothing_else(value):
    with pytest.raises(GanaugError, match="data.val_per_class: expected a count per class"):
        params_with({"data": {"val_per_class": value}})


def test_the_datasets_params_accepts_are_the_sources():
    from ganaug.data.sources import SOURCES
    from ganaug.params import HFLIP_BY_DATASET

    assert set(HFLIP_BY_DATASET) == set(SOURCES), "a dataset source needs its hflip choice in HFLIP_BY_DATASET"
