"""Which run names Prefect made up (the flow then names the run) and which a person typed (kept)."""

from __future__ import annotations

import pytest
from prefect.utilities.names import generate_slug

from flows.run_names import made_up


def test_every_name_prefects_server_and_client_make_up_is_recognised():
    assert all(made_up(generate_slug(2)) for _ in range(5000))


@pytest.mark.parametrize("name", ["Sleek-Zebu", "Handmade-Okapi", "gamma42-andromedae-nebula", "omega-virgo-cluster"])
def test_the_ui_forms_made_up_names_are_recognised(name):
    assert made_up(name)


@pytest.mark.parametrize("name", ["web-rerun", "db-01", "nightly-db", "web-01 rerun after patch", "migrate", "fix-grub"])
def test_typed_names_are_kept(name):
    assert not made_up(name)
