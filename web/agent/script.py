"""The campaign's script in its six parts (art. 22), with the customer's fields filled in (pure).

A campaign's ``script`` text is divided by headings on lines of their own, in
English or Chinese (``[opening]`` or ``[开场]``)::

    [开场]
    您好，{customer.name}！我是{agent.name}，来自示例公司。
    [判断]  ... [响应]  ... [导入]  ... [促成]  ... [结束]  ...
    [产品 宽带]
    价格 = 每月 99 元
    付款方式 = 话费代扣
    [问卷]
    您暂不办理的主要原因是？ | 价格 | 时机 | 需要商量 | 其他

The six parts are opening (开场), needs (判断), response (响应), proposal
(导入), closing (促成), ending (结束). ``[产品 NAME]`` / ``[product NAME]``
gives a product's price and payment method (``price``/``价格``,
``payment``/``付款方式``): they fill ``{product.price}`` and
``{product.payment}`` and the order confirmation checklist (art. 23). Each
line of ``[问卷]`` / ``[questionnaire]`` is a question for a hesitating or
refusing customer (art. 22 (3)), its choices after ``|`` (none: free text).

Fields: ``{customer.name}``, ``{customer.segment}``, ``{product.name}``,
``{product.price}``, ``{product.payment}``, ``{agent.name}``,
``{campaign.name}``. A script with no heading is shown whole as the opening,
and ``parse_script`` says so in ``warnings``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# A complete example (six parts, a product's terms, a questionnaire), for the demo and tests.
SAMPLE_SCRIPT = Path(__file__).with_name("sample_script.txt")

PARTS: tuple[tuple[str, str, str], ...] = (
    ("opening", "开场", "Opening"),
    ("needs", "判断", "Needs"),
    ("response", "响应", "Response"),
    ("proposal", "导入", "Proposal"),
    ("closing", "促成", "Closing"),
    ("ending", "结束", "Ending"),
)
_PART_NAMES = {alias: key for key, zh, _ in PARTS for alias in (key, zh)}
_HEADING = re.compile(r"^\s*[\[【]\s*([^\]】]+?)\s*[\]】]\s*$")
_FIELD = re.compile(r"\{([a-z]+\.[a-z]+)\}")
_PRICE_KEYS = ("price", "价格")
_PAYMENT_KEYS = ("payment", "付款方式")
FIELDS = frozenset(
    {
        "customer.name",
        "customer.segment",
        "product.name",
        "product.price",
        "product.payment",
        "agent.name",
        "campaign.name",
    }
)


class ScriptError(ValueError):
    """A script that cannot be read; the message names the line."""


@dataclass(frozen=True, slots=True)
class ProductTerms:
    name: str
    price: str = ""
    payment: str = ""


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    text: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Script:
    parts: Mapping[str, str]  # part key -> text with {fields}
    products: Mapping[str, ProductTerms] = field(default_factory=dict)
    questionnaire: tuple[Question, ...] = ()
    warnings: tuple[str, ...] = ()

    def terms(self, product: str) -> ProductTerms:
        return self.products.get(product, ProductTerms(product))


@dataclass
class _Reader:
    parts: dict[str, list[str]] = field(default_factory=dict)
    products: dict[str, dict[str, str]] = field(default_factory=dict)
    questions: list[Question] = field(default_factory=list)
    loose: list[str] = field(default_factory=list)
    section: tuple[str, str] | None = None  # ("part", key) / ("product", name) / ("q", "")

    def heading(self, title: str, n: int) -> None:
        self.section = _section(title, n)
        kind, name = self.section
        if kind == "part":
            if name in self.parts:
                raise ScriptError(f"script line {n}: part [{title}] given twice")
            self.parts[name] = []
        elif kind == "product":
            self.products.setdefault(name, {})

    def line(self, line: str, n: int) -> None:
        if self.section is None:
            self.loose.append(line)
            return
        kind, name = self.section
        if kind == "part":
            self.parts[name].append(line)
        elif kind == "product":
            _product_line(self.products[name], line, n)
        elif line.strip():
            self.questions.append(_question(line, len(self.questions) + 1))


def parse_script(text: str) -> Script:
    """Read a campaign's script (module docstring); ``ScriptError`` names a bad line."""
    r = _Reader()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        heading = _HEADING.match(line)
        if heading:
            r.heading(heading.group(1), n)
        else:
            r.line(line, n)
    warnings: list[str] = []
    parts = r.parts
    if not parts:
        parts["opening"] = r.loose
        warnings.append("the script has no [开场]...[结束] headings: shown whole as the opening")
    elif any(x.strip() for x in r.loose):
        raise ScriptError("script: text before the first heading; start with [开场]")
    missing = [zh for key, zh, _ in PARTS if key not in parts]
    if not warnings and missing:
        warnings.append("the script lacks the parts " + "、".join(missing))
    for key, lines in parts.items():
        for name in _FIELD.findall("\n".join(lines)):
            if name not in FIELDS:
                raise ScriptError(f"script part {key}: unknown field {{{name}}}")
    return Script(
        {k: "\n".join(v).strip() for k, v in parts.items()},
        {
            name: ProductTerms(name, terms.get("price", ""), terms.get("payment", ""))
            for name, terms in r.products.items()
        },
        tuple(r.questions),
        tuple(warnings),
    )


def _section(title: str, n: int) -> tuple[str, str]:
    words = title.split(None, 1)
    head = words[0].lower()
    if head in _PART_NAMES and len(words) == 1:
        return ("part", _PART_NAMES[head])
    if head in ("product", "产品") and len(words) == 2:
        return ("product", words[1].strip())
    if head in ("questionnaire", "问卷") and len(words) == 1:
        return ("q", "")
    known = "、".join(zh for _, zh, _ in PARTS)
    raise ScriptError(
        f"script line {n}: unknown heading [{title}] (parts: {known}; [产品 名称]; [问卷])"
    )


def _product_line(terms: dict[str, str], line: str, n: int) -> None:
    if not line.strip():
        return
    key, sep, value = line.partition("=")
    if not sep:
        raise ScriptError(f"script line {n}: expected 价格 = ... or 付款方式 = ...")
    key = key.strip().lower()
    if key in _PRICE_KEYS:
        terms["price"] = value.strip()
    elif key in _PAYMENT_KEYS:
        terms["payment"] = value.strip()
    else:
        raise ScriptError(f"script line {n}: unknown product term {key!r} (价格, 付款方式)")


def _question(line: str, number: int) -> Question:
    text, *choices = (part.strip() for part in line.lstrip("-• ").split("|"))
    return Question(f"q{number}", text, tuple(c for c in choices if c))


def fill(text: str, values: Mapping[str, str]) -> str:
    """The text with its ``{fields}`` replaced (a field without a value shows as ``—``)."""
    return _FIELD.sub(lambda m: values.get(m.group(1)) or "—", text)


def filled_parts(script: Script, values: Mapping[str, str]) -> list[tuple[str, str]]:
    """(part key, filled text) in the six parts' order, for the parts the script has."""
    return [(key, fill(script.parts[key], values)) for key, _, _ in PARTS if key in script.parts]
