"""Target kinds by byte lanes (measure._coarse_codes, _bits_16_to_31) against direct lookups."""

from __future__ import annotations

import random
from array import array

from relrocheck import measure


def test_translated_lanes_give_the_table_entry_of_each_address() -> None:
    rng = random.Random(7)
    for _ in range(15):
        coarse = [rng.choice([0, 1, 2, 3, measure._AMBIGUOUS]) for _ in range(1 << 16)]
        for h in rng.sample(range(256), 40):  # 16 MiB of one kind, as inside .text
            coarse[h << 8:(h + 1) << 8] = [rng.randrange(4)] * 256
        values = [rng.randrange(1 << 16) for _ in range(rng.randrange(8))]
        n = rng.randrange(1, 3000)
        # Few or many distinct high bytes: translate per value, or the map beyond 8 of them.
        addresses = array("Q", ((rng.choice(values) if values and rng.random() < 0.5
                                 else rng.randrange(1 << 16)) << 16 | rng.randrange(1 << 16)
                                for _ in range(n)) if rng.random() < 0.5 else
                           (rng.randrange(4) << 24 | rng.randrange(1 << 24) for _ in range(n)))
        lanes = measure._bits_16_to_31(addresses)
        assert lanes is not None
        low, high = lanes
        assert list(low) == [(a >> 16) & 0xFF for a in addresses]
        assert list(high) == [(a >> 24) & 0xFF for a in addresses]
        expected = bytes(coarse[a >> 16] for a in addresses)
        assert measure._coarse_codes(coarse, low, high) == expected


def test_addresses_past_4_gib_are_left_to_the_fine_table() -> None:
    assert measure._bits_16_to_31(array("Q", [1 << 32, 5])) is None
