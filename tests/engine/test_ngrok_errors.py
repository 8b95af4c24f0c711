"""ngrok's error words keep their meaning: one table of advice, the agent's own words quoted, nothing secret."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from wa_devtunnel.engine.tunnel.ngrok_errors import advice_for, agent_words, explain, one_line, tail_lines

OFFLINE = (
    'failed to dial ngrok server with address "connect.ngrok-agent.com:443": dial tcp: lookup '
    "connect.ngrok-agent.com: no such host"
)


@dataclass
class Log:
    line: str
    lvl: str = "INFO"
    msg: str | None = None
    err: str | None = None


@pytest.mark.parametrize(
    ("text", "code", "advice"),
    [
        (
            "ERR_NGROK_334 The endpoint 'https://x.ngrok-free.app' is already online.",
            "ERR_NGROK_334",
            "Your dev domain is already online in another ngrok: stop it (`ngrok http` in another terminal? "
            "another wa-devtunnel?), or end it at https://dashboard.ngrok.com/agents.",
        ),
        (
            "authentication failed: Your account is limited to 3 simultaneous ngrok agent sessions. ERR_NGROK_108",
            "ERR_NGROK_108",
            "the free plan allows 3",
        ),
        (
            "Custom subdomains are a feature on ngrok's paid plans. ERR_NGROK_313",
            "ERR_NGROK_313",
            "Leave NGROK_DOMAIN empty",
        ),
        ("You must reserve a custom hostname ... ERR_NGROK_319", "ERR_NGROK_319", "Leave NGROK_DOMAIN empty"),
        (
            "Nested subdomains of an ngrok base domain must be reserved first. ERR_NGROK_354",
            "ERR_NGROK_354",
            "paid ngrok features",
        ),
        ("network bandwidth limit for the month ERR_NGROK_725", "ERR_NGROK_725", "free plan: 1 GB"),
        ("HTTP requests limit for the month ERR_NGROK_727", "ERR_NGROK_727", "free plan: 20,000"),
        ("exceeded your limit of requests per minute ERR_NGROK_734", "ERR_NGROK_734", "free plan: 4,000"),
        (
            "The authtoken you specified does not look like a proper ngrok tunnel authtoken. ERR_NGROK_105",
            "ERR_NGROK_105",
            "copy it again",
        ),
        (
            "Usage of ngrok requires a verified account and authtoken. ERR_NGROK_4018",
            "ERR_NGROK_4018",
            "NGROK_AUTHTOKEN=<token>",
        ),
        (f"failed to reconnect session: {OFFLINE}", "", "cannot reach ngrok's servers"),
        ("dial tcp 3.15.55.144:443: connect: network is unreachable", "", "cannot reach ngrok's servers"),
        ("proxyconnect tcp: dial tcp 10.0.0.1:3128: connection refused", "", "HTTPS_PROXY"),
        ("tls: failed to verify certificate: x509: certificate signed by unknown authority", "", "HTTPS_PROXY"),
        ("something nobody has seen before", "", ""),
    ],
)
def test_each_error_gets_its_advice(text: str, code: str, advice: str) -> None:
    found, said = advice_for(text)
    assert found == code
    assert advice in said
    assert bool(said) == bool(advice)


def test_version_errors_name_the_exact_binary_to_update() -> None:
    code, advice = advice_for('Your ngrok-agent version "3.1.0" is too old. ERR_NGROK_121', "/opt/tools/ngrok")
    assert code == "ERR_NGROK_121"
    assert "/opt/tools/ngrok" in advice and "`/opt/tools/ngrok update`" in advice
    assert "PYNGROK_NGROK_PATH" in advice and "https://ngrok.com/download" in advice


def test_the_message_quotes_the_agent_on_one_line_without_controls() -> None:
    error = explain("failed to start tunnel:\\nERR_NGROK_334 \x1b[31mred\x1b[0m\n  online")
    assert error.summary == "ngrok refused to start: failed to start tunnel: ERR_NGROK_334 \\x1b[31mred\\x1b[0m online"
    assert error.code == "ERR_NGROK_334"
    assert "\n" not in error.summary
    assert len(one_line("x" * 5000)) == 600


def test_the_agent_s_words_put_its_error_first_and_quote_each_thing_once() -> None:
    logs = [
        Log('t=1 lvl=info msg="starting web service"', "INFO", "starting web service"),
        Log("t=2 lvl=eror ...", "ERROR", "failed to reconnect session", OFFLINE),
        Log("t=3 lvl=eror ...", "ERROR", "failed to reconnect session", OFFLINE),
    ]
    words = agent_words(OFFLINE, logs, ["ERROR:  something on stderr", ""])
    assert words == f"failed to reconnect session: {OFFLINE} | ERROR: something on stderr"


def test_with_no_complaint_the_last_lines_are_quoted_without_their_timestamps() -> None:
    logs = [Log('t=2026-01-01T00:00:00+0000 lvl=info "Not Found" pg=/api/endpoints')]
    assert agent_words(None, logs, []) == 'lvl=info "Not Found" pg=/api/endpoints'
    assert agent_words(None, [], []) == ""


def test_stderr_tail_keeps_the_last_lines() -> None:
    text = "".join(f"line {n}\n\n" for n in range(10))
    assert tail_lines(text, 3) == ["line 7", "line 8", "line 9"]
