"""WorkerConfig: defaults, validation, environment variables, config files and precedence."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from prismq.queue import SchedulingStrategy
from prismq.worker.config import ENV_VARIABLES, WorkerConfig
from prismq.worker.config_settings import SETTINGS
from prismq.worker.errors import WorkerConfigError, WorkerError

ALL_FIELDS = {
    "worker_id",
    "queues",
    "scheduling_strategy",
    "concurrency",
    "lease_seconds",
    "poll_interval_seconds",
    "heartbeat_interval_seconds",
    "reclaim_interval_seconds",
    "shutdown_grace_seconds",
    "capabilities",
    "database_url",
}


def _without_id(config: WorkerConfig) -> dict[str, Any]:
    return {name: value for name, value in config.as_dict().items() if name != "worker_id"}


def write_config(directory: Path, suffix: str, document: dict[str, Any]) -> Path:
    """A config file of the given format; TOML supports one optional ``worker`` table."""
    path = directory / f"worker.{suffix}"
    if suffix == "toml":
        path.write_text(_toml(document))
    elif suffix == "json":
        path.write_text(json.dumps(document))
    else:
        path.write_text(yaml.safe_dump(document))
    return path


def _toml(document: dict[str, Any]) -> str:
    def lines(table: dict[str, Any]) -> list[str]:
        return [
            f"{key} = {_toml_inline(value)}"
            for key, value in table.items()
            if not isinstance(value, dict) or key == "capabilities"
        ]

    text = lines(document)
    for key, value in document.items():
        if isinstance(value, dict) and key != "capabilities":
            text += ["", f"[{key}]", *lines(value)]
    return "\n".join(text) + "\n"


def _toml_inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_inline(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers and booleans read the same in TOML


# -- defaults and construction in code -------------------------------------------------


def test_defaults() -> None:
    config = WorkerConfig()

    assert config.worker_id == f"{socket.gethostname()}-{os.getpid()}"
    assert config.queues is None
    assert config.scheduling_strategy is SchedulingStrategy.PRIORITY
    assert config.concurrency == 4
    assert config.lease_seconds == 30.0
    assert config.poll_interval_seconds == 5.0
    assert config.heartbeat_interval_seconds == 10.0
    assert config.reclaim_interval_seconds == 10.0
    assert config.shutdown_grace_seconds == 30.0
    assert config.capabilities == {}
    assert config.database_url is None
    assert {field.name for field in dataclasses.fields(WorkerConfig)} == ALL_FIELDS
    assert set(SETTINGS) == ALL_FIELDS


def test_public_usage_from_code() -> None:
    config = WorkerConfig(worker_id="worker-01", scheduling_strategy=SchedulingStrategy.PRIORITY)

    assert config.worker_id == "worker-01"
    assert config.scheduling_strategy is SchedulingStrategy.PRIORITY


def test_every_field_from_code() -> None:
    config = WorkerConfig(
        worker_id="w",
        queues=["emails", "images"],
        scheduling_strategy="fifo",
        concurrency=16,
        lease_seconds=60,
        poll_interval_seconds=0.25,
        heartbeat_interval_seconds=5,
        reclaim_interval_seconds=120,
        shutdown_grace_seconds=0,
        capabilities={"gpu": True, "region": "eu", "tags": ["a"]},
        database_url="sqlite:///tmp/prismq.db",
    )

    assert config.queues == ("emails", "images")
    assert config.scheduling_strategy is SchedulingStrategy.FIFO
    assert (config.concurrency, config.lease_seconds, config.poll_interval_seconds) == (
        16,
        60.0,
        0.25,
    )
    assert (config.heartbeat_interval, config.reclaim_interval) == (5.0, 120.0)
    assert config.shutdown_grace_seconds == 0.0
    assert config.capabilities == {"gpu": True, "region": "eu", "tags": ["a"]}
    assert config.database_url == "sqlite:///tmp/prismq.db"


def test_heartbeat_defaults_to_a_third_of_the_lease() -> None:
    config = WorkerConfig(lease_seconds=9)

    assert config.heartbeat_interval_seconds == 3.0
    assert config.reclaim_interval_seconds == 3.0


def test_reclaim_defaults_to_the_heartbeat() -> None:
    config = WorkerConfig(heartbeat_interval_seconds=2)

    assert config.reclaim_interval_seconds == 2.0
    assert config.lease_seconds == 30.0


def test_config_is_frozen() -> None:
    config = WorkerConfig()

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.concurrency = 8  # type: ignore[misc]
    assert config.concurrency == 4


def test_a_changed_copy_is_checked_like_the_original() -> None:
    config = WorkerConfig(worker_id="w", lease_seconds=9)

    copy = dataclasses.replace(config, concurrency=8)

    assert (copy.worker_id, copy.concurrency, copy.heartbeat_interval) == ("w", 8, 3.0)
    assert copy == dataclasses.replace(config, concurrency=8)
    with pytest.raises(WorkerConfigError) as raised:
        dataclasses.replace(config, concurrency=0)
    assert (raised.value.field, raised.value.source) == ("concurrency", "code")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"scheduling_strategy": "fifo"}, SchedulingStrategy.FIFO),
        ({"scheduling_strategy": "LIFO"}, SchedulingStrategy.LIFO),
        ({"scheduling_strategy": " Weighted_Random "}, SchedulingStrategy.WEIGHTED_RANDOM),
        ({"scheduling_strategy": SchedulingStrategy.LIFO}, SchedulingStrategy.LIFO),
        ({"strategy": "priority"}, SchedulingStrategy.PRIORITY),
        ({"strategy": "WEIGHTED_RANDOM"}, SchedulingStrategy.WEIGHTED_RANDOM),
        ({"strategy": SchedulingStrategy.FIFO}, SchedulingStrategy.FIFO),
    ],
)
def test_strategy_names_and_alias(given: dict[str, Any], expected: SchedulingStrategy) -> None:
    assert WorkerConfig(**given).scheduling_strategy is expected


def test_strategy_and_its_alias_together_are_refused() -> None:
    with pytest.raises(WorkerConfigError) as raised:
        WorkerConfig(strategy="fifo", scheduling_strategy="lifo")

    assert (raised.value.field, raised.value.source) == ("scheduling_strategy", "code")
    assert "given twice" in raised.value.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("concurrency", 1),
        ("concurrency", 1024),
        ("lease_seconds", 86_400),
        ("lease_seconds", 0.001),
        ("poll_interval_seconds", 0.001),
        ("shutdown_grace_seconds", 0),
        ("worker_id", "w" * 200),
        ("queues", ["q" * 100]),
        ("queues", ("a", "b", "c")),
        ("capabilities", {"nested": {"ok": [1, 2.5, None]}}),
        ("database_url", "postgresql://user:pw@db.example:5432/prismq"),
    ],
)
def test_boundary_values_are_accepted(field: str, value: Any) -> None:
    config = WorkerConfig(**{field: value})

    expected = tuple(value) if field == "queues" else value
    assert getattr(config, field) == expected


INVALID_VALUES: list[tuple[str, str, Any, str]] = [
    ("worker_id-empty", "worker_id", "", "must be non-empty"),
    ("worker_id-spaces", "worker_id", " w ", "no leading/trailing spaces"),
    ("worker_id-long", "worker_id", "w" * 201, "at most 200 characters"),
    ("worker_id-int", "worker_id", 5, "input should be a valid string, got 5"),
    ("queues-empty", "queues", [], "must name at least one queue"),
    ("queues-duplicate", "queues", ["a", "b", "a"], "lists 'a' more than once"),
    ("queues-blank-name", "queues", ["a", ""], "must be non-empty"),
    ("queues-long-name", "queues", ["q" * 101], "at most 100 characters"),
    ("queues-string", "queues", "emails", "input should be a valid tuple"),
    ("queues-int-item", "queues", ["a", 3], "item 1: input should be a valid string"),
    ("strategy-unknown", "scheduling_strategy", "random", "unknown scheduling strategy"),
    ("strategy-int", "scheduling_strategy", 3, "must be one of fifo, lifo, priority"),
    ("concurrency-zero", "concurrency", 0, "greater than or equal to 1"),
    ("concurrency-huge", "concurrency", 1025, "less than or equal to 1024"),
    ("concurrency-bool", "concurrency", True, "must be a number, not a boolean"),
    ("concurrency-fraction", "concurrency", 1.5, "input should be a valid integer"),
    ("concurrency-text", "concurrency", "many", "input should be a valid integer"),
    ("lease-zero", "lease_seconds", 0, "greater than 0"),
    ("lease-negative", "lease_seconds", -1, "greater than 0"),
    ("lease-too-long", "lease_seconds", 86_401, "less than or equal to 86400"),
    ("lease-nan", "lease_seconds", math.nan, "finite number"),
    ("lease-inf", "lease_seconds", math.inf, "finite number"),
    ("poll-zero", "poll_interval_seconds", 0, "greater than 0"),
    ("poll-bool", "poll_interval_seconds", False, "not a boolean"),
    ("heartbeat-zero", "heartbeat_interval_seconds", 0, "greater than 0"),
    ("heartbeat-equal-lease", "heartbeat_interval_seconds", 30, "shorter than lease_seconds"),
    ("heartbeat-over-lease", "heartbeat_interval_seconds", 45, "shorter than lease_seconds"),
    ("reclaim-zero", "reclaim_interval_seconds", 0, "greater than 0"),
    ("reclaim-negative", "reclaim_interval_seconds", -5, "greater than 0"),
    ("grace-negative", "shutdown_grace_seconds", -1, "greater than or equal to 0"),
    ("capabilities-list", "capabilities", ["gpu"], "valid dictionary"),
    ("capabilities-object", "capabilities", {"gpu": object()}, "not JSON-serialisable"),
    ("capabilities-nan", "capabilities", {"load": math.nan}, "not JSON-serialisable"),
    ("database_url-empty", "database_url", " ", "must not be empty"),
    ("database_url-garbage", "database_url", "not a url", "is not a database URL"),
    ("unknown-setting", "max_claim_batch", 10, "unknown setting"),
]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [case[1:] for case in INVALID_VALUES],
    ids=[case[0] for case in INVALID_VALUES],
)
def test_invalid_values_name_the_field_and_code_as_source(
    field: str, value: Any, reason: str
) -> None:
    with pytest.raises(WorkerConfigError) as raised:
        WorkerConfig(**{field: value})

    error = raised.value
    assert (error.field, error.source) == (field, "code")
    assert reason in error.reason
    assert str(error).startswith(f"invalid worker setting {field!r} (from code): ")
    assert isinstance(error, ValueError)
    assert isinstance(error, WorkerError)
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_every_invalid_setting_is_reported() -> None:
    with pytest.raises(WorkerConfigError) as raised:
        WorkerConfig(concurrency=0, lease_seconds=-1, worker_id="")

    fields = [problem.field for problem in raised.value.problems]
    assert sorted(fields) == ["concurrency", "lease_seconds", "worker_id"]
    assert raised.value.problems[0] is raised.value
    for field in fields:
        assert f"invalid worker setting {field!r} (from code)" in str(raised.value)


def test_alias_errors_name_the_field() -> None:
    with pytest.raises(WorkerConfigError) as raised:
        WorkerConfig(strategy="sideways")

    assert raised.value.field == "scheduling_strategy"
    assert "'sideways'" in raised.value.reason


# -- public dump -----------------------------------------------------------------------


def test_public_dump_hides_the_database_password() -> None:
    config = WorkerConfig(
        worker_id="w",
        queues=["a"],
        database_url="postgresql+psycopg://prismq:s3cret@db:5432/prismq",
    )

    public = config.as_public_dict()

    assert public["database_url"] == "postgresql+psycopg://prismq:***@db:5432/prismq"
    assert "s3cret" not in json.dumps(public)
    assert public["scheduling_strategy"] == "priority"
    assert public["queues"] == ["a"]
    assert set(public) == ALL_FIELDS
    assert "s3cret" not in repr(config)
    assert "s3cret" not in str(config)
    assert config.database_url == "postgresql+psycopg://prismq:s3cret@db:5432/prismq"


def test_public_dump_without_database_url() -> None:
    assert WorkerConfig().as_public_dict()["database_url"] is None


# -- environment -----------------------------------------------------------------------


def test_env_variables_cover_every_field() -> None:
    assert set(ENV_VARIABLES.values()) == ALL_FIELDS
    assert all(name.startswith("PRISMQ_WORKER_") for name in ENV_VARIABLES)


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("PRISMQ_WORKER_ID", "worker-07", "worker_id", "worker-07"),
        ("PRISMQ_WORKER_ID", "  worker-07 ", "worker_id", "worker-07"),
        ("PRISMQ_WORKER_QUEUES", "emails", "queues", ("emails",)),
        ("PRISMQ_WORKER_QUEUES", "emails, images ,video,", "queues", ("emails", "images", "video")),
        ("PRISMQ_WORKER_STRATEGY", "LIFO", "scheduling_strategy", SchedulingStrategy.LIFO),
        (
            "PRISMQ_WORKER_STRATEGY",
            "weighted_random",
            "scheduling_strategy",
            SchedulingStrategy.WEIGHTED_RANDOM,
        ),
        ("PRISMQ_WORKER_CONCURRENCY", "12", "concurrency", 12),
        ("PRISMQ_WORKER_LEASE_SECONDS", "90.5", "lease_seconds", 90.5),
        ("PRISMQ_WORKER_POLL_INTERVAL", "0.2", "poll_interval_seconds", 0.2),
        ("PRISMQ_WORKER_HEARTBEAT_INTERVAL", "4", "heartbeat_interval_seconds", 4.0),
        ("PRISMQ_WORKER_RECLAIM_INTERVAL", "60", "reclaim_interval_seconds", 60.0),
        ("PRISMQ_WORKER_SHUTDOWN_GRACE", "0", "shutdown_grace_seconds", 0.0),
        (
            "PRISMQ_WORKER_CAPABILITIES",
            '{"gpu": true, "memory_gb": 16}',
            "capabilities",
            {"gpu": True, "memory_gb": 16},
        ),
        (
            "PRISMQ_WORKER_DATABASE_URL",
            "postgresql://postgres@127.0.0.1/prismq",
            "database_url",
            "postgresql://postgres@127.0.0.1/prismq",
        ),
    ],
)
def test_each_env_variable(variable: str, raw: str, field: str, expected: Any) -> None:
    assert ENV_VARIABLES[variable] == field

    config = WorkerConfig.from_env({variable: raw})

    assert getattr(config, field) == expected


def test_empty_env_variables_count_as_unset() -> None:
    config = WorkerConfig.from_env(dict.fromkeys(ENV_VARIABLES, "  "))

    assert _without_id(config) == _without_id(WorkerConfig())


def test_other_env_variables_are_ignored() -> None:
    config = WorkerConfig.from_env({"PRISMQ_DATABASE_URL": "sqlite://", "HOME": "/root"})

    assert config.database_url is None


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ENV_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PRISMQ_WORKER_CONCURRENCY", "3")
    monkeypatch.setenv("PRISMQ_WORKER_STRATEGY", "fifo")

    config = WorkerConfig.from_env()

    assert (config.concurrency, config.scheduling_strategy) == (3, SchedulingStrategy.FIFO)


@pytest.mark.parametrize(
    ("variable", "raw", "reason"),
    [
        ("PRISMQ_WORKER_ID", "w" * 201, "at most 200 characters"),
        ("PRISMQ_WORKER_QUEUES", "a,b,a", "lists 'a' more than once"),
        ("PRISMQ_WORKER_QUEUES", ", ,", "must name at least one queue"),
        ("PRISMQ_WORKER_STRATEGY", "newest", "unknown scheduling strategy 'newest'"),
        ("PRISMQ_WORKER_CONCURRENCY", "eight", "valid integer, unable to parse string"),
        ("PRISMQ_WORKER_CONCURRENCY", "0", "greater than or equal to 1"),
        ("PRISMQ_WORKER_LEASE_SECONDS", "forever", "valid number"),
        ("PRISMQ_WORKER_LEASE_SECONDS", "inf", "finite number"),
        ("PRISMQ_WORKER_POLL_INTERVAL", "-1", "greater than 0"),
        ("PRISMQ_WORKER_HEARTBEAT_INTERVAL", "31", "shorter than lease_seconds (30)"),
        ("PRISMQ_WORKER_RECLAIM_INTERVAL", "0", "greater than 0"),
        ("PRISMQ_WORKER_SHUTDOWN_GRACE", "-0.5", "greater than or equal to 0"),
        ("PRISMQ_WORKER_CAPABILITIES", "{gpu: true}", "is not valid JSON"),
        ("PRISMQ_WORKER_CAPABILITIES", '["gpu"]', "valid dictionary"),
        ("PRISMQ_WORKER_DATABASE_URL", "::nonsense::", "is not a database URL"),
    ],
)
def test_invalid_env_values_name_the_variable(variable: str, raw: str, reason: str) -> None:
    with pytest.raises(WorkerConfigError) as raised:
        WorkerConfig.from_env({variable: raw})

    field = ENV_VARIABLES[variable]
    assert (raised.value.field, raised.value.source) == (field, variable)
    assert reason in raised.value.reason
    assert f"(from {variable})" in str(raised.value)


# -- config files ----------------------------------------------------------------------

FILE_SETTINGS: dict[str, Any] = {
    "worker_id": "file-worker",
    "queues": ["emails", "images"],
    "strategy": "LIFO",
    "concurrency": 6,
    "lease_seconds": 12,
    "poll_interval_seconds": 0.5,
    "reclaim_interval_seconds": 20,
    "shutdown_grace_seconds": 5,
    "capabilities": {"gpu": True, "region": "eu"},
    "database_url": "sqlite:///var/prismq.db",
}


def _assert_file_settings(config: WorkerConfig) -> None:
    assert config.worker_id == "file-worker"
    assert config.queues == ("emails", "images")
    assert config.scheduling_strategy is SchedulingStrategy.LIFO
    assert (config.concurrency, config.lease_seconds, config.poll_interval_seconds) == (6, 12, 0.5)
    assert (config.heartbeat_interval, config.reclaim_interval) == (4.0, 20.0)
    assert config.shutdown_grace_seconds == 5
    assert config.capabilities == {"gpu": True, "region": "eu"}
    assert config.database_url == "sqlite:///var/prismq.db"


@pytest.mark.parametrize("suffix", ["toml", "json", "yaml", "yml"])
def test_file_with_settings_at_top_level(tmp_path: Path, suffix: str) -> None:
    _assert_file_settings(WorkerConfig.from_file(write_config(tmp_path, suffix, FILE_SETTINGS)))


@pytest.mark.parametrize("suffix", ["toml", "json", "yaml", "yml"])
def test_file_with_a_worker_table_and_handlers(tmp_path: Path, suffix: str) -> None:
    handlers = [{"task_type": "t", "module": "m", "function": "f"}]
    if suffix == "toml":
        path = tmp_path / "worker.toml"
        path.write_text(
            _toml({"worker": FILE_SETTINGS})
            + '\n[[handlers]]\ntask_type = "t"\nmodule = "m"\nfunction = "f"\n'
        )
    else:
        path = write_config(tmp_path, suffix, {"worker": FILE_SETTINGS, "handlers": handlers})

    _assert_file_settings(WorkerConfig.from_file(path))


def test_file_accepts_the_full_strategy_name(tmp_path: Path) -> None:
    path = write_config(tmp_path, "json", {"scheduling_strategy": "weighted_random"})

    assert WorkerConfig.from_file(path).scheduling_strategy is SchedulingStrategy.WEIGHTED_RANDOM


def test_empty_yaml_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "worker.yaml"
    path.write_text("")

    assert WorkerConfig.from_file(path).concurrency == 4


@pytest.mark.parametrize("suffix", ["toml", "json", "yaml"])
@pytest.mark.parametrize(
    ("settings", "field", "reason"),
    [
        ({"concurrency": 0}, "concurrency", "greater than or equal to 1"),
        ({"strategy": "sideways"}, "scheduling_strategy", "unknown scheduling strategy"),
        ({"queues": "emails"}, "queues", "valid tuple"),
        ({"lease_seconds": 6, "heartbeat_interval_seconds": 6}, "heartbeat_interval_seconds", ""),
        ({"concurency": 4}, "concurency", "unknown setting"),
        ({"strategy": "fifo", "scheduling_strategy": "lifo"}, "scheduling_strategy", "twice"),
    ],
    ids=["bad-value", "bad-strategy", "bad-type", "cross-field", "typo", "alias-twice"],
)
def test_invalid_file_values_name_the_field_and_the_file(
    tmp_path: Path, suffix: str, settings: dict[str, Any], field: str, reason: str
) -> None:
    path = write_config(tmp_path, suffix, {"worker": settings})

    with pytest.raises(WorkerConfigError) as raised:
        WorkerConfig.from_file(path)

    assert (raised.value.field, raised.value.source) == (field, str(path))
    assert reason in raised.value.reason
    assert f"(from {path})" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "text", "field", "reason"),
    [
        ("worker.ini", "[worker]\n", "config_file", "unsupported file type '.ini'"),
        ("worker.toml", "[worker\n", "config_file", "invalid TOML: "),
        ("worker.json", "{", "config_file", "invalid JSON: "),
        ("worker.yaml", "worker: [\n", "config_file", "invalid YAML: "),
        ("worker.json", "[1, 2]", "config_file", "expected a table/object of settings, not list"),
        ("worker.yaml", "worker: 5\n", "worker", "must be a table/object, not int"),
        ("worker.json", '{"worker": {}, "concurrency": 2}', "concurrency", "settings belong under"),
    ],
)
def test_unusable_config_files(
    tmp_path: Path, name: str, text: str, field: str, reason: str
) -> None:
    path = tmp_path / name
    path.write_text(text)

    with pytest.raises(WorkerConfigError) as raised:
        WorkerConfig.from_file(path)

    assert (raised.value.field, raised.value.source) == (field, str(path))
    assert raised.value.reason.startswith(reason)


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(WorkerConfigError) as raised:
        WorkerConfig.from_file(path)

    assert (raised.value.field, raised.value.source) == ("config_file", str(path))
    assert raised.value.reason == "cannot read file: No such file or directory"


# -- precedence ------------------------------------------------------------------------


@pytest.fixture
def layered_file(tmp_path: Path) -> Path:
    return write_config(
        tmp_path,
        "toml",
        {"worker": {"worker_id": "from-file", "concurrency": 2, "lease_seconds": 60}},
    )


def test_load_with_nothing_gives_defaults() -> None:
    config = WorkerConfig.load(environ={})

    assert _without_id(config) == _without_id(WorkerConfig())


def test_file_overrides_defaults(layered_file: Path) -> None:
    config = WorkerConfig.load(layered_file, environ={})

    assert (config.worker_id, config.concurrency, config.lease_seconds) == ("from-file", 2, 60)
    assert config.poll_interval_seconds == 5.0


def test_env_overrides_file(layered_file: Path) -> None:
    config = WorkerConfig.load(
        layered_file,
        environ={"PRISMQ_WORKER_CONCURRENCY": "5", "PRISMQ_WORKER_STRATEGY": "fifo"},
    )

    assert (config.worker_id, config.concurrency, config.lease_seconds) == ("from-file", 5, 60)
    assert config.scheduling_strategy is SchedulingStrategy.FIFO


def test_overrides_beat_env_and_none_overrides_are_ignored(layered_file: Path) -> None:
    config = WorkerConfig.load(
        layered_file,
        environ={"PRISMQ_WORKER_CONCURRENCY": "5", "PRISMQ_WORKER_ID": "from-env"},
        concurrency=9,
        strategy="lifo",
        worker_id=None,
        queues=None,
    )

    assert (config.worker_id, config.concurrency, config.lease_seconds) == ("from-env", 9, 60)
    assert config.scheduling_strategy is SchedulingStrategy.LIFO
    assert config.queues is None


def test_load_reads_the_process_environment(
    layered_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ENV_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PRISMQ_WORKER_LEASE_SECONDS", "90")

    assert WorkerConfig.load(layered_file).lease_seconds == 90


def test_a_valid_layer_hides_an_invalid_value_below_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, "json", {"concurrency": 0})

    config = WorkerConfig.load(path, environ={"PRISMQ_WORKER_CONCURRENCY": "3"})

    assert config.concurrency == 3


def test_load_errors_name_the_layer_the_value_came_from(layered_file: Path) -> None:
    with pytest.raises(WorkerConfigError) as from_env:
        WorkerConfig.load(layered_file, environ={"PRISMQ_WORKER_POLL_INTERVAL": "0"})
    with pytest.raises(WorkerConfigError) as from_code:
        WorkerConfig.load(layered_file, environ={}, poll_interval_seconds=-1)
    with pytest.raises(WorkerConfigError) as unknown_override:
        WorkerConfig.load(layered_file, environ={}, handlers="m:r")

    assert (from_env.value.field, from_env.value.source) == (
        "poll_interval_seconds",
        "PRISMQ_WORKER_POLL_INTERVAL",
    )
    assert (from_code.value.field, from_code.value.source) == ("poll_interval_seconds", "code")
    assert (unknown_override.value.field, unknown_override.value.source) == ("handlers", "code")


def test_cross_field_error_blames_the_heartbeat_where_it_was_set(layered_file: Path) -> None:
    # The file's heartbeat is fine for its own 60 s lease, but not for the env's 10 s one.
    path = write_config(
        layered_file.parent,
        "yaml",
        {"worker": {"lease_seconds": 60, "heartbeat_interval_seconds": 15}},
    )

    with pytest.raises(WorkerConfigError) as raised:
        WorkerConfig.load(path, environ={"PRISMQ_WORKER_LEASE_SECONDS": "10"})

    assert (raised.value.field, raised.value.source) == ("heartbeat_interval_seconds", str(path))
    assert "shorter than lease_seconds (10)" in raised.value.reason


def test_strategy_alias_from_file_is_overridden_by_the_full_name_in_code(tmp_path: Path) -> None:
    path = write_config(tmp_path, "json", {"strategy": "fifo"})

    config = WorkerConfig.load(path, environ={}, scheduling_strategy="lifo")

    assert config.scheduling_strategy is SchedulingStrategy.LIFO
