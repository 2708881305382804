"""Tenant-scoped provider throttles: the scheduler's first admission check.

When a provider (``openai``, ``anthropic``, ...) throttles a tenant, that tenant's runs
needing the provider queue with reason ``rate_limit`` until the throttle expires. Other
tenants are unaffected. A throttle with no expiry, or whose expiry has passed, is not
active: a throttle must say when it ends, so a lost "all clear" can never wedge a queue.

Provider names are compared trimmed and lower-cased (``" OpenAI "`` is ``openai``). As in
the server's ``provider_rate_limit_key``, the local implicit tenant is its own scope and
an explicit tenant is keyed by its org, workspace and deployment (trimmed, lower-cased).
"""

from __future__ import annotations

from dataclasses import dataclass

from tandem_tui.domain.clock import Clock
from tandem_tui.domain.models import TenantContext, TenantSource

#: ``None`` for the local implicit tenant, else (org, workspace, deployment).
TenantScope = tuple[str, str, str] | None


def provider_key(provider: str) -> str:
    """The canonical form a provider name is stored and looked up under."""
    return provider.strip().lower()


def tenant_scope(tenant: TenantContext) -> TenantScope:
    """The scope a tenant's throttles live in."""
    if tenant.source == TenantSource.LOCAL_IMPLICIT:
        return None
    return (
        tenant.org_id.strip().lower(),
        tenant.workspace_id.strip().lower(),
        (tenant.deployment_id or "").strip().lower(),
    )


@dataclass(frozen=True)
class ProviderThrottle:
    """One provider throttle for one tenant scope (``until_ms`` None: no expiry known)."""

    tenant_scope: TenantScope
    provider: str
    until_ms: int | None

    def is_active(self, now_ms: int) -> bool:
        return self.until_ms is not None and self.until_ms > now_ms


class RateLimitManager:
    """Provider throttles keyed by tenant scope and provider; time from ``clock``."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._throttles: dict[tuple[TenantScope, str], ProviderThrottle] = {}

    def record_throttle_until_for_tenant(
        self, tenant: TenantContext, provider: str, until_ms: int | None
    ) -> ProviderThrottle:
        """Throttle ``provider`` for ``tenant`` until ``until_ms`` (replacing any earlier one)."""
        scope = tenant_scope(tenant)
        key = provider_key(provider)
        throttle = ProviderThrottle(tenant_scope=scope, provider=key, until_ms=until_ms)
        self._throttles[(scope, key)] = throttle
        return throttle

    def record_throttle_for_tenant(
        self, tenant: TenantContext, provider: str, duration_ms: int
    ) -> ProviderThrottle:
        """Throttle ``provider`` for ``tenant`` for ``duration_ms`` from now."""
        until = self._clock.now_ms() + max(duration_ms, 0)
        return self.record_throttle_until_for_tenant(tenant, provider, until)

    def record_throttle(self, provider: str, duration_ms: int) -> ProviderThrottle:
        return self.record_throttle_for_tenant(TenantContext.local_implicit(), provider, duration_ms)

    def record_throttle_until(self, provider: str, until_ms: int | None) -> ProviderThrottle:
        return self.record_throttle_until_for_tenant(
            TenantContext.local_implicit(), provider, until_ms
        )

    def is_provider_throttled_for_tenant(self, tenant: TenantContext, provider: str) -> bool:
        throttle = self._throttles.get((tenant_scope(tenant), provider_key(provider)))
        return throttle is not None and throttle.is_active(self._clock.now_ms())

    def is_provider_throttled(self, provider: str) -> bool:
        return self.is_provider_throttled_for_tenant(TenantContext.local_implicit(), provider)

    def clear_throttle_for_tenant(self, tenant: TenantContext, provider: str) -> None:
        self._throttles.pop((tenant_scope(tenant), provider_key(provider)), None)

    def active_throttles(self) -> list[ProviderThrottle]:
        """Throttles in force now, soonest to expire first."""
        now = self._clock.now_ms()
        active = [t for t in self._throttles.values() if t.is_active(now)]
        return sorted(active, key=lambda t: (t.until_ms or 0, t.provider, t.tenant_scope or ()))

    def prune_expired(self) -> int:
        """Forget throttles that are no longer active; returns how many were dropped."""
        now = self._clock.now_ms()
        stale = [key for key, t in self._throttles.items() if not t.is_active(now)]
        for key in stale:
            del self._throttles[key]
        return len(stale)
