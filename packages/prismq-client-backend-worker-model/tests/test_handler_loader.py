"""Loading handlers from TOML, JSON and YAML handler files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sample_handlers
import yaml

from prismq.worker.errors import HandlerLoadError
from prismq.worker.handler_loader import HandlerSpec, TaskHandlerConfigLoader, read_document
from prismq.worker.registry import TaskHandlerRegistry

FORMATS = ("toml", "json", "yaml", "yml")

ECHO = {"task_type": "sample.echo", "module": "sample_handlers", "function": "echo"}
ADD = {
    "task_type": "sample.add",
    "module": "sample_handlers",
    "function": "add",
    "description": "adds a and b",
    "version": "2.0.0",
}
FETCH = {"task_type": "sample.fetch", "module": "sample_handlers", "function": "fetch"}


@pytest.fixture
def loader() -> TaskHandlerConfigLoader:
    return TaskHandlerConfigLoader()


def _toml_value(value: Any) -> str:
    # JSON strings, numbers and booleans are valid TOML literals too.
    return json.dumps(value)


def write_handlers(directory: Path, suffix: str, entries: list[Any], *, bare: bool = False) -> Path:
    """A handler file of the given format holding ``entries``."""
    path = directory / f"handlers.{suffix}"
    if suffix == "toml":
        assert not bare, "TOML has no bare lists"
        tables = []
        for entry in entries:
            lines = ["[[handlers]]"] + [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
            tables.append("\n".join(lines))
        path.write_text("\n\n".join(tables) + "\n")
    elif suffix == "json":
        path.write_text(json.dumps(entries if bare else {"handlers": entries}))
    else:
        path.write_text(yaml.safe_dump(entries if bare else {"handlers": entries}))
    return path


# -- good files ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", FORMATS)
def test_load_reads_every_entry_in_order(
    loader: TaskHandlerConfigLoader, tmp_path: Path, suffix: str
) -> None:
    path = write_handlers(tmp_path, suffix, [ECHO, ADD, FETCH])

    assert loader.load(path) == [
        HandlerSpec(task_type="sample.echo", module="sample_handlers", function="echo"),
        HandlerSpec(
            task_type="sample.add",
            module="sample_handlers",
            function="add",
            description="adds a and b",
            version="2.0.0",
        ),
        HandlerSpec(task_type="sample.fetch", module="sample_handlers", function="fetch"),
    ]


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_json_and_yaml_may_hold_a_bare_list(
    loader: TaskHandlerConfigLoader, tmp_path: Path, suffix: str
) -> None:
    path = write_handlers(tmp_path, suffix, [ECHO, ADD], bare=True)

    assert [spec.task_type for spec in loader.load(path)] == ["sample.echo", "sample.add"]


def test_other_top_level_keys_are_left_to_the_worker_config(
    loader: TaskHandlerConfigLoader, tmp_path: Path
) -> None:
    path = tmp_path / "worker.toml"
    path.write_text(
        '[worker]\nconcurrency = 2\n\n[[handlers]]\ntask_type = "sample.echo"\n'
        'module = "sample_handlers"\nfunction = "echo"\n'
    )

    assert [spec.task_type for spec in loader.load(path)] == ["sample.echo"]


def test_empty_handler_list_loads_nothing(loader: TaskHandlerConfigLoader, tmp_path: Path) -> None:
    path = tmp_path / "handlers.json"
    path.write_text('{"handlers": []}')

    assert loader.load(path) == []
    assert loader.register_all(path, TaskHandlerRegistry()) == []


@pytest.mark.parametrize("suffix", FORMATS)
def test_register_all_registers_every_handler(
    loader: TaskHandlerConfigLoader, tmp_path: Path, suffix: str
) -> None:
    path = write_handlers(tmp_path, suffix, [ECHO, ADD, FETCH])
    registry = TaskHandlerRegistry()

    assert loader.register_all(path, registry) == ["sample.echo", "sample.add", "sample.fetch"]

    assert registry.get_handler("sample.echo") is sample_handlers.echo
    add = registry.get_handler_info("sample.add")
    assert (add.description, add.version, add.takes_context, add.is_async) == (
        "adds a and b",
        "2.0.0",
        True,
        False,
    )
    assert registry.get_handler_info("sample.fetch").is_async is True


def test_resolve_imports_the_function(loader: TaskHandlerConfigLoader) -> None:
    spec = HandlerSpec(task_type="t", module="sample_handlers", function="echo")

    assert loader.resolve(spec) is sample_handlers.echo
    assert spec.import_path == "sample_handlers:echo"


def test_resolve_supports_a_dotted_function(loader: TaskHandlerConfigLoader) -> None:
    spec = HandlerSpec(task_type="t", module="sample_handlers", function="Tools.shout")

    assert loader.resolve(spec)({"text": "hi"}) == "HI"


def test_resolve_without_a_file_names_the_import_path(loader: TaskHandlerConfigLoader) -> None:
    spec = HandlerSpec(task_type="t", module="sample_handlers", function="missing")

    with pytest.raises(HandlerLoadError) as raised:
        loader.resolve(spec)

    assert raised.value.source == "sample_handlers:missing"
    assert raised.value.entry == "t"


def test_override_is_needed_for_types_already_registered(
    loader: TaskHandlerConfigLoader, tmp_path: Path
) -> None:
    path = write_handlers(tmp_path, "json", [ECHO, ADD])
    registry = TaskHandlerRegistry()
    registry.register_handler("sample.add", sample_handlers.echo)

    with pytest.raises(HandlerLoadError) as raised:
        loader.register_all(path, registry)

    assert (raised.value.source, raised.value.entry) == (str(path), "sample.add")
    assert "pass allow_override=True" in raised.value.reason
    # All or nothing: the entry before the conflicting one was not registered either.
    assert registry.get_registered_types() == ["sample.add"]
    assert registry.get_handler("sample.add") is sample_handlers.echo

    loader.register_all(path, registry, allow_override=True)
    assert registry.get_handler("sample.add") is sample_handlers.add
    assert registry.get_registered_types() == ["sample.add", "sample.echo"]


# -- bad files: the whole file ---------------------------------------------------------


def test_unsupported_suffix(loader: TaskHandlerConfigLoader, tmp_path: Path) -> None:
    path = tmp_path / "handlers.ini"
    path.write_text("[handlers]\n")

    with pytest.raises(HandlerLoadError) as raised:
        loader.load(path)

    assert raised.value.source == str(path)
    assert raised.value.entry is None
    assert raised.value.reason == (
        "unsupported file type '.ini'; expected one of .toml, .json, .yaml, .yml"
    )
    assert str(raised.value) == f"{path}: {raised.value.reason}"


def test_file_without_suffix(loader: TaskHandlerConfigLoader, tmp_path: Path) -> None:
    with pytest.raises(HandlerLoadError, match=r"unsupported file type '\(none\)'"):
        loader.load(tmp_path / "handlers")


def test_missing_file(loader: TaskHandlerConfigLoader, tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(HandlerLoadError) as raised:
        loader.load(path)

    assert raised.value.source == str(path)
    assert raised.value.reason == "cannot read file: No such file or directory"


def test_directory_instead_of_file(loader: TaskHandlerConfigLoader, tmp_path: Path) -> None:
    path = tmp_path / "handlers.json"
    path.mkdir()

    with pytest.raises(HandlerLoadError, match=r"cannot read file: "):
        loader.load(path)


def test_file_that_is_not_utf8(loader: TaskHandlerConfigLoader, tmp_path: Path) -> None:
    path = tmp_path / "handlers.yaml"
    path.write_bytes(b"handlers: \xff\xfe\n")

    with pytest.raises(HandlerLoadError, match=r"cannot read file: .*utf-8"):
        loader.load(path)


@pytest.mark.parametrize(
    ("suffix", "text", "reason"),
    [
        ("toml", "[[handlers]\n", "invalid TOML: "),
        ("json", '{"handlers": [', "invalid JSON: Expecting value: line 1 column 15"),
        ("yaml", "handlers: [unclosed\n", "invalid YAML: "),
        ("yml", "handlers:\n\t- tab\n", "invalid YAML: "),
    ],
)
def test_invalid_syntax_reports_the_parser_message(
    loader: TaskHandlerConfigLoader, tmp_path: Path, suffix: str, text: str, reason: str
) -> None:
    path = tmp_path / f"handlers.{suffix}"
    path.write_text(text)

    with pytest.raises(HandlerLoadError) as raised:
        loader.load(path)

    assert raised.value.source == str(path)
    assert raised.value.reason.startswith(reason)
    assert len(raised.value.reason) > len("invalid YAML: ")
    assert "\n" not in raised.value.reason


@pytest.mark.parametrize(
    ("suffix", "text", "reason"),
    [
        ("toml", 'name = "x"\n', "no 'handlers' list found at the top level"),
        ("json", "{}", "no 'handlers' list found at the top level"),
        ("json", "42", "expected a 'handlers' list (or a bare list of handlers), not int"),
        ("yaml", "", "expected a 'handlers' list (or a bare list of handlers), not NoneType"),
        ("json", '{"handlers": {"a": 1}}', "'handlers' must be a list of tables, not dict"),
        ("toml", 'handlers = "echo"\n', "'handlers' must be a list of tables, not str"),
    ],
    ids=["toml-no-list", "json-no-list", "json-number", "yaml-empty", "json-dict", "toml-string"],
)
def test_wrong_document_shape(
    loader: TaskHandlerConfigLoader, tmp_path: Path, suffix: str, text: str, reason: str
) -> None:
    path = tmp_path / f"handlers.{suffix}"
    path.write_text(text)

    with pytest.raises(HandlerLoadError) as raised:
        loader.load(path)

    assert (raised.value.source, raised.value.entry, raised.value.reason) == (
        str(path),
        None,
        reason,
    )


# -- bad files: one entry --------------------------------------------------------------


BAD_ENTRIES: list[tuple[str, dict[str, Any], str | int, str]] = [
    (
        "unknown-key",
        {**ECHO, "priority": 5, "retries": 2},
        "sample.echo",
        "unknown key(s) 'priority', 'retries'; allowed keys are task_type, module, function,"
        " description, version",
    ),
    (
        "missing-task-type",
        {"module": "sample_handlers", "function": "echo"},
        1,
        "missing required key 'task_type'",
    ),
    (
        "missing-module",
        {"task_type": "t", "function": "echo"},
        "t",
        "missing required key 'module'",
    ),
    (
        "missing-function",
        {"task_type": "t", "module": "sample_handlers"},
        "t",
        "missing required key 'function'",
    ),
    (
        "module-not-a-string",
        {**ECHO, "module": 5},
        "sample.echo",
        "'module' must be a string, not int",
    ),
    (
        "task-type-not-a-string",
        {**ECHO, "task_type": True},
        1,
        "'task_type' must be a string, not bool",
    ),
    (
        "version-not-a-string",
        {**ECHO, "version": 2},
        "sample.echo",
        "'version' must be a string, not int",
    ),
    ("empty-function", {**ECHO, "function": " "}, "sample.echo", "'function' must not be empty"),
    ("empty-task-type", {**ECHO, "task_type": ""}, 1, "'task_type' must not be empty"),
    (
        "task-type-too-long",
        {**ECHO, "task_type": "x" * 201},
        "x" * 201,
        "task_type: must be at most 200 characters",
    ),
]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize(
    ("entry", "entry_name", "reason"),
    [case[1:] for case in BAD_ENTRIES],
    ids=[case[0] for case in BAD_ENTRIES],
)
def test_bad_entry_names_the_file_and_the_entry(
    loader: TaskHandlerConfigLoader,
    tmp_path: Path,
    suffix: str,
    entry: dict[str, Any],
    entry_name: str | int,
    reason: str,
) -> None:
    path = write_handlers(tmp_path, suffix, [ADD, entry])

    with pytest.raises(HandlerLoadError) as raised:
        loader.load(path)

    assert (raised.value.source, raised.value.entry, raised.value.reason) == (
        str(path),
        entry_name,
        reason,
    )
    assert str(raised.value) == f"{path}: entry {entry_name!r}: {reason}"


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_entry_that_is_not_a_table_is_named_by_index(
    loader: TaskHandlerConfigLoader, tmp_path: Path, suffix: str
) -> None:
    path = write_handlers(tmp_path, suffix, [ECHO, ADD, "sample_handlers:fetch"])

    with pytest.raises(HandlerLoadError) as raised:
        loader.load(path)

    assert raised.value.entry == 2
    assert raised.value.reason == (
        "must be a table/object with task_type, module and function, not str"
    )


@pytest.mark.parametrize("suffix", FORMATS)
def test_duplicate_task_type_in_one_file(
    loader: TaskHandlerConfigLoader, tmp_path: Path, suffix: str
) -> None:
    path = write_handlers(tmp_path, suffix, [ECHO, ADD, {**FETCH, "task_type": "sample.echo"}])

    with pytest.raises(HandlerLoadError) as raised:
        loader.load(path)

    assert (raised.value.entry, raised.value.reason) == (
        "sample.echo",
        "task type is listed more than once",
    )


UNRESOLVABLE: list[tuple[str, dict[str, Any], str]] = [
    (
        "missing-module",
        {"task_type": "resize_image", "module": "app_xyz.imaging", "function": "resize"},
        "cannot import module 'app_xyz.imaging': No module named 'app_xyz'",
    ),
    (
        "missing-function",
        {"task_type": "resize_image", "module": "sample_handlers", "function": "resize"},
        "module 'sample_handlers' has no attribute 'resize'",
    ),
    (
        "not-callable",
        {"task_type": "resize_image", "module": "sample_handlers", "function": "NOT_CALLABLE"},
        "sample_handlers:NOT_CALLABLE is a int, not a callable",
    ),
    (
        "bad-signature",
        {"task_type": "resize_image", "module": "sample_handlers", "function": "needs_three"},
        "handler for task type 'resize_image' must accept (payload) or (payload, ctx) as"
        " positional arguments; its signature is (payload",
    ),
    (
        "empty-version",
        {**ECHO, "task_type": "resize_image", "version": ""},
        "version of task type 'resize_image' must be a non-empty string",
    ),
]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize(
    ("entry", "reason"),
    [case[1:] for case in UNRESOLVABLE],
    ids=[case[0] for case in UNRESOLVABLE],
)
def test_unresolvable_handler_registers_nothing(
    loader: TaskHandlerConfigLoader,
    tmp_path: Path,
    suffix: str,
    entry: dict[str, Any],
    reason: str,
) -> None:
    path = write_handlers(tmp_path, suffix, [ECHO, entry, ADD])
    registry = TaskHandlerRegistry()

    with pytest.raises(HandlerLoadError) as raised:
        loader.register_all(path, registry)

    assert (raised.value.source, raised.value.entry) == (str(path), "resize_image")
    # Starts with: a signature's rendering varies between Python versions.
    assert raised.value.reason.startswith(reason)
    assert str(raised.value).startswith(f"{path}: entry 'resize_image': {reason}")
    assert len(registry) == 0


def test_read_document_parses_each_format(tmp_path: Path) -> None:
    expected = {"worker": {"concurrency": 2, "queues": ["a", "b"]}}
    (tmp_path / "c.toml").write_text('[worker]\nconcurrency = 2\nqueues = ["a", "b"]\n')
    (tmp_path / "c.json").write_text(json.dumps(expected))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(expected))
    (tmp_path / "c.YML").write_text(yaml.safe_dump(expected))

    for name in ("c.toml", "c.json", "c.yaml", "c.YML"):
        assert read_document(tmp_path / name) == expected, name
