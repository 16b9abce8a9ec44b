"""Pure translation code of the ClearML front door: shapes, tokens, projections."""

import time

import pytest

from pipelines.clearml.runner import is_clearml_task, materialise, split_key, task_env
from webapp.compat import jwt
from webapp.compat.auth import join_key
from webapp.compat.convert import (
    configuration_to_clearml,
    configuration_to_ours,
    hyperparams_to_clearml,
    hyperparams_to_ours,
    script_to_clearml,
    script_to_ours,
)
from webapp.compat.documents import file_path_of
from webapp.compat.query import project, tags_match


def test_hyperparameters_and_configuration_round_trip():
    clearml = {
        "General": {
            "test_size": {
                "section": "General",
                "name": "test_size",
                "value": "0.25",
                "type": "float",
                "description": "test fraction",
            }
        }
    }
    ours = hyperparams_to_ours(clearml)
    assert ours == {
        "General": {"test_size": {"value": "0.25", "type": "float", "description": "test fraction"}}
    }
    assert hyperparams_to_clearml(ours) == clearml
    config = {"Pipeline": {"name": "Pipeline", "value": "{}", "type": "dictionary"}}
    assert configuration_to_ours(config)["Pipeline"]["description"] == ""
    assert configuration_to_clearml(configuration_to_ours(config)) == config


def test_a_type_or_description_not_given_is_left_out_as_clearml_answers():
    ours = hyperparams_to_ours({"Args": {"lr": {"section": "Args", "name": "lr", "value": ""}}})
    assert hyperparams_to_clearml(ours) == {
        "Args": {"lr": {"section": "Args", "name": "lr", "value": ""}}
    }


def test_a_standalone_script_is_our_code_and_a_real_diff_stays_a_diff():
    standalone = {"entry_point": "a.py", "working_dir": ".", "diff": "print(1)\n"}
    ours, leftovers = script_to_ours(
        {**standalone, "requirements": {"pip": "# detected\nnumpy == 2.0\n\nclearml\n"}}
    )
    assert ours["code"] == "print(1)\n" and ours["diff"] == ""
    assert ours["requirements"] == ["numpy==2.0", "clearml"]
    back = script_to_clearml(ours, leftovers)
    assert back["diff"] == "print(1)\n"
    assert back["requirements"]["pip"].startswith("# detected")
    repo = {"repository": "https://x/r.git", "version_num": "abc", "diff": "diff --git a/x b/x\n"}
    ours, _ = script_to_ours(repo)
    assert (ours["code"], ours["commit"], ours["diff"]) == ("", "abc", repo["diff"])


def test_tokens_are_signed_and_expire():
    token = jwt.encode({"key": 1, "exp": time.time() + 60})
    assert jwt.decode(token)["key"] == 1
    header, payload, signature = token.split(".")
    with pytest.raises(jwt.InvalidToken):
        jwt.decode(f"{header}.{payload}x.{signature}")
    with pytest.raises(jwt.InvalidToken):
        jwt.decode(jwt.encode({"key": 1, "exp": time.time() - 1}))
    with pytest.raises(jwt.InvalidToken):
        jwt.decode("not-a-token")


def test_keys_split_into_access_and_secret_and_join_back():
    key = "pk_0123456789ab_se_cr-et"
    access, secret = split_key(key)
    assert (access, secret) == ("pk_0123456789ab", "se_cr-et")
    assert join_key(access, secret) == key
    assert join_key(key, "") == key
    env = task_env("http://h:8000/", key, "t1")
    assert env["CLEARML_API_HOST"] == "http://h:8000/clearml-api"
    assert env["CLEARML_FILES_HOST"] == "http://h:8000/clearml-files"
    assert (env["CLEARML_API_ACCESS_KEY"], env["CLEARML_TASK_ID"]) == (access, "t1")
    assert is_clearml_task({"system_tags": ["clearml"]}) and not is_clearml_task({})


def test_filters_and_projections():
    assert tags_match(["pipeline"], ["pipeline", "-archived"])
    assert not tags_match(["pipeline", "archived"], ["-archived"])
    assert not tags_match([], ["pipeline"])
    doc = {"id": "1", "status": "created", "execution": {"queue": "q", "artifacts": []}}
    assert project(doc, ["status", "execution.queue"]) == {
        "id": "1",
        "status": "created",
        "execution": {"queue": "q"},
    }
    assert file_path_of("http://h/x/clearml-files/a/b%20c.pkl") == "a/b c.pkl"
    assert file_path_of("https://github.com/a.pkl") is None


def test_runner_writes_a_standalone_script_inside_its_work_dir(tmp_path):
    script = {"entry_point": "../../evil.py", "working_dir": ".", "diff": "print(2)\n"}
    workdir, cwd, entry = materialise(script, str(tmp_path))
    assert (cwd / entry).read_text() == "print(2)\n"
    assert tmp_path in (cwd / entry).resolve().parents


def test_clearml_single_values_are_single_values_not_scalars_at_a_sentinel_iteration():
    from webapp.compat.handlers.events import translate

    single = {"type": "training_stats_scalar", "metric": "Summary", "variant": "acc"}
    events, _ = translate({**single, "iter": -(2**31), "value": 0.9})
    assert events == [{"type": "single_value", "name": "acc", "value": 0.9}]
    events, _ = translate({**single, "iter": 3, "value": 0.9})
    assert events[0]["type"] == "scalar" and events[0]["iteration"] == 3
