"""Models saved inside a task become its output models (ClearML's framework capture).

torch and Keras are not project dependencies: where they are not installed, small stand-in
modules (scripts/fake_frameworks) play them, saving files as the real ones do. A machine
with torch installed runs the same script against the real one as well.
"""

import importlib.util
import os
import re

import pytest

from tests.support import run_script

from .conftest import SCRIPTS

pytestmark = pytest.mark.e2e
FAKES = SCRIPTS / "fake_frameworks"


def _saved_models(server, mode: str, pythonpath: str = "") -> dict:
    env = server.sdk_env()
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env["PYTHONPATH"]])
    result = run_script(SCRIPTS / "save_models.py", env, args=[mode])
    assert result.returncode == 0, result.stderr[-3000:]
    task_id = re.search(r"TASK_ID ([0-9a-f]{32})", result.stderr).group(1)
    response = server.api().get(f"{server.url}/api/v1/tasks/{task_id}/models/")
    return {
        m["name"]: (m["framework"], m["filename"], m["state"]) for m in response.json()["output"]
    }


def test_models_saved_with_pickle_joblib_torch_and_keras_are_output_models_data_is_not(server):
    assert _saved_models(server, "on", str(FAKES)) == {
        "estimator": ("ScikitLearn", "estimator.pickle", "ready"),
        "net": ("PyTorch", "net.pt", "ready"),
        "classifier": ("Keras", "classifier.keras", "ready"),
    }


def test_auto_connect_frameworks_false_records_no_model(server):
    assert _saved_models(server, "off", str(FAKES)) == {}


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_a_real_torch_save_is_an_output_model(server):
    models = _saved_models(server, "on")
    assert models["net"] == ("PyTorch", "net.pt", "ready")
    assert models["estimator"] == ("ScikitLearn", "estimator.pickle", "ready")
