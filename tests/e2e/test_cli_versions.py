"""`lamina publish`, `lamina versions`, `lamina alias` against a real server."""

from __future__ import annotations

from .conftest import create, handler_zip, invoke_json
from .test_cli import lamina


def test_publish_versions_and_aliases_from_the_cli(server, lam, fresh_name):
    create(lam, fresh_name, "def handler(e, c):\n    return 'one'\n")
    assert "version 1" in lamina(server, "publish", fresh_name, "--description", "first").stdout
    lam.update_function_code(FunctionName=fresh_name, ZipFile=handler_zip("def handler(e, c):\n    return 'two'\n"))
    assert "version 2" in lamina(server, "publish", fresh_name).stdout

    out = lamina(server, "alias", "create", fresh_name, "live", "1", "--weight", "2=0.25").stdout
    assert "live" in out and "1 (75%)" in out and "2 (25%)" in out
    alias = lam.get_alias(FunctionName=fresh_name, Name="live")
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}

    table = lamina(server, "versions", fresh_name).stdout.splitlines()
    rows = {line.split()[0]: line for line in table[1:]}
    assert set(rows) == {"$LATEST", "1", "2"}
    assert "live" in rows["1"] and "live" in rows["2"] and "first" in rows["1"] and "live" not in rows["$LATEST"]

    lamina(server, "alias", "update", fresh_name, "live", "--version", "2", "--no-weights")
    assert lam.get_alias(FunctionName=fresh_name, Name="live")["FunctionVersion"] == "2"
    assert invoke_json(lam, fresh_name, Qualifier="live")[1] == "two"
    assert lamina(server, "invoke", fresh_name, "--qualifier", "1").stdout.strip() == '"one"'
    ran = lamina(server, "invoke", fresh_name, "-q", "live", "--tail")
    assert ran.stdout.strip() == '"two"' and "(ran version 2)" in ran.stderr
    assert "live" in lamina(server, "alias", "ls", fresh_name).stdout

    bad = lamina(server, "alias", "create", fresh_name, "x", "9", check=False)
    assert bad.returncode != 0 and "ResourceNotFoundException" in bad.stderr and "Traceback" not in bad.stderr
    bad = lamina(server, "alias", "create", fresh_name, "y", "1", "--weight", "two=half", check=False)
    assert bad.returncode != 0 and "VERSION=WEIGHT" in bad.stderr

    assert "deleted alias live" in lamina(server, "alias", "rm", fresh_name, "live").stdout
    assert lam.list_aliases(FunctionName=fresh_name)["Aliases"] == []
