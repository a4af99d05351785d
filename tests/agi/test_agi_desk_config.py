"""The administrator's desk file: validated, errors name file, line and key."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agi_scripts.desk_config import DeskConfigError, load_desk_config, parse_desk_config
from agi_scripts.desk_rules import ExtensionClass, MobilePolicy, QuotaPolicy
from compliance.numbers import NumberKind


def test_defaults() -> None:
    config = parse_desk_config("")
    assert config.class_of("201") is ExtensionClass.LOCAL
    assert config.quota.long_distance_fen == 15000 and config.quota.local_fen == 8000
    assert config.policy.long_distance_prefix == "17909"
    assert config.plan.emergency == ("110", "119", "120", "122")


def test_full_file() -> None:
    config = parse_desk_config(
        '[policy]\nmobile = "home_area"\nquota = "warn"\ndefault_class = "fax"\n'
        '[tariff]\nincrement_s = 6\nlocal = "0.07"\n'
        "[quota]\nlocal = 50.5\n"
        '[extensions]\n"201" = "executive"\n"230" = { class = "local", quota = 100 }\n'
    )
    assert config.policy.mobile is MobilePolicy.HOME_AREA
    assert config.policy.quota is QuotaPolicy.WARN
    assert config.class_of("999") is ExtensionClass.FAX
    assert config.tariff.rate(NumberKind.LOCAL) == Decimal("0.07")
    assert config.tariff.rate(NumberKind.MOBILE) == Decimal("0.15")  # default kept
    assert config.quota.local_fen == 5050
    assert config.quota_of("230").long_distance_fen == 10000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[extensions]\n"201" = "executive"\n"202" = "boss"\n',
            r"desk\.toml:3: \[extensions\] '202': 'boss' is not one of: executive, fax, local",
        ),
        ('[policy]\n\nmobile = "some"\n', r"desk\.toml:3: \[policy\] 'mobile'"),
        ("[quota]\nlocal = -1\n", r"desk\.toml:2: \[quota\] 'local': -1: amounts are >= 0"),
        ('[quota]\nlocal = "lots"\n', r"desk\.toml:2: \[quota\] 'local': 'lots' is not an amount"),
        ("[tariff]\nmobil = 0.1\n", r"desk\.toml:2: \[tariff\] 'mobil': unknown key"),
        ("[tariff]\nemergency = 1\n", r"\[tariff\] 'emergency': unknown key"),
        ("[tarif]\n", r"desk\.toml:1: \[tarif\]: unknown section"),
        ('[extensions]\n"2O1" = "fax"\n', r"desk\.toml:2: \[extensions\] '2O1': .* 2 to 6 digits"),
        ('[numbering]\nhome_area = "1"\n', r"\[numbering\]: home area '1' is not an area code"),
        ('[policy]\ntimezone = "Mars/Base"\n', r"desk\.toml:2: .*unknown time zone"),
        ("[policy\n", r"desk\.toml: TOML syntax error: .*line 1"),
        (
            '[extensions]\n"230" = { class = "local", quota = 1, x = 2 }\n',
            r"desk\.toml:2: \[extensions\] '230'",
        ),
    ],
)
def test_errors_name_line_and_key(text: str, message: str) -> None:
    with pytest.raises(DeskConfigError, match=message):
        parse_desk_config(text, "desk.toml")


def test_missing_file(tmp_path) -> None:
    with pytest.raises(DeskConfigError, match="cannot read desk file"):
        load_desk_config(tmp_path / "nope.toml")
