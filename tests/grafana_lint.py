"""grafana/dashboard-linter's rules, re-implemented in Python over a dashboard's JSON, and a small PromQL parser.

The rules follow the Go sources of github.com/grafana/dashboard-linter (``lint/rule_*.go``); the names
are the linter's. Where this project asks for more than the linter, the rule is stricter and says so:

=================================== ===========================================================================
rule                                what is checked (differences from the Go linter in brackets)
=================================== ===========================================================================
template-datasource-rule            one ``datasource`` variable of query ``prometheus``, named ``datasource``
                                    and labelled ``Data source`` [exactly one; the label is an error, not a
                                    warning]
template-job-rule                   a ``job`` variable: a query variable on ``$datasource``, labelled ``Job``,
template-instance-rule              multi-select, ``allValue`` ``.+`` (``instance``: ``Instance``) [and its
                                    query is ``label_values(...)``]
template-label-promql-rule          every query variable is ``label_values``/``label_names``/``metrics``/
                                    ``query_result`` of an expression that parses [the whole call is parsed,
                                    not only the text between the first ``(`` and the last ``)``]
template-on-time-change-reload-rule every query variable has ``refresh: 2`` (on time range change)
panel-datasource-rule               every panel's datasource is the templated one [every panel but rows, and
                                    exactly ``{"type": "prometheus", "uid": "${datasource}"}``]
panel-title-description-rule        every panel has a title and a description [every panel but rows]
panel-units-rule                    a valid unit (the linter's list) [on every panel but rows, always in
                                    ``fieldConfig.defaults.unit``, value mappings exempt nothing; override
                                    units must be valid too]
panel-no-targets-rule               every panel has at least one target [every panel but rows]
target-promql-rule                  every target's ``expr`` parses after the linter's variable expansion
target-rate-interval-rule           a range under ``rate``/``irate`` is ``$__rate_interval`` [``increase`` too]
target-job-rule                     every selector has ``job=~"$job"``
target-instance-rule                every selector has ``instance=~"$instance"``
target-counter-agg-rule             a ``*_total`` selector sits directly in ``rate``/``irate``/``increase``
                                    [by its metric name: the Go rule tests ``selector.String()``, which ends in
                                    ``}`` as soon as the selector has a matcher, so it never fires on them]
=================================== ===========================================================================

and three of this project's own (``custode-*``): the dashboard is provisionable (schemaVersion >= 38, a
stable ``custode-*`` uid, no ``__inputs`` and no ``${DS_...}``, unique panel ids, a grid position for each
panel and no two overlapping), every target names the templated datasource, and the dashboard has a
``tenant`` variable like ``job`` and ``instance``.

The parser covers the PromQL a dashboard uses (selectors, ranges, subqueries, offsets, functions,
aggregations, binary operators with ``bool``/``on``/``ignoring``/``group_*``); Prometheus itself is the
final word, in ``test_grafana_dashboards.py``'s integration test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# ----------------------------------------------------------------------------------------------- PromQL AST


@dataclass
class Node:
    def children(self) -> list[Node]:
        return []


@dataclass
class Matcher:
    name: str
    op: str
    value: str


@dataclass
class VectorSelector(Node):
    name: str | None
    matchers: list[Matcher]
    offset: float | None = None

    def metric(self) -> str | None:
        if self.name is not None:
            return self.name
        for m in self.matchers:
            if m.name == "__name__" and m.op == "=":
                return m.value
        return None


@dataclass
class MatrixSelector(Node):
    vector: VectorSelector
    range: float

    def children(self) -> list[Node]:
        return [self.vector]


@dataclass
class Subquery(Node):
    expr: Node
    range: float
    step: float | None

    def children(self) -> list[Node]:
        return [self.expr]


@dataclass
class Call(Node):
    func: str
    args: list[Node]

    def children(self) -> list[Node]:
        return list(self.args)


@dataclass
class Aggregate(Node):
    op: str
    expr: Node
    param: Node | None = None
    grouping: list[str] = field(default_factory=list)
    without: bool = False

    def children(self) -> list[Node]:
        return [self.param, self.expr] if self.param is not None else [self.expr]


@dataclass
class Binary(Node):
    op: str
    lhs: Node
    rhs: Node
    bool: bool = False

    def children(self) -> list[Node]:
        return [self.lhs, self.rhs]


@dataclass
class Unary(Node):
    op: str
    expr: Node

    def children(self) -> list[Node]:
        return [self.expr]


@dataclass
class Paren(Node):
    expr: Node

    def children(self) -> list[Node]:
        return [self.expr]


@dataclass
class Number(Node):
    value: float


@dataclass
class String(Node):
    value: str


def walk(node: Node, path: tuple[Node, ...] = ()) -> Iterator[tuple[Node, tuple[Node, ...]]]:
    """Every node with its ancestors, outermost first (Go's ``parser.Walk`` with its ``path``)."""
    yield node, path
    for child in node.children():
        yield from walk(child, path + (node,))


def selectors(node: Node) -> list[VectorSelector]:
    return [n for n, _ in walk(node) if isinstance(n, VectorSelector)]


# ----------------------------------------------------------------------------------------------- PromQL parser


class PromQLError(ValueError):
    pass


AGGREGATIONS = {"sum", "avg", "count", "min", "max", "stddev", "stdvar", "topk", "bottomk", "quantile",
                "count_values", "group"}
PARAM_AGGREGATIONS = {"topk", "bottomk", "quantile", "count_values"}
RANGE_FUNCTIONS = {"rate", "irate", "increase", "delta", "idelta", "deriv", "changes", "resets", "predict_linear",
                   "holt_winters", "absent_over_time", "present_over_time", "avg_over_time", "min_over_time",
                   "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time", "stddev_over_time",
                   "stdvar_over_time", "last_over_time"}
FUNCTIONS = RANGE_FUNCTIONS | {
    "abs", "absent", "ceil", "clamp", "clamp_max", "clamp_min", "day_of_month", "day_of_week", "day_of_year",
    "days_in_month", "exp", "floor", "histogram_quantile", "histogram_count", "histogram_sum",
    "histogram_fraction", "hour", "label_join", "label_replace", "ln", "log2", "log10", "minute", "month",
    "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp", "vector", "year", "acos",
    "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "pi", "rad"}
COMPARISONS = {"==", "!=", "<=", "<", ">=", ">"}
PRECEDENCE = [{"or"}, {"and", "unless"}, COMPARISONS, {"+", "-"}, {"*", "/", "%", "atan2"}]
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}

_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+)(?![\w.])
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<ident>[a-zA-Z_][a-zA-Z0-9_:]*)
  | (?P<op>==|!=|<=|>=|=~|!~|[-+*/%^<>=(){}\[\],:@])
""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise PromQLError(f"1:{pos + 1}: unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group(), pos))
        pos = m.end()
    out.append(("eof", "", len(text)))
    return out


def duration_seconds(text: str) -> float:
    parts = re.findall(r"(\d+)(ms|[smhdwy])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise PromQLError(f"bad duration {text!r}")
    return sum(int(n) * DURATION_UNITS[u] for n, u in parts)


def _unquote(raw: str) -> str:
    if raw[0] == "`":
        return raw[1:-1]
    return bytes(raw[1:-1], "utf-8").decode("unicode_escape")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    # -- token helpers
    def peek(self, ahead: int = 0) -> tuple[str, str, int]:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def next(self) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at(self, value: str) -> bool:
        kind, text, _ = self.peek()
        return kind in ("op", "ident") and text == value

    def expect(self, value: str) -> None:
        kind, text, pos = self.next()
        if text != value or kind not in ("op", "ident"):
            raise PromQLError(f"1:{pos + 1}: unexpected {text or 'end of input'!r}, expected {value!r}")

    def fail(self, what: str) -> PromQLError:
        _, text, pos = self.peek()
        return PromQLError(f"1:{pos + 1}: unexpected {text or 'end of input'!r}: {what}")

    # -- grammar
    def parse(self) -> Node:
        node = self.expr(0)
        if self.peek()[0] != "eof":
            raise self.fail("expected the end of the expression")
        return node

    def expr(self, level: int) -> Node:
        if level == len(PRECEDENCE):
            return self.unary()
        lhs = self.expr(level + 1)
        while True:
            kind, text, _ = self.peek()
            if kind not in ("op", "ident") or text not in PRECEDENCE[level]:
                return lhs
            self.next()
            is_bool = False
            if self.at("bool"):
                if text not in COMPARISONS:
                    raise self.fail("bool modifier only on comparisons")
                self.next()
                is_bool = True
            self._vector_matching(text)
            rhs = self.expr(level + 1)
            if text in ("and", "or", "unless") and (isinstance(lhs, (Number, String))
                                                    or isinstance(rhs, (Number, String))):
                raise PromQLError(f"set operator {text!r} not allowed in binary scalar expression")
            if text in COMPARISONS and not is_bool and isinstance(lhs, Number) and isinstance(rhs, Number):
                raise PromQLError("comparisons between scalars must use BOOL modifier")
            lhs = Binary(text, lhs, rhs, is_bool)

    def _vector_matching(self, op: str) -> None:
        if self.at("on") or self.at("ignoring"):
            self.next()
            self._labels()
            if self.at("group_left") or self.at("group_right"):
                if op in ("and", "or", "unless"):
                    raise self.fail("no grouping allowed for set operations")
                self.next()
                if self.at("("):
                    self._labels()

    def _labels(self) -> list[str]:
        self.expect("(")
        names = []
        while not self.at(")"):
            kind, text, pos = self.next()
            if kind != "ident":
                raise PromQLError(f"1:{pos + 1}: unexpected {text!r} in grouping, expected a label name")
            names.append(text)
            if not self.at(")"):
                self.expect(",")
        self.expect(")")
        return names

    def unary(self) -> Node:
        if self.at("-") or self.at("+"):
            op = self.next()[1]
            inner = self.unary()
            if isinstance(inner, Number):
                return Number(-inner.value if op == "-" else inner.value)
            return Unary(op, inner)
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.at("^"):
            self.next()
            return Binary("^", base, self.unary())  # right-associative
        return base

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            if self.at("["):
                self.next()
                rng = self._duration()
                if self.at(":"):
                    self.next()
                    step = None if self.at("]") else self._duration()
                    self.expect("]")
                    node = Subquery(node, rng, step)
                else:
                    self.expect("]")
                    if not isinstance(node, VectorSelector):
                        raise PromQLError("ranges only allowed for vector selectors")
                    node = MatrixSelector(node, rng)
            elif self.at("offset"):
                self.next()
                negative = self.at("-")
                if negative:
                    self.next()
                seconds = self._duration() * (-1 if negative else 1)
                target = node.vector if isinstance(node, MatrixSelector) else node
                if not isinstance(target, (VectorSelector, Subquery)):
                    raise PromQLError("offset modifier must be preceded by an instant vector selector or range "
                                      "vector selector or a subquery")
                if isinstance(target, VectorSelector):
                    target.offset = seconds
            elif self.at("@"):
                self.next()
                if self.at("start") or self.at("end"):
                    self.next()
                    self.expect("(")
                    self.expect(")")
                else:
                    kind, text, pos = self.next()
                    if kind != "number":
                        raise PromQLError(f"1:{pos + 1}: unexpected {text!r} after @")
            else:
                return node

    def _duration(self) -> float:
        kind, text, pos = self.next()
        if kind != "duration":
            raise PromQLError(f"1:{pos + 1}: bad duration {text!r}")
        return duration_seconds(text)

    def primary(self) -> Node:
        kind, text, pos = self.peek()
        if kind == "number":
            self.next()
            return Number(float(int(text, 16)) if text.lower().startswith("0x") else float(text))
        if kind == "duration":
            raise PromQLError(f"1:{pos + 1}: unexpected duration {text!r}")
        if kind == "string":
            self.next()
            return String(_unquote(text))
        if self.at("("):
            self.next()
            inner = self.expr(0)
            self.expect(")")
            return Paren(inner)
        if self.at("{"):
            return self._selector(None)
        if kind == "ident":
            lowered = text.lower()
            if lowered in ("inf", "nan") and self.peek(1)[1] not in ("{", "("):
                self.next()
                return Number(float(lowered))
            if text in AGGREGATIONS and self.peek(1)[1] in ("(", "by", "without"):
                return self._aggregate()
            if self.peek(1)[1] == "(":
                return self._call()
            self.next()
            return self._selector(text)
        raise self.fail("expected an expression")

    def _aggregate(self) -> Node:
        op = self.next()[1]
        grouping, without = [], False
        if self.at("by") or self.at("without"):
            without = self.next()[1] == "without"
            grouping = self._labels()
        self.expect("(")
        param = None
        if op in PARAM_AGGREGATIONS:
            param = self.expr(0)
            self.expect(",")
        inner = self.expr(0)
        self.expect(")")
        if self.at("by") or self.at("without"):
            if grouping:
                raise self.fail("grouping given twice")
            without = self.next()[1] == "without"
            grouping = self._labels()
        return Aggregate(op, inner, param, grouping, without)

    def _call(self) -> Node:
        _, name, pos = self.next()
        if name not in FUNCTIONS:
            raise PromQLError(f"1:{pos + 1}: unknown function with name {name!r}")
        self.expect("(")
        args: list[Node] = []
        while not self.at(")"):
            args.append(self.expr(0))
            if not self.at(")"):
                self.expect(",")
        self.expect(")")
        if name in RANGE_FUNCTIONS:
            index = 1 if name == "quantile_over_time" else 0
            if len(args) <= index or not isinstance(_unparen(args[index]), (MatrixSelector, Subquery)):
                raise PromQLError(f"expected type range vector in call to function {name!r}")
        return Call(name, args)

    def _selector(self, name: str | None) -> VectorSelector:
        matchers: list[Matcher] = []
        if self.at("{"):
            self.next()
            while not self.at("}"):
                kind, label, pos = self.next()
                if kind != "ident":
                    raise PromQLError(f'1:{pos + 1}: unexpected {label!r} in label matching, expected identifier '
                                      'or "}"')
                opkind, op, oppos = self.next()
                if op not in ("=", "!=", "=~", "!~"):
                    raise PromQLError(f"1:{oppos + 1}: unexpected {op!r} in label matching, expected a matcher")
                vkind, value, vpos = self.next()
                if vkind != "string":
                    raise PromQLError(f"1:{vpos + 1}: unexpected {value!r} in label matching, expected string")
                matchers.append(Matcher(label, op, _unquote(value)))
                if not self.at("}"):
                    self.expect(",")
            self.expect("}")
        for m in matchers:
            if m.op in ("=~", "!~"):
                try:
                    re.compile(m.value)
                except re.error as exc:
                    raise PromQLError(f"invalid regular expression {m.value!r}: {exc}") from exc
        if name is None and all(_matches_empty(m) for m in matchers):
            raise PromQLError("vector selector must contain at least one non-empty matcher")
        return VectorSelector(name, matchers)


def _matches_empty(m: Matcher) -> bool:
    if m.op in ("=", "!="):
        return (m.value == "") == (m.op == "=")
    return (re.fullmatch(m.value, "") is not None) == (m.op == "=~")


def _unparen(node: Node) -> Node:
    while isinstance(node, Paren):
        node = node.expr
    return node


def parse(text: str) -> Node:
    if not text.strip():
        raise PromQLError("empty expression")
    return _Parser(text).parse()


# ----------------------------------------------------------------------------------------------- variables

RATE_INTERVAL_MAGIC = "8869990787ms"
"""The linter's sample value for ``$__rate_interval``: a range of exactly this is taken for the variable."""

GLOBAL_SAMPLES = {"__rate_interval": RATE_INTERVAL_MAGIC, "__interval": "4867856611ms", "__interval_ms": "7781188786",
                  "__range_ms": "6737667980", "__range_s": "9397795485", "__range": "6069770749ms",
                  "__auto": "12345ms"}
_VARIABLE = re.compile(r"\$(\w+)|\$\{([^}]+)\}|\[\[([^\[\]]+)\]\]")


def expand_variables(expr: str, values: dict[str, str]) -> str:
    """The linter's ``expandVariables``: variables outside double-quoted strings get a sample value.

    Inside quotes they stay as written, which is what lets ``job=~"$job"`` be checked literally.
    """
    parts = expr.split('"')
    for i in range(0, len(parts), 2):
        def sample(m: re.Match[str]) -> str:
            name = (m.group(1) or m.group(2) or m.group(3)).split(":")[0]
            if name in values:
                return values[name]
            if name.startswith("__auto_interval"):
                return "10s"
            return name
        parts[i] = _VARIABLE.sub(sample, parts[i])
    return '"'.join(parts)


def parse_target(expr: str, dashboard: dict[str, Any]) -> Node:
    values = dict(GLOBAL_SAMPLES)
    for var in dashboard.get("templating", {}).get("list", []):
        current = (var.get("current") or {}).get("value")
        if isinstance(current, list):
            current = current[0] if current else None
        if current and not str(current).startswith("$"):
            values[var["name"]] = str(current)
    return parse(expand_variables(expr, values))


# ----------------------------------------------------------------------------------------------- dashboard walking

@dataclass(frozen=True)
class Finding:
    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.where}: {self.message}"


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows and panels nested in (collapsed) rows included, in order."""
    out: list[dict[str, Any]] = []

    def visit(items: list[dict[str, Any]]) -> None:
        for panel in items:
            out.append(panel)
            visit(panel.get("panels") or [])
    for row in dashboard.get("rows") or []:
        visit(row.get("panels") or [])
    visit(dashboard.get("panels") or [])
    return out


def content_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels(dashboard) if p.get("type") != "row"]


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in content_panels(dashboard):
        for target in panel.get("targets") or []:
            yield panel, target


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard.get("templating", {}).get("list", []))


def variable_query(var: dict[str, Any]) -> str:
    query = var.get("query")
    if isinstance(query, dict):
        return str(query.get("query", ""))
    return str(query or "")


def _where(panel: dict[str, Any], target: dict[str, Any] | None = None) -> str:
    text = f"panel {panel.get('id')} {panel.get('title')!r}"
    return text + (f" target {target.get('refId')}" if target is not None else "")


TEMPLATED_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DATASOURCE_UIDS = {"$datasource", "${datasource}", "$prometheus_datasource", "${prometheus_datasource}"}

# lint/rule_panel_units.go's list (Grafana's valueFormats/categories.ts)
VALID_UNITS = frozenset("""
none string short percent percentunit humidity dB hex0x hex sci locale pixel accMS2 accFS2 accG degree radian
grad arcmin arcsec areaM2 areaF2 areaMI2 flops mflops gflops tflops pflops eflops zflops yflops ppm conppb
conngm3 conngNm3 conμgm3 conμgNm3 conmgm3 conmgNm3 congm3 congNm3 conmgdL conmmolL currencyUSD currencyGBP
currencyEUR currencyJPY currencyRUB currencyUAH currencyBRL currencyDKK currencyISK currencyNOK currencySEK
currencyCZK currencyCHF currencyPLN currencyBTC currencymBTC currencyμBTC currencyZAR currencyINR currencyKRW
currencyIDR currencyPHP currencyVND bytes decbytes bits decbits kbytes deckbytes mbytes decmbytes gbytes
decgbytes tbytes dectbytes pbytes decpbytes pps binBps Bps binbps bps KiBs Kibits KBs Kbits MiBs Mibits MBs
Mbits GiBs Gibits GBs Gbits TiBs Tibits TBs Tbits PiBs Pibits PBs Pbits dateTimeAsIso
dateTimeAsIsoNoDateIfToday dateTimeAsUS dateTimeAsUSNoDateIfToday dateTimeAsLocal dateTimeAsLocalNoDateIfToday
dateTimeAsSystem dateTimeFromNow watt kwatt megwatt gwatt mwatt Wm2 voltamp kvoltamp voltampreact kvoltampreact
watth watthperkg kwatth kwattm amph kamph mamph joule ev amp kamp mamp volt kvolt mvolt dBm ohm kohm Mohm farad
µfarad nfarad pfarad ffarad henry mhenry µhenry lumens flowgpm flowcms flowcfs flowcfm litreh flowlpm flowmlpm
lux forceNm forcekNm forceN forcekN Hs KHs MHs GHs THs PHs EHs massmg massg masslb masskg masst lengthmm
lengthin lengthft lengthm lengthkm lengthmi pressurembar pressurebar pressurekbar pressurepa pressurehpa
pressurekpa pressurehg pressurepsi radbq radci radgy radrad radsv radmsv radusv radrem radexpckg radr radsvh
radmsvh radusvh rotrpm rothz rotrads rotdegs celsius fahrenheit kelvin hertz ns µs ms s m h d dtdurationms
dtdurations dthms dtdhms timeticks clockms clocks cps ops reqps rps wps iops cpm opm rpm wpm mps mpm velocityms
velocitykmh velocitymph velocityknot mlitre litre m3 Nm3 dm3 gallons bool bool_yes_no bool_on_off
""".split())

VARIABLE_FUNCTIONS = {"label_names", "label_values", "metrics", "query_result"}
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def parse_variable_query(query: str) -> tuple[str, Node | None, str | None]:
    """``label_values(selector, label)`` and friends: (function, expression or None, label or None)."""
    m = re.fullmatch(r"\s*([a-z_]+)\((.*)\)\s*", query, re.DOTALL)
    if m is None:
        raise PromQLError(f"invalid 'query': {query}")
    function, inner = m.group(1), m.group(2).strip()
    if function not in VARIABLE_FUNCTIONS:
        raise PromQLError(f"invalid 'function': {function}")
    if function == "label_values":
        head, _, label = inner.rpartition(",")
        label = (label if head else inner).strip()
        if not _LABEL_NAME.fullmatch(label):
            raise PromQLError(f"label_values needs a label name last, got {label!r}")
        if not head:
            return function, None, label
        node = parse(expand_variables(head, GLOBAL_SAMPLES))
        if not isinstance(node, VectorSelector):
            raise PromQLError(f"label_values takes a series selector, not {head.strip()!r}")
        return function, node, label
    if function == "query_result":
        return function, parse(expand_variables(inner, GLOBAL_SAMPLES)), None
    if function == "label_names":
        return function, parse(expand_variables(inner, GLOBAL_SAMPLES)) if inner else None, None
    return function, None, None  # metrics(regex)


# ----------------------------------------------------------------------------------------------- the rules

Rule = Callable[[dict[str, Any]], list[Finding]]
RULES: dict[str, Rule] = {}


def rule(name: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES[name] = fn
        return fn
    return register


def _datasource_vars(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in variables(d) if str(v.get("type", "")).lower() == "datasource"]


def _is_prometheus(d: dict[str, Any]) -> bool:
    found = _datasource_vars(d)
    return bool(found) and found[0].get("query") == "prometheus"


@rule("template-datasource-rule")
def template_datasource(d: dict[str, Any]) -> list[Finding]:
    found = _datasource_vars(d)
    if len(found) != 1:
        return [Finding("template-datasource-rule", "dashboard",
                        f"needs exactly one templated data source, has {len(found)}")]
    var, out = found[0], []
    if var.get("query") != "prometheus":
        out.append(Finding("template-datasource-rule", "dashboard",
                           f"the data source variable is of type {var.get('query')!r}, not 'prometheus'"))
    if var.get("name") not in ("datasource", "prometheus_datasource"):
        out.append(Finding("template-datasource-rule", "dashboard",
                           f"templated data source variable named {var.get('name')!r}, should be named "
                           "'prometheus_datasource', or 'datasource'"))
    if var.get("label") not in ("Data source", "Prometheus data source"):
        out.append(Finding("template-datasource-rule", "dashboard",
                           f"templated data source variable labeled {var.get('label')!r}, should be labeled "
                           "'Prometheus data source', or 'Data source'"))
    return out


def _check_template(d: dict[str, Any], name: str, rule_name: str) -> list[Finding]:
    if not _is_prometheus(d):
        return []
    var = next((v for v in variables(d) if v.get("name") == name), None)
    if var is None:
        return [Finding(rule_name, "dashboard", f"is missing the {name} template")]
    out, where = [], f"variable {name}"
    uid = (var.get("datasource") or {}).get("uid") if isinstance(var.get("datasource"), dict) else var.get(
        "datasource")
    if uid not in DATASOURCE_UIDS:
        out.append(Finding(rule_name, where, f"should use datasource '$datasource', is currently {uid!r}"))
    if var.get("type") != "query":
        out.append(Finding(rule_name, where, f"should be a Prometheus query, is currently {var.get('type')!r}"))
    if var.get("label") != name.title():
        out.append(Finding(rule_name, where, f"should be labeled {name.title()!r}, is {var.get('label')!r}"))
    if not var.get("multi"):
        out.append(Finding(rule_name, where, "should be a multi select"))
    if var.get("allValue") != ".+":
        out.append(Finding(rule_name, where, f"allValue should be '.+', is currently {var.get('allValue')!r}"))
    if not variable_query(var).strip().startswith("label_values("):
        out.append(Finding(rule_name, where, f"should be a label_values() query, is {variable_query(var)!r}"))
    return out


@rule("template-job-rule")
def template_job(d: dict[str, Any]) -> list[Finding]:
    return _check_template(d, "job", "template-job-rule")


@rule("template-instance-rule")
def template_instance(d: dict[str, Any]) -> list[Finding]:
    return _check_template(d, "instance", "template-instance-rule")


@rule("template-label-promql-rule")
def template_label_promql(d: dict[str, Any]) -> list[Finding]:
    if not _is_prometheus(d):
        return []
    out = []
    for var in variables(d):
        if var.get("type") != "query":
            continue
        try:
            parse_variable_query(variable_query(var))
        except PromQLError as exc:
            out.append(Finding("template-label-promql-rule", f"variable {var.get('name')}",
                               f"invalid templated label {variable_query(var)!r}: {exc}"))
    return out


@rule("template-on-time-change-reload-rule")
def template_reload(d: dict[str, Any]) -> list[Finding]:
    return [Finding("template-on-time-change-reload-rule", f"variable {v.get('name')}",
                    f"should be refreshed 'On Time Range Change (value 2)', is currently {v.get('refresh')!r}")
            for v in variables(d) if v.get("type") == "query" and v.get("refresh") != 2]


@rule("panel-datasource-rule")
def panel_datasource(d: dict[str, Any]) -> list[Finding]:
    return [Finding("panel-datasource-rule", _where(p), f"does not use the templated datasource, uses "
                    f"{p.get('datasource')!r}")
            for p in content_panels(d) if p.get("datasource") != TEMPLATED_DATASOURCE]


@rule("panel-title-description-rule")
def panel_title_description(d: dict[str, Any]) -> list[Finding]:
    return [Finding("panel-title-description-rule", _where(p), "has missing title or description")
            for p in content_panels(d) if not p.get("title") or not p.get("description")]


@rule("panel-units-rule")
def panel_units(d: dict[str, Any]) -> list[Finding]:
    out = []
    for p in content_panels(d):
        config = p.get("fieldConfig") or {}
        unit = (config.get("defaults") or {}).get("unit")
        if unit not in VALID_UNITS:
            out.append(Finding("panel-units-rule", _where(p), f"has no or invalid units defined: {unit!r}"))
        for override in config.get("overrides") or []:
            for prop in override.get("properties") or []:
                if prop.get("id") == "unit" and prop.get("value") not in VALID_UNITS:
                    out.append(Finding("panel-units-rule", _where(p),
                                       f"override has an invalid unit: {prop.get('value')!r}"))
    return out


@rule("panel-no-targets-rule")
def panel_no_targets(d: dict[str, Any]) -> list[Finding]:
    return [Finding("panel-no-targets-rule", _where(p), "has no targets")
            for p in content_panels(d) if not p.get("targets")]


def _parsed_targets(d: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any], Node]]:
    for panel, target in targets(d):
        try:
            yield panel, target, parse_target(target.get("expr", ""), d)
        except PromQLError:
            continue  # target-promql-rule reports it


@rule("target-promql-rule")
def target_promql(d: dict[str, Any]) -> list[Finding]:
    if not _is_prometheus(d):
        return []
    out = []
    for panel, target in targets(d):
        try:
            parse_target(target.get("expr", ""), d)
        except PromQLError as exc:
            out.append(Finding("target-promql-rule", _where(panel, target),
                               f"invalid PromQL query {target.get('expr', '')!r}: {exc}"))
    return out


RATE_FUNCTIONS = {"rate", "irate", "increase"}


@rule("target-rate-interval-rule")
def target_rate_interval(d: dict[str, Any]) -> list[Finding]:
    magic = duration_seconds(RATE_INTERVAL_MAGIC)
    out = []
    for panel, target, node in _parsed_targets(d):
        for item, path in walk(node):
            if not isinstance(item, MatrixSelector) or item.range == magic or not path:
                continue
            parent = path[-1]
            if not isinstance(parent, Call):
                out.append(Finding("target-rate-interval-rule", _where(panel, target),
                                   f"invalid PromQL query {target['expr']!r}: $__rate_interval used in non-rate "
                                   "function"))
            elif parent.func in RATE_FUNCTIONS:
                out.append(Finding("target-rate-interval-rule", _where(panel, target),
                                   f"invalid PromQL query {target['expr']!r}: should use $__rate_interval"))
    return out


def _required_matcher(d: dict[str, Any], label: str) -> list[Finding]:
    if not _is_prometheus(d):
        return []
    out = []
    for panel, target, node in _parsed_targets(d):
        for selector in selectors(node):
            found = [m for m in selector.matchers if m.name == label]
            if not any(m.op == "=~" and m.value == f"${label}" for m in found):
                have = ", ".join(f"{m.name}{m.op}{m.value!r}" for m in found) or "not found"
                out.append(Finding(f"target-{label}-rule", _where(panel, target),
                                   f"selector {selector.metric() or '{...}'}: {label} selector {have}, not "
                                   f'{label}=~"${label}"'))
    return out


@rule("target-job-rule")
def target_job(d: dict[str, Any]) -> list[Finding]:
    return _required_matcher(d, "job")


@rule("target-instance-rule")
def target_instance(d: dict[str, Any]) -> list[Finding]:
    return _required_matcher(d, "instance")


@rule("target-counter-agg-rule")
def target_counter_agg(d: dict[str, Any]) -> list[Finding]:
    out = []
    for panel, target, node in _parsed_targets(d):
        for item, path in walk(node):
            if not isinstance(item, VectorSelector) or not (item.metric() or "").endswith("_total"):
                continue
            ok = (len(path) >= 2 and isinstance(path[-1], MatrixSelector) and isinstance(path[-2], Call)
                  and path[-2].func in RATE_FUNCTIONS)
            if not ok:
                out.append(Finding("target-counter-agg-rule", _where(panel, target),
                                   f"counter metric {item.metric()!r} is not aggregated with rate, irate, or "
                                   "increase"))
    return out


UID = re.compile(r"custode-[a-z0-9-]{1,32}")


@rule("custode-provisioning-rule")
def provisioning(d: dict[str, Any]) -> list[Finding]:
    out, where = [], "dashboard"
    if "__inputs" in d or "__requires" in d:
        out.append(Finding("custode-provisioning-rule", where, "has __inputs/__requires: an export 'for sharing "
                           "externally', which file provisioning cannot fill in"))
    if "${DS_" in json.dumps(d):
        out.append(Finding("custode-provisioning-rule", where, "names a ${DS_...} input"))
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 38:
        out.append(Finding("custode-provisioning-rule", where,
                           f"schemaVersion {d.get('schemaVersion')!r} is older than Grafana 10's 38"))
    if not isinstance(d.get("uid"), str) or not UID.fullmatch(d["uid"]):
        out.append(Finding("custode-provisioning-rule", where, f"uid {d.get('uid')!r} is not a stable custode-* uid"))
    if d.get("id") is not None:
        out.append(Finding("custode-provisioning-rule", where, "has a database id: it must be null in a file"))
    if not d.get("title"):
        out.append(Finding("custode-provisioning-rule", where, "has no title"))
    ids = [p.get("id") for p in panels(d)]
    if len(set(ids)) != len(ids) or None in ids:
        out.append(Finding("custode-provisioning-rule", where, f"panel ids are missing or repeated: {ids}"))
    taken: dict[tuple[int, int], dict[str, Any]] = {}
    for p in panels(d):
        pos = p.get("gridPos") or {}
        if not all(isinstance(pos.get(k), int) for k in ("h", "w", "x", "y")) or pos["x"] + pos["w"] > 24:
            out.append(Finding("custode-provisioning-rule", _where(p), f"bad gridPos {pos!r}"))
            continue
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        for other in {id(taken[c]): taken[c] for c in cells & taken.keys()}.values():
            out.append(Finding("custode-provisioning-rule", _where(p), f"overlaps {_where(other)}"))
        taken.update(dict.fromkeys(cells, p))
    return out


@rule("custode-target-datasource-rule")
def target_datasource(d: dict[str, Any]) -> list[Finding]:
    return [Finding("custode-target-datasource-rule", _where(p, t), f"uses datasource {t.get('datasource')!r}")
            for p, t in targets(d) if t.get("datasource") != TEMPLATED_DATASOURCE]


@rule("custode-template-tenant-rule")
def template_tenant(d: dict[str, Any]) -> list[Finding]:
    out = []
    for f in _check_template(d, "tenant", "custode-template-tenant-rule"):
        if "should be labeled" not in f.message:  # "Tenant" is the label, as the linter wants for job
            out.append(f)
    var = next((v for v in variables(d) if v.get("name") == "tenant"), None)
    if var is not None and var.get("type") == "query":
        try:
            _, _, label = parse_variable_query(variable_query(var))
        except PromQLError:
            label = None
        if label != "tenant":
            out.append(Finding("custode-template-tenant-rule", "variable tenant",
                               "should list the values of the tenant label"))
    return out


def lint(dashboard: dict[str, Any], only: set[str] | None = None) -> list[Finding]:
    return [finding for name, check in RULES.items() if only is None or name in only for finding in check(dashboard)]
