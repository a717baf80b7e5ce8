"""The loopback harness the channel tests stand on."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.fakes.serving import running


async def test_running_serves_on_loopback() -> None:
    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("hola")

    async with running(Starlette(routes=[Route("/", hello)])) as base, httpx.AsyncClient(trust_env=False) as client:
        assert (await client.get(base + "/")).text == "hola"
