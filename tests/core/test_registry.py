"""The registries of wmi.kinds: lookups, messages, and that each entry's references resolve."""

from __future__ import annotations

import pytest

from wmi import kinds
from wmi.errors import WmiError
from wmi.registry import Entry, Registry, load

ALL = [
    kinds.CONV_KINDS,
    kinds.NORM_KINDS,
    kinds.AMP_MODES,
    kinds.DEVICES,
    kinds.PERCEPTUAL,
    kinds.MASK_KINDS,
    kinds.PRESETS,
    kinds.COMPRESSIONS,
    kinds.CLASSICAL_METHODS,
    kinds.METRICS,
]


def test_lookup_order_and_unknown_name() -> None:
    reg: Registry[Entry] = Registry("widget")
    reg.register(Entry("b", "the b"))
    reg.register(Entry("a", ""))
    assert reg.names() == ("b", "a") and list(reg) == ["b", "a"] and len(reg) == 2
    assert reg["a"].name == "a" and "a" in reg and "c" not in reg
    assert reg.describe() == "b (the b), a"
    with pytest.raises(WmiError, match=r"unknown widget 'c'; choose from b, a"):
        reg["c"]
    with pytest.raises(ValueError, match="already registered"):
        reg.register(Entry("a", "again"))
    assert reg.unregister("a").name == "a" and reg.names() == ("b",)


def test_load_resolves_references_and_passes_objects_through() -> None:
    assert load("wmi.registry:load") is load
    assert load(len) is len


@pytest.mark.parametrize("registry", ALL, ids=lambda r: r.what)
def test_every_reference_in_every_registry_resolves(registry: Registry) -> None:
    for entry in registry.entries():
        assert entry.help, f"{registry.what} {entry.name} has no help text"
        for attribute in ("layer", "generator", "fn", "fill", "network"):
            ref = getattr(entry, attribute, None)
            if ref is not None:
                assert callable(load(ref)), f"{entry.name}.{attribute} = {ref!r}"


def test_paper_pairings() -> None:
    assert kinds.paper_norm("weighted") == "weighted"
    assert [kinds.paper_norm(k) for k in ("partial", "gated", "plain")] == ["batch"] * 3
    assert kinds.paper_norm("partial", "instance") == "instance"
    with pytest.raises(WmiError, match="unknown norm kind 'layer'"):
        kinds.paper_norm("weighted", "layer")
