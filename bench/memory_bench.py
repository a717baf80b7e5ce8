"""Server memory at the 100,000-person caps: `pregunta serve` after 100,000 distinct people wrote.

The caps are per process: the read receipts' `Presence` (people who got a reply in the
last 30 s), the flood guard and state cache of the path without the inbox, and the lock
tables. The inbox path keeps no per-person state in memory (state and flood counts are
read from the database), so this measures what is left. Each person sends "hola" then
taps a language (their state is stored with options); webhooks carry 100 messages each,
as Meta batches them under load, to a real `pregunta serve` (SQLite, or --db PostgreSQL)
answering to the lean fake Graph API of e2e_bench. Prints VmRSS and VmHWM before and after,
and per person. Asserts nothing.

Usage: python bench/memory_bench.py [--people N] [--db postgresql://…] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import hmac
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e_bench import APP_SECRET, DATA, LeanGraph, Replies, WhatsApp, _postgres_schema, _run, serving, serving_aiohttp  # noqa: E402


def batch_body(template: dict[str, Any], people: list[str], first_id: int, step: str) -> bytes:
    data = copy.deepcopy(template)
    value = data["entry"][0]["changes"][0]["value"]
    message, contact = value["messages"][0], value["contacts"][0]
    messages, contacts = [], []
    for n, person in enumerate(people):
        m = copy.deepcopy(message)
        m.update({"from": person, "id": f"wamid.MEM{first_id + n:012d}", "timestamp": str(int(time.time()))})
        if step == "hola":
            m["type"], m["text"] = "text", {"body": "hola"}
        else:
            m.pop("text", None)
            m["type"] = "interactive"
            m["interactive"] = {"type": "button_reply", "button_reply": {"id": "lang:es", "title": "1 Español"}}
        c = copy.deepcopy(contact)
        c["wa_id"] = person
        messages.append(m)
        contacts.append(c)
    value["messages"], value["contacts"] = messages, contacts
    return json.dumps(data).encode()


async def main(people: int, batch: int, db: str | None) -> None:
    replies = Replies()
    fake = LeanGraph(replies)
    template = json.loads((DATA / "whatsapp" / "text.json").read_text())
    channel = WhatsApp()
    async with serving_aiohttp(fake.app) as fake_url:
        with tempfile.TemporaryDirectory(prefix="pregunta-memory-") as folder:
            env = {**channel.env(fake_url), "PREGUNTA_CONTENT": str(ROOT / "content")}
            schema_context = _postgres_schema(db) if db else None
            if schema_context is not None:
                env["PREGUNTA_DB"] = await schema_context.__aenter__()
            try:
                async with serving("project", [sys.executable, "-m", "bot", "serve"], env, Path(folder), ROOT, False) as server:
                    base_rss, base_hwm = server.status("VmRSS"), server.status("VmHWM")
                    print(f"after start: VmRSS {base_rss / 1024:.1f} MB, VmHWM {base_hwm / 1024:.1f} MB", flush=True)
                    started = time.perf_counter()
                    async with aiohttp.ClientSession() as http:
                        ids = 0
                        for step in ("hola", "lang"):
                            for start in range(0, people, batch):
                                group = [f"5029{n:08d}" for n in range(start, min(people, start + batch))]
                                body = batch_body(template, group, ids, step)
                                ids += len(group)
                                signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
                                headers = {"content-type": "application/json", "x-hub-signature-256": signature}
                                async with http.post(server.url + "/webhooks/whatsapp", data=body, headers=headers) as response:
                                    assert response.status == 200, response.status
                                while sum(replies.count.values()) < ids - 2000:  # keep the inbox from growing without end
                                    await asyncio.sleep(0.05)
                            print(f"{step}: {people:,} people sent in {time.perf_counter() - started:.0f} s", flush=True)
                        deadline = time.monotonic() + 600
                        while len(replies.count) < people or min(replies.count.values()) < 2:
                            assert time.monotonic() < deadline, "replies missing"
                            await asyncio.sleep(0.2)
                    elapsed = time.perf_counter() - started
                    rss, hwm = server.status("VmRSS"), server.status("VmHWM")
                    total = sum(replies.count.values())
                    print(f"{total:,} replies to {people:,} people in {elapsed:.0f} s ({total / elapsed:.0f} msgs/s)")
                    print(f"after: VmRSS {rss / 1024:.1f} MB, VmHWM {hwm / 1024:.1f} MB; "
                          f"{(hwm - base_hwm) * 1024 / people:.0f} bytes of high-water mark per person")  # fmt: skip
            finally:
                if schema_context is not None:
                    await schema_context.__aexit__(None, None, None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100, help="messages per webhook (default 100)")
    parser.add_argument("--db", help="a postgresql:// URL (default: a SQLite file)")
    args = parser.parse_args()
    _run(main(args.people, args.batch, args.db))
