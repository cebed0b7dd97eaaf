"""Every route of the REST API against a running server, on both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_core.api import ROUTES, openapi_document
from tests.api.conftest import READ, Live

pytestmark = pytest.mark.timeout(90)


def counter(name: str, count: int = 50, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STREAMING",
        "source": {"type": "counter", "config": {"count": count, **extra}},
        "sink": {"type": "file", "config": {"path": f"${{env:API_TEST_OUT}}/{name}"}},
        "config": {"checkpoint_interval": "200ms"},
    }


@pytest.fixture(autouse=True)
def out_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TEST_OUT", str(tmp_path / "out"))


async def test_tokens_and_scopes(live: Live) -> None:
    async with live.client(None) as anon, live.client(READ) as reader, live.client() as admin:
        assert (await anon.get("/healthz")).json()["status"] == "ok"
        assert (await anon.get("/api/openapi.json")).status_code == 200
        assert (await anon.get("/metrics")).status_code == 200  # public by default
        r = await anon.get("/api/jobs")
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        r = await anon.get("/api/jobs", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        assert (await reader.get("/api/jobs")).status_code == 200
        r = await reader.post("/api/jobs", json=counter("x"))
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        assert (await admin.post("/api/jobs", json=counter("x"))).status_code == 201
        assert (await anon.get("/")).status_code == 200  # the page asks for a token itself


async def test_job_routes(live: Live) -> None:
    async with live.client() as c:
        r = await c.post("/api/jobs", json=counter("alpha"))
        assert r.status_code == 201 and r.json()["version"] == 1
        assert r.json()["dag_definition"]["sink"]["config"]["path"].startswith("${env:")
        r = await c.post(
            "/api/jobs",
            content=yaml.safe_dump(counter("beta")),
            headers={"Content-Type": "application/yaml"},
        )
        assert r.status_code == 201
        r = await c.post("/api/jobs", json=counter("alpha"))
        assert r.status_code == 409 and r.json()["error"] == "job_exists"
        bad = counter("gamma")
        bad["source"]["config"]["cuont"] = 3
        r = await c.post("/api/jobs", json=bad)
        assert r.status_code == 400 and r.json()["error"] == "invalid_definition"
        assert r.json()["details"][0]["field"] == "cuont"
        assert "source (counter)" in r.json()["message"]
        r = await c.post(
            "/api/jobs", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_body"
        names = [j["name"] for j in (await c.get("/api/jobs")).json()["items"]]
        assert names == ["alpha", "beta"]
        assert (await c.get("/api/jobs/nope")).json()["error"] == "job_not_found"
        assert (await c.get("/api/jobs/nope")).status_code == 404
        r = await c.put("/api/jobs/alpha", json=counter("alpha", count=60))
        assert r.status_code == 200 and r.json()["version"] == 2
        r = await c.put("/api/jobs/alpha", json=counter("other"))
        assert r.status_code == 400
        versions = (await c.get("/api/jobs/alpha/versions")).json()
        assert [v["version"] for v in versions["items"]] == [2, 1] and versions["total"] == 2
        assert (await c.get("/api/jobs/nope/versions")).status_code == 404
        v1 = (await c.get("/api/jobs/alpha/versions/1")).json()
        assert v1["version"] == 1 and v1["dag_definition"]["source"]["config"]["count"] == 50
        assert (await c.get("/api/jobs/alpha/versions/9")).status_code == 404
        assert (await c.post("/api/jobs/alpha/disable")).json()["enabled"] is False
        r = await c.post("/api/jobs/alpha/start")
        assert r.status_code == 409 and r.json()["error"] == "job_disabled"
        assert (await c.post("/api/jobs/alpha/enable")).json()["enabled"] is True


async def test_schedule_routes(live: Live) -> None:
    async with live.client() as c:
        await c.post("/api/jobs", json=counter("sched"))
        r = await c.get("/api/jobs/sched/schedule")
        assert r.status_code == 404 and r.json()["error"] == "schedule_not_found"
        r = await c.put(
            "/api/jobs/sched/schedule",
            json={"type": "CRON", "cron": "0 3 * * *", "timezone": "Europe/Berlin"},
        )
        assert r.status_code == 200 and r.json()["next_trigger_time"]
        job = (await c.get("/api/jobs/sched")).json()
        assert job["schedule"]["cron"] == "0 3 * * *"
        r = await c.put("/api/jobs/sched/schedule", json={"type": "CRON", "cron": "61 * * * *"})
        assert r.status_code == 400 and r.json()["details"][0]["field"] == "cron"
        assert (await c.delete("/api/jobs/sched/schedule")).status_code == 204
        assert (await c.delete("/api/jobs/sched/schedule")).status_code == 404


async def test_start_execution_and_control_routes(live: Live) -> None:
    async with live.client() as c:
        await c.post("/api/jobs", json=counter("quick", count=30))
        r = await c.post("/api/jobs/quick/start")
        assert r.status_code == 202
        quick = r.json()["execution_id"]

        async def done() -> bool:
            return (await c.get(f"/api/executions/{quick}")).json()["status"] == "COMPLETED"

        await live.wait(done, what="COMPLETED")
        detail = (await c.get(f"/api/executions/{quick}")).json()
        assert detail["processed_records"] == 30 and detail["triggered_by"] == "MANUAL"
        assert [t["to_status"] for t in detail["transitions"]][:3] == [
            "SCHEDULED",
            "INITIALIZING",
            "RUNNING",
        ]
        (attempt,) = detail["attempts"]
        assert (attempt["attempt"], attempt["run_id"], attempt["status"]) == (1, quick, "COMPLETED")
        assert attempt["processed_records"] == 30 and detail["superseded_by"] is None
        r = await c.post(f"/api/executions/{quick}/pause")
        assert r.status_code == 409 and r.json()["error"] == "illegal_state"

        await c.post("/api/jobs", json=counter("slow", count=10**6, delay=0.02))
        slow = (await c.post("/api/jobs/slow/start")).json()["execution_id"]
        r = await c.post("/api/jobs/slow/start")
        assert r.status_code == 409 and r.json()["error"] == "job_running"

        async def running() -> bool:
            x = (await c.get(f"/api/executions/{slow}")).json()
            return x["status"] == "RUNNING" and x["throughput"] is not None

        await live.wait(running, what="RUNNING")
        # the refused start (a skipped execution, never started) is not the job's last
        (job,) = (await c.get("/api/jobs", params={"q": "slow"})).json()["items"]
        assert job["last_execution"]["execution_id"] == slow
        assert job["last_execution"]["status"] == "RUNNING"
        page = (await c.get("/api/jobs", params={"last_status": "RUNNING"})).json()
        assert [j["name"] for j in page["items"]] == ["slow"]
        assert (await c.get("/api/jobs", params={"last_status": "CANCELLED"})).json()["total"] == 0
        assert (await c.post(f"/api/executions/{slow}/pause")).status_code == 202
        assert (await c.get(f"/api/executions/{slow}")).json()["paused"] is True
        assert (await c.post(f"/api/executions/{slow}/resume")).status_code == 202
        assert (await c.post(f"/api/executions/{slow}/checkpoint")).status_code == 202
        r = await c.post(f"/api/executions/{slow}/savepoint", json={"name": "sp-1"})
        assert r.status_code == 202
        assert (await c.post(f"/api/executions/{slow}/savepoint", json={})).status_code == 400

        async def savepoint() -> bool:
            cps = (await c.get(f"/api/executions/{slow}/checkpoints")).json()["items"]
            return any(cp["savepoint_name"] == "sp-1" and cp["status"] == "COMPLETED" for cp in cps)

        await live.wait(savepoint, what="the savepoint")
        assert (await c.post(f"/api/executions/{slow}/cancel")).status_code == 202

        async def cancelled() -> bool:
            return (await c.get(f"/api/executions/{slow}")).json()["status"] == "CANCELLED"

        await live.wait(cancelled, what="CANCELLED")
        assert (await c.post(f"/api/executions/{slow}/cancel")).status_code == 409
        listed = (await c.get("/api/executions", params={"job": "slow"})).json()["items"]
        # the refused second start is on record as a skipped execution
        assert [x["execution_id"] for x in listed][1] == slow
        assert "skipped" in listed[0]["error_message"] and listed[0]["status"] == "CANCELLED"
        done_ = (await c.get("/api/executions", params={"status": "COMPLETED"})).json()["items"]
        assert [x["execution_id"] for x in done_] == [quick]
        assert (await c.get("/api/executions", params={"status": "NOPE"})).status_code == 400
        r = await c.get("/api/executions", params={"job": "nope"})  # as the CLI: an error
        assert r.status_code == 404 and r.json()["error"] == "job_not_found"
        assert (await c.get("/api/executions", params={"limit": "x"})).status_code == 400
        assert (await c.get("/api/executions/nope")).status_code == 404
        assert (await c.get("/api/executions/nope/checkpoints")).status_code == 404
        cps = (await c.get(f"/api/executions/{quick}/checkpoints")).json()
        assert cps["total"] == len(cps["items"]) >= 1
        assert [cp["checkpoint_id"] for cp in cps["items"]] == sorted(
            cp["checkpoint_id"] for cp in cps["items"]
        )
        page = (await c.get(f"/api/executions/{quick}/checkpoints", params={"offset": 99})).json()
        assert page["items"] == [] and page["total"] == cps["total"]


async def test_list_routes_are_paged_and_filtered(live: Live) -> None:
    """Every list answers {items, total, limit, offset}; the job list searches names and
    descriptions, filters by type, enabled and last status, and carries no definition."""
    async with live.client() as c:
        for n in range(7):
            job = counter(f"page-{n}", count=5)
            job["description"] = "the Nightly load" if n % 3 == 0 else None
            assert (await c.post("/api/jobs", json=job)).status_code == 201
        await c.post("/api/jobs/page-1/disable")
        eid = (await c.post("/api/jobs/page-2/start")).json()["execution_id"]

        async def done() -> bool:
            return (await c.get(f"/api/executions/{eid}")).json()["status"] == "COMPLETED"

        await live.wait(done, what="COMPLETED")

        async def names(**params: Any) -> tuple[list[str], int]:
            r = await c.get("/api/jobs", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            assert "dag_definition" not in str(body)
            return [j["name"] for j in body["items"]], body["total"]

        assert await names(limit=3) == (["page-0", "page-1", "page-2"], 7)
        assert await names(limit=3, offset=6) == (["page-6"], 7)
        assert await names(limit=3, offset=7) == ([], 7)
        assert await names(q="NIGHTLY") == (["page-0", "page-3", "page-6"], 3)
        assert await names(q="-5") == (["page-5"], 1)
        assert await names(q="%") == ([], 0)  # a LIKE wildcard is a plain character
        assert await names(enabled="false") == (["page-1"], 1)
        assert await names(last_status="COMPLETED") == (["page-2"], 1)
        assert (await names(last_status="NEVER"))[1] == 6
        assert await names(type="SQL_TASK") == ([], 0)
        for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"enabled": "yes"}):
            r = await c.get("/api/jobs", params=bad)
            assert r.status_code == 400 and r.json()["error"] == "invalid_query", bad
        job = (await c.get("/api/jobs", params={"q": "page-2"})).json()["items"][0]
        assert job["last_execution"]["execution_id"] == eid
        first = (await c.get("/api/executions", params={"limit": 1})).json()
        assert first["total"] >= 1 and [x["execution_id"] for x in first["items"]] == [eid]
        r = await c.get("/api/executions", params={"job": "page-2", "offset": 1})
        assert r.json() == {"items": [], "total": 1, "limit": 50, "offset": 1}


async def test_connectors_metrics_and_openapi(live: Live) -> None:
    async with live.client() as c:
        kinds = {(x["kind"], x["type"]) for x in (await c.get("/api/connectors")).json()}
        assert {("source", "file"), ("sink", "file"), ("source", "counter")} <= kinds
        assert ("state_backend", "lmdb") in kinds and ("trigger", "rabbitmq") in kinds
        await c.post("/api/jobs", json=counter("m", count=20))
        eid = (await c.post("/api/jobs/m/start")).json()["execution_id"]

        async def done() -> bool:
            return (await c.get(f"/api/executions/{eid}")).json()["status"] == "COMPLETED"

        await live.wait(done)
        text = (await c.get("/metrics")).text
        for line in (
            'job_execution_count_total{job_name="m",status="COMPLETED"} 1.0',
            'job_success_rate{job_name="m"} 1.0',
            'records_processed_total{job_name="m"} 20.0',
            'job_duration_seconds_count{job_name="m"} 1.0',
            "process_resident_memory_bytes",
            "thread_count",
        ):
            assert line in text, line
        assert 'checkpoint_count_total{job_name="m"}' in text
        assert (await c.get("/no/such/route")).json()["error"] == "not_found"
    doc = openapi_document()
    served = {(r.method.lower(), r.path.replace(":int", "")) for r in ROUTES if r.path != "/"}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented


async def test_metrics_can_require_a_token(store: Any, tmp_path: Path) -> None:
    from pipeline_core.api import Tokens
    from tests.api.conftest import ADMIN, start_live

    async for live in start_live(store, tmp_path, Tokens(frozenset({ADMIN}), frozenset(), False)):
        async with live.client(None) as anon, live.client() as admin:
            assert (await anon.get("/metrics")).status_code == 401
            assert (await admin.get("/metrics")).status_code == 200


def test_tokens_from_a_secret_file(tmp_path: Path) -> None:
    from pipeline_core.api import Tokens

    f = tmp_path / "tokens"
    f.write_text("# scope token\nadmin a1\nread r1\n")
    tokens = Tokens.from_env({"PIPELINE_API_TOKENS_FILE": str(f), "PIPELINE_API_READ_TOKENS": "r2"})
    assert tokens.scope_of("a1") == "admin" and tokens.scope_of("r2") == "read"
    assert tokens.scope_of("r1") == "read" and tokens.scope_of("x") is None
    f.write_text("owner x\n")
    with pytest.raises(ValueError, match="tokens:1: expected 'admin TOKEN'"):
        Tokens.from_env({"PIPELINE_API_TOKENS_FILE": str(f)})


def test_a_token_by_file_reference_may_live_outside_the_secret_directories(
    tmp_path: Path,
) -> None:
    """Token settings are the operator's, not a job's: ``${file:…}`` reads any path."""
    from pipeline_core.api import Tokens

    f = tmp_path / "admin-token"
    f.write_text("t0ken-from-file\n")
    tokens = Tokens.from_env({"PIPELINE_API_ADMIN_TOKENS": f"${{file:{f}}},second"})
    assert tokens.scope_of("t0ken-from-file") == "admin"
    assert tokens.scope_of("second") == "admin"


async def test_live_events_stream_pushes_execution_and_job_changes(live: Live) -> None:
    """GET /api/events: a hello, then each change of an execution (its list document) and
    of a job (its name), as Server-Sent Events; reading it needs a token like any read."""
    import orjson

    async with live.client(None) as anon:
        assert (await anon.get("/api/events")).status_code == 401
    async with live.client() as c:
        await c.post("/api/jobs", json=counter("pushed", count=40))
        events: list[tuple[str, Any]] = []
        async with c.stream("GET", "/api/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-store"
            lines = stream.aiter_lines()
            eid = None
            event = None
            async for line in lines:
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    events.append((event or "", orjson.loads(line[6:])))
                    if event == "hello":
                        eid = (await c.post("/api/jobs/pushed/start")).json()["execution_id"]
                        await c.post("/api/jobs/pushed/disable")
                    done = [d for e, d in events if e == "execution" and d["status"] == "COMPLETED"]
                    jobs = [d for e, d in events if e == "job"]
                    if done and jobs:
                        break
        assert events[0][0] == "hello" and events[0][1]["instance"] == "api-test"
        mine = [d for e, d in events if e == "execution"]
        assert {d["execution_id"] for d in mine} == {eid}
        assert mine[-1]["processed_records"] == 40 and mine[-1]["job_name"] == "pushed"
        assert {"name": "pushed"} in [d for e, d in events if e == "job"]
