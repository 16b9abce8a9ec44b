import pytest

from pipelines import parameters


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0.2, {"value": "0.2", "type": "float"}),
        (42, {"value": "42", "type": "int"}),
        (True, {"value": "True", "type": "bool"}),
        ("", {"value": "", "type": "str"}),
        ([1, 2], {"value": "[1, 2]", "type": "list"}),
        ({"a": 1}, {"value": '{"a": 1}', "type": "dict"}),
        (None, {"value": "", "type": "NoneType"}),
    ],
)
def test_values_are_stored_as_text_with_their_type_and_cast_back(value, encoded):
    assert parameters.encode(value) == encoded
    assert parameters.cast(encoded["value"], encoded["type"]) == value


def test_the_local_default_decides_the_type_of_an_overridden_value():
    assert parameters.cast("0.25", "str", default=0.2) == 0.25
    assert parameters.cast("7", "", default=1) == 7
    assert parameters.cast("false", "", default=True) is False
    assert parameters.cast("abc", "", default=1) == "abc"  # never dropped


def test_flat_names_nest_into_sections():
    assert parameters.nest({"General/a": 1, "b": 2, "Args/x/y": 3}) == {
        "General": {"a": 1, "b": 2},
        "Args": {"x/y": 3},
    }
