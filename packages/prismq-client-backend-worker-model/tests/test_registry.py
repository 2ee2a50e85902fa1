"""The task handler registry: registration, lookup, calling conventions, loading by spec."""

from __future__ import annotations

import functools
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sample_handlers

from prismq.queue.errors import InvalidTaskError, PrismQError
from prismq.worker.errors import (
    HandlerAlreadyRegisteredError,
    HandlerLoadError,
    TaskHandlerNotRegisteredError,
    WorkerError,
)
from prismq.worker.registry import (
    HandlerInfo,
    TaskHandlerRegistry,
    is_async_callable,
    load_registry,
    merge_registries,
)


@pytest.fixture
def registry() -> TaskHandlerRegistry:
    return TaskHandlerRegistry()


def one_arg(payload: dict[str, Any]) -> str:
    return "one"


def two_args(payload: dict[str, Any], ctx: Any) -> str:
    return "two"


async def async_one_arg(payload: dict[str, Any]) -> str:
    return "async"


# -- registration and lookup -----------------------------------------------------------


def test_register_and_get_handler(registry: TaskHandlerRegistry) -> None:
    info = registry.register_handler("email.send", one_arg, description="sends", version="2.1.0")

    assert registry.get_handler("email.send") is one_arg
    assert registry.get_handler_info("email.send") == info
    assert info == HandlerInfo(
        task_type="email.send",
        handler=one_arg,
        description="sends",
        version="2.1.0",
        is_async=False,
        takes_context=False,
    )
    assert registry.is_registered("email.send")
    assert "email.send" in registry
    assert len(registry) == 1


def test_register_defaults(registry: TaskHandlerRegistry) -> None:
    info = registry.register_handler("t", one_arg)

    assert info.description == ""
    assert info.version == "1.0.0"


def test_handler_info_is_frozen(registry: TaskHandlerRegistry) -> None:
    info = registry.register_handler("t", one_arg)

    with pytest.raises(AttributeError):
        info.version = "9"  # type: ignore[misc]


def test_unknown_task_type_names_it_and_the_registered_ones(
    registry: TaskHandlerRegistry,
) -> None:
    registry.register_handler("b", one_arg)
    registry.register_handler("a", one_arg)

    with pytest.raises(TaskHandlerNotRegisteredError) as raised:
        registry.get_handler("missing")

    assert raised.value.task_type == "missing"
    assert str(raised.value) == (
        "no handler is registered for task type 'missing' (registered types: 'a', 'b')"
    )
    assert isinstance(raised.value, LookupError)
    assert isinstance(raised.value, WorkerError)
    assert isinstance(raised.value, PrismQError)


def test_unknown_task_type_in_empty_registry(registry: TaskHandlerRegistry) -> None:
    with pytest.raises(TaskHandlerNotRegisteredError, match=r"registered types: none"):
        registry.get_handler_info("missing")
    assert not registry.is_registered("missing")
    assert "missing" not in registry


def test_duplicate_registration_is_refused(registry: TaskHandlerRegistry) -> None:
    registry.register_handler("t", one_arg)

    with pytest.raises(HandlerAlreadyRegisteredError, match=r"allow_override=True") as raised:
        registry.register_handler("t", two_args)

    assert raised.value.task_type == "t"
    assert isinstance(raised.value, ValueError)
    assert registry.get_handler("t") is one_arg


def test_override_replaces_the_handler(registry: TaskHandlerRegistry) -> None:
    registry.register_handler("t", one_arg)

    info = registry.register_handler("t", two_args, version="2.0.0", allow_override=True)

    assert registry.get_handler("t") is two_args
    assert registry.get_handler_info("t") == info
    assert len(registry) == 1


def test_override_of_a_new_type_just_registers(registry: TaskHandlerRegistry) -> None:
    registry.register_handler("t", one_arg, allow_override=True)

    assert registry.get_handler("t") is one_arg


def test_unregister(registry: TaskHandlerRegistry) -> None:
    registry.register_handler("t", one_arg)

    assert registry.unregister_handler("t") is True
    assert registry.unregister_handler("t") is False
    assert not registry.is_registered("t")
    with pytest.raises(TaskHandlerNotRegisteredError):
        registry.get_handler("t")
    registry.register_handler("t", two_args)
    assert registry.get_handler("t") is two_args


def test_registered_types_are_sorted_and_iteration_yields_infos(
    registry: TaskHandlerRegistry,
) -> None:
    for name in ("zeta", "alpha", "mid"):
        registry.register_handler(name, one_arg)

    assert registry.get_registered_types() == ["alpha", "mid", "zeta"]
    assert [info.task_type for info in registry] == ["alpha", "mid", "zeta"]
    assert all(isinstance(info, HandlerInfo) for info in registry)
    assert len(registry) == 3
    assert repr(registry) == "TaskHandlerRegistry(['alpha', 'mid', 'zeta'])"


def test_iteration_is_a_snapshot(registry: TaskHandlerRegistry) -> None:
    registry.register_handler("a", one_arg)
    registry.register_handler("b", one_arg)

    seen = []
    for info in registry:
        registry.unregister_handler("b")
        seen.append(info.task_type)

    assert seen == ["a", "b"]


def test_decorator_registers_and_returns_the_function(registry: TaskHandlerRegistry) -> None:
    @registry.handler("image.resize", description="resizes", version="3.0.0")
    def resize(payload: dict[str, Any], ctx: Any) -> str:
        return "resized"

    assert resize({}, None) == "resized"
    assert registry.get_handler("image.resize") is resize
    info = registry.get_handler_info("image.resize")
    assert (info.description, info.version, info.takes_context) == ("resizes", "3.0.0", True)


def test_decorator_refuses_duplicates_unless_overriding(registry: TaskHandlerRegistry) -> None:
    registry.register_handler("t", one_arg)

    with pytest.raises(HandlerAlreadyRegisteredError):
        registry.handler("t")(two_args)
    registry.handler("t", allow_override=True)(two_args)

    assert registry.get_handler("t") is two_args


def test_register_infos_is_all_or_nothing(registry: TaskHandlerRegistry) -> None:
    registry.register_handler("taken", one_arg)
    infos = [HandlerInfo.describe(name, one_arg) for name in ("new1", "taken", "new2")]

    with pytest.raises(HandlerAlreadyRegisteredError):
        registry.register_infos(infos)

    assert registry.get_registered_types() == ["taken"]
    assert registry.register_infos(infos, allow_override=True) == ["new1", "taken", "new2"]
    assert len(registry) == 3


def test_register_infos_refuses_the_same_type_twice(registry: TaskHandlerRegistry) -> None:
    infos = [HandlerInfo.describe("t", one_arg), HandlerInfo.describe("t", two_args)]

    with pytest.raises(ValueError, match=r"'t' is given twice"):
        registry.register_infos(infos, allow_override=True)
    assert len(registry) == 0


# -- task type and handler validation --------------------------------------------------


@pytest.mark.parametrize(
    "task_type",
    ["", " leading", "trailing ", "x" * 201, None, 42],
    ids=["empty", "leading-space", "trailing-space", "too-long", "none", "int"],
)
def test_invalid_task_types_are_refused(registry: TaskHandlerRegistry, task_type: Any) -> None:
    with pytest.raises(InvalidTaskError) as raised:
        registry.register_handler(task_type, one_arg)

    assert raised.value.field == "task_type"
    assert str(raised.value).startswith("task_type: ")
    assert len(registry) == 0


def test_longest_task_type_is_accepted(registry: TaskHandlerRegistry) -> None:
    registry.register_handler("x" * 200, one_arg)

    assert registry.is_registered("x" * 200)


def test_non_callable_handler_is_refused(registry: TaskHandlerRegistry) -> None:
    with pytest.raises(TypeError, match=r"handler for task type 'bad' must be callable, not int"):
        registry.register_handler("bad", 42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("description", "version"),
    [(None, "1.0.0"), ("ok", ""), ("ok", None)],
    ids=["description-none", "version-empty", "version-none"],
)
def test_bad_description_or_version_is_refused(
    registry: TaskHandlerRegistry, description: Any, version: Any
) -> None:
    with pytest.raises(TypeError, match=r"task type 'bad'"):
        registry.register_handler("bad", one_arg, description=description, version=version)


class _SyncCallable:
    def __call__(self, payload: dict[str, Any]) -> str:
        return "sync object"


class _SyncCallableWithContext:
    def __call__(self, payload: dict[str, Any], ctx: Any) -> str:
        return "sync object with context"


class _AsyncCallable:
    async def __call__(self, payload: dict[str, Any], ctx: Any) -> str:
        return "async object"


class _Service:
    def run(self, payload: dict[str, Any]) -> str:
        return "method"

    async def run_async(self, payload: dict[str, Any], ctx: Any) -> str:
        return "async method"

    @staticmethod
    def static(payload: dict[str, Any], ctx: Any) -> str:
        return "static"


class _NoSignature:
    """A callable whose signature cannot be read (like some builtins)."""

    __signature__ = "not a signature"

    def __call__(self, payload: dict[str, Any]) -> str:
        return "no signature"


def _with_prefix(prefix: str, payload: dict[str, Any]) -> str:
    return prefix


def _with_prefix_and_context(prefix: str, payload: dict[str, Any], ctx: Any) -> str:
    return prefix


async def _async_with_prefix(prefix: str, payload: dict[str, Any]) -> str:
    return prefix


def _optional_context(payload: dict[str, Any], ctx: Any = None) -> str:
    return "optional"


def _var_args(*args: Any) -> str:
    return "var"


def _payload_and_var_args(payload: dict[str, Any], *rest: Any) -> str:
    return "var"


def _keyword_options(payload: dict[str, Any], *, verbose: bool = False, **extra: Any) -> str:
    return "keywords"


def _positional_only(payload: dict[str, Any], ctx: Any, /) -> str:
    return "positional only"


@pytest.mark.parametrize(
    ("handler", "is_async", "takes_context"),
    [
        (one_arg, False, False),
        (two_args, False, True),
        (async_one_arg, True, False),
        (lambda payload: payload, False, False),
        (_optional_context, False, True),
        (_var_args, False, True),
        (_payload_and_var_args, False, True),
        (_keyword_options, False, False),
        (_positional_only, False, True),
        (_SyncCallable(), False, False),
        (_SyncCallableWithContext(), False, True),
        (_AsyncCallable(), True, True),
        (_Service().run, False, False),
        (_Service().run_async, True, True),
        (_Service.static, False, True),
        (functools.partial(_with_prefix, "p"), False, False),
        (functools.partial(_with_prefix_and_context, "p"), False, True),
        (functools.partial(_async_with_prefix, "p"), True, False),
        (functools.partial(functools.partial(_async_with_prefix), "p"), True, False),
        (functools.partial(_AsyncCallable()), True, True),
        (_NoSignature(), False, False),
    ],
    ids=[
        "function-1",
        "function-2",
        "async-1",
        "lambda",
        "optional-context",
        "var-args",
        "payload-and-var-args",
        "keyword-only-options",
        "positional-only",
        "object-1",
        "object-2",
        "async-object",
        "bound-method",
        "async-bound-method",
        "staticmethod",
        "partial-1",
        "partial-2",
        "async-partial",
        "nested-async-partial",
        "partial-of-async-object",
        "no-signature",
    ],
)
def test_calling_convention_is_detected_at_registration(
    registry: TaskHandlerRegistry,
    handler: Callable[..., Any],
    is_async: bool,
    takes_context: bool,
) -> None:
    info = registry.register_handler("t", handler)

    assert (info.is_async, info.takes_context) == (is_async, takes_context)
    assert is_async_callable(handler) is is_async


class _Job:
    """A class used as a handler: constructing it runs the job."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    async def __call__(self) -> None:
        return None


def test_a_class_is_called_with_the_payload_and_is_not_async(
    registry: TaskHandlerRegistry,
) -> None:
    info = registry.register_handler("t", _Job)

    assert (info.is_async, info.takes_context) == (False, False)


def _no_args() -> None:
    return None


def _three_args(payload: Any, ctx: Any, extra: Any) -> None:
    return None


def _keyword_only_payload(*, payload: Any) -> None:
    return None


def _required_keyword(payload: Any, *, mode: str) -> None:
    return None


@pytest.mark.parametrize(
    "handler",
    [
        _no_args,
        _three_args,
        _keyword_only_payload,
        _required_keyword,
        functools.partial(_with_prefix_and_context, "p", {}, None),
    ],
    ids=["no-args", "three-args", "keyword-only", "required-keyword", "exhausted-partial"],
)
def test_handler_that_cannot_take_payload_is_refused(
    registry: TaskHandlerRegistry, handler: Callable[..., Any]
) -> None:
    with pytest.raises(TypeError, match=r"task type 'bad' must accept \(payload\)"):
        registry.register_handler("bad", handler)
    assert not registry.is_registered("bad")


# -- thread safety ---------------------------------------------------------------------


def test_concurrent_registration_and_lookup(registry: TaskHandlerRegistry) -> None:
    threads_count, per_thread = 8, 50
    start = threading.Barrier(threads_count)
    failures: list[BaseException] = []

    def register_many(worker: int) -> None:
        try:
            start.wait(timeout=30)
            for index in range(per_thread):
                name = f"w{worker}.t{index}"
                registry.register_handler(name, one_arg)
                assert registry.get_handler(name) is one_arg
                registry.get_registered_types()
                list(registry)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=register_many, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not failures
    assert len(registry) == threads_count * per_thread


def test_concurrent_duplicate_registration_lets_exactly_one_win(
    registry: TaskHandlerRegistry,
) -> None:
    threads_count = 8
    start = threading.Barrier(threads_count)
    outcomes: list[str] = []
    lock = threading.Lock()

    def register() -> None:
        start.wait(timeout=30)
        try:
            registry.register_handler("contested", one_arg)
            outcome = "registered"
        except HandlerAlreadyRegisteredError:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=register) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["refused"] * (threads_count - 1) + ["registered"]


# -- load_registry ---------------------------------------------------------------------


def test_load_registry_from_an_attribute() -> None:
    assert load_registry("sample_handlers:registry") is sample_handlers.registry
    assert load_registry("sample_handlers:registry").get_registered_types() == ["sample.echo"]


def test_load_registry_from_a_factory() -> None:
    loaded = load_registry("sample_handlers:make_registry")

    assert loaded.get_registered_types() == ["sample.add"]
    assert loaded.get_handler_info("sample.add").takes_context is True


def test_load_registry_from_a_dotted_attribute() -> None:
    assert load_registry("sample_handlers:Namespace.registry") is (
        sample_handlers.Namespace.registry
    )


def test_load_registry_accepts_spaces_around_the_parts() -> None:
    assert len(load_registry(" sample_handlers : registry ")) == 1


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("sample_handlers", "expected 'package.module:attribute'"),
        ("sample_handlers:", "expected 'package.module:attribute'"),
        (":registry", "expected 'package.module:attribute'"),
        (
            "no_such_module_xyz:registry",
            "cannot import module 'no_such_module_xyz': No module named 'no_such_module_xyz'",
        ),
        (
            "sample_handlers:missing",
            "module 'sample_handlers' has no attribute 'missing'",
        ),
        (
            "sample_handlers:Namespace.missing",
            "module 'sample_handlers' has no attribute 'Namespace.missing'",
        ),
        (
            "sample_handlers:NOT_CALLABLE",
            "expected a TaskHandlerRegistry or a function returning one, got int",
        ),
        (
            "sample_handlers:make_nothing",
            "expected it to return a TaskHandlerRegistry, got NoneType",
        ),
        (
            "sample_handlers:make_broken",
            "calling it raised RuntimeError: database of handlers is down",
        ),
        (
            "sample_handlers:echo",
            "expected a TaskHandlerRegistry or a zero-argument function returning one;"
            " echo takes arguments",
        ),
    ],
    ids=[
        "no-colon",
        "no-attribute",
        "no-module",
        "missing-module",
        "missing-attribute",
        "missing-dotted-attribute",
        "wrong-type",
        "factory-returns-wrong-type",
        "factory-raises",
        "handler-instead-of-registry",
    ],
)
def test_load_registry_failures_name_the_spec_and_the_reason(spec: str, reason: str) -> None:
    with pytest.raises(HandlerLoadError) as raised:
        load_registry(spec)

    assert raised.value.source == spec
    assert raised.value.entry is None
    assert raised.value.reason.startswith(reason)
    assert str(raised.value).startswith(f"{spec}: {reason}")


def test_load_registry_reports_a_module_that_fails_to_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_name = f"broken_handlers_{uuid.uuid4().hex}"
    (tmp_path / f"{module_name}.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(HandlerLoadError) as raised:
        load_registry(f"{module_name}:registry")

    assert raised.value.reason == (
        f"importing module {module_name!r} raised RuntimeError: boom at import"
    )
    assert module_name not in sys.modules


def test_load_registry_reports_a_missing_dependency_of_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_name = f"needy_handlers_{uuid.uuid4().hex}"
    (tmp_path / f"{module_name}.py").write_text("import not_installed_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(HandlerLoadError) as raised:
        load_registry(f"{module_name}:registry")

    assert raised.value.reason == (
        f"cannot import module {module_name!r}: No module named 'not_installed_dependency_xyz'"
    )


# -- merge_registries and load_file ----------------------------------------------------


def test_merge_registries_combines_them() -> None:
    first, second = TaskHandlerRegistry(), TaskHandlerRegistry()
    first.register_handler("a", one_arg, version="2.0.0")
    second.register_handler("b", async_one_arg)

    merged = merge_registries([first, second])

    assert merged.get_registered_types() == ["a", "b"]
    assert merged.get_handler_info("a") == first.get_handler_info("a")
    assert merged.get_handler_info("b").is_async is True
    assert merged is not first
    assert first.get_registered_types() == ["a"]


def test_merge_of_nothing_is_empty() -> None:
    assert len(merge_registries([])) == 0


def test_merge_refuses_a_type_handled_twice() -> None:
    first, second, third = TaskHandlerRegistry(), TaskHandlerRegistry(), TaskHandlerRegistry()
    first.register_handler("shared", one_arg)
    second.register_handler("other", one_arg)
    third.register_handler("shared", two_args)

    with pytest.raises(HandlerAlreadyRegisteredError) as raised:
        merge_registries([first, second, third])

    assert raised.value.task_type == "shared"
    assert "registries #0 and #2 both handle it" in str(raised.value)


def test_load_file_registers_the_handlers_of_a_file(
    registry: TaskHandlerRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "handlers.json"
    path.write_text(
        '{"handlers": [{"task_type": "sample.add", "module": "sample_handlers",'
        ' "function": "add", "description": "adds"}]}'
    )

    assert registry.load_file(path) == ["sample.add"]
    info = registry.get_handler_info("sample.add")
    assert (info.description, info.takes_context) == ("adds", True)
    with pytest.raises(HandlerLoadError, match=r"already registered"):
        registry.load_file(path)
    assert registry.load_file(str(path), allow_override=True) == ["sample.add"]
