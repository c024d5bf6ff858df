"""Decoders of the compact relocation encodings: RELR bitmaps (DT_RELR, DT_ANDROID_RELR,
relrhack's hidden tags), Android's packed APS2 tables, and MIPS64's three-type r_info.

Pure functions over words and bytes already read by `relrocheck.elf`: each works in bulk
(C-level passes over arrays and byte lanes), never with a Python object per relocation, and
bounds what a table may claim by a limit its caller derives from the bytes in the file.
"""

from __future__ import annotations

import operator
import sys
from array import array
from itertools import accumulate, compress, islice, repeat
from typing import Sequence

from relrocheck.errors import ElfError

_U32, _U64 = "I", "Q"


def relr_count(entries: "array | Sequence[int]", word_size: int) -> int:
    """How many addresses a RELR table encodes, without decoding them: its even entries plus
    the set bits of its bitmaps (less their marker bit), counted a byte lane at a time."""
    entries = _as_words(entries, word_size)
    odd = bytes(map(operator.and_, entries, repeat(1)))
    bitmaps = array(entries.typecode, compress(entries, odd))
    raw = bitmaps.tobytes()
    setbits = sum(raw.translate(_POPCOUNT))
    return len(entries) - len(bitmaps) + setbits - len(bitmaps)


def decode_relr(entries: "array | list[int]", word_size: int,
                limit: int | None = None) -> array:
    """Addresses encoded in a RELR table (SHT_RELR / DT_RELR), sorted, as an array of words.

    An even entry is an address to relocate; an odd entry is a bitmap whose bit i (i >= 1)
    marks the word i - 1 after the current base. Each bitmap advances the base by
    (bits per word - 1) words.

    Decoded in bulk: one pass over the entries gives each bitmap its base; then each bit
    position is one C-level pass (a `bytes.translate` of that bit's byte lane, a `compress`
    of the bases), so no Python object is made per bit of a bitmap. `limit`, when given,
    bounds how many addresses the table may encode (ElfError beyond it, before any is made):
    eight bytes of bitmap encode up to 63 addresses.
    """
    entries = _as_words(entries, word_size)
    bits = word_size * 8
    step = (bits - 1) * word_size
    typecode = entries.typecode
    if limit is not None:
        count = relr_count(entries, word_size)
        if count > limit:
            raise ElfError(f"RELR table encodes {count} relocations, more than the "
                           f"{limit} words the file can hold: corrupt")
    odd = bytes(map(operator.and_, entries, repeat(1)))
    if 1 not in odd:
        out = entries
    else:
        bases: list[int] = []
        append = bases.append
        base = 0
        for entry, is_bitmap in zip(entries, odd):
            if is_bitmap:
                append(base)
                base += step
            else:
                base = entry + word_size
        parts: list[int] = list(compress(entries, map(operator.not_, odd)))
        raw = array(typecode, compress(entries, odd)).tobytes()
        little = sys.byteorder == "little"
        for lane in range(word_size):
            column = raw[(lane if little else word_size - 1 - lane)::word_size]
            if not column.strip(b"\0"):
                continue
            for bit in range(8):
                position = lane * 8 + bit
                if position == 0:
                    continue  # the bitmap marker
                selected = column.translate(_BIT_SELECT[bit])
                if 1 not in selected:
                    continue
                parts.extend(map(operator.add, compress(bases, selected),
                                 repeat((position - 1) * word_size)))
        # A well-formed table is in address order; the bit passes interleave it again.
        parts.sort()
        out = array(typecode)
        try:
            out.fromlist(parts)
        except OverflowError:  # an address past the top of the address space
            out = array(typecode, (a & ((1 << bits) - 1) for a in parts))
    if out is entries:
        if not _sorted_words(out):
            out = array(typecode, sorted(out))
    return out


# APS2 group flags (bionic's linker_reloc_iterators.h, lld's AndroidPackedRelocationSection).
_APS2_BY_INFO, _APS2_BY_OFFSET_DELTA, _APS2_BY_ADDEND, _APS2_HAS_ADDEND = 1, 2, 4, 8
# A byte below 0x80 is a whole SLEB128 value: 0x40-0x7f are the negative ones.
_SIGNED_7 = bytes(b | 0x80 if b & 0x40 else b for b in range(128)) + bytes(128)


def _sleb128(blob: bytes, pos: int, count: int) -> tuple[list[int], int]:
    """`count` SLEB128 values starting at blob[pos], and the position after them.

    When the next `count` bytes are single-byte values (the common case: small deltas), they
    are decoded in one C-level pass; otherwise value by value.
    """
    if count <= 0:
        return [], pos
    chunk = blob[pos:pos + count]
    if len(chunk) == count and max(chunk) < 0x80:
        return array("b", chunk.translate(_SIGNED_7)).tolist(), pos + count
    out: list[int] = []
    append = out.append
    end = len(blob)
    for _ in range(count):
        value = shift = 0
        while True:
            if pos >= end:
                raise ValueError("truncated SLEB128 value")
            byte = blob[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
            if shift > 70:
                raise ValueError("SLEB128 value longer than 64 bits")
        if byte & 0x40:
            value -= 1 << shift
        append(value)
    return out, pos


def decode_aps2(blob: bytes, is_rela: bool, word_size: int, limit: int
                ) -> tuple[array, array, array | None]:
    """(r_offset, r_info, r_addend) columns of an Android packed table (APS2).

    After the magic: the relocation count and the initial r_offset, then groups of (size,
    flags, [offset delta], [info], [addend delta]) whose members carry whatever the group
    does not share. Groups sharing offset delta and info (lld's runs of RELATIVE entries)
    cost nothing per entry and are expanded by range(); the rest decode their per-entry
    values in bulk. `limit` bounds the count a table may claim (the image's words).
    """
    if blob[:4] != b"APS2":
        raise ValueError("no APS2 magic: not an Android packed relocation table")
    try:
        return _decode_aps2_groups(blob, is_rela, word_size, limit)
    except OverflowError:
        raise ValueError("an offset or info outside the word size") from None


def _decode_aps2_groups(blob: bytes, is_rela: bool, word_size: int, limit: int
                        ) -> tuple[array, array, array | None]:
    mask = (1 << (8 * word_size)) - 1
    code = _U64 if word_size == 8 else _U32
    (count, offset), pos = _sleb128(blob, 4, 2)
    if count < 0 or count > limit:
        raise ValueError(f"claims {count} relocations, more than the image has words")
    # Columns filled by C-level extends; an offset or info out of the word's range is the
    # file's fault (OverflowError). Addends are signed: stored as two's complement words.
    offsets, infos, addends = array(code), array(code), array(code)
    info = addend = delta = 0
    while len(offsets) < count:
        (size, flags), pos = _sleb128(blob, pos, 2)
        if size <= 0 or size > count - len(offsets):
            raise ValueError(f"group of {size} relocations where {count - len(offsets)} remain")
        by_offset = flags & _APS2_BY_OFFSET_DELTA
        by_info = flags & _APS2_BY_INFO
        has_addend = flags & _APS2_HAS_ADDEND
        by_addend = has_addend and flags & _APS2_BY_ADDEND
        if has_addend and not is_rela:
            raise ValueError("a group with addends in a REL table")
        if by_offset:
            (delta,), pos = _sleb128(blob, pos, 1)
        if by_info:
            (info,), pos = _sleb128(blob, pos, 1)
        if by_addend:
            (step,), pos = _sleb128(blob, pos, 1)
            addend += step
        elif not has_addend:
            addend = 0
        per_entry = (not by_offset) + (not by_info) + bool(has_addend and not by_addend)
        values, pos = _sleb128(blob, pos, per_entry * size)
        field = 0
        if by_offset:
            if delta:
                offsets.extend(range(offset + delta, offset + delta * size + (1 if delta > 0
                                                                               else -1), delta))
            else:
                offsets.extend(repeat(offset, size))
            offset += delta * size
        else:
            offsets.extend(islice(accumulate(values[0::per_entry], initial=offset), 1, None))
            offset = offsets[-1]
            field = 1
        if by_info:
            infos.extend(repeat(info, size))
        else:
            infos.extend(values[field::per_entry])
            info = infos[-1]
            field += 1
        if is_rela:
            if has_addend and not by_addend:
                running = list(islice(accumulate(values[field::per_entry], initial=addend), 1,
                                      None))
                addend = running[-1]
                addends.extend(map(mask.__and__, running))
            else:
                addends.extend(repeat(addend & mask, size))
    return offsets, infos, addends if is_rela else None


def mips64_infos(infos: array, little_endian: bool) -> array:
    """MIPS64 r_info (r_sym:32, r_ssym:8, r_type3:8, r_type2:8, r_type:8, stored in that
    order whatever the byte order) as the generic ELF64 r_info, r_sym << 32 | r_type.

    The 2nd and 3rd types qualify the same write (REL32 then R_MIPS_64: a 64-bit REL32),
    so one record stays one relocation of its first type.
    """
    if little_endian:  # read as a little-endian word, r_sym is the low half, r_type the top byte
        sym = map(operator.lshift, map(operator.and_, infos, repeat(0xFFFFFFFF)), repeat(32))
        typ = map(operator.rshift, infos, repeat(56))
    else:
        sym = map(operator.lshift, map(operator.rshift, infos, repeat(32)), repeat(32))
        typ = map(operator.and_, infos, repeat(0xFF))
    return array(_U64, map(operator.or_, sym, typ))


def _as_words(entries: "array | Sequence[int]", word_size: int) -> array:
    typecode = _U32 if word_size == 4 else _U64
    if isinstance(entries, array) and entries.typecode == typecode:
        return entries
    return array(typecode, entries)


def _sorted_words(values: array) -> bool:
    return all(map(operator.le, values, values[1:])) if len(values) > 1 else True


# Per byte value: how many bits are set; and for each bit, 1 where the byte has it set.
_POPCOUNT = bytes(bin(v).count("1") for v in range(256))
_BIT_SELECT = [bytes(v >> bit & 1 for v in range(256)) for bit in range(8)]
