"""Learnings served for one task among many of one template, against a real server
with real MiniLM: similarity per evidence task, slots filled from the query, a
single success served at LOW confidence, and all of it after a restart."""

from pathlib import Path
from typing import Any

from client import ConfidenceLevel, KaizenClient, LearningType
from tests.conftest import eventually
from tests.test_learning_engine import kaizen

PLACES = {
    "shirt": "laundry basket",
    "jeans": "laundry basket",
    "toothbrush": "bathroom cabinet",
    "novel": "bookshelf",
    "frying pan": "kitchen cupboard",
}


def task_for(obj: str) -> str:
    return f"Put the {obj} where it belongs in the house"


async def put_away(kz: KaizenClient, obj: str, place: str, *, times: int = 1) -> None:
    for _ in range(times):
        await kz.record_interaction(
            agent_type="tidy",
            task_description=task_for(obj),
            actions_taken=[
                {"type": "take", "object": obj, "call_id": "c-17"},
                {"type": "put", "object": obj, "target": place},
            ],
            results=[{"success": True}, {"success": True}],
            success=True,
            completion_time=3.0,
        )


async def learned(kz: KaizenClient, task: str) -> list[Any]:
    return await kz.get_relevant_learnings(task, agent_type="tidy", limit=5)


async def test_the_learning_about_this_very_task_ranks_first(data_dir: Path) -> None:
    async with kaizen(data_dir) as kz:
        await put_away(kz, "shirt", PLACES["shirt"], times=4)  # much support
        await put_away(kz, "toothbrush", PLACES["toothbrush"])  # one success
        await eventually(lambda: _with_steps_for(kz, "toothbrush"))
        first = (await learned(kz, task_for("toothbrush")))[0]
        assert first.steps[1] == {
            "type": "put",
            "object": "toothbrush",
            "target": "bathroom cabinet",
        }
        assert first.why.matched_task == task_for("toothbrush")
        assert first.confidence_level is ConfidenceLevel.LOW  # a single success, labelled so
        assert "call_id" not in first.steps[0]  # volatile by default


async def test_a_slot_generalises_to_an_object_never_seen(data_dir: Path) -> None:
    async with kaizen(data_dir) as kz:
        await put_away(kz, "shirt", PLACES["shirt"])
        await put_away(kz, "jeans", PLACES["jeans"])

        async def slotted() -> list[Any]:
            found = await learned(kz, task_for("wool socks"))
            return [x for x in found if x.task_templates]

        (learning,) = await eventually(slotted)
        assert learning.type is LearningType.SUCCESS_PATTERN
        assert learning.steps[1] == {
            "type": "put",
            "object": "wool socks",
            "target": "laundry basket",
        }
        assert learning.actions[1] == 'put object="wool socks" target="laundry basket"'
        # every task of the template succeeded with these actions: the slot has all of it
        assert learning.why.matched_task == "Put the {object} where it belongs in the house"
        assert learning.why.similarity == 1.0
        assert learning.task_templates == ["Put the {object} where it belongs in the house"]


async def test_a_slotted_learning_the_task_cannot_fill_is_not_served(data_dir: Path) -> None:
    async with kaizen(data_dir) as kz:
        await put_away(kz, "shirt", PLACES["shirt"])
        await put_away(kz, "jeans", PLACES["jeans"])
        await eventually(lambda: _slotted_any(kz))
        found = await kz.get_relevant_learnings("Water the garden plants", limit=20)
        assert all(not x.slots for x in found)


async def test_ranking_by_task_survives_a_restart(data_dir: Path) -> None:
    async with kaizen(data_dir) as kz:
        for obj, place in PLACES.items():
            await put_away(kz, obj, place, times=3 if obj == "shirt" else 1)
        await eventually(lambda: _with_steps_for(kz, "novel"))
    async with kaizen(data_dir) as kz:
        first = (await learned(kz, task_for("novel")))[0]
        assert first.steps[-1]["target"] == "bookshelf"
        assert first.why.matched_task == task_for("novel")


async def _with_steps_for(kz: KaizenClient, obj: str) -> list[Any]:
    found = await learned(kz, task_for(obj))
    return [x for x in found if any(s.get("object") == obj for s in x.steps)]


async def _slotted_any(kz: KaizenClient) -> list[Any]:
    return [x for x in await kz.get_learnings_by_type(LearningType.SUCCESS_PATTERN) if x.slots]
