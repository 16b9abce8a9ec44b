"""A function as a step, without a server: its generated script, its kwargs sorted into
parameters and inputs, a component's lazy results, and the fan-out's pure rules."""

import functools
import subprocess
import sys
import textwrap

import pytest

from pipelines import dag, fanout, function_steps, lazy

TAU = 6.28  # a module constant: not carried into a step (only functions are)


def _helper(x):
    return _deeper(x) + 1


def _deeper(x):
    return x * 2


def _unused():
    return "never copied"


def _decorate(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return function(*args, **kwargs)

    return wrapper


@_decorate
def work(x, scale=3, label="a"):
    """Uses a helper, which uses another; a lambda and a comprehension on the way."""
    values = [_helper(v) for v in range(x)]
    return sum(map(lambda v: v * scale, values)), label


def test_the_generated_script_holds_imports_helpers_the_function_and_its_entry(tmp_path):
    script = function_steps.generate_script(
        work, ["total", "label"], function_steps.helper_functions(work), allow_pickle=True
    )
    assert "@_decorate" not in script and 'def work(x, scale=3, label="a"):' in script
    assert "def _helper(x):" in script and "def _deeper(x):" in script
    assert "_unused" not in script and "TAU" not in script
    assert "try:\n    import functools\nexcept ImportError" in script
    assert "run_function_step(work, returns=['total', 'label'], allow_pickle=True)" in script
    # the source stands on its own: it runs (here without a task, by calling work itself)
    path = tmp_path / "step.py"
    path.write_text(script.split('if __name__ == "__main__":')[0] + "print(work(3))\n")
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True)
    assert result.stdout.strip() == "(27, 'a')", result.stderr


def test_helpers_named_explicitly_are_added_once():
    helpers = function_steps.helper_functions(work, [_unused, _helper])
    assert sorted(h.__name__ for h in helpers) == ["_deeper", "_helper", "_unused"]


def test_a_function_without_a_source_file_is_refused_with_a_reason():
    namespace: dict = {}
    exec(textwrap.dedent("def made(x):\n    return x\n"), namespace)  # noqa: S102
    with pytest.raises(ValueError, match="defined in a file"):
        function_steps.function_source(namespace["made"])


def test_kwargs_are_sorted_into_parameters_inputs_and_objects_with_their_parents():
    returns_of = {"prep": ["frame", "id"]}
    sorted_ = function_steps.sort_kwargs(
        {
            "frame": "${prep.frame}",
            "raw": "${prep.artifacts.raw}",
            "url": "${prep.artifacts.raw.url}",
            "task": "${prep.id}",  # a return value named id wins over the task's id
            "other": "${load.id}",
            "text": "from ${pipeline.source} at ${load.name}",
            "size": 3,
            "names": ["a", "b"],
            "nothing": None,
            "blob": {1, 2},
        },
        returns_of,
        "train",
    )
    assert sorted_.overrides == {
        "kwargs_artifacts/frame": "${prep.artifacts.frame.url}",
        "kwargs_artifacts/raw": "${prep.artifacts.raw.url}",
        "kwargs/url": "${prep.artifacts.raw.url}",
        "kwargs_artifacts/task": "${prep.artifacts.id.url}",
        "kwargs/other": "${load.id}",
        "kwargs/text": "from ${pipeline.source} at ${load.name}",
    }
    assert sorted_.literals == {"size": 3, "names": ["a", "b"], "nothing": None}
    assert sorted_.objects == {"blob": {1, 2}}
    assert sorted_.parents == ["prep", "load"]


def test_a_malformed_reference_in_a_kwarg_names_the_step_and_kwarg():
    with pytest.raises(dag.PipelineDefinitionError) as caught:
        function_steps.sort_kwargs({"x": "${prep.nope"}, {}, "train")
    assert (caught.value.step, caught.value.parameter) == ("train", "kwargs/x")


def test_each_item_goes_to_the_first_parameter_without_a_default_that_is_not_given():
    def square(offset, x, power=2):
        return (x + offset) ** power

    assert function_steps.first_free_parameter(square, {"offset": 1}) == "x"
    assert function_steps.first_free_parameter(square, {"offset": 1, "x": 2}) == "power"
    with pytest.raises(ValueError, match="no parameter left"):
        function_steps.first_free_parameter(square, {"offset": 1, "x": 2, "power": 3})


class _Pipeline:
    def __init__(self, value):
        self.value, self.asked = value, 0

    def result_of(self, step, name):
        self.asked += 1
        return self.value


def test_a_lazy_result_waits_once_when_used_and_not_when_passed_on():
    pipeline = _Pipeline([1, 2, 3])
    result = lazy.LazyResult(pipeline, "prep", "numbers")
    assert lazy.reference(result) == "${prep.artifacts.numbers}"
    assert pipeline.asked == 0  # handing it on waited for nothing
    assert len(result) == 3 and result[1] == 2 and list(result) == [1, 2, 3]
    assert 2 in result and f"{result}" == "[1, 2, 3]" and result + [4] == [1, 2, 3, 4]
    assert pipeline.asked == 1  # fetched once, then kept
    number = lazy.LazyResult(_Pipeline(0.5), "score", "accuracy")
    assert 100 * number == 50.0 and number * 2 == 1.0 and -number == -0.5 and number < 1
    assert lazy.plain({"a": [number, (result,)]}) == {"a": [0.5, ([1, 2, 3],)]}


def test_a_fan_out_succeeds_at_its_ratio_exactly_and_names_what_failed():
    assert fanout.succeeded_enough(50, 40, 0.8) and not fanout.succeeded_enough(50, 39, 0.8)
    assert fanout.succeeded_enough(0, 0, 1.0)
    assert fanout.succeeded_enough(3, 0, 0.0)
    assert [list(b) for b in fanout.batches(5, 2)] == [[0, 1], [2, 3], [4]]
    assert fanout.launchable(10, 3, 4) == 1 and fanout.launchable(10, 5, 4) == 0
    assert fanout.launchable(10, 3, None) == 10
    message = fanout.failure_message(100, list(range(60)), 0.5)
    assert message.startswith("60 of 100 items failed") and "(50 must succeed)" in message
    assert message.endswith("48, 49 and 10 more")


def test_debug_pipeline_calls_components_as_plain_functions_and_sends_nothing(monkeypatch):
    from pipelines import decorator

    monkeypatch.setattr(decorator.PipelineDecorator, "_mode", "remote")
    monkeypatch.setattr(decorator.PipelineDecorator, "_components", [])

    @decorator.PipelineDecorator.component(return_values=["doubled"])
    def double(x):
        return 2 * x

    @decorator.PipelineDecorator.component(return_values=["root"])
    def root(x, exponent=0.5):
        if x < 0:
            raise ValueError("no real root")
        return x**exponent

    @decorator.PipelineDecorator.pipeline(name="debug", project="unit")
    def logic(values):
        doubled = [double(v) for v in values]
        return doubled, root.map([*values, -1], exponent=1)

    # outside a pipeline a component is its function
    assert double(4) == 8
    decorator.PipelineDecorator.debug_pipeline()
    assert logic([1, 2]) == ([2, 4], [1, 2, None])  # a failed item is None, as on a server
    assert decorator.PipelineDecorator.get_current_pipeline() is None
