"""The channel kit: retries, error tables, bounded bodies, background tasks, presence, the shared session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.channels.base import Background, BodyBudget, Presence, Refused, RetryPolicy, parse_json, read_body, translate
from bot.channels.http import SharedSession
from bot.errors import ChannelError
from tests.fakes.serving import running

# -- the retry policy ----------------------------------------------------------------------


class Flaky:
    """Fails with the given errors in turn, then answers "ok"."""

    def __init__(self, *errors: ChannelError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


QUICK = RetryPolicy(attempts=4, base=0.001, cap=0.002, ceiling=0.5)


async def test_retryable_errors_are_retried_until_success() -> None:
    retries: list[int] = []
    call = Flaky(ChannelError("5xx", retryable=True), ChannelError("reset", retryable=True))
    assert await QUICK.run(call, what="test", on_retry=lambda: retries.append(1)) == "ok"
    assert call.calls == 3 and len(retries) == 2


async def test_a_permanent_error_is_raised_at_once() -> None:
    call = Flaky(ChannelError("refused"))
    with pytest.raises(ChannelError, match="refused"):
        await QUICK.run(call, what="test")
    assert call.calls == 1


async def test_attempts_are_bounded() -> None:
    call = Flaky(*[ChannelError("5xx", retryable=True)] * 10)
    with pytest.raises(ChannelError):
        await QUICK.run(call, what="test")
    assert call.calls == QUICK.attempts
    call = Flaky(*[ChannelError("5xx", retryable=True)] * 10)
    with pytest.raises(ChannelError):
        await QUICK.run(call, what="test", attempts=1)  # a read receipt: one try only
    assert call.calls == 1


async def test_retry_after_is_honoured_within_the_ceiling_and_gives_up_past_it() -> None:
    loop = asyncio.get_running_loop()
    call = Flaky(ChannelError("429", retryable=True, retry_after=0.2))
    started = loop.time()
    assert await QUICK.run(call, what="test") == "ok"
    assert loop.time() - started >= 0.19  # waited as told, not the tiny backoff

    call = Flaky(ChannelError("429", retryable=True, retry_after=30.0))  # past the 0.5 s ceiling
    started = loop.time()
    with pytest.raises(ChannelError, match="429"):
        await QUICK.run(call, what="test")
    assert call.calls == 1 and loop.time() - started < 0.1


@pytest.mark.parametrize(
    ("hint", "ceiling", "delay"),
    [(7.0, 60.0, 7.0), (60.0, 60.0, 60.0), (61.0, 60.0, None), (-3.0, 60.0, 0.0), (7.0, 5.0, None)],
    ids=["within", "at-the-ceiling", "past", "negative", "low-ceiling"],
)
def test_the_ceiling(hint: float, ceiling: float, delay: float | None) -> None:
    assert RetryPolicy(ceiling=ceiling).delay(0, hint=hint) == delay


async def test_stopping_ends_the_wait() -> None:
    stopping = asyncio.Event()
    call = Flaky(ChannelError("5xx", retryable=True, retry_after=0.4))
    asyncio.get_running_loop().call_later(0.02, stopping.set)
    with pytest.raises(ChannelError, match="shutting down"):
        await RetryPolicy().run(call, what="test", stopping=stopping)
    assert call.calls == 1


# -- error tables ------------------------------------------------------------------------


class Base(Exception):
    pass


class Child(Base):
    pass


class Grandchild(Child):
    pass


TABLE: dict[type[BaseException], Any] = {
    Base: lambda exc: ChannelError("base", retryable=True),
    Child: lambda exc: ChannelError(f"child: {exc}"),
}


@pytest.mark.parametrize(
    ("exc", "message", "retryable"),
    [(Base("b"), "base", True), (Child("c"), "child: c", False), (Grandchild("g"), "child: g", False)],
    ids=["listed", "subclass-listed", "nearest-listed-ancestor"],
)
def test_translate_takes_the_most_specific_entry(exc: BaseException, message: str, retryable: bool) -> None:
    error = translate(exc, TABLE)
    assert error is not None and str(error) == message and error.retryable is retryable


def test_translate_leaves_unknown_errors_alone() -> None:
    assert translate(ValueError("x"), TABLE) is None


# -- bounded bodies ------------------------------------------------------------------------


async def _echo(request: Request) -> Response:
    try:
        body = await read_body(request, limit=1000)
    except Refused as refused:
        return refused.response()
    return PlainTextResponse(str(len(body)))


@pytest.fixture
async def echo() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Route("/", _echo, methods=["POST"])])
    async with running(app) as url, httpx.AsyncClient(base_url=url, trust_env=False) as client:
        yield client


BODIES = [  # (content, headers, status, text)
    (b"x" * 1000, {"content-type": "application/json"}, 200, "1000"),
    (b"x" * 1001, {"content-type": "application/json"}, 413, "body too large"),
    (b"{}", {"content-type": "text/plain"}, 415, "expected application/json"),
    (b"{}", {"content-type": "application/json; charset=utf-8"}, 200, "2"),
]


@pytest.mark.parametrize(("content", "headers", "status", "text"), BODIES, ids=["at-limit", "past-limit", "wrong-type", "charset"])
async def test_read_body(echo: httpx.AsyncClient, content: bytes, headers: dict[str, str], status: int, text: str) -> None:
    response = await echo.post("/", content=content, headers=headers)
    assert (response.status_code, response.text) == (status, text)


async def test_a_body_without_content_length_is_refused_unread(echo: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 400

    try:
        response = await echo.post("/", content=chunks(), headers={"content-type": "application/json"})
    except httpx.TransportError:  # closed before the client finished writing: also a refusal
        return
    assert response.status_code == 411


async def test_the_budget_refuses_before_reading_and_is_given_back() -> None:
    budget = BodyBudget(1500)
    seen: list[int] = []

    async def endpoint(request: Request) -> Response:
        try:
            body = await read_body(request, limit=1000, budget=budget)
        except Refused as refused:
            return refused.response()
        seen.append(budget.used)
        return PlainTextResponse(str(len(body)))

    app = Starlette(routes=[Route("/", endpoint, methods=["POST"])])
    async with running(app) as url:
        host, port = url.removeprefix("http://").split(":")
        # one client holds 1,000 bytes of the budget with a body it never finishes
        _reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\nxx")
        await writer.drain()
        async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
            while budget.used == 0:
                await asyncio.sleep(0.01)
            busy = await client.post("/", content=b"x" * 600, headers={"content-type": "application/json"})
            assert busy.status_code == 503 and busy.headers["retry-after"]
            assert (await client.post("/", content=b"x" * 500, headers={"content-type": "application/json"})).text == "500"
            writer.close()
            await writer.wait_closed()
            while budget.used:  # the reader that went away gives its share back
                await asyncio.sleep(0.01)
            assert (await client.post("/", content=b"x" * 1000, headers={"content-type": "application/json"})).text == "1000"
    assert seen == [1000, 0]  # what others held once each read was done


async def test_a_body_slower_than_its_timeout_is_a_408() -> None:
    async def endpoint(request: Request) -> Response:
        try:
            await read_body(request, limit=1000, timeout=0.2)
        except Refused as refused:
            return refused.response()
        return PlainTextResponse("read")

    app = Starlette(routes=[Route("/", endpoint, methods=["POST"])])
    async with running(app) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\nxx")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)  # the server answers and closes
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"connection: close" in answer.lower()


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_parse_json_refuses_deep_nesting_as_a_bad_request(depth: int) -> None:
    with pytest.raises(Refused) as refused:
        parse_json(b"[" * depth + b"]" * depth)
    assert refused.value.status == 400
    assert parse_json(b"[" * 50 + b"]" * 50) is not None


# -- background tasks ------------------------------------------------------------------------


async def test_background_counts_failures_and_drains_on_stop(caplog: pytest.LogCaptureFixture) -> None:
    failures: list[BaseException] = []
    tasks = Background("test", on_error=failures.append)
    gate = asyncio.Event()

    async def boom() -> None:
        raise RuntimeError("boom")

    async def quick() -> None:
        await asyncio.sleep(0)

    async def stuck() -> None:
        await gate.wait()

    tasks.spawn(boom())
    tasks.spawn(quick())
    tasks.spawn(stuck())
    assert len(tasks) == 3
    cancelled = await tasks.drain(0.05)
    assert cancelled == 1 and len(tasks) == 0
    assert [str(f) for f in failures] == ["boom"] and "background task failed" in caplog.text


# -- presence: "seen" and "typing…" only when the reply is not immediate -------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_presence_signs_at_once_after_a_pause_and_not_for_quick_replies() -> None:
    clock = Clock()
    presence = Presence(pause=30.0, delay=0.05, clock=clock)
    tasks = Background("test")
    signs: list[str] = []

    async def sign() -> None:
        signs.append("seen")

    first = presence.watch("ana", sign, tasks)  # never answered before: at once
    await tasks.settle()
    assert signs == ["seen"]
    await first.ready()

    clock.now += 5  # a quick exchange: the reply is the sign
    second = presence.watch("ana", sign, tasks)
    await second.ready()
    await asyncio.sleep(0.1)  # past the delay: the timer was cancelled
    assert signs == ["seen"]

    clock.now += 31  # after a pause: at once again
    presence.watch("ana", sign, tasks).close()
    await tasks.settle()
    assert signs == ["seen", "seen"]


async def test_presence_signs_when_the_reply_takes_longer_than_the_delay() -> None:
    clock = Clock()
    presence = Presence(pause=30.0, delay=0.02, clock=clock)
    tasks = Background("test")
    signs: list[str] = []

    async def sign() -> None:
        signs.append("typing")

    presence.replied("ana")  # answered a moment ago
    watch = presence.watch("ana", sign, tasks)
    assert signs == []
    await asyncio.sleep(0.1)  # the reply is slow
    await tasks.settle()
    assert signs == ["typing"]
    await watch.ready(after_sign=True)
    assert signs == ["typing"]  # once only


async def test_a_sign_under_way_is_awaited_before_the_reply() -> None:
    presence = Presence(pause=30.0, delay=1.0)
    tasks = Background("test")
    order: list[str] = []

    async def slow_sign() -> None:
        await asyncio.sleep(0.05)
        order.append("typing")

    watch = presence.watch("ana", slow_sign, tasks)  # first message: sign at once
    await watch.ready(after_sign=True)
    order.append("reply")
    assert order == ["typing", "reply"]


def test_presence_memory_is_bounded() -> None:
    clock = Clock()
    presence = Presence(pause=30.0, limit=100, clock=clock)
    for person in range(1000):
        presence.replied(person)
    assert len(presence) == 100  # the least recent forgotten
    assert presence.due_now(0) and not presence.due_now(999)
    clock.now += 31
    assert presence.due_now(999)
    assert len(presence) == 0  # nobody answered within the pause: nothing kept


# -- the shared HTTP session ------------------------------------------------------------------


async def test_the_shared_session_opens_once_and_closes_with_its_last_user() -> None:
    http = SharedSession()
    with pytest.raises(ChannelError, match="not open"):
        _ = http.session
    first = await http.open()
    second = await http.open()
    assert first is second and not first.closed
    await http.close()
    assert http.is_open and not first.closed
    await http.close()
    assert not http.is_open and first.closed
    await http.close()  # one close too many is harmless
    assert not http.is_open
