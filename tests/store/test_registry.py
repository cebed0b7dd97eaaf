"""JobRegistry on both databases: versions, enable/disable, config rows, import/export."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_core import ConfigError, JobAlreadyExists, JobNotFound, load_job_file
from pipeline_core.store import MetadataStore

JOB = {
    "name": "orders",
    "type": "BATCH_ROLLER",
    "description": "v1",
    "source": {"type": "file", "config": {"path": "in.jsonl"}},
    "transform": [{"type": "filter", "function": "fns:keep"}],
    "sink": {"type": "file", "config": {"path": "out", "max_records_per_file": 100}},
    "config": {"checkpoint_interval": 60000, "on_error": "skip"},
}


def variant(**changes: Any) -> dict[str, Any]:
    return {**JOB, **changes}


def test_register_get_and_duplicate(store: MetadataStore) -> None:
    reg = store.registry
    d = reg.register(JOB, created_by="alice")
    assert (d.job_name, d.version, d.job_type, d.enabled, d.created_by) == (
        "orders",
        1,
        "BATCH_ROLLER",
        True,
        "alice",
    )
    assert d.dag_definition["config"] == {"checkpoint_interval": "60s", "on_error": "skip"}
    assert reg.get("orders").dag_definition == d.dag_definition
    with pytest.raises(JobAlreadyExists, match="a job named 'orders' is already registered"):
        reg.register(JOB)
    with pytest.raises(JobNotFound, match="no job named 'nope'"):
        reg.get("nope")


def test_update_keeps_history(store: MetadataStore) -> None:
    reg = store.registry
    reg.register(JOB)
    reg.update("orders", variant(description="v2"), updated_by="bob")
    d3 = reg.update("orders", variant(description="v3"))
    assert d3.version == 3 and d3.latest_version == 3
    assert reg.get("orders").description == "v3"
    v1 = reg.get("orders", 1)
    assert (v1.version, v1.description, v1.latest_version) == (1, "v1", 3)
    assert reg.get("orders", 2).description == "v2"
    assert [v for v, _t, _who in reg.versions("orders")] == [1, 2, 3]
    with pytest.raises(JobNotFound, match="job 'orders' has no version 7 \\(versions 1 to 3\\)"):
        reg.get("orders", 7)
    with pytest.raises(JobNotFound):
        reg.update("ghost", variant(name="ghost"))


def test_update_rejects_a_definition_with_another_name(store: MetadataStore) -> None:
    store.registry.register(JOB)
    with pytest.raises(ConfigError, match="the definition is named 'other'"):
        store.registry.update("orders", variant(name="other"))


def test_invalid_definition_is_refused_with_the_field(store: MetadataStore) -> None:
    with pytest.raises(ConfigError, match="field 'backpressure': expected one of"):
        store.registry.register(variant(config={"backpressure": "FAST"}))
    assert store.registry.list_all() == []


def test_enable_disable_and_list(store: MetadataStore) -> None:
    reg = store.registry
    reg.register(JOB)
    reg.register(variant(name="another"))
    reg.disable("orders")
    assert [(d.job_name, d.enabled) for d in reg.list_all()] == [
        ("another", True),
        ("orders", False),
    ]
    reg.enable("orders")
    assert reg.get("orders").enabled


def test_config_rows_override_typed(store: MetadataStore) -> None:
    reg = store.registry
    reg.register(JOB)
    reg.set_config("orders", "source.batch.size", 500)
    reg.set_config("orders", "backpressure.strategy", "DROP")
    reg.set_config("orders", "checkpoint.interval", 5000, config_type="INT")
    reg.set_config("orders", "dead_letter", {"type": "file", "config": {"path": "dlq"}})
    d = reg.get("orders")
    assert d.config == {
        "backpressure.strategy": "DROP",
        "checkpoint.interval": 5000,
        "dead_letter": {"type": "file", "config": {"path": "dlq"}},
        "source.batch.size": 500,
    }
    job = d.to_job()
    assert job.config.source_batch_size == 500
    assert job.config.backpressure.value == "DROP"
    assert (
        job.config.checkpoint_interval is not None
        and job.config.checkpoint_interval.total_seconds() == 5
    )
    assert job.config.dead_letter is not None and job.config.dead_letter.type == "file"
    assert job.config.on_error.value == "skip"  # from the definition, not overridden
    reg.unset_config("orders", "source.batch.size")
    # back to the default: what the source prefers
    assert reg.get("orders").to_job().config.source_batch_size is None


def test_config_rows_are_validated(store: MetadataStore) -> None:
    reg = store.registry
    reg.register(JOB)
    with pytest.raises(ConfigError, match="unknown config key 'source.batch.sise'"):
        reg.set_config("orders", "source.batch.sise", 5)
    with pytest.raises(
        ConfigError, match="field 'source_batch_size': expected a number > 0, got -1"
    ):
        reg.set_config("orders", "source.batch.size", -1)
    with pytest.raises(ConfigError, match="expected an integer for an INT value, got 'many'"):
        reg.set_config("orders", "parallelism", "many", config_type="INT")
    assert reg.get("orders").config == {}


def write_job(directory: Path, name: str, description: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**JOB, "name": name, "description": description}))
    return path


def test_import_directory_is_idempotent(store: MetadataStore, tmp_path: Path) -> None:
    reg = store.registry
    write_job(tmp_path, "a", "first")
    write_job(tmp_path, "b", "first")
    (tmp_path / "broken.yaml").write_text("name: broken\nsource: {type: file}\n")
    (tmp_path / "notes.txt").write_text("not a job")
    report = reg.import_directory(tmp_path)
    assert (report.added, report.updated, report.unchanged) == (["a", "b"], [], [])
    assert list(report.failed) == [str(tmp_path / "broken.yaml")]
    assert (
        report.failed[str(tmp_path / "broken.yaml")] == "job 'broken', sink: missing required field"
    )

    again = reg.import_directory(tmp_path)
    assert (again.added, again.updated, again.unchanged) == ([], [], ["a", "b"])
    assert reg.get("a").version == 1

    write_job(tmp_path, "b", "second")
    third = reg.import_directory(tmp_path)
    assert (third.added, third.updated, third.unchanged) == ([], ["b"], ["a"])
    assert reg.get("b").version == 2 and reg.get("b", 1).description == "first"


def test_export_round_trips(store: MetadataStore, tmp_path: Path) -> None:
    reg = store.registry
    reg.register(variant(sink={"type": "file", "config": {"path": "${env:OUT_DIR}"}}))
    text = reg.export("orders")
    assert text.startswith("name: orders\ntype: BATCH_ROLLER\n")
    assert "${env:OUT_DIR}" in text  # secrets stay references
    (tmp_path / "orders.yaml").write_text(text)
    # the definition registered without a file gains one: a version with its folder
    assert reg.import_directory(tmp_path).updated == ["orders"]
    assert reg.get("orders").base_dir == str(tmp_path.resolve())
    (tmp_path / "orders.yaml").write_text(reg.export("orders"))
    report = reg.import_directory(tmp_path)
    assert report.unchanged == ["orders"]  # exporting and re-importing changes nothing
    assert load_job_file(tmp_path / "orders.yaml").sink.config == {"path": "${env:OUT_DIR}"}


def test_python_transform_cannot_be_stored(store: MetadataStore) -> None:
    from pipeline_core import PipelineJob

    job = (
        PipelineJob.builder()
        .name("py")
        .source("file", path="x")
        .sink("file", path="y")
        .transform(lambda s: s)
        .build()
    )
    with pytest.raises(ConfigError, match="a Python transform function cannot be stored"):
        store.registry.register(job)


def _update_many(url: str, worker: int, count: int) -> None:
    store = MetadataStore.open(url)
    for i in range(count):
        store.registry.update("orders", variant(description=f"worker {worker} update {i}"))
    store.close()


def test_concurrent_updates_from_two_processes_lose_nothing(
    store: MetadataStore, db_url: str
) -> None:
    store.registry.register(JOB)
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_update_many, args=(db_url, w, 15)) for w in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    versions = [v for v, _t, _who in store.registry.versions("orders")]
    assert versions == list(range(1, 32))  # 1 + 2 x 15, no gaps, no duplicates
    descriptions = {store.registry.get("orders", v).description for v in versions[1:]}
    assert descriptions == {f"worker {w} update {i}" for w in range(2) for i in range(15)}


def _register(url: str, barrier: Any, results: Any) -> None:
    store = MetadataStore.open(url)
    barrier.wait()
    try:
        store.registry.register(JOB)
        results.put("registered")
    except JobAlreadyExists:
        results.put("already exists")
    store.close()


def test_concurrent_registration_of_one_name_yields_one_job(
    store: MetadataStore, db_url: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_register, args=(db_url, barrier, results)) for _ in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert sorted([results.get(timeout=5), results.get(timeout=5)]) == [
        "already exists",
        "registered",
    ]
    assert [d.version for d in store.registry.list_all()] == [1]
