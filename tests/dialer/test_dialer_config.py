"""``dialer serve`` settings: defaults <- TOML <- environment, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.config import ConfigError, load_settings


def test_defaults_toml_then_environment(tmp_path: Path) -> None:
    f = tmp_path / "dialer.toml"
    f.write_text(
        '[ari]\nurl = "http://pbx:8088/ari"\nusername = "u"\n'
        "[dialer]\nconnect_limit = 1.5\namd = true\n[http]\nport = 9000\n"
    )
    s = load_settings(
        f,
        env={
            "DIALER__ARI__PASSWORD": "secret",
            "DIALER__HTTP__PORT": "9100",
            "DIALER_DB_URL": "sqlite+aiosqlite:///x.db",
        },
    )
    assert s.ari.url == "http://pbx:8088/ari"
    assert s.ari.username == "u" and s.ari.password == "secret"
    assert s.dialer.connect_limit == 1.5 and s.dialer.amd is True
    assert s.http.port == 9100
    assert s.database.url == "sqlite+aiosqlite:///x.db"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"DIALER__HTTP__PORT": "eighty"}, "http.port"),
        ({"DIALER__NOPE__X": "1"}, "[nope]"),
        ({"DIALER__ARI__NOPE": "1"}, "ari.nope"),
        ({"DIALER__ARI__URL": "ftp://x"}, "ari.url"),
        ({"DIALER__DIALER__CONNECT_LIMIT": "5"}, "dialer.connect_limit"),
        ({"DIALER__DIALER__AMD": "perhaps"}, "dialer.amd"),
        ({"DIALER__DIALER__AMD_AFTER_GREETING_MS": "1800"}, "dialer.amd_after_greeting_ms"),
        ({"DIALER__DIALER__AMD_AFTER_GREETING_MS": "50"}, "dialer.amd_after_greeting_ms"),
        ({"DIALER__DIALER__CUSTOMER_ENDPOINT": "PJSIP/x"}, "customer_endpoint"),
        ({"DIALER__ARI": "1"}, "DIALER__SECTION__KEY"),
    ],
)
def test_errors_name_the_key(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env=env)
    assert needle in str(info.value)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("[ari\n")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_settings(f, env={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", env={})
