"""What the receiver decides about one request, one typed value per step, and the one place they become a record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from wa_devtunnel.engine.forwarder import ForwardResult
from wa_devtunnel.engine.origin import new_origin_key
from wa_devtunnel.rules.decode.payload import SeenIds, WebhookSummary, ack_facts
from wa_devtunnel.rules.handshake import VerifyAttempt
from wa_devtunnel.rules.signature import SignatureCheck, SignatureVerdict, SigningKey, check_signature, signing_keys

# Strangers learn nothing from an answer: the reason goes to our own screen and recording only.
GENERIC_ANSWERS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    503: "Service Unavailable",
}
# A body refused for its signature (--require-signature) is kept whole up to this size, else its start:
# Meta retries a refusal, and a stranger's flood must not fill the disk.
REFUSED_BODY_KEPT_BYTES = 256 * 1024
_UNPROVEN = (SignatureVerdict.INVALID, SignatureVerdict.MISSING)
_UNCHECKED = SignatureVerdict.UNCHECKED.value


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    """What the receiver needs to decide, verify and label, built from Settings."""

    path: str
    handshake_tokens: Sequence[tuple[str, str]]
    signature_secrets: Sequence[tuple[str, str]] = ()
    wrong_signing_keys: Sequence[tuple[str, str]] = ()
    accounts_by_phone_number_id: Mapping[str, str] = field(default_factory=dict)
    max_body_bytes: int = 3_670_016
    require_signature: bool = False
    ack_first: bool = False
    ack_first_backlog_bytes: int = 64 * 1024 * 1024
    # Bytes of bodies being read at once, across connections: a stranger's slow megabytes stay bounded.
    body_memory_bytes: int = 128 * 1024 * 1024
    # Only requests carrying this session's key may label themselves selftest/sample/replay.
    origin_key: str = field(default_factory=new_origin_key, repr=False)
    # The verify tokens alone, for redacting them wherever a query carries them.
    verify_tokens: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # The App Secrets as HMAC keys, encoded once here rather than on every request.
    signing_keys: tuple[SigningKey, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signing_keys", signing_keys(self.signature_secrets))
        object.__setattr__(self, "verify_tokens", tuple(token for _, token in self.handshake_tokens))


class Refusal(NamedTuple):
    """A request answered without Meta's semantics (not the path, a wrong method, no memory to read it): why."""

    kind: str
    status: int
    reason: str
    summary: Mapping[str, Any] | None = None

    @property
    def answer(self) -> str:
        """What the sender reads: a generic word, never the reason."""
        return GENERIC_ANSWERS[self.status]

    @property
    def signature(self) -> str:
        """Nothing was checked."""
        return _UNCHECKED


def busy_refusal(detail: str, *, is_event: bool) -> Refusal:
    """Bodies being read already hold the memory budget: 503, so Meta retries later."""
    reason = f"receiver busy: {detail} (WA_DEVTUNNEL_BODY_MEMORY_BYTES); Meta retries a 503"
    return Refusal(
        "event" if is_event else "other", 503, reason, {"ok": False, "problem": reason} if is_event else None
    )


class EventVerdict(NamedTuple):
    """A POST on the webhook path: the answer, the signature check and the decoded WhatsApp summary."""

    kind: str  # always "event"
    status: int
    answer: str
    signature: str
    summary: Mapping[str, Any]
    signature_detail: str | None = None  # None: not checked (the body was too big to read)
    account: str | None = None


class ForwardOutcome(NamedTuple):
    """What forwarding to the developer's backend did: still pending (--ack-first), or its answer."""

    forward: Mapping[str, Any]
    result: ForwardResult | None = None  # None while pending
    inline_reason: str | None = None  # --ack-first could not wait: the backlog was full
    verify: Mapping[str, Any] | None = None  # a forwarded handshake, judged by what the backend answered


Verdict = Refusal | VerifyAttempt | EventVerdict


def refusal_for(require_signature: bool, check: SignatureCheck) -> int | None:
    """With --require-signature a missing signature is 401 and a wrong one 403, like a strict app."""
    if require_signature and check.verdict is SignatureVerdict.MISSING:
        return 401
    if require_signature and check.verdict is SignatureVerdict.INVALID:
        return 403
    return None


def oversized_event(seen_bytes: int, limit: int) -> EventVerdict:
    """A body beyond the size limit is not read, checked or decoded: 413, and the record says why."""
    problem = {"ok": False, "problem": f"body of {seen_bytes} bytes exceeds {limit}"}
    return EventVerdict("event", 413, GENERIC_ANSWERS[413], _UNCHECKED, problem)


def judge_event(
    config: ReceiverConfig, seen: SeenIds, body: bytes, signature_header: str | None, legacy_header: str | None
) -> EventVerdict:
    """The signature first; then one parse (ack_facts), never the decoding: the summary is derived data."""
    check = check_signature(
        body,
        signature_header,
        config.signature_secrets,
        config.wrong_signing_keys,
        legacy_header=legacy_header,
        keys=config.signing_keys,
    )
    verdict = check.verdict.value
    refused = refusal_for(True, check) if config.require_signature else None  # no call on the usual path
    if refused is not None:
        problem = {"ok": False, "problem": "not decoded: refused for its signature (--require-signature)"}
        return EventVerdict("event", refused, GENERIC_ANSWERS[refused], verdict, problem, check.detail)
    if check.verdict in _UNPROVEN and len(body) > REFUSED_BODY_KEPT_BYTES:  # a stranger's megabytes: no decode
        problem_text = f"not decoded: {len(body)} bytes without a valid signature (the body is recorded)"
        summary = WebhookSummary(False, problem_text, "", (), (), (), problem_text).to_dict()
        return EventVerdict("event", 200, "EVENT_RECEIVED", verdict, summary, check.detail, _account((), check))
    # One parse, no decoding: the 400, the flags only we know (duplicate, unknown number) and the account.
    # The rest of the summary is derived data, decoded from the recorded body by whoever shows it.
    facts = ack_facts(body, accounts_by_phone_number_id=config.accounts_by_phone_number_id, seen=seen)
    account = _account(facts.item_accounts, check)
    if facts.refused is not None:  # empty, not JSON or not an object: the reason is the summary's, ours only
        return EventVerdict("event", 400, GENERIC_ANSWERS[400], verdict, facts.refused.to_dict(), check.detail, account)
    return EventVerdict("event", 200, "EVENT_RECEIVED", verdict, facts.partial_summary(), check.detail, account)


def _account(item_accounts: Sequence[str], check: SignatureCheck) -> str | None:
    """The account the items name, or the one whose App Secret signed the body."""
    if len(item_accounts) == 1:
        return item_accounts[0]
    if check.account and check.verdict is SignatureVerdict.VALID:
        return check.account
    return None


def backend_handshake(attempt: VerifyAttempt, result: ForwardResult) -> dict[str, Any]:
    """A forwarded handshake passes or fails by what Meta got from the backend; our own check is kept too."""
    challenge, status = attempt.challenge, result.status
    ok = status == 200 and challenge is not None and result.body == challenge.encode("utf-8")
    if ok:
        reason = ""
    elif status is None:
        reason = "the backend did not answer"
    elif status == 200:
        reason = "the backend answered 200 but not with the challenge verbatim"
    else:
        reason = f"the backend refused it (HTTP {status})"
    return {"ok": ok, "reason": reason, "local": {"ok": attempt.ok, "reason": attempt.reason}}


def exchange_fields(
    origin: str,
    remote: str | None,
    client: str | None,
    verdict: Verdict,
    forward: ForwardOutcome | None,
    body_size: int | None,
    elapsed_ms: float,
) -> dict[str, Any]:
    """The record's fields after `signature`, in the recording's order; `body_size` only for a truncated body.

    `client` is the address the tunnel saw (its forwarded header), kept only when the request came through one.
    """
    fields: dict[str, Any] = {"origin": origin}
    if remote:
        fields["remote"] = remote
    if client:
        fields["client"] = client
    if isinstance(verdict, EventVerdict):
        if verdict.signature_detail is not None:
            fields["signature_detail"] = verdict.signature_detail
        fields["summary"] = verdict.summary
        if verdict.account is not None:
            fields["account"] = verdict.account
    elif isinstance(verdict, Refusal):
        fields["reason"] = verdict.reason
        if verdict.summary is not None:
            fields["summary"] = verdict.summary
    else:
        local = {"ok": verdict.ok, "reason": verdict.reason}
        fields["verify"] = forward.verify if forward is not None and forward.verify is not None else local
        if verdict.account:
            fields["account"] = verdict.account
    if forward is not None:
        if forward.inline_reason is not None:
            fields["forward_inline"] = forward.inline_reason
        fields["forward"] = forward.forward
    if body_size is not None:
        fields["request_body_truncated"] = True
        fields["request_body_size"] = body_size
    fields["elapsed_ms"] = elapsed_ms
    return fields
