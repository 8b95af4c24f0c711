"""An aiohttp webhook handler tested with fixtures exported by `wa-devtunnel export`."""

import asyncio
import hashlib
import hmac
import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from wa_devtunnel.pytest_plugin import signed_webhook

APP_SECRET = "test-app-secret"
FAILED_CODES = web.AppKey("failed_codes", list)
TEXTS = web.AppKey("texts", list)


async def receive_webhook(request: web.Request) -> web.Response:
    body = await request.read()  # the raw bytes: the signature covers them exactly
    expected = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get("X-Hub-Signature-256", ""), expected):
        return web.Response(status=403)
    payload = json.loads(body)
    for entry in payload["entry"]:  # read every entry and change: Meta batches
        for change in entry["changes"]:
            value = change["value"]
            for message in value.get("messages", []):
                if message["type"] == "text":
                    request.app[TEXTS].append(message["text"]["body"])
            for status in value.get("statuses", []):
                if status["status"] == "failed":
                    request.app[FAILED_CODES].append(status["errors"][0]["code"])
    return web.Response(text="EVENT_RECEIVED")


def create_app() -> web.Application:
    app = web.Application()
    app[FAILED_CODES] = []
    app[TEXTS] = []
    app.router.add_post("/webhook/whatsapp", receive_webhook)
    return app


def post(body: bytes, headers: dict[str, str]) -> tuple[int, web.Application]:
    """POST to a fresh app (with pytest-aiohttp, the aiohttp_client fixture does the same)."""

    async def send() -> tuple[int, web.Application]:
        app = create_app()
        async with TestClient(TestServer(app)) as client:
            response = await client.post("/webhook/whatsapp", data=body, headers=headers)
            return response.status, app

    return asyncio.run(send())


def test_failed_status_is_recorded(whatsapp_webhook):
    body, headers = whatsapp_webhook("statuses.failed-131049", APP_SECRET)
    status, app = post(body, headers)
    assert status == 200
    assert app[FAILED_CODES] == [131049]


def test_text_message_is_read(whatsapp_webhook):
    status, app = post(*whatsapp_webhook("messages.text", APP_SECRET))
    assert status == 200
    assert len(app[TEXTS]) == 1


def test_edited_payload_signed_again(whatsapp_payload):
    payload = json.loads(whatsapp_payload("statuses.failed-131049"))
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"] = 131026
    status, app = post(*signed_webhook(payload, APP_SECRET))
    assert status == 200
    assert app[FAILED_CODES] == [131026]


def test_wrong_secret_is_refused(whatsapp_payload):
    body, headers = signed_webhook(whatsapp_payload("statuses.failed-131049"), "not-the-app-secret")
    status, app = post(body, headers)
    assert status == 403
    assert app[FAILED_CODES] == []
