"""`wa-devtunnel trigger`: Meta-shaped, signed events on demand (like `stripe trigger`) to test a backend."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from random import Random

from rich.text import Text

from wa_devtunnel.cli.options import ExitCode, Subparsers, Target, UsageError, add_common, target_from_args
from wa_devtunnel.cli.output import console_for, echo, error
from wa_devtunnel.cli.terminal_text import line, say_lines
from wa_devtunnel.engine.instance import origin_key_for
from wa_devtunnel.engine.origin import ORIGIN_HEADER
from wa_devtunnel.engine.trigger import DEFAULT_TIMEOUT_S, Delivery, DeliveryResult, send_deliveries
from wa_devtunnel.rules.decode.items import one_line
from wa_devtunnel.rules.samples import catalogue
from wa_devtunnel.rules.samples.payloads import PHONE_NUMBER_ID, USER_WA_ID, meta_json
from wa_devtunnel.settings import Settings

NAME = "trigger"
READS_SETTINGS = True
MAX_REPEAT = 10_000
MAX_ITEMS = 100_000  # every body is built before the first POST: keep a run in memory
AGAIN_NOTE = " (same bytes again)"
EPILOG = f"""\
The body is compact JSON in Meta's style, signed with X-Hub-Signature-256 (and the legacy
X-Hub-Signature) and sent with Meta's User-Agent, so a backend cannot tell it from a real delivery.
Each request also carries "{ORIGIN_HEADER}: sample": wa-devtunnel's own receiver marks it
(sample) so the live view never mistakes it for Meta's; any other backend ignores the header.

examples:
  wa-devtunnel trigger --list
  wa-devtunnel trigger text --text "Hi there"
  wa-devtunnel trigger status_failed --error-code 131026 --to http://localhost:8000/webhook
  wa-devtunnel trigger text --batch 50                 # 50 messages in one POST
  wa-devtunnel trigger button_reply --duplicate        # the same bytes twice, like a Meta retry
  wa-devtunnel trigger --sequence --shuffle --seed 7   # sent/delivered/read of one id, out of order
"""


def _count(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{value} must be between 1 and {limit}")
        return value

    return parse


def register(subparsers: Subparsers) -> None:
    """`trigger KIND [--to URL] [options]` (the names are part of the CLI contract)."""
    parser = subparsers.add_parser(
        NAME,
        help="send a Meta-shaped, signed event (text, statuses, templates ...) to a URL",
        description="Send Meta-shaped, signed WhatsApp webhook events to your backend or to wa-devtunnel.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", nargs="?", metavar="KIND", help="what to send; --list shows every kind")
    parser.add_argument("--list", action="store_true", help="list every KIND with what it sends, and exit")
    parser.add_argument(
        "--to",
        metavar="URL",
        help="URL to POST to (default: the running wa-devtunnel found in --recordings-dir, else "
        "WA_DEVTUNNEL_FORWARD_TO if set, else http://127.0.0.1:<WA_DEVTUNNEL_PORT or 8765>/webhook/whatsapp)",
    )
    add_common(parser)
    parser.add_argument(
        "--app-secret", metavar="SECRET", help="sign with this App Secret (default WHATSAPP_APP_SECRET; else unsigned)"
    )
    parser.add_argument("--sender", metavar="WA_ID", help="the user's wa_id: messages' from, statuses' recipient_id")
    parser.add_argument("--text", help="the text of the kind: body, caption, reply title, emoji ... (see --list)")
    parser.add_argument("--phone-number-id", metavar="ID", help="metadata.phone_number_id (your business number's id)")
    parser.add_argument("--message-id", metavar="WAMID", help="the wamid of the (first) item (default: a fresh one)")
    parser.add_argument(
        "--error-code", type=int, metavar="CODE", help="status_failed / unsupported error code (131049 / 131051)"
    )
    parser.add_argument(
        "--batch", type=_count(catalogue.MAX_BATCH), default=1, metavar="N", help="N items in one POST (max 1000)"
    )
    parser.add_argument("--repeat", type=_count(MAX_REPEAT), default=1, metavar="N", help="send it N times (fresh ids)")
    parser.add_argument("--duplicate", action="store_true", help="send each POST twice, same bytes (Meta retry)")
    parser.add_argument(
        "--sequence", action="store_true", help="status_sent, status_delivered, status_read of one message id"
    )
    parser.add_argument("--shuffle", action="store_true", help="with --sequence: send them out of order")
    parser.add_argument("--seed", type=int, metavar="N", help="random seed for ids and --shuffle (reproducible runs)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help="seconds to wait for each answer (default 10)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the bodies (one JSON per line), send nothing")


def _check_usage(args: argparse.Namespace) -> catalogue.EventKind | None:
    """The kind asked for, or None for --sequence; raise UsageError on any contradiction."""
    if not 0 < args.timeout <= 600:
        raise UsageError("wa-devtunnel trigger: --timeout must be between 0 and 600 seconds")
    if args.repeat * args.batch > MAX_ITEMS:
        raise UsageError(f"wa-devtunnel trigger: --repeat x --batch is at most {MAX_ITEMS} items per run")
    if args.shuffle and not args.sequence:
        raise UsageError("wa-devtunnel trigger: --shuffle needs --sequence")
    if args.sequence:
        if args.kind is not None:
            raise UsageError("wa-devtunnel trigger: --sequence sends its own statuses; leave out KIND")
        if args.batch != 1 or args.error_code is not None:
            raise UsageError("wa-devtunnel trigger: --sequence sends one status per POST (no --batch/--error-code)")
        return None
    if args.kind is None:
        raise UsageError("wa-devtunnel trigger: KIND is required (wa-devtunnel trigger --list shows them)")
    kind = catalogue.find_kind(args.kind)
    if kind is None:
        matches = catalogue.close_matches(args.kind)
        hint = f"; did you mean {', '.join(matches)}?" if matches else ""
        raise UsageError(f"wa-devtunnel trigger: unknown kind {args.kind!r}{hint} (--list shows every kind)")
    if args.error_code is not None and kind.name not in ("status_failed", "unsupported"):
        raise UsageError("wa-devtunnel trigger: --error-code applies to status_failed and unsupported")
    return kind


def _target(args: argparse.Namespace, settings: Settings) -> Target:
    """--to, else the running wa-devtunnel, else the forward target, else where `up` listens by default."""
    found = target_from_args(args.to, settings, "wa-devtunnel trigger")
    if found is not None:
        return found
    url = settings.local_callback_url
    return Target(url, f"Sending to {url} (no running wa-devtunnel found in {settings.recordings_dir})")


def plan_deliveries(
    kind: catalogue.EventKind | None,
    options: catalogue.TriggerOptions,
    rng: Random,
    *,
    repeat: int = 1,
    duplicate: bool = False,
    shuffle: bool = False,
) -> list[Delivery]:
    """Every POST of one run, in order: bodies are built (and ids drawn) before anything is sent."""
    deliveries: list[Delivery] = []
    for _ in range(repeat):
        if kind is None:
            events = catalogue.status_sequence(options, rng)
            events = catalogue.out_of_order(events, rng) if shuffle else events
        else:
            suffix = f" x{options.batch}" if options.batch > 1 else ""
            events = [(kind.name + suffix, catalogue.build_event(kind, options, rng))]
        for label, event in events:
            body = meta_json(event)
            deliveries.append(Delivery(label, body))
            if duplicate:
                deliveries.append(Delivery(label, body, again=True))
    return deliveries


def format_result(result: DeliveryResult, width: int) -> Text:
    """`  text               200     2.1 ms`, with the target's answer when it is not 2xx (escaped: it is data)."""
    label = result.delivery.label + (AGAIN_NOTE if result.delivery.again else "")
    status = "---" if result.status is None else str(result.status)
    text = Text.assemble(
        line(f"  {label:<{width}}  "),
        (status, "green" if result.ok else "red"),
        f"  {result.elapsed_ms:7.1f} ms",
    )
    if result.error:
        text.append(line(f"  {result.error}"), "red")
    elif not result.ok:
        text.append(line(f"  answered: {one_line(result.answer, 200) or '(empty body)'}"))
    return text


def _summary(results: list[DeliveryResult], planned: int) -> str:
    failed = sum(not r.ok for r in results)
    unsent = planned - len(results)
    text = f"{planned} POSTs: {len(results) - failed} answered 2xx"
    text += f", {failed} failed" if failed else ""
    return text + (f", {unsent} not sent" if unsent else "")


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """Build, sign and send (or print) the events; exit 1 unless every POST got a 2xx."""
    assert settings is not None  # READS_SETTINGS
    if args.list:
        print("wa-devtunnel trigger KIND: every kind, built from Meta's documented samples.\n")
        print("\n".join(catalogue.catalogue_lines()))
        print("\n--sequence (no KIND): status_sent, status_delivered, status_read of one message id.")
        return ExitCode.OK
    kind = _check_usage(args)
    target = _target(args, settings)
    url = target.url
    options = catalogue.TriggerOptions(
        sender=args.sender or USER_WA_ID,
        text=args.text,
        phone_number_id=args.phone_number_id or PHONE_NUMBER_ID,
        message_id=args.message_id,
        error_code=args.error_code,
        batch=args.batch,
        now=int(time.time()),
    )
    rng = Random(args.seed)
    plan = plan_deliveries(kind, options, rng, repeat=args.repeat, duplicate=args.duplicate, shuffle=args.shuffle)
    if args.dry_run:
        for delivery in plan:
            sys.stdout.buffer.write(delivery.body + b"\n")
        sys.stdout.flush()
        return ExitCode.OK
    secret = args.app_secret or settings.app_secret
    out = console_for()
    if target.note:
        say_lines([target.note], sys.stderr)
    if secret:
        source = "--app-secret" if args.app_secret else "WHATSAPP_APP_SECRET"
        echo(out, f"POST {line(url)}  (signed with {source})")
    else:
        echo(out, f"POST {line(url)}  (unsigned)")
        print(
            "warning: no App Secret (WHATSAPP_APP_SECRET or --app-secret): sending without "
            "X-Hub-Signature-256; a backend that checks signatures will refuse these.",
            file=sys.stderr,
        )
    width = max(len(d.label) + (len(AGAIN_NOTE) if d.again else 0) for d in plan)
    results = asyncio.run(
        send_deliveries(
            url,
            plan,
            secret,
            timeout_s=args.timeout,
            on_result=lambda r: echo(out, format_result(r, width)),
            origin_key=origin_key_for(settings.recordings_dir, url),
        )
    )
    if len(plan) > 1:
        print(_summary(results, len(plan)))
    if results and results[-1].unreachable:
        error(
            line(
                f"error: cannot connect to {url} ({results[-1].error}): start `wa-devtunnel` first, "
                "or pass --to with the URL of your backend."
            )
        )
    return ExitCode.OK if all(r.ok for r in results) and len(results) == len(plan) else ExitCode.FAILED
