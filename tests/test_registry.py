from __future__ import annotations

import pytest

from ganinf_mlops.errors import ConfigError
from ganinf_mlops.registry import Registry


def test_register_add_get_and_sorted_names() -> None:
    reg: Registry[object] = Registry("metric")

    @reg.register("zeta")
    def zeta() -> int:
        return 1

    reg.add("alpha", 2)
    assert reg.get("zeta") is zeta
    assert reg.get("alpha") == 2
    assert reg.names() == ["alpha", "zeta"]
    assert "alpha" in reg and "beta" not in reg
    assert len(reg) == 2


def test_unknown_name_lists_choices() -> None:
    reg: Registry[int] = Registry("preset")
    reg.add("b", 1)
    reg.add("a", 2)
    with pytest.raises(ConfigError, match=r"^unknown preset 'x'; choose from: a, b$"):
        reg.get("x")


def test_duplicate_name_rejected() -> None:
    reg: Registry[int] = Registry("method")
    reg.add("a", 1)
    with pytest.raises(ConfigError, match="already registered"):
        reg.add("a", 2)
    assert reg.get("a") == 1
