import io
import zipfile

import pytest

from lamina.config import Settings
from lamina.errors import InvalidParameterValue, PreconditionFailed, RequestTooLarge, ResourceConflict, ResourceNotFound
from lamina.functions.names import parse_function_ref
from lamina.functions.service import ConfigChange, FunctionDraft, FunctionService
from lamina.store.code import FileCodeStore
from lamina.store.memory import MemoryStore


def zip_of(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


@pytest.fixture
def service(tmp_path):
    settings = Settings(interpreters={}, zipped_code_limit=10_000)
    svc = FunctionService(settings, MemoryStore(), FileCodeStore(tmp_path / "code", 10_000, 100_000))
    svc.changes = []
    svc.on_change(lambda name, qualifier: svc.changes.append((name, qualifier)))
    return svc


def draft(name="f", **changes):
    values = dict(name=name, role="arn:aws:iam::000000000000:role/r", runtime="python3.12", handler="app.handler",
                  zip_file=zip_of("def handler(e, c):\n    return 1\n"))  # fmt: skip
    values.update(changes)
    return FunctionDraft(**values)


def test_create_stores_code_and_configuration(service):
    record = service.create(draft(environment={"AA": "1"}, tags={"t": "v"}))
    config = record.config
    assert config.version == "$LATEST" and config.state == "Active" and config.environment == {"AA": "1"}
    assert service.code_dir(config).joinpath("app.py").is_file()
    assert service.zip_path(config).read_bytes() == draft().zip_file
    with pytest.raises(ResourceConflict, match="Function already exist: f"):
        service.create(draft())


def test_bad_packages_and_settings_are_refused(service):
    with pytest.raises(InvalidParameterValue, match="Could not unzip"):
        service.create(draft(zip_file=b"nope"))
    with pytest.raises(RequestTooLarge, match="CreateFunction"):
        service.create(draft(zip_file=b"x" * 10_001))
    with pytest.raises(InvalidParameterValue, match="provide a source"):
        service.create(draft(zip_file=None))
    with pytest.raises(InvalidParameterValue, match="900"):
        service.create(draft(timeout=901))
    with pytest.raises(InvalidParameterValue, match="container images"):
        service.create(draft(package_type="Image"))
    assert service.list()[0] == []  # nothing half-created


def test_updates_change_revision_notify_and_check_preconditions(service):
    first = service.create(draft()).config
    updated = service.update_configuration("f", ConfigChange(timeout=10, environment={"BB": "2"}))
    assert updated.timeout == 10 and updated.environment == {"BB": "2"} and updated.revision_id != first.revision_id
    assert service.changes == [("f", "$LATEST")]
    with pytest.raises(PreconditionFailed):
        service.update_configuration("f", ConfigChange(timeout=11, revision_id=first.revision_id))
    code = service.update_code("f", zip_of("def handler(e, c):\n    return 2\n"), revision_id=updated.revision_id)
    assert code.code_sha256 != first.code_sha256 and code.timeout == 10
    dry = service.update_code("f", zip_of("x = 3\n"), dry_run=True)
    assert dry.code_sha256 != code.code_sha256
    assert service.get("f").config.code_sha256 == code.code_sha256
    assert service.changes == [("f", "$LATEST"), ("f", "$LATEST")]


def test_resolve_and_not_found_messages(service):
    service.create(draft())
    assert service.resolve(parse_function_ref("f")).name == "f"
    assert service.resolve(parse_function_ref("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST")).name == "f"
    with pytest.raises(
        ResourceNotFound, match=r"Function not found: arn:aws:lambda:us-east-1:000000000000:function:f:7"
    ):
        service.resolve(parse_function_ref("f:7"))
    with pytest.raises(ResourceNotFound):
        service.resolve(parse_function_ref("111111111111:function:f"))  # another account


def test_list_pages_by_opaque_marker(service):
    for name in ["c", "a", "b", "d"]:
        service.create(draft(name))
    page, marker = service.list(max_items=3)
    assert [r.config.name for r in page] == ["a", "b", "c"] and marker
    page, marker = service.list(marker=marker, max_items=3)
    assert [r.config.name for r in page] == ["d"] and marker is None
    with pytest.raises(InvalidParameterValue):
        service.list(marker="!!!")


def test_delete_and_tags(service):
    arn = service.arns.function("f")
    service.create(draft())
    service.tag(arn, {"a": "1", "b": "2"})
    service.untag(arn, ["a"])
    assert service.list_tags(arn) == {"b": "2"}
    assert service.changes == []  # tags do not retire environments
    with pytest.raises(InvalidParameterValue):
        service.tag(arn + ":1", {"x": "y"})
    with pytest.raises(InvalidParameterValue, match="not allowed"):
        service.delete("f", "$LATEST")
    service.delete("f")
    assert service.changes == [("f", None)]
    with pytest.raises(ResourceNotFound):
        service.delete("f")
