"""The automations the simulate engine runs: four automations, five workspaces, two tenants.

One without a workspace (so capacity binds), two sharing a repository (so workspace
locks bind), one under an explicit tenant. :func:`build_run` makes a freshly created,
queued run of one of them, as the server writes it on a trigger (also the benchmarks'
run builder).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tandem_tui.domain.models import Run, TenantContext, parse_run

# ── the automations ───────────────────────────────────────────────────────────

WORKSPACES = (
    "/srv/tandem/workspaces/api-gateway",
    "/srv/tandem/workspaces/web-console",
    "/srv/tandem/workspaces/newsroom",
    "/srv/tandem/workspaces/finance-ledger",
    "/srv/tandem/workspaces/docs-site",
)

ACME = TenantContext.explicit("acme-finance", "ledger", actor_id="ops@acme.example")

#: provider -> (model, USD per 1k prompt tokens, USD per 1k completion tokens)
MODELS: dict[str, tuple[str, float, float]] = {
    "openai": ("gpt-4.1-mini", 0.0004, 0.0016),
    "anthropic": ("claude-sonnet-4", 0.003, 0.015),
    "google": ("gemini-2.5-flash", 0.0003, 0.0025),
}


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    agent_id: str
    objective: str
    max_attempts: int = 3
    gate: bool = False


@dataclass(frozen=True)
class AutomationSpec:
    automation_id: str
    name: str
    agents: Mapping[str, str]  # agent_id -> provider
    nodes: tuple[NodeSpec, ...]
    workspaces: tuple[str | None, ...]
    weight: float
    tenant: TenantContext | None = None

    def snapshot(self, workspace_root: str | None, updated_at_ms: int) -> dict[str, Any]:
        """The ``automation_snapshot`` a run of this automation carries."""
        snapshot: dict[str, Any] = {
            "automation_id": self.automation_id,
            "name": self.name,
            "status": "active",
            "schedule": {"type": "manual"},
            "agents": [
                {
                    "agent_id": agent_id,
                    "display_name": agent_id.replace("-", " ").title(),
                    "model_policy": {
                        "default_model": {"provider_id": provider, "model_id": MODELS[provider][0]}
                    },
                    "skills": [],
                }
                for agent_id, provider in self.agents.items()
            ],
            "flow": {
                "nodes": [
                    {
                        "node_id": node.node_id,
                        "agent_id": node.agent_id,
                        "objective": node.objective,
                        "depends_on": [self.nodes[i - 1].node_id] if i else [],
                        "retry_policy": {"max_attempts": node.max_attempts, "backoff_ms": 2_000},
                        **({"gate": {"kind": "approval", "required": True}} if node.gate else {}),
                    }
                    for i, node in enumerate(self.nodes)
                ]
            },
            "execution": {"max_parallel_agents": 1, "max_total_runtime_ms": 3_600_000},
            "output_targets": [f"reports/{self.automation_id}.md"],
            "created_at_ms": 1_700_000_000_000,
            "updated_at_ms": updated_at_ms,
            "creator_id": "automation-builder",
        }
        if workspace_root is not None:
            snapshot["workspace_root"] = workspace_root
        return snapshot

    def provider_of(self, node_id: str) -> str:
        node = next(n for n in self.nodes if n.node_id == node_id)
        return self.agents[node.agent_id]


AUTOMATIONS: tuple[AutomationSpec, ...] = (
    AutomationSpec(
        automation_id="inbox-digest",
        name="Support inbox digest",
        agents={"inbox-reader": "openai", "digest-writer": "anthropic"},
        nodes=(
            NodeSpec("fetch_threads", "inbox-reader", "Collect support threads opened since the last digest"),
            NodeSpec("cluster", "inbox-reader", "Group threads by product area and urgency", max_attempts=2),
            NodeSpec("write_digest", "digest-writer", "Write the digest with owners and next steps"),
        ),
        workspaces=(None,),
        weight=0.45,
    ),
    AutomationSpec(
        automation_id="pr-triage",
        name="Pull request triage",
        agents={"triager": "openai", "reviewer": "anthropic"},
        nodes=(
            NodeSpec("list_prs", "triager", "List open pull requests without a reviewer"),
            NodeSpec("classify", "triager", "Label each pull request by risk and area"),
            NodeSpec("review_notes", "reviewer", "Draft first-pass review notes for risky changes"),
        ),
        workspaces=(WORKSPACES[0], WORKSPACES[1], WORKSPACES[4]),
        weight=0.25,
    ),
    AutomationSpec(
        automation_id="release-notes",
        name="Weekly release notes",
        agents={"historian": "google", "editor": "anthropic"},
        nodes=(
            NodeSpec("gather_commits", "historian", "Gather merged commits since the last tag"),
            NodeSpec("draft", "editor", "Draft user-facing release notes"),
            NodeSpec("approve", "editor", "Wait for a maintainer to approve the notes", gate=True),
            NodeSpec("publish", "editor", "Publish the notes to the changelog", max_attempts=2),
        ),
        workspaces=(WORKSPACES[0], WORKSPACES[2]),
        weight=0.15,
    ),
    AutomationSpec(
        automation_id="ledger-reconcile",
        name="Ledger reconciliation",
        agents={"extractor": "google", "auditor": "openai"},
        nodes=(
            NodeSpec("extract", "extractor", "Extract invoice lines from the inbox exports"),
            NodeSpec("match", "auditor", "Match invoice lines against ledger entries"),
            NodeSpec("report", "auditor", "Report unmatched lines to the finance channel"),
        ),
        workspaces=(WORKSPACES[3],),
        weight=0.15,
        tenant=ACME,
    ),
)
AUTOMATIONS_BY_ID = {spec.automation_id: spec for spec in AUTOMATIONS}


def required_providers(run: Run) -> list[str]:
    """The model providers the run's automation snapshot says its agents use, sorted."""
    snapshot = run.automation_snapshot or {}
    providers: set[str] = set()
    for agent in snapshot.get("agents") or ():
        model = ((agent or {}).get("model_policy") or {}).get("default_model") or {}
        provider = model.get("provider_id")
        if isinstance(provider, str) and provider.strip():
            providers.add(provider.strip())
    return sorted(providers)


def digest(*parts: object) -> str:
    return hashlib.sha1(":".join(str(p) for p in parts).encode()).hexdigest()


def build_run(spec: AutomationSpec, *, run_id: str, workspace_root: str | None, now_ms: int) -> Run:
    """A freshly created, queued run of ``spec`` (what the server writes on trigger)."""
    tenant = spec.tenant.model_copy(deep=True) if spec.tenant else TenantContext.local_implicit()
    return parse_run(
        {
            "run_id": run_id,
            "automation_id": spec.automation_id,
            "tenant_context": tenant.model_dump(mode="json"),
            "trigger_type": "scheduled",
            "status": "queued",
            "created_at_ms": now_ms,
            "updated_at_ms": now_ms,
            "active_session_ids": [],
            "active_instance_ids": [],
            "checkpoint": {
                "completed_nodes": [],
                "pending_nodes": [node.node_id for node in spec.nodes],
                "node_outputs": {},
                "node_attempts": {},
                "blocked_nodes": [],
                "lifecycle_history": [],
            },
            "automation_snapshot": spec.snapshot(workspace_root, 1_700_000_000_000),
            "workflow_definition_version": "3",  # Option<String> on the server
            "workflow_definition_snapshot_hash": digest(spec.automation_id, "v3")[:16],
            "execution_claim_epoch": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "estimated_cost_usd": 0.0,
            "trigger_reason": "schedule tick",
            "effective_execution_profile": "strict",
        }
    )

