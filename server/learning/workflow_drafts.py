"""Learned workflows stated as WORKFLOW learnings, so `GET /learnings`
serves them beside the patterns mined from interactions.

The workflow learner finds them; this module only words them. A workflow's
confidence is the one `GET /workflows` gives it, the Wilson lower bound
L(k, n) of its sessions' successes (`server.workflows.mining`), and its support
is its session count, not decayed: the workflow learner bounds its memory by
Lossy Counting rather than by a time window. Its key holds the tenant, since
the ledger's keys are global.
"""

from collections.abc import Sequence

from schemas import LearningType
from schemas.learnings import LearningStatus
from server.learning.claims import LearningDraft, Ledger, document
from server.workflows.mining import WorkflowPattern

WORKFLOW_AGENT = "workflow"
"""The agent type of workflow learnings: they come from activity events, not agents."""


def workflow_key(tenant: str, commands: Sequence[str]) -> str:
    return "\x1f".join((tenant, *commands))


def workflow_draft(ledger: Ledger, tenant: str, pattern: WorkflowPattern) -> LearningDraft:
    key = workflow_key(tenant, pattern.commands)
    learning_id, new = ledger.id_for(LearningType.WORKFLOW, tenant, key)
    statement = (
        f"Workflow {' → '.join(pattern.commands)}: in {pattern.support} sessions, "
        f"{pattern.successes} succeeded ({pattern.success_rate:.0%})."
    )
    return LearningDraft(
        id=learning_id,
        new=new,
        tenant=tenant,
        type=LearningType.WORKFLOW,
        key=key,
        status=LearningStatus.ACTIVE,
        agent_type=WORKFLOW_AGENT,
        statement=statement,
        task_example=" ".join(pattern.commands),
        actions=pattern.commands,
        clusters=(),
        agent_types=1,
        evidence=(),
        support=float(pattern.support),
        successes=float(pattern.successes),
        confidence=pattern.confidence,
        avg_completion_time=None,
        first_seen=pattern.first_seen,
        last_seen=pattern.last_seen,
        document=document(lambda _: "", (), pattern.commands, None),
    )
