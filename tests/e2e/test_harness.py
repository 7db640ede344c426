"""The README's `lamina.testing` example, as written."""

from lamina.testing import LocalLamina


def test_local_lamina_context_manager(tmp_path):
    with LocalLamina(tmp_path / "lamina") as lamina:
        lam = lamina.client("lambda")
        assert lam.list_functions()["Functions"] == []
        pid = lamina.pid
    assert lamina.proc is not None and lamina.proc.poll() is not None  # stopped on exit
    assert pid > 0
