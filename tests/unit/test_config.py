import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from lamina.config import Settings, discover_interpreters
from lamina.errors import ConfigError


def test_defaults_listen_on_loopback_4566_with_local_data_dir():
    s = Settings.load(env={})
    assert (s.host, s.port, s.data_dir) == ("127.0.0.1", 4566, Path(".lamina").resolve())
    assert s.data_dir.is_absolute()
    assert s.endpoint == "http://127.0.0.1:4566"
    assert not s.auth_required


def test_env_then_flags_override():
    env = {"LAMINA_PORT": "5000", "LAMINA_HOST": "127.0.0.2", "LAMINA_KEEP_ALIVE_SECONDS": "1.5"}
    s = Settings.load(env=env, port=6000, host=None)
    assert s.port == 6000 and s.host == "127.0.0.2" and s.keep_alive_seconds == 1.5


def test_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="LAMINA_PORT"):
        Settings.load(env={"LAMINA_PORT": "many"})
    with pytest.raises(ConfigError, match="both"):
        Settings.load(env={"LAMINA_ACCESS_KEY_ID": "AKID"})
    with pytest.raises(ConfigError, match="12 digits"):
        Settings.load(env={"LAMINA_ACCOUNT_ID": "123"})


def test_non_loopback_bind_needs_credentials():
    with pytest.raises(ConfigError, match="refusing"):
        Settings.load(env={}, host="0.0.0.0").check_bind()
    Settings.load(env={"LAMINA_ACCESS_KEY_ID": "a", "LAMINA_SECRET_ACCESS_KEY": "b"}, host="0.0.0.0").check_bind()
    Settings.load(env={}, host="::1").check_bind()
    Settings.load(env={}, host="localhost").check_bind()


def test_interpreter_map_override_and_host_fallback(tmp_path, monkeypatch):
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    s = Settings.load(env={"LAMINA_INTERPRETERS": f"python3.12={fake}"})
    assert s.interpreter_for("python3.12") == (str(fake), True)
    host = f"python{sys.version_info.major}.{sys.version_info.minor}"
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    assert discover_interpreters(search_path="")[host] == sys.executable  # the server's own, at least
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        base.chmod(0o755)
        for name, mode in (("private", 0o700), ("public", 0o755)):
            (base / name).mkdir(mode=mode)
            exe = base / name / host
            exe.write_text("#!/bin/sh\n")
            exe.chmod(0o755)
            (base / name).chmod(mode)
        # an interpreter every uid can reach wins over one in a private directory, whatever the order
        assert discover_interpreters(search_path=f"{base}/private:{base}/public")[host] == f"{base}/public/{host}"
        (base / "public").chmod(0o700)  # nothing reachable: the first found is used
        assert discover_interpreters(search_path=f"{base}/private:{base}/public")[host] == f"{base}/private/{host}"
    finally:
        shutil.rmtree(base)
    missing = Settings(interpreters={})
    assert missing.interpreter_for("python3.14") == (sys.executable, False)
    with pytest.raises(ConfigError):
        Settings.load(env={"LAMINA_INTERPRETERS": "python3.12"})
