"""Unit tests for pipelines.dag: definition checks, references, and engine decisions."""

import sys
import time

import pytest

from pipelines.dag import (
    NODE_DONE_OK,
    NODE_TERMINAL,
    REFERENCE_RE,
    Actions,
    PipelineDefinitionError,
    Reference,
    UnresolvedReference,
    ancestors,
    effective_continue_behaviour,
    next_actions,
    parse_references,
    pipeline_outcome,
    resolve_overrides,
    resolve_value,
    should_abort,
    validate_pipeline,
)


def step(name, parents=(), **extra):
    return {"name": name, "parents": list(parents), **extra}


def chain(n, prefix="s"):
    return [step(f"{prefix}{i}", [f"{prefix}{i - 1}"] if i else []) for i in range(n)]


# --------------------------------------------------------------------------- constants


def test_status_sets_match_the_engine_contract():
    assert NODE_DONE_OK == {"completed", "cached"}
    assert NODE_TERMINAL == {"completed", "cached", "failed", "skipped", "aborted"}


def test_error_message_names_step_and_parameter():
    # given / when
    err = PipelineDefinitionError("boom", step="a", parameter="General/x")
    # then
    assert isinstance(err, ValueError)
    assert str(err) == "step 'a', parameter 'General/x': boom"
    assert (err.step, err.parameter) == ("a", "General/x")


def test_error_message_without_context_is_just_the_detail():
    assert str(PipelineDefinitionError("boom")) == "boom"
    assert str(PipelineDefinitionError("boom", step="a")) == "step 'a': boom"


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${a.id}", Reference("${a.id}", "id", "a", "id", None)),
        (
            "${stage_data.artifacts.dataset.url}",
            Reference(
                "${stage_data.artifacts.dataset.url}", "artifact", "stage_data", "url", "dataset"
            ),
        ),
        (
            "${a.artifacts.my-model_2.sha256}",
            Reference("${a.artifacts.my-model_2.sha256}", "artifact", "a", "sha256", "my-model_2"),
        ),
        (
            "${a.parameters.General/lr.v-1_x}",
            Reference(
                "${a.parameters.General/lr.v-1_x}", "parameter", "a", None, "General/lr.v-1_x"
            ),
        ),
        ("${a.status}", Reference("${a.status}", "task_field", "a", "status", None)),
        ("${a.name}", Reference("${a.name}", "task_field", "a", "name", None)),
        ("${pipeline.prefix}", Reference("${pipeline.prefix}", "pipeline", None, None, "prefix")),
    ],
)
def test_parse_single_reference(text, expected):
    # when
    refs = parse_references(text)
    # then
    assert refs == [expected]
    assert REFERENCE_RE.fullmatch(text)


def test_parse_several_references_mixed_with_text():
    # given
    value = "s3://b/${pipeline.prefix}/${stage_data.id}.csv"
    # when
    refs = parse_references(value)
    # then
    assert [(r.kind, r.step, r.name) for r in refs] == [
        ("pipeline", None, "prefix"),
        ("id", "stage_data", None),
    ]


@pytest.mark.parametrize("value", ["plain text", "$ {a.id}", "{a.id}", "$", "", 3, 2.5, True, None])
def test_values_without_references(value):
    assert parse_references(value) == []


@pytest.mark.parametrize(
    "value",
    [
        "${abc",
        "${}",
        "${step}",
        "${step.unknownfield}",
        "${step.artifacts.x}",
        "${step.artifacts.x.}",
        "${step.parameters.}",
        "${pipeline.}",
        "${a.id",
        "${a.idx}",
        "ok ${a.id} then ${bad",
        "${a b.id}",
    ],
)
def test_malformed_reference_is_rejected(value):
    with pytest.raises(PipelineDefinitionError, match="malformed reference"):
        parse_references(value)


def test_reference_is_hashable_and_frozen():
    ref = parse_references("${a.id}")[0]
    assert {ref: 1}[ref] == 1
    with pytest.raises(AttributeError):
        ref.step = "b"


# --------------------------------------------------------------------------- resolution


def fake_lookup(values):
    calls = []

    def lookup(ref):
        calls.append(ref.text)
        if ref.text not in values:
            raise UnresolvedReference(ref, "not there")
        return values[ref.text]

    lookup.calls = calls
    return lookup


def test_whole_reference_keeps_the_looked_up_type():
    # given
    lookup = fake_lookup({"${a.parameters.General/n}": 42, "${a.artifacts.d.size}": None})
    # when / then
    assert resolve_value("${a.parameters.General/n}", lookup) == 42
    assert resolve_value("${a.artifacts.d.size}", lookup) is None


def test_embedded_references_are_substituted_as_strings():
    # given
    lookup = fake_lookup({"${pipeline.prefix}": "runs", "${a.id}": 7})
    # when
    out = resolve_value("s3://b/${pipeline.prefix}/${a.id}.csv", lookup)
    # then
    assert out == "s3://b/runs/7.csv"


def test_repeated_reference_is_looked_up_once():
    lookup = fake_lookup({"${a.id}": "x"})
    assert resolve_value("${a.id}-${a.id}", lookup) == "x-x"
    assert lookup.calls == ["${a.id}"]


@pytest.mark.parametrize("value", [1, 0.25, False, None, "no refs here", ["${a.id}"]])
def test_values_without_references_are_returned_unchanged(value):
    lookup = fake_lookup({})
    assert resolve_value(value, lookup) is value
    assert lookup.calls == []


def test_unresolved_reference_propagates_with_reason():
    # given
    lookup = fake_lookup({})
    # when
    with pytest.raises(UnresolvedReference) as info:
        resolve_value("x ${a.artifacts.m.url}", lookup)
    # then
    assert isinstance(info.value, LookupError)
    assert info.value.ref.name == "m"
    assert info.value.reason == "not there"
    assert "${a.artifacts.m.url}" in str(info.value)


def test_resolve_overrides_applies_to_every_value():
    # given
    lookup = fake_lookup({"${a.artifacts.d.url}": "s3://x", "${a.id}": "abc"})
    overrides = {"General/url": "${a.artifacts.d.url}", "General/size": 0.25, "t": "id=${a.id}"}
    # when
    out = resolve_overrides(overrides, lookup)
    # then
    assert out == {"General/url": "s3://x", "General/size": 0.25, "t": "id=abc"}
    assert resolve_overrides(None, lookup) == {}


def test_resolve_rejects_malformed_values():
    with pytest.raises(PipelineDefinitionError):
        resolve_value("${a.bogus}", fake_lookup({}))


# --------------------------------------------------------------------------- validation


def test_topological_order_keeps_a_valid_listing_unchanged():
    # given
    steps = [step("a"), step("c", ["a"]), step("b"), step("d", ["c", "b"])]
    # when / then
    assert validate_pipeline(steps) == ["a", "c", "b", "d"]


def test_topological_order_puts_parents_first_with_insertion_tie_break():
    # given: children listed before their parents
    steps = [step("d", ["b", "c"]), step("c", ["a"]), step("b", ["a"]), step("a"), step("z")]
    # when
    order = validate_pipeline(steps)
    # then
    assert order == ["a", "c", "b", "d", "z"]
    assert validate_pipeline(steps) == order


def test_empty_pipeline_is_valid():
    assert validate_pipeline([]) == []


def test_duplicate_parent_entries_are_tolerated():
    assert validate_pipeline([step("a"), step("b", ["a", "a"])]) == ["a", "b"]


@pytest.mark.parametrize("name", ["", None, "has space", "dot.name", "sl/ash", "ü", "a$"])
def test_invalid_step_names_are_rejected(name):
    with pytest.raises(PipelineDefinitionError, match="name"):
        validate_pipeline([{"name": name, "parents": []}])


def test_reserved_step_name_is_rejected():
    with pytest.raises(PipelineDefinitionError, match="reserved") as info:
        validate_pipeline([step("pipeline")])
    assert info.value.step == "pipeline"


def test_duplicate_step_name_is_rejected():
    with pytest.raises(PipelineDefinitionError, match="duplicate") as info:
        validate_pipeline([step("a"), step("b"), step("a")])
    assert info.value.step == "a"


def test_unknown_parent_names_step_and_parent():
    with pytest.raises(PipelineDefinitionError) as info:
        validate_pipeline([step("a"), step("b", ["ghost"])])
    assert "'b'" in str(info.value) and "'ghost'" in str(info.value)
    assert info.value.step == "b"


@pytest.mark.parametrize("parents", ["a", 5, {"a": 1}])
def test_parents_must_be_a_list(parents):
    with pytest.raises(PipelineDefinitionError, match="parents"):
        validate_pipeline([step("a"), {"name": "b", "parents": parents}])


def test_two_step_cycle_is_named():
    with pytest.raises(PipelineDefinitionError, match=r"cycle: a -> b -> a"):
        validate_pipeline([step("a", ["b"]), step("b", ["a"])])


def test_self_parent_is_a_cycle():
    with pytest.raises(PipelineDefinitionError, match=r"cycle: a -> a"):
        validate_pipeline([step("a", ["a"])])


def test_cycle_reported_in_dependency_direction_behind_a_valid_prefix():
    # given: root -> x -> y -> z -> x, plus an unrelated leaf below the cycle
    steps = [step("root"), step("x", ["root", "z"]), step("y", ["x"]), step("z", ["y"])]
    steps.append(step("leaf", ["z"]))
    # when
    with pytest.raises(PipelineDefinitionError) as info:
        validate_pipeline(steps)
    # then
    assert "cycle: x -> y -> z -> x" in str(info.value)


def test_reference_to_parent_and_transitive_ancestor_is_valid():
    # given
    steps = [
        step("stage_data"),
        step("stage_process", ["stage_data"]),
        step(
            "stage_train",
            ["stage_process"],
            parameter_override={
                "General/data": "${stage_data.artifacts.dataset.url}",
                "General/proc": "${stage_process.id}",
                "General/size": 0.25,
            },
            configuration_overrides={"cfg": "from ${stage_data.parameters.General/x}"},
        ),
    ]
    # when / then
    assert validate_pipeline(steps) == ["stage_data", "stage_process", "stage_train"]


def test_reference_to_non_ancestor_names_step_and_parameter():
    # given: siblings under one root
    steps = [
        step("root"),
        step("stage_x", ["root"]),
        step(
            "stage_process",
            ["root"],
            parameter_override={"General/dataset_url": "${stage_x.artifacts.dataset.url}"},
        ),
    ]
    # when
    with pytest.raises(PipelineDefinitionError) as info:
        validate_pipeline(steps)
    # then
    assert str(info.value).startswith(
        "step 'stage_process', parameter 'General/dataset_url': "
        "reference to step 'stage_x' which is not an ancestor"
    )
    assert (info.value.step, info.value.parameter) == ("stage_process", "General/dataset_url")


def test_reference_to_descendant_is_not_an_ancestor():
    steps = [step("a", parameter_override={"p": "${b.id}"}), step("b", ["a"])]
    with pytest.raises(PipelineDefinitionError, match="not an ancestor"):
        validate_pipeline(steps)


def test_reference_to_itself_is_not_an_ancestor():
    steps = [step("a", parameter_override={"p": "${a.id}"})]
    with pytest.raises(PipelineDefinitionError, match="not an ancestor"):
        validate_pipeline(steps)


def test_reference_to_unknown_step_in_configuration_override():
    steps = [step("a"), step("b", ["a"], configuration_overrides={"cfg": "x: ${ghost.id}"})]
    with pytest.raises(PipelineDefinitionError, match="'ghost' which does not exist") as info:
        validate_pipeline(steps)
    assert (info.value.step, info.value.parameter) == ("b", "cfg")


def test_malformed_reference_in_definition_names_step_and_parameter():
    steps = [step("a"), step("b", ["a"], parameter_override={"General/u": "${a.artifacts.x}"})]
    with pytest.raises(PipelineDefinitionError, match="malformed reference") as info:
        validate_pipeline(steps)
    assert (info.value.step, info.value.parameter) == ("b", "General/u")
    assert "step 'b', parameter 'General/u'" in str(info.value)


def test_pipeline_parameter_references_are_checked_only_when_parameters_are_known():
    # given
    steps = [step("a", parameter_override={"General/p": "${pipeline.prefix}/x"})]
    # when / then
    assert validate_pipeline(steps) == ["a"]
    assert validate_pipeline(steps, {"prefix": "runs"}) == ["a"]
    with pytest.raises(PipelineDefinitionError, match="unknown pipeline parameter 'prefix'"):
        validate_pipeline(steps, {})


def test_override_mapping_must_be_a_mapping():
    with pytest.raises(PipelineDefinitionError, match="parameter_override must be a mapping"):
        validate_pipeline([step("a", parameter_override=["x"])])


def test_ancestors_are_transitive_and_exclude_the_step():
    # given: diamond a -> (b, c) -> d, plus unrelated e
    steps = [step("a"), step("b", ["a"]), step("c", ["a"]), step("d", ["b", "c"]), step("e")]
    # when / then
    assert ancestors(steps, "d") == {"a", "b", "c"}
    assert ancestors(steps, "a") == set()
    with pytest.raises(PipelineDefinitionError, match="unknown step"):
        ancestors(steps, "ghost")


# --------------------------------------------------------------------------- scale


def test_deep_chain_does_not_recurse_and_stays_fast():
    # given: every step reads its parent and the root, 5,000 deep
    n = 5000
    steps = chain(n)
    for i, s in enumerate(steps[1:], start=1):
        s["parameter_override"] = {"a": f"${{s{i - 1}.artifacts.d.url}}", "b": "${s0.id}"}
    assert n > sys.getrecursionlimit()
    # when
    started = time.perf_counter()
    order = validate_pipeline(steps)
    states = {name: "completed" for name in order[: n // 2]}
    actions = next_actions(steps, states)
    elapsed = time.perf_counter() - started
    # then
    assert order == [f"s{i}" for i in range(n)]
    assert actions.launch == [f"s{n // 2}"]
    assert len(ancestors(steps, f"s{n - 1}")) == n - 1
    assert elapsed < 2.0


def test_wide_fan_out_is_fast():
    # given
    n = 5000
    steps = [step("root")] + [
        step(f"c{i}", ["root"], parameter_override={"x": "${root.id}/${pipeline.p}"})
        for i in range(n)
    ]
    steps.append(step("join", [f"c{i}" for i in range(n)], parameter_override={"y": "${root.id}"}))
    # when
    started = time.perf_counter()
    order = validate_pipeline(steps, {"p": 1})
    actions = next_actions(steps, {"root": "completed"})
    elapsed = time.perf_counter() - started
    # then
    assert order[0] == "root" and order[-1] == "join"
    assert len(actions.launch) == n
    assert elapsed < 2.0


# --------------------------------------------------------------------------- next_actions


DIAMOND = [step("a"), step("b", ["a"]), step("c", ["a"]), step("d", ["b", "c"])]


def test_roots_launch_first():
    assert next_actions(DIAMOND, {}) == Actions(launch=["a"], skip=[])


def test_children_wait_for_every_parent():
    # given
    states = {"a": "completed", "b": "cached", "c": "running"}
    # when / then
    assert next_actions(DIAMOND, states) == Actions(launch=[], skip=[])


def test_children_launch_in_topological_order_once_parents_are_done():
    assert next_actions(DIAMOND, {"a": "completed"}).launch == ["b", "c"]
    states = {"a": "completed", "b": "completed", "c": "cached"}
    assert next_actions(DIAMOND, states).launch == ["d"]


def test_non_pending_steps_are_never_relaunched():
    states = {"a": "completed", "b": "queued", "c": "running"}
    assert next_actions(DIAMOND, states) == Actions()


def test_failed_parent_skips_all_pending_descendants_in_one_call():
    # given
    steps = [*DIAMOND, step("e", ["d"]), step("f")]
    states = {"a": "completed", "b": "failed", "c": "running"}
    # when
    actions = next_actions(steps, states)
    # then: d can never run, even though c is still running; e follows d
    assert actions.skip == ["d", "e"]
    assert actions.launch == ["f"]


@pytest.mark.parametrize("status", ["skipped", "aborted", "failed"])
def test_terminal_bad_parent_skips_children_by_default(status):
    assert next_actions(DIAMOND, {"a": status}).skip == ["b", "c", "d"]


def test_continue_on_fail_lets_children_run():
    # given
    steps = [step("a", continue_on_fail=True), step("b", ["a"])]
    # when / then
    assert next_actions(steps, {"a": "failed"}).launch == ["b"]


def test_continue_on_fail_does_not_cover_abort():
    steps = [step("a", continue_on_fail=True), step("b", ["a"])]
    assert next_actions(steps, {"a": "aborted"}).skip == ["b"]


@pytest.mark.parametrize(
    ("behaviour", "status", "children_run"),
    [
        ({"continue_on_fail": True, "skip_children_on_fail": False}, "failed", True),
        ({"continue_on_fail": True}, "failed", False),
        ({"continue_on_fail": True, "skip_children_on_fail": True}, "failed", False),
        ({"skip_children_on_fail": False}, "failed", False),
        ({"continue_on_abort": True, "skip_children_on_abort": False}, "aborted", True),
        ({"continue_on_abort": True}, "aborted", False),
        ({"continue_on_fail": True, "skip_children_on_fail": False}, "aborted", False),
        ({}, "failed", False),
    ],
)
def test_continue_behaviour_decides_whether_children_run(behaviour, status, children_run):
    # given
    steps = [step("a", continue_behaviour=behaviour), step("b", ["a"])]
    # when
    actions = next_actions(steps, {"a": status})
    # then
    assert actions == (Actions(launch=["b"]) if children_run else Actions(skip=["b"]))


def test_continue_behaviour_refines_legacy_flag():
    # given: the legacy flag turns continuation on, the dict only asks to skip children
    s = step("a", continue_on_fail=True, continue_behaviour={"skip_children_on_fail": True})
    # when
    rules = effective_continue_behaviour(s)
    # then
    assert rules["continue_on_fail"] is True and rules["skip_children_on_fail"] is True


def test_skipped_parent_always_skips_children():
    behaviour = {"continue_on_fail": True, "skip_children_on_fail": False}
    steps = [step("a", continue_behaviour=behaviour, continue_on_fail=True), step("b", ["a"])]
    assert next_actions(steps, {"a": "skipped"}).skip == ["b"]


def test_unknown_status_is_an_error():
    with pytest.raises(ValueError, match="unknown node status"):
        next_actions(DIAMOND, {"a": "done"})


def test_next_actions_rejects_a_cyclic_definition():
    with pytest.raises(PipelineDefinitionError, match="cycle"):
        next_actions([step("a", ["b"]), step("b", ["a"])], {})


# --------------------------------------------------------------------------- outcome


def test_outcome_is_none_while_steps_are_unfinished():
    assert pipeline_outcome(DIAMOND, {"a": "completed"}, abort_on_failure=False) is None
    assert pipeline_outcome(DIAMOND, {}, abort_on_failure=True) is None


def test_outcome_completed_when_everything_succeeded():
    states = dict.fromkeys("abcd", "completed") | {"c": "cached"}
    assert pipeline_outcome(DIAMOND, states, abort_on_failure=False) == "completed"


def test_outcome_failed_when_a_step_failed_without_continue():
    states = {"a": "completed", "b": "failed", "c": "completed", "d": "skipped"}
    assert pipeline_outcome(DIAMOND, states, abort_on_failure=False) == "failed"


def test_outcome_waits_for_other_branches_without_abort_on_failure():
    states = {"a": "completed", "b": "failed", "c": "running"}
    assert pipeline_outcome(DIAMOND, states, abort_on_failure=False) is None
    assert not should_abort(DIAMOND, states, abort_on_failure=False)


def test_abort_on_failure_ends_the_run_immediately():
    # given
    states = {"a": "completed", "b": "failed", "c": "running"}
    # when / then
    assert should_abort(DIAMOND, states, abort_on_failure=True)
    assert pipeline_outcome(DIAMOND, states, abort_on_failure=True) == "failed"


def test_tolerated_failure_counts_as_ok():
    # given
    steps = [step("a"), step("b", ["a"], continue_on_fail=True), step("c", ["b"])]
    states = {"a": "completed", "b": "failed", "c": "completed"}
    # when / then
    assert not should_abort(steps, states, abort_on_failure=True)
    assert pipeline_outcome(steps, states, abort_on_failure=True) == "completed"


def test_tolerated_failure_with_skipped_children_still_completes():
    steps = [step("a", continue_behaviour={"continue_on_fail": True}), step("b", ["a"])]
    states = {"a": "failed", "b": "skipped"}
    assert pipeline_outcome(steps, states, abort_on_failure=False) == "completed"


def test_abort_without_continue_fails_the_pipeline():
    steps = [step("a"), step("b", continue_behaviour={"continue_on_abort": True})]
    assert pipeline_outcome(steps, {"a": "aborted", "b": "completed"}, False) == "failed"
    assert pipeline_outcome(steps, {"a": "completed", "b": "aborted"}, False) == "completed"
    assert should_abort(steps, {"a": "aborted", "b": "running"}, True)


def test_all_skipped_pipeline_completes():
    steps = [step("a"), step("b")]
    assert pipeline_outcome(steps, {"a": "skipped", "b": "skipped"}, True) == "completed"
