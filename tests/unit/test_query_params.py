"""The recommendations endpoint's query-string reader (deployments/ranking/params.query) reads
what the standard library's parse_qsl(keep_blank_values=True) reads, last value winning."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from deployments.ranking.params import query

CASES = [
    b"shop=a.myshopify.com&intent=related&limit=10&client_id=c-1&product_id=7&cart=",
    b"cart",  # a name without `=`: a blank value
    b"cart=&cart=1,2",  # repeated: the last wins
    b"&&a=1&",  # empty parts skipped
    b"=x",  # an empty name is still a name
    b"a=b=c",  # only the first `=` splits
    b"q=caf%C3%A9+noir&x=%2B1",  # percent escapes and plus as space
    b"n%61me=v",  # escapes in the name
    b"bad=%ff%fe&ok=1",  # invalid UTF-8 in an escape: replaced, not an error
    "raw=caf\u00e9".encode(),  # raw UTF-8 bytes
    b"broken=\xff",  # raw bytes that are not UTF-8
    b"pct=100%",  # a stray percent sign
    b"",
]


@pytest.mark.parametrize("raw", CASES)
def test_reads_what_parse_qsl_reads(raw: bytes) -> None:
    expected = dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
    assert query(raw) == expected


def test_blank_values_are_kept() -> None:
    assert query(b"cart=&shop=s") == {"cart": "", "shop": "s"}
