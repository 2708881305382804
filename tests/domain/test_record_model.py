"""Record models on pydantic-core: the part of pydantic's model API the package relies on,
held to pydantic's behaviour for the same declarations."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Annotated, Any

import pytest
from pydantic_core import ValidationError

from tandem_tui.domain.models import (
    SERDE,
    Checkpoint,
    LifecycleRecord,
    Run,
    RunStatus,
    TenantContext,
    dump_run,
    parse_run_record,
)
from tandem_tui.domain.record_model import Check, Constraints, Factory, RecordModel


def record(**overrides: Any) -> dict[str, Any]:
    value = {
        "run_id": "r1",
        "automation_id": "a1",
        "trigger_type": "manual",
        "status": "queued",
        "created_at_ms": 1,
        "updated_at_ms": 2,
        "checkpoint": {"lifecycle_history": [{"event": "run_created", "recorded_at_ms": 1}]},
    }
    value.update(overrides)
    return value


def errors_of(value: Any, **kwargs: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        Run.model_validate(value, **kwargs)
    return [(item["loc"], item["type"]) for item in caught.value.errors(include_url=False)]


def test_keywords_build_a_validated_model_with_fresh_defaults_per_instance():
    first = Run(run_id="r1", automation_id="a1", status=RunStatus.QUEUED, created_at_ms=1, updated_at_ms=1)
    second = Run(run_id="r2", automation_id="a1", status="queued", created_at_ms=1, updated_at_ms=1)
    first.checkpoint.pending_nodes.append("n1")
    assert second.checkpoint.pending_nodes == []
    assert second.status is RunStatus.QUEUED
    assert first.model_fields_set == {"run_id", "automation_id", "status", "created_at_ms", "updated_at_ms"}
    with pytest.raises(ValidationError):
        Run(run_id="r3", automation_id="a1", status="queued", created_at_ms=-1, updated_at_ms=1)


def test_unknown_fields_are_kept_set_readable_and_dumped_back():
    run = parse_run_record(record(x_note={"kept": [1, 2]}))
    assert run.model_extra == {"x_note": {"kept": [1, 2]}}
    assert "x_note" in run.model_fields_set
    assert run.x_note == {"kept": [1, 2]}
    assert dump_run(run) == record(x_note={"kept": [1, 2]})
    with pytest.raises(AttributeError):
        run.no_such_field  # noqa: B018


def test_strict_integers_refuse_floats_strings_bools_and_out_of_range_values_at_their_path():
    for bad in (1.0, "1", True, -1, 2**64):
        history = [{"event": "run_created", "recorded_at_ms": bad}]
        assert errors_of(record(checkpoint={"lifecycle_history": history})) == [
            (("checkpoint", "lifecycle_history", 0, "recorded_at_ms"), errors_of_kind(bad))
        ]


def errors_of_kind(bad: Any) -> str:
    if isinstance(bad, bool) or not isinstance(bad, int):
        return "int_type"
    return "greater_than_equal" if bad < 0 else "less_than_equal"


def test_fields_serde_requires_are_required_only_under_the_serde_context():
    without = {key: value for key, value in record().items() if key != "trigger_type"}
    assert Run.model_validate(without).trigger_type == "manual"
    assert errors_of(without, context=SERDE) == [((), "value_error")]
    with pytest.raises(ValidationError, match=r"missing field `trigger_type`"):
        parse_run_record(without)


def test_a_missing_required_field_is_named_only_once_every_present_field_is_valid():
    without = {key: value for key, value in record(status="sleeping").items() if key != "trigger_type"}
    assert errors_of(without, context=SERDE) == [(("status",), "enum")]


def test_a_nested_tenant_context_applies_serde_s_required_ids_too():
    assert errors_of(record(tenant_context={"org_id": "o"}), context=SERDE) == [(("tenant_context",), "value_error")]
    assert TenantContext.model_validate({"org_id": "o"}).workspace_id == "local"


def test_errors_name_the_model_they_are_for():
    with pytest.raises(ValidationError) as caught:
        parse_run_record(record(status="sleeping"))
    assert caught.value.title == "Run"


def test_a_deep_copy_shares_nothing_and_an_update_marks_its_fields_set():
    run = parse_run_record(record(x_note={"kept": [1]}))
    copied = run.model_copy(deep=True)
    copied.checkpoint.lifecycle_history.append(LifecycleRecord(event="run_started", recorded_at_ms=3))
    copied.model_extra["x_note"]["kept"].append(2)
    copied.model_fields_set.add("detail")
    assert len(run.checkpoint.lifecycle_history) == 1
    assert run.model_extra == {"x_note": {"kept": [1]}}
    assert "detail" not in run.model_fields_set
    assert copy.deepcopy(run) == run

    updated = run.model_copy(update={"detail": "why", "x_other": 1})
    assert (updated.detail, updated.model_extra["x_other"]) == ("why", 1)
    assert {"detail", "x_other"} <= updated.model_fields_set
    assert updated.checkpoint is run.checkpoint  # shallow unless deep=True
    assert dump_run(updated) == record(x_note={"kept": [1]}, detail="why", x_other=1)


def test_equality_compares_type_fields_and_unknown_fields_and_models_are_unhashable():
    assert parse_run_record(record()) == parse_run_record(record())
    assert parse_run_record(record()) != parse_run_record(record(x_note=1))
    assert parse_run_record(record()) != parse_run_record(record(detail="d"))
    assert Checkpoint() != TenantContext()
    with pytest.raises(TypeError):
        hash(Checkpoint())


def test_assigning_a_field_marks_it_set_and_assigning_an_unknown_name_keeps_it_as_unknown():
    run = parse_run_record(record())
    run.detail = "why"
    run.x_note = "kept"
    assert {"detail", "x_note"} <= run.model_fields_set
    assert dump_run(run) == record(detail="why", x_note="kept")


def test_a_python_dump_keeps_enums_and_a_json_dump_gives_their_values():
    run = parse_run_record(record())
    assert run.model_dump()["status"] is RunStatus.QUEUED
    assert run.model_dump(mode="json")["status"] == "queued"


CHECKED: list[Any] = []


def even(value: int) -> int:
    CHECKED.append(value)
    if value % 2:
        raise ValueError("odd")
    return value


class Plain(RecordModel):
    """Not lossless: every field is dumped."""

    count: Annotated[int, Constraints(strict=True, ge=0), Check(even)]
    tags: list[str] = Factory(list)
    label: str | None = None


def test_a_plain_model_dumps_every_field_and_checks_run_after_the_type():
    CHECKED.clear()
    assert Plain(count=2).model_dump() == {"count": 2, "tags": [], "label": None}
    assert Plain.model_fields["tags"].is_required() is False and Plain.model_fields["count"].is_required()
    with pytest.raises(ValidationError, match="odd"):
        Plain(count=3)
    with pytest.raises(ValidationError):
        Plain(count="4")
    assert CHECKED == [2, 3]  # "4" failed the strict type before the check


@pytest.mark.parametrize("annotation", ["set[str]", "dict[int, str]", "int | str", "bytes"])
def test_a_field_type_without_a_schema_here_fails_when_the_class_is_defined(annotation: str):
    with pytest.raises(TypeError):
        type("Odd", (RecordModel,), {"__annotations__": {"value": annotation}, "__module__": __name__})


def test_reading_runs_never_imports_pydantic_nor_pydantic_core_s_python_package():
    code = (
        "import sys\n"
        "from tandem_tui.domain.models import parse_run_record\n"
        "import tandem_tui.source.file.store, tandem_tui.domain.retry, tandem_tui.domain.view\n"
        "import tandem_tui.source.file.shards, tandem_tui.source.file.retention\n"
        "print('pydantic' in sys.modules, 'pydantic_core' in sys.modules, 'pydantic_core._pydantic_core' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "True"]


def test_the_package_imported_later_has_the_very_classes_the_models_use():
    code = (
        "from tandem_tui.domain import core_validation\n"
        "from tandem_tui.domain.models import Run\n"
        "import pydantic_core\n"
        "print(pydantic_core.ValidationError is core_validation.ValidationError,"
        " pydantic_core.SchemaValidator is type(Run.__pydantic_validator__))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]


def test_schemas_are_the_ones_pydantic_core_s_builders_make():
    from pydantic_core import core_schema

    from tandem_tui.domain.models import ExecutionClaim, LifecycleRecord, Run, TenantContext

    lifecycle = LifecycleRecord.__core_schema__
    assert lifecycle["type"] == "model" and lifecycle["config"] == core_schema.CoreConfig(
        title="LifecycleRecord", extra_fields_behavior="allow", validate_by_alias=True, validate_by_name=True
    )
    fields = lifecycle["schema"]["fields"]
    assert fields["recorded_at_ms"]["schema"]["type"] == "int"
    assert fields["reason"] == core_schema.model_field(
        core_schema.with_default_schema(core_schema.nullable_schema(core_schema.str_schema()), default=None)
    )
    claim = ExecutionClaim.__core_schema__["schema"]["fields"]["claim_id"]
    assert claim == core_schema.model_field(core_schema.str_schema())
    # serde's required ids: an after-validator with the validation info, around the model.
    tenant = TenantContext.__core_schema__
    assert tenant["type"] == "function-after" and tenant["function"]["type"] == "with-info"
    assert tenant["schema"]["cls"] is TenantContext
    assert Run.__core_schema__["schema"]["serialization"]["type"] == "function-wrap"
