"""Severity rules: Alertmanager matcher syntax, first match wins, the playbook's defaults."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from models.classification import RulesError, parse_rules
from models.matchers import MatcherError, parse_matcher
from models.severity import Severity
from streams.rules import load_rules


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ("severity=critical", {"severity": "warning"}, False),
        ('severity!="critical"', {}, True),
        ('alertname=~"High.*"', {"alertname": "HighErrorRate"}, True),
        ('alertname=~"High"', {"alertname": "HighErrorRate"}, False),  # anchored like Alertmanager
        ('alertname!~"Watchdog|InfoInhibitor"', {"alertname": "Watchdog"}, False),
        ('team=""', {}, True),  # a missing label matches as ""
        ('annotations.summary=~".*disk.*"', {}, False),
    ],
)
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels, {}) is expected


@pytest.mark.parametrize(
    ("text", "value", "labels", "expected"),
    [
        # Alertmanager keeps a backslash that escapes nothing it knows: regex escapes work.
        (r'instance=~"host\.example"', r"host\.example", {"instance": "host.example"}, True),
        (r'instance=~"host\.example"', r"host\.example", {"instance": "hostXexample"}, False),
        (r'alertname=~".*\bdown\b.*"', r".*\bdown\b.*", {"alertname": "disk down now"}, True),
        (r'alertname=~".*\bdown\b.*"', r".*\bdown\b.*", {"alertname": "slowdown"}, False),
        (r"path=C:\\temp", "C:\\temp", {"path": "C:\\temp"}, True),  # unquoted values too
        (r'quote="say \"hi\""', 'say "hi"', {"quote": 'say "hi"'}, True),
        (r'text="a\nb"', "a\nb", {"text": "a\nb"}, True),
    ],
)
def test_matcher_values_unescape_as_in_alertmanager(
    text: str, value: str, labels: dict[str, str], expected: bool
) -> None:
    matcher = parse_matcher(text)
    assert matcher.value == value
    assert matcher.matches(labels, {}) is expected
    assert parse_matcher(str(matcher)) == matcher  # the printed form reads back the same


def test_annotation_matcher() -> None:
    m = parse_matcher('annotations.impact=~"(?i).*all users.*"')
    assert m.matches({}, {"impact": "All users unable to log in"})


@pytest.mark.parametrize("text", ["severity", "=x", 'a=~"("', 'a="unterminated', 'a="x"y"', 'a=x"y'])
def test_bad_matchers_are_refused(text: str) -> None:
    with pytest.raises(MatcherError):
        parse_matcher(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('alertname=~"(?=Disk).*"', "invalid perl operator: (?="),  # look-ahead
        ('alertname=~"(?<!Net)Down"', "invalid perl operator: (?<!"),  # look-behind
        (r'alertname=~"(a)\\1"', r"invalid escape sequence: \1"),  # back-reference
        ('alertname=~"("', "missing ): ("),
    ],
)
def test_regexes_are_re2_like_alertmanagers(text: str, reason: str) -> None:
    """What Go's regexp (Alertmanager's) refuses is refused, with RE2's reason as text."""
    with pytest.raises(MatcherError) as refused:
        parse_matcher(text)
    assert str(refused.value).endswith(reason)


def test_a_backtracking_regex_reads_a_long_value_in_linear_time() -> None:
    """``(a+)+$`` against ``a…a!``: Python's re tries 2**n splits of the a's before failing (n=40
    is hours); RE2 answers at once. Run apart, so that a regression fails here instead of hanging
    the suite."""
    check = (
        "from models.matchers import parse_matcher\n"
        "m = parse_matcher('alertname=~\"(a+)+$\"')\n"
        "assert not m.matches({'alertname': 'a' * 40 + '!'}, {})\n"
        "assert not m.matches({'alertname': 'a' * 100_000 + '!'}, {})\n"
        "assert m.matches({'alertname': 'a' * 100_000}, {})\n"
    )
    done = subprocess.run([sys.executable, "-c", check], timeout=60, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


#: The matcher grammar as one regular expression (what parse_matcher used before): the reference.
_REFERENCE = re.compile(
    r"^\s*(?P<name>(?:(?:annotations|classification)\.)?[a-zA-Z_][a-zA-Z0-9_]*)\s*"
    r"(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$",
    re.DOTALL,
)


@settings(max_examples=500, deadline=None)
@given(
    st.text(st.sampled_from(' \t\n\u00a0\u2003a_.=!~"\\x9'), max_size=16),
)
def test_matchers_split_as_the_grammar_says(text: str) -> None:
    """Name, operator and value as the grammar's one regular expression splits them: the text
    reads as the same matcher as its reference split written plainly, or both refuse."""
    expected = _REFERENCE.match(text)
    if expected is None:
        with pytest.raises(MatcherError, match="not a matcher"):
            parse_matcher(text)
        return
    # (One blank after the operator: "_=" then "~" must not read as "_=~".)
    canonical = expected["name"] + expected["op"] + " " + expected["value"]
    assert _outcome(text) == _outcome(canonical)


def _outcome(text: str) -> object:
    """The matcher ``text`` reads as, or why it does not."""
    try:
        return parse_matcher(text)
    except MatcherError as refused:
        return str(refused)


def test_a_long_value_with_blanks_parses_in_linear_time() -> None:
    """A lazy value followed by ``\\s*$`` backtracked quadratically (50,000 blanks: 7 s)."""
    check = (
        "from models.matchers import parse_matcher\n"
        "m = parse_matcher('team=\"x' + ' ' * 2_000_000 + 'y\"  ')\n"
        "assert len(m.value) == 2_000_002\n"
    )
    done = subprocess.run([sys.executable, "-c", check], timeout=60, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_matcher_remembers_few_and_short_values() -> None:
    matcher = parse_matcher('team=~"pay.*"')
    assert parse_matcher('team=~"pay.*"') is matcher  # parsed once per text
    for i in range(1000):
        assert matcher.matches({"team": f"payments-{i}"}, {})
        assert not matcher.matches({"team": f"search-{i}"}, {})
        assert len(matcher._seen) <= 256
    long = "pay" + "x" * 200
    assert matcher.fullmatches(long)
    assert long not in matcher._seen
    assert not matcher.fullmatches("x" + long)
    assert "x" + long not in matcher._seen


_PATTERNS = [
    "pay.*",
    "(critical|page|sev1)",
    "",
    ".",
    "[^a]+",
    "\\x{263a}.*",
    "\\p{Greek}+",
    "(?i)HIGH.*",
    "(?s)a.b",
    "a\\z",
    "[[:word:]]*",
    "\\x{fffd}",
]


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.sampled_from(_PATTERNS),
    value=st.text(st.sampled_from("ayHIGHpc\n\u00e9\u263a\u03b1\U0001f600 \ufffd"), max_size=12),
)
def test_a_matcher_answers_as_re2s_own_fullmatch(pattern: str, value: str) -> None:
    """The compiled program is asked directly (the binding's ``fullmatch`` builds a match object
    and character offsets, 1-4 µs): the answer is the binding's, on text of 1 to 4 UTF-8 bytes a
    character."""
    matcher = parse_matcher(f"x=~{pattern!r}".replace("'", '"'))
    expected = re2.compile(pattern).fullmatch(value) is not None
    assert matcher.fullmatches(value) is expected
    assert matcher.fullmatches(value) is expected  # (remembered)


def test_a_lone_surrogate_is_refused_in_a_matcher_and_read_as_u_fffd_in_a_value() -> None:
    """Python's JSON and YAML readers return lone surrogates from ``\\ud800`` escapes; RE2's
    binding raised ``UnicodeEncodeError`` on them, in a pattern and in a label's value alike. Go's
    JSON decoder reads them as U+FFFD, so Alertmanager's matchers see that."""
    for text in ['a=~"\ud800"', 'a="x\udc80"', 'a\udfff="x"']:
        with pytest.raises(MatcherError, match="lone surrogate"):
            parse_matcher(text)
    assert parse_matcher('a=~"x\\x{fffd}"').matches({"a": "x\ud800"}, {})
    assert parse_matcher('a=~"x."').matches({"a": "x\udfff"}, {})
    assert not parse_matcher('a=~"x"').matches({"a": "x\ud800"}, {})
    assert parse_matcher('a!~"x"').matches({"a": "\ud800"}, {})


DEFAULTS = load_rules(None)


@pytest.mark.parametrize(
    ("labels", "annotations", "severity", "rule"),
    [
        ({"alertname": "CheckoutDown", "severity": "critical"}, {}, Severity.SEV1, "service-down"),
        (
            {"alertname": "Login", "severity": "warning"},
            {"impact": "All users unable to access"},
            Severity.SEV1,
            "all-users-affected",
        ),
        ({"alertname": "HighErrorRate", "severity": "warning"}, {}, Severity.SEV2, "high-error-rate"),
        ({"alertname": "CartBroken", "severity": "critical"}, {}, Severity.SEV2, "core-feature-broken"),
        ({"alertname": "HighLatency", "severity": "warning"}, {}, Severity.SEV3, "degraded-performance"),
        (
            {"alertname": "SearchBroken", "severity": "warning"},
            {},
            Severity.SEV3,
            "non-critical-feature",
        ),
        ({"alertname": "ButtonMisaligned", "severity": "info"}, {}, Severity.SEV4, "cosmetic"),
        ({"alertname": "Anything", "severity": "P1"}, {}, Severity.SEV1, "explicit-sev1"),
        ({"alertname": "Unknown"}, {}, Severity.SEV3, "default"),
    ],
)
def test_default_rules_follow_the_playbook(labels, annotations, severity, rule) -> None:  # type: ignore[no-untyped-def]
    cls = DEFAULTS.classify(labels, annotations)
    assert (cls.severity, cls.rule) == (severity, rule)


def test_data_loss_is_sev1_and_flagged() -> None:
    cls = DEFAULTS.classify(
        {"alertname": "ReplicaLag", "severity": "warning"}, {"impact": "possible data loss"}
    )
    assert cls.severity is Severity.SEV1
    assert cls.data_loss


@pytest.mark.parametrize(
    ("labels", "annotations"),
    [
        (
            {"alertname": "S3ObjectsPublic", "severity": "critical"},
            {"impact": "Unauthorized data access: customer records readable by anyone"},
        ),
        ({"alertname": "Audit", "severity": "warning"}, {"impact": "Unauthorized access to user data"}),
        ({"alertname": "Egress", "severity": "warning"}, {"impact": "possible data exfiltration"}),
        ({"alertname": "CustomerDataLeak", "severity": "warning"}, {}),
        ({"alertname": "DataBreachSuspected"}, {}),
    ],
)
def test_default_rules_mark_a_data_breach_as_a_security_incident(labels, annotations) -> None:  # type: ignore[no-untyped-def]
    cls = DEFAULTS.classify(labels, annotations)
    assert cls.data_breach
    assert cls.security  # a breach is a security incident
    assert not cls.data_loss
    assert any(r.startswith("data breach: ") for r in cls.reasons)


@pytest.mark.parametrize(
    ("labels", "annotations"),
    [
        # The playbook's other security symptom: a security incident, not a breach.
        ({"alertname": "LoginFailures"}, {"impact": "Unauthorized access attempts from 1 IP"}),
        ({"alertname": "SLOBreach", "severity": "critical"}, {}),  # a target, not data
        ({"alertname": "ErrorBudgetBreached", "severity": "warning"}, {}),
        ({"alertname": "MemoryLeak", "severity": "warning"}, {}),
        ({"alertname": "DiskFailing"}, {"impact": "possible data loss"}),
    ],
)
def test_default_breach_rules_are_conservative(labels, annotations) -> None:  # type: ignore[no-untyped-def]
    cls = DEFAULTS.classify(labels, annotations)
    assert not cls.data_breach


def test_default_rules_data_breach_notifies_legal_and_data_loss_does_not() -> None:
    """End to end with the shipped rules and the playbook's policy: the breach alert opens a
    security incident that tells security and legal; the disk losing data opens a SEV1 that
    tells neither."""
    from models.escalation import advance, arm, playbook_policy
    from models.incident import LifecyclePolicy, apply_alert
    from tests.builders import T0, alert

    def contacts(record):  # type: ignore[no-untyped-def]
        cls = DEFAULTS.classify(record.labels, record.annotations)
        outcome = apply_alert(None, None, record, cls, LifecyclePolicy(), T0)
        assert outcome is not None
        assert outcome.incident is not None
        incident = outcome.incident
        (level1,) = advance(arm(incident, playbook_policy(), T0), incident, T0).firings
        return incident, [str(t) for t in level1.targets]

    breach, targets = contacts(
        alert("UserTableRead", severity="warning", annotations={"impact": "unauthorized data access"})
    )
    assert (breach.security, breach.data_breach, breach.data_loss) == (True, True, False)
    assert breach.snapshot().data_breach
    assert "email:legal@optimal-build.com" in targets
    assert "email:security@optimal-build.com" in targets

    loss, targets = contacts(
        alert("ReplicaLag", severity="warning", annotations={"impact": "possible data loss"})
    )
    assert loss.severity is Severity.SEV1
    assert (loss.security, loss.data_breach, loss.data_loss) == (False, False, True)
    assert targets == ["pagerduty:primary"]  # no legal contact for data loss


def test_security_label_marks_security_incident() -> None:
    cls = DEFAULTS.classify({"alertname": "BruteForce", "severity": "warning", "security": "true"}, {})
    assert cls.security
    assert any("security" in r for r in cls.reasons)


def test_explain_names_the_rules_tried() -> None:
    explanation = DEFAULTS.explain({"alertname": "HighLatency", "severity": "warning"}, {})
    assert explanation.matched is not None
    assert explanation.matched.name == "degraded-performance"
    tried = dict(explanation.tried)
    assert "service-down" in tried
    assert "alertname" in tried["service-down"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [", "line 1: not valid YAML"),
        (
            "rules:\n  - name: a\n    severity: SEV5\n    matchers: ['x=\"1\"']\n",
            "line 2: unknown severity 'SEV5'",
        ),
        ("rules:\n  - name: a\n    severity: SEV1\n    matchers: ['x']\n", "line 2: not a matcher"),
        ("rules:\n  - name: a\n    severity: SEV1\n", "line 2: rule 'a' needs at least one matcher"),
        (
            "rules:\n  - name: a\n    severity: SEV1\n    matchers: ['x=1']\n"
            "  - name: a\n    severity: SEV2\n    matchers: ['x=2']\n",
            "line 5: duplicate rule name 'a'",
        ),
        ("rule: []\n", "unknown keys ['rule']"),
        (  # YAML would let the second severity win silently
            "rules:\n  - name: a\n    severity: SEV1\n    matchers: ['x=1']\n    severity: SEV4\n",
            "line 5: not valid YAML: duplicate key 'severity'",
        ),
        (  # ... and the second rules list drop every rule of the first
            "rules:\n  - {name: a, severity: SEV1, matchers: ['x=1']}\n"
            "default: {severity: SEV3}\nrules:\n  - {name: b, severity: SEV2, matchers: ['x=2']}\n",
            "line 4: not valid YAML: duplicate key 'rules'",
        ),
        (
            "default: {severity: SEV0}\nrules:\n  - {name: a, severity: SEV1, matchers: ['x=1']}\n",
            "line 1: unknown severity 'SEV0'",
        ),
    ],
)
def test_bad_rules_fail_with_line_and_reason(text: str, message: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules(text, "my-rules.yaml")
    assert str(err.value).startswith("my-rules.yaml")
    assert message in str(err.value)


def test_rules_with_data_breach_matchers_parse() -> None:
    rules = parse_rules(
        "data_breach:\n"
        "  - 'alertname=~\"(?i).*exfil.*\"'\n"
        "  - 'leak=\"true\"'\n"
        "rules:\n  - {name: a, severity: SEV2, matchers: ['x=\"1\"']}\n"
    )
    assert [str(m) for m in rules.data_breach] == ['alertname=~"(?i).*exfil.*"', 'leak="true"']
    assert "leak" in rules.inputs  # the cache keys on what the breach matchers read
    cls = rules.classify({"x": "1", "leak": "true"}, {})
    assert (cls.severity, cls.rule, cls.security, cls.data_breach) == (Severity.SEV2, "a", True, True)
    assert 'data breach: leak="true"' in cls.reasons
    assert not rules.classify({"x": "1", "leak": "false"}, {}).data_breach  # not the cached one
    no_match = rules.explain({"alertname": "DnsExfilSuspected"}, {}).classification
    assert (no_match.rule, no_match.data_breach, no_match.security) == ("default", True, True)


def test_a_bad_data_breach_matcher_is_refused_with_its_line() -> None:
    text = (
        "default: {severity: SEV3}\n"
        "data_breach:\n"
        "  - 'alertname=~\"(?i).*exfil.*\"'\n"
        "  - 'impact'\n"
        "rules:\n  - {name: a, severity: SEV2, matchers: ['x=\"1\"']}\n"
    )
    with pytest.raises(RulesError) as err:
        parse_rules(text, "my-rules.yaml")
    assert str(err.value).startswith("my-rules.yaml line 4: data_breach: ")
    assert "not a matcher" in str(err.value)
    with pytest.raises(RulesError, match=r"my-rules\.yaml line 1: data_breach: matchers must be"):
        parse_rules(
            "data_breach: 'x=\"1\"'\nrules: [{name: a, severity: SEV1, matchers: ['x=1']}]\n",
            "my-rules.yaml",
        )


def test_rules_file_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: db, severity: SEV1, matchers: ['service=\"db\"']}\n")
    rules = load_rules(path)
    assert rules.classify({"service": "db"}, {}).severity is Severity.SEV1
    assert rules.classify({"service": "web"}, {}).rule == "default"
    with pytest.raises(RulesError, match=r"cannot be read \(No such file or directory\)"):
        load_rules(tmp_path / "missing.yaml")


def test_classify_remembers_by_the_values_the_matchers_read() -> None:
    rules = load_rules(None)
    assert "alertname" in rules.inputs
    assert "annotations.impact" in rules.inputs
    assert "instance" not in rules.inputs
    cases = [
        ({"alertname": "ServiceDown", "severity": "critical"}, {}),
        ({"alertname": "HighLatency", "severity": "warning"}, {}),
        ({"alertname": "ServiceDown", "severity": "critical"}, {"impact": "data loss for users"}),
        ({"alertname": "Foo", "security": "true"}, {}),
        ({"alertname": "Foo"}, {}),
        ({"alertname": "Foo"}, {"impact": "unauthorized data access"}),
        ({"alertname": "CustomerDataLeak"}, {}),
    ]
    for labels, annotations in cases * 2:
        for instance in ("a", "b"):  # a label no rule reads: same classification, from the cache
            found = rules.classify({**labels, "instance": instance}, annotations)
            assert found == rules.explain(labels, annotations).classification
    assert len(rules._cache) == len(cases)


def test_the_classification_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.classification as classification

    monkeypatch.setattr(classification, "CACHE_SIZE", 3)
    rules = load_rules(None)
    for i in range(10):
        rules.classify({"alertname": f"Alert{i}"}, {})
        assert len(rules._cache) <= 3


@pytest.mark.parametrize(
    ("labels", "annotations", "expected"),
    [
        # An impact written as a YAML block (`impact: |`) ends with a line break: RE2's "." stops
        # there without the s flag, so none of these matched, and the breach went public.
        (
            {"alertname": "ExportAnomaly"},
            {"impact": "Unauthorized data access to customer records\n"},
            "breach",
        ),
        (
            {"alertname": "Bucket"},
            {"impact": "Customer data exposure\nthrough a public bucket"},
            "breach",
        ),
        ({"alertname": "Audit"}, {"impact": "Unauthorized access\nto user data"}, "breach"),
        ({"alertname": "Replica"}, {"impact": "Data loss on the primary replica\n"}, "loss"),
        (
            {"alertname": "Login", "severity": "warning"},
            {"impact": "All users\nunable to log in"},
            "sev1",
        ),
        (
            {"alertname": "Login", "severity": "warning"},
            {"impact": "All  users unable to log in"},
            "sev1",
        ),
        # A label value padded with blanks by a templating mistake is still the same word.
        ({"alertname": "BruteForce", "security": " True "}, {}, "security"),
        ({"alertname": "BruteForce", "security": "yes\n"}, {}, "security"),
    ],
)
def test_default_rules_read_words_across_line_breaks_and_blanks(  # type: ignore[no-untyped-def]
    labels, annotations, expected
) -> None:
    cls = DEFAULTS.classify(labels, annotations)
    found = {
        "breach": cls.data_breach and cls.security,
        "loss": cls.data_loss and cls.severity is Severity.SEV1,
        "sev1": cls.severity is Severity.SEV1,
        "security": cls.security,
    }
    assert found[expected], cls
