"""Target kinds by byte lanes (targets.coarse_codes, bits_16_to_31) against direct lookups."""

from __future__ import annotations

import random
from array import array

from relrocheck import targets


def test_translated_lanes_give_the_table_entry_of_each_address() -> None:
    rng = random.Random(7)
    for _ in range(15):
        coarse = [rng.choice([0, 1, 2, 3, targets.AMBIGUOUS]) for _ in range(1 << 16)]
        for h in rng.sample(range(256), 40):  # 16 MiB of one kind, as inside .text
            coarse[h << 8:(h + 1) << 8] = [rng.randrange(4)] * 256
        values = [rng.randrange(1 << 16) for _ in range(rng.randrange(8))]
        n = rng.randrange(1, 3000)
        # Few or many distinct high bytes: translate per value, or the map beyond 8 of them.
        addresses = array("Q", ((rng.choice(values) if values and rng.random() < 0.5
                                 else rng.randrange(1 << 16)) << 16 | rng.randrange(1 << 16)
                                for _ in range(n)) if rng.random() < 0.5 else
                           (rng.randrange(4) << 24 | rng.randrange(1 << 24) for _ in range(n)))
        lanes = targets.bits_16_to_31(addresses)
        assert lanes is not None
        low, high = lanes
        assert list(low) == [(a >> 16) & 0xFF for a in addresses]
        assert list(high) == [(a >> 24) & 0xFF for a in addresses]
        expected = bytes(coarse[a >> 16] for a in addresses)
        assert targets.coarse_codes(coarse, low, high) == expected


def test_addresses_past_4_gib_are_left_to_the_fine_table() -> None:
    assert targets.bits_16_to_31(array("Q", [1 << 32, 5])) is None


def test_the_classifier_gives_the_kind_of_the_section_holding_each_address() -> None:
    """Against a direct search of the spans, for addresses below and past 4 GiB, on grain
    boundaries and off them, in and between sections, and past the image."""
    rng = random.Random(11)
    unknown = 7
    for high_base in (0, 1 << 33):
        spans, cursor = [], high_base + rng.randrange(1 << 12)
        for _ in range(40):
            cursor += rng.choice([0, 0, 8, 1 << 16, rng.randrange(1 << 20)])
            size = rng.choice([8, 64, 1 << 16, rng.randrange(1, 1 << 18)])
            spans.append((cursor, cursor + size, rng.randrange(4)))
            cursor += size
        classify = targets.address_classifier(spans, unknown)

        def direct(address: int) -> int:
            return next((kind for start, end, kind in spans if start <= address < end),
                        unknown)

        edges = [a for start, end, _ in spans for a in (start - 1, start, end - 1, end)]
        addresses = edges + [rng.randrange(high_base, cursor + (1 << 20)) for _ in range(3000)]
        expected = bytes(map(direct, addresses))
        assert classify(array("Q", addresses)) == expected
        assert classify(memoryview(array("Q", addresses))) == expected
        assert classify(addresses) == expected
