"""comining.config: recipes between the presets and the user's settings, stored runs read back
(runs made before recipes, retired options), and a config file read as the flags are."""

import json

import pytest

from comining.config import Config, from_stored, recipe_values, resolve
from comining.errors import UserError
from comining.methods.comining import RECIPES, CoMiningOptions


# --- recipes ---------------------------------------------------------------------------------

RECIPE_KEYS = {"w_pc", "w_tri", "w_re", "aug", "select_per_class", "forget_ramp"}


def test_recipes_are_named_instances_of_the_options_and_set_only_the_recipe_options():
    assert all(isinstance(r, CoMiningOptions) for r in RECIPES.values())
    assert RECIPES["default"] == CoMiningOptions()  # the options' defaults are the default recipe
    for name in RECIPES:
        assert set(recipe_values(name)) == RECIPE_KEYS  # never σ, the margin or the bank: the data set's
    assert recipe_values("paper") == {"w_pc": 1.0, "w_tri": 3.0, "w_re": 0.01, "aug": "ws",
                                      "select_per_class": False, "forget_ramp": False}
    assert recipe_values("authors") == {**recipe_values("paper"), "w_tri": 0.0}


@pytest.mark.parametrize("name", list(RECIPES))
def test_each_recipe_resolves_to_its_settings(name):
    cfg = resolve({"recipe": name})
    assert cfg.recipe == name
    assert {k: getattr(cfg, k) for k in RECIPE_KEYS} == recipe_values(name)


def test_recipe_sits_between_presets_and_the_users_settings(tmp_path):
    # A flag overrides the recipe ...
    assert resolve({"recipe": "paper", "w_tri": 1.5}).w_tri == 1.5
    # ... so does a config file ...
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"w_tri": 0.5}))
    assert resolve({"recipe": "paper"}, config_file=str(config)).w_tri == 0.5
    # ... and the recipe overrides a data set's preset, which keeps the data set's own settings.
    web = resolve({"dataset": "folder", "recipe": "paper"})
    assert web.w_tri == 3.0 and web.margin == 0.4 and web.re_sigma == 0.5
    assert resolve({"dataset": "folder", "recipe": "default"}).re_sigma == 0.5
    # A recipe named in the config file counts as the user's choice too.
    config.write_text(json.dumps({"recipe": "authors"}))
    assert resolve({}, config_file=str(config)).w_pc == 1.0


def test_unknown_recipe_is_a_one_line_error():
    with pytest.raises(UserError, match="unknown recipe 'nosuch'.*paper"):
        resolve({"recipe": "nosuch"})


def test_a_run_made_before_recipes_reads_as_paper():
    old = {k: v for k, v in Config(w_tri=3.0).to_dict().items() if k not in RECIPE_KEYS | {"recipe"}}
    stored = from_stored(old)
    assert stored["recipe"] == "paper"
    assert {k: stored[k] for k in RECIPE_KEYS} == recipe_values("paper")
    assert from_stored({**old, "recipe": "authors"})["recipe"] == "authors"  # newer runs keep theirs


@pytest.mark.parametrize("retired, kept_value, other", [("select_on", "both", "weak"), ("select_by", "self", "peer"),
                                                        ("score_target", "smoothed", "given"), ("ce_on", "both", "weak"),
                                                        ("tri_positives", "least", "most"), ("score_ema", 0.0, 0.5),
                                                        ("tri_confident_bank", False, True),
                                                        ("re_confident_bank", False, True)])
def test_a_stored_run_with_a_retired_option_reads_only_at_the_value_every_run_now_uses(retired, kept_value, other):
    stored = {**Config(recipe="default").to_dict(), retired: kept_value}
    assert retired not in from_stored(stored) and Config(**from_stored(stored)).w_tri == 0.0
    with pytest.raises(UserError, match=f"this run used {retired} = .* removed: see docs/METHOD.md"):
        from_stored({**stored, retired: other})


def test_the_settings_defaults_are_the_default_recipe():
    # Config() built directly (the Python API) must mean what its recipe field says.
    assert {k: getattr(Config(), k) for k in RECIPE_KEYS} == recipe_values(Config().recipe)


# --- a config file -----------------------------------------------------------------------------

def test_a_config_file_accepts_what_the_flags_accept(tmp_path):
    from comining.config import resolve
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"synthetic": "cifar10nc", "closed_rate": 0.5}))
    cfg = resolve({}, config_file=str(settings))  # as --synthetic-data cifar10nc --closed-rate 0.5
    assert cfg.dataset == "cifar10" and cfg.synthetic == "cifar10nc" and cfg.closed_rate == 0.5
    assert cfg.to_dict() == resolve({"synthetic": "cifar10nc", "closed_rate": 0.5}).to_dict()
