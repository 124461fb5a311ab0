"""Action signatures: the sequence of action types a pattern is keyed on."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from server.learning.signature import MAX_STEPS, action_signature, render


def test_types_are_read_from_the_first_key_present() -> None:
    actions: list[dict[str, Any]] = [
        {"type": "create_file"},
        {"tool": "Run"},
        {"x": 1},
        {"type": "EXECUTE"},
        {"type": ""},
    ]
    assert action_signature(actions) == ("CREATE_FILE", "RUN", "?", "EXECUTE", "?")
    assert render(("A", "B")) == "A → B"


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["type", "tool", "name", "x"]),
            st.one_of(st.text(max_size=70), st.integers()),
            max_size=2,
        ),
        max_size=40,
    )
)
def test_signature_is_bounded_upper_case_text(actions: list[dict[str, object]]) -> None:
    signature = action_signature(actions)
    assert len(signature) == min(len(actions), MAX_STEPS)
    assert all(step and step == step.upper() and len(step) <= 64 for step in signature)
