"""Action signatures: each action's identity (type and arguments) a pattern is keyed on."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from server.learning.signature import (
    MAX_STEPS,
    VALUE_MAX,
    action_signature,
    render,
    render_step,
    step_type,
    structured,
)


def test_an_action_is_its_type_and_arguments_in_the_clients_spelling() -> None:
    actions: list[dict[str, Any]] = [
        {"type": "CREATE_FILE", "path": "func.py"},
        {"tool": "Run", "cmd": "pytest -q"},
        {"x": 1},
    ]
    signature = action_signature(actions)
    assert [structured(s) for s in signature] == actions
    assert [step_type(s) for s in signature] == ["CREATE_FILE", "Run", "?"]
    assert render(signature) == 'CREATE_FILE path="func.py" → Run cmd="pytest -q" → ? x=1'


def test_arguments_tell_actions_apart_and_key_order_does_not() -> None:
    a = action_signature([{"type": "take", "object": "apple"}])
    b = action_signature([{"type": "take", "object": "banana"}])
    c = action_signature([{"object": "apple", "type": "take"}])
    assert a != b
    assert a == c


def test_volatile_fields_do_not_identify_an_action() -> None:
    noisy = {"type": "run", "cmd": "make", "id": "c1", "started_at": 5, "duration_ms": 9}
    named = {"type": "run", "cmd": "make", "attempt": 3}
    assert action_signature([noisy]) == action_signature([{"type": "run", "cmd": "make"}])
    assert action_signature([named], ["attempt"]) == action_signature(
        [{"type": "run", "cmd": "make"}]
    )


def test_plain_words_render_bare_and_others_quoted() -> None:
    assert render_step('{"type":"move","direction":"north"}') == "move direction=north"
    assert render_step('{"type":"READ_DOCS"}') == "READ_DOCS"


def test_a_step_that_is_not_json_is_an_action_of_that_type() -> None:
    assert structured("git status") == {"type": "git status"}
    assert render_step("git status") == "git status"


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["type", "tool", "name", "x", "path"]),
            st.one_of(st.text(max_size=400), st.integers()),
            max_size=3,
        ),
        max_size=80,
    )
)
def test_signature_is_bounded_and_reads_back(actions: list[dict[str, object]]) -> None:
    signature = action_signature(actions)
    assert len(signature) == min(len(actions), MAX_STEPS)
    for step, action in zip(signature, actions, strict=False):
        back = structured(step)
        assert set(back) == set(action)
        assert all(len(v) <= VALUE_MAX for v in back.values() if isinstance(v, str))
