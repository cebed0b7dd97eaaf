"""Paging never truncates silently: capped page sizes, short pages, stated totals.

Against the loopback test API (http_test_api.py), a real HTTP server. The rule under
test (docs/connectors/http.md, "When paging ends"): page and offset styles end at an empty
page, at the stated total, or - without a total - at a page shorter than the longest page
before it; offsets advance by the records received; a sync that ends short of the stated
total fails (or warns with ``on_total_mismatch: warn``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from http_test_api import Api

from pipeline_connector_http import HttpSource
from pipeline_core import Batch, FatalConnectorError, PipelineJob, RuntimeContext, structure
from pipeline_core.testing import ListSink, run
from pipeline_core.testing.crash import kill_and_resume

CTX = RuntimeContext(job_name="j", execution_id="e", component="source (http)")

NUMBERED = {
    "page": ("/page", "data", {"style": "page", "page_size": 100}),
    "offset": ("/offset", "items", {"style": "offset", "page_size": 100}),
}
#: every style whose test endpoint states a total: path, records_path, pagination
STATING = {
    **NUMBERED,
    "cursor": ("/cursor", "data", {"style": "cursor", "cursor_path": "meta.next"}),
    "next_url": ("/nexturl", "data", {"style": "next_url", "next_url_path": "links.next"}),
}


def source(api: Api, path: str, **config: Any) -> HttpSource:
    config.setdefault("timeout", 5.0)
    config.setdefault("retry", {"max_retries": 2, "backoff": 0.01})
    return HttpSource(structure({"url": api.base + path, **config}, HttpSource.config_cls))


def read(src: HttpSource, position: dict[str, Any] | None = None) -> list[Batch]:
    async def go() -> list[Batch]:
        await src.open(CTX, position)
        try:
            return [b async for b in src.read()]
        finally:
            await src.close()

    return asyncio.run(go())


def ids(batches: list[Batch]) -> list[int]:
    return [r["id"] for b in batches for r in b.records]


def stating(api: Api, style: str, **pagination: Any) -> HttpSource:
    path, records, base = STATING[style]
    p = {**base, "total_path": "total", **pagination}
    return source(api, path, records_path=records, pagination=p)


def numbered(
    api: Api, style: str, *, total: bool = False, prefetch: int = 4, **pagination: Any
) -> Any:
    path, records, base = NUMBERED[style]
    p = {**base, **pagination}
    if total:
        p["total_path"] = "total"
    return source(api, path, records_path=records, pagination=p, prefetch=prefetch)


def requests(api: Api) -> int:
    return sum(api.hits.values())


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# --- an API that caps its page size below page_size -------------------------------------


@pytest.mark.parametrize("total", [False, True], ids=["no-total", "total"])
@pytest.mark.parametrize("style", sorted(NUMBERED))
def test_a_capped_page_size_is_detected_and_paged_through(
    style: str, total: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with Api(1000, cap=40) as api:
        src = numbered(api, style, total=total)
        batches = read(src)
        sent = requests(api)
    assert ids(batches) == list(range(1000))  # all, in order, once
    assert {len(b.records) for b in batches} == {40}
    assert warnings(caplog) == [
        "source (http): the API serves at most 40 records per page (page_size is 100); "
        "paging on in pages of 40"
    ]
    # 25 pages; without a total also the empty 26th and 3 prefetched past it (a total
    # bounds prefetching); offset style also drops the 3 prefetched requests that
    # guessed offsets 100, 200, 300 before page 1 said 40 (they may not have been sent)
    assert 25 <= sent <= 25 + (0 if total else 1 + 3) + (3 if style == "offset" else 0)
    last = batches[-1].position
    assert last["page_length"] == 40 and last["total_processed"] == 1000
    if style == "offset":
        assert [b.position["offset"] for b in batches[:3]] == [40, 80, 120]


@pytest.mark.parametrize("style", sorted(NUMBERED))
def test_resume_in_a_capped_api_neither_loses_nor_repeats_a_page(style: str) -> None:
    with Api(1000, cap=40) as api:
        batches = read(numbered(api, style))
        third = batches[2].position
        api.hits.clear()
        rest = read(numbered(api, style), third)
        asked = set(api.hits)
    assert ids(rest) == list(range(120, 1000))
    # the resumed run knew the API's page size from the position: no earlier page, and
    # no wrongly guessed offset, was asked for
    first = "page=1&" if style == "page" else "offset=0&"
    assert not any(first in path for path in asked)
    assert len(asked) <= 22 + 1 + 3  # pages 4..25, the empty one, prefetch past the end


# --- a short page in the middle -----------------------------------------------------------


def test_a_short_page_with_a_stated_total_does_not_end_an_offset_sync() -> None:
    # the case: 60 records at offset 500 of 2,000
    with Api(2000, short={500: 60}) as api:
        batches = read(numbered(api, "offset", total=True))
        sent = requests(api)
    assert ids(batches) == list(range(2000))
    assert [b.position["offset"] for b in batches[4:7]] == [500, 560, 660]
    # 20 pages + the one after the short page; prefetched offsets 600, 700, 800 dropped
    assert sent <= 21 + 3


def test_without_a_total_a_short_page_after_full_ones_is_the_end() -> None:
    """Nothing says otherwise: the documented rule. (With a total, see above.)"""
    with Api(2000, short={500: 60}) as api:
        batches = read(numbered(api, "offset"))
    assert ids(batches) == list(range(560))


def test_a_short_page_in_page_style_goes_on_and_the_shortfall_is_reported() -> None:
    # page 6 serves 60 of its 100 records: page numbers cannot fetch the other 40, but
    # paging goes on to page 20 and the sync fails rather than completing short
    with Api(2000, short={6: 60}) as api:
        with pytest.raises(
            FatalConnectorError,
            match=r"the API stated a total of 2,000 records \(total\) but its pages ended "
            r"after 1,960: 40 missing \(set pagination.on_total_mismatch: warn",
        ):
            read(numbered(api, "page", total=True))
        assert any("page=20&" in path for path in api.hits)


# --- a short last page ------------------------------------------------------------------


@pytest.mark.parametrize("total", [False, True], ids=["no-total", "total"])
@pytest.mark.parametrize("style", sorted(NUMBERED))
def test_a_short_last_page_ends_without_an_extra_request(style: str, total: bool) -> None:
    with Api(950) as api:
        batches = read(numbered(api, style, total=total, prefetch=1))
        sent = requests(api)
    assert ids(batches) == list(range(950))
    assert sent == 10  # 9 full pages and the short one: the API served full pages before


@pytest.mark.parametrize(("total", "expected"), [(False, 2), (True, 1)])
@pytest.mark.parametrize("style", sorted(NUMBERED))
def test_a_first_page_shorter_than_page_size_costs_one_more_request_without_a_total(
    style: str, total: bool, expected: int, caplog: pytest.LogCaptureFixture
) -> None:
    with Api(60) as api:
        batches = read(numbered(api, style, total=total, prefetch=1))
        sent = requests(api)
    assert ids(batches) == list(range(60))
    assert sent == expected  # without a total, one more request tells "capped" from "end"
    assert warnings(caplog) == []


def test_an_api_that_repeats_its_last_page_past_the_end_is_read_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Api(60, clamp=True) as api:
        batches = read(numbered(api, "page", prefetch=1))
    assert ids(batches) == list(range(60))
    assert warnings(caplog) == [
        "source (http): page 2 repeats the page before it; taken as the end"
    ]


# --- cursor and URL styles: the API's link is the end signal ------------------------------

LINKED = {
    "cursor": ("/cursor", {"records_path": "data", "pagination": STATING["cursor"][2]}),
    "next_url": ("/nexturl", {"records_path": "data", "pagination": STATING["next_url"][2]}),
    "link_header": ("/link", {"pagination": {"style": "link_header"}}),
}


@pytest.mark.parametrize("style", sorted(LINKED))
def test_an_empty_page_that_links_on_does_not_end_a_linked_sync(style: str) -> None:
    path, config = LINKED[style]
    with Api(1000, empty_at={300, 600}) as api:
        batches = read(source(api, path, **config))
    assert ids(batches) == list(range(1000))


@pytest.mark.parametrize("style", sorted(LINKED))
def test_a_page_that_links_to_itself_fails_instead_of_looping(style: str) -> None:
    path, config = LINKED[style]
    with Api(1000, repeat_at=300) as api:
        with pytest.raises(FatalConnectorError, match="paging would repeat that page forever"):
            read(source(api, path, **config))
        assert sum(api.hits.values()) == 4


# --- the stated total -------------------------------------------------------------------


@pytest.mark.parametrize("style", sorted(STATING))
def test_a_sync_ending_short_of_the_stated_total_fails(style: str) -> None:
    with Api(1000, stated_total=1040) as api:
        job = PipelineJob.builder().name("short").source(stating(api, style))
        result = run(job.sink(ListSink()).build(), expect=None)
    assert result.status.name == "FAILED"
    assert "stated a total of 1,040 records (total) but its pages ended after 1,000: 40 " in (
        result.error or ""
    )


@pytest.mark.parametrize("style", sorted(STATING))
def test_on_total_mismatch_warn_completes_and_counts(
    style: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Api(1000, stated_total=1040) as api:
        src = stating(api, style, on_total_mismatch="warn")
        batches = read(src)
    assert ids(batches) == list(range(1000))
    assert src.missing == 40
    assert warnings(caplog) == [
        "source (http): the API stated a total of 1,040 records (total) but its pages ended "
        "after 1,000: 40 missing"
    ]


@pytest.mark.parametrize(("style", "expected"), [("offset", 500), ("cursor", 1000)])
def test_a_stated_total_ends_numbered_paging_but_never_cuts_links_short(
    style: str, expected: int
) -> None:
    """Numbered pages have no other end signal than the total; a next cursor or link
    says there is more, and is followed."""
    with Api(1000, stated_total=500) as api:
        assert ids(read(stating(api, style))) == list(range(expected))


def test_progress_is_records_of_the_stated_total() -> None:
    with Api(1000) as api:
        src = numbered(api, "page", total=True)
        read(src)
    progress = src.progress()
    assert progress is not None
    assert (progress.done, progress.total, progress.unit) == (1000, 1000, "records")


# --- kill and resume in a capped API ----------------------------------------------------


def test_kill_and_resume_an_offset_sync_of_a_capped_api(tmp_path: Path) -> None:
    n = 4000
    with Api(n, cap=40) as api:
        (tmp_path / "job.yaml").write_text(
            "name: capped-sync\n"
            "source:\n"
            "  type: http\n"
            f"  config: {{url: '{api.base}/offset', records_path: items, prefetch: 3,\n"
            "           pagination: {style: offset, page_size: 100, total_path: total}}\n"
            "transform: [{type: rate_limit, per_second: 2000}]\n"
            "sink: {type: file, config: {path: out}}\n"
            "config: {checkpoint_interval: 300ms}\n"
        )
        report = kill_and_resume(
            [
                str(Path(sys.executable).parent / "pipeline-run"),
                "run",
                "--resume",
                "--no-progress",
                "--quiet",
                "job.yaml",
            ],
            cwd=tmp_path,
            kills=4,
            seed="capped",
            env={"PIPELINE_DATABASE_URL": ""},
        )
        asked = [path for path in api.hits if "offset=" in path]
    assert report.kills == 4
    got = [
        orjson.loads(x)["id"]
        for p in sorted((tmp_path / "out").iterdir())
        for x in p.read_bytes().splitlines()
    ]
    assert sorted(got) == list(range(n))  # once each
    # every offset asked is one the API's 40-record pages start at, but for the guess a
    # fresh run makes before its first page says 40 (a resumed run knows it already)
    assert {int(p.split("offset=")[1].split("&")[0]) for p in asked} - set(range(0, n, 40)) <= {100}
