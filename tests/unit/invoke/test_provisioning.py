"""How a weighted alias's provisioned environments are spread over its two versions."""

from __future__ import annotations

import pytest

from lamina.invoke.provisioning import split


@pytest.mark.parametrize(
    ("requested", "weight", "extra"),
    [(2, 0.5, 1), (3, 0.5, 1), (1, 0.5, 0), (10, 0.05, 0), (10, 0.06, 1), (10, 0.25, 2), (4, 1.0, 4), (5, 0.0, 0)],
)
def test_the_additional_version_gets_its_share_and_ties_go_to_the_primary(requested, weight, extra):
    assert split(requested, weight) == extra
    assert 0 <= requested - split(requested, weight) <= requested
