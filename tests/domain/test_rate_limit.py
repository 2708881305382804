"""Provider throttles are tenant-scoped and expire on the injected clock."""

from tandem_tui.domain.clock import ManualClock
from tandem_tui.domain.models import TenantContext
from tandem_tui.domain.rate_limit import RateLimitManager

TENANT_A = TenantContext.explicit("org-a", "ws", "user-a")
TENANT_B = TenantContext.explicit("org-b", "ws", "user-b")


def make_manager(now_ms: int = 1_000) -> tuple[RateLimitManager, ManualClock]:
    clock = ManualClock(now_ms)
    return RateLimitManager(clock), clock


def test_provider_names_are_trimmed_and_lower_cased_on_record_and_lookup():
    manager, _ = make_manager()
    manager.record_throttle_for_tenant(TENANT_A, "  OpenAI ", 500)
    assert manager.is_provider_throttled_for_tenant(TENANT_A, "openai")
    assert manager.is_provider_throttled_for_tenant(TENANT_A, "OPENAI  ")
    assert [t.provider for t in manager.active_throttles()] == ["openai"]


def test_a_throttle_expires_at_now_plus_its_duration():
    manager, clock = make_manager(1_000)
    throttle = manager.record_throttle_for_tenant(TENANT_A, "openai", 500)
    assert throttle.until_ms == 1_500
    clock.set(1_499)
    assert manager.is_provider_throttled_for_tenant(TENANT_A, "openai")
    clock.set(1_500)
    assert not manager.is_provider_throttled_for_tenant(TENANT_A, "openai")
    assert manager.active_throttles() == []


def test_a_throttle_without_expiry_is_not_active():
    manager, _ = make_manager()
    manager.record_throttle_until_for_tenant(TENANT_A, "openai", None)
    assert not manager.is_provider_throttled_for_tenant(TENANT_A, "openai")
    assert manager.active_throttles() == []


def test_a_throttle_until_a_past_instant_is_not_active():
    manager, _ = make_manager(1_000)
    manager.record_throttle_until_for_tenant(TENANT_A, "openai", 999)
    assert not manager.is_provider_throttled_for_tenant(TENANT_A, "openai")
    manager.record_throttle_until_for_tenant(TENANT_A, "openai", 1_001)
    assert manager.is_provider_throttled_for_tenant(TENANT_A, "openai")


def test_throttles_do_not_leak_across_tenants_or_providers():
    manager, _ = make_manager()
    manager.record_throttle_for_tenant(TENANT_A, "openai", 60_000)
    assert not manager.is_provider_throttled_for_tenant(TENANT_B, "openai")
    assert not manager.is_provider_throttled_for_tenant(TENANT_A, "anthropic")
    assert not manager.is_provider_throttled("openai")


def test_non_tenant_calls_use_the_local_implicit_tenant():
    manager, _ = make_manager()
    manager.record_throttle("openai", 100)
    assert manager.is_provider_throttled_for_tenant(TenantContext.local_implicit(), "openai")
    assert manager.is_provider_throttled("openai")
    assert not manager.is_provider_throttled_for_tenant(TENANT_A, "openai")


def test_recording_again_replaces_the_earlier_throttle():
    manager, clock = make_manager(0)
    manager.record_throttle_for_tenant(TENANT_A, "openai", 10_000)
    manager.record_throttle_for_tenant(TENANT_A, "OpenAI", 10)
    clock.set(50)
    assert not manager.is_provider_throttled_for_tenant(TENANT_A, "openai")


def test_active_throttles_lists_only_live_ones_soonest_first_and_prune_drops_the_rest():
    manager, clock = make_manager(0)
    manager.record_throttle_for_tenant(TENANT_A, "openai", 300)
    manager.record_throttle_for_tenant(TENANT_B, "openai", 100)
    manager.record_throttle_for_tenant(TENANT_A, "anthropic", 10)
    manager.record_throttle_until_for_tenant(TENANT_B, "gemini", None)
    clock.set(50)
    assert [(t.tenant_scope[0], t.provider, t.until_ms) for t in manager.active_throttles()] == [
        ("org-b", "openai", 100),
        ("org-a", "openai", 300),
    ]
    assert manager.prune_expired() == 2
    assert len(manager.active_throttles()) == 2


def test_clearing_a_throttle_lifts_it():
    manager, _ = make_manager()
    manager.record_throttle_for_tenant(TENANT_A, "openai", 1_000)
    manager.clear_throttle_for_tenant(TENANT_A, " OPENAI")
    assert not manager.is_provider_throttled_for_tenant(TENANT_A, "openai")


def test_an_explicit_tenant_named_local_does_not_share_the_implicit_tenants_throttles():
    manager, _ = make_manager()
    manager.record_throttle("openai", 100)
    explicit_local = TenantContext.explicit("local", "local")
    assert not manager.is_provider_throttled_for_tenant(explicit_local, "openai")


def test_explicit_tenant_scope_ignores_case_and_surrounding_spaces():
    manager, _ = make_manager()
    manager.record_throttle_for_tenant(TenantContext.explicit(" Org-A ", "WS"), "openai", 100)
    assert manager.is_provider_throttled_for_tenant(TenantContext.explicit("org-a", "ws"), "openai")


# --- twins of the upstream rate_limit.rs #[test]s ------------------------------------


def test_missing_throttle_expiry_is_not_permanent_throttle():
    manager, _ = make_manager()
    manager.record_throttle_until("provider-a", None)
    assert not manager.is_provider_throttled("provider-a")


def test_expired_throttle_is_not_active():
    manager, clock = make_manager()
    manager.record_throttle_until("provider-a", clock.now_ms() - 1)
    assert not manager.is_provider_throttled("provider-a")


def test_active_throttle_remains_throttled():
    manager, clock = make_manager()
    manager.record_throttle_until("provider-a", clock.now_ms() + 60_000)
    assert manager.is_provider_throttled("provider-a")
    [status] = manager.active_throttles()
    assert status.until_ms is not None


def test_provider_throttles_are_tenant_scoped():
    manager, _ = make_manager()
    manager.record_throttle_for_tenant(TENANT_A, "openai", 60_000)
    assert manager.is_provider_throttled_for_tenant(TENANT_A, "openai")
    assert not manager.is_provider_throttled_for_tenant(TENANT_B, "openai")
    assert not manager.is_provider_throttled("openai")
