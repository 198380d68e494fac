#!/usr/bin/env python3
"""A whole session with a real client library (slixmpp), over TLS.

romeo and juliet (password `password`) log in over STARTTLS (`--tls
starttls`) or direct TLS (`--tls direct`, XEP-0368), verifying the server's
certificate against `--ca PATH` for the domain. Then:

1. both fetch their rosters (empty at first);
2. romeo asks to subscribe to juliet; juliet approves and asks back; romeo
   approves: each ends with subscription 'both' in its roster;
3. each sees the other's available presence;
4. they exchange chat messages both ways;
5. juliet leaves; romeo sees her unavailable presence.

Exit status 0 on success, 1 on any failure or timeout (each step is bounded
by --timeout), 2 when slixmpp is missing.
"""

import asyncio
import sys

from loopback_cli import run_main

try:
    import slixmpp
except ImportError:
    print("slixmpp is not installed", file=sys.stderr)
    sys.exit(2)


class Peer:
    """One slixmpp client and futures for what the test waits on."""

    def __init__(self, name, args):
        loop = asyncio.get_running_loop()
        self.jid = f"{name}@{args.domain}"
        self.client = c = slixmpp.ClientXMPP(self.jid, "password")
        c.enable_starttls = args.tls == "starttls"
        c.enable_direct_tls = args.tls == "direct"
        c.enable_plaintext = False
        c.ca_certs = args.ca
        # Subscriptions are handled below, explicitly.
        c.auto_authorize = None
        c.auto_subscribe = False
        self.started = loop.create_future()
        self.tls = False
        self.available = {}  # bare JID -> future of the first available presence
        self.unavailable = {}
        self.messages = asyncio.Queue()
        self.subscribe_requests = asyncio.Queue()
        c.add_event_handler("ssl_cert", lambda _e: setattr(self, "tls", True))
        c.add_event_handler("session_start", self._started)
        c.add_event_handler("failed_all_auth", lambda *_: self._fail("authentication failed"))
        c.add_event_handler("disconnected", lambda *_: self._fail("disconnected"))
        c.add_event_handler("message", self._message)
        c.add_event_handler("presence_subscribe", self._subscribe)
        c.add_event_handler("presence_available", self._available)
        c.add_event_handler("presence_unavailable", self._unavailable)
        c.connect(host=args.host, port=args.port)

    def _fail(self, why):
        if not self.started.done():
            self.started.set_exception(RuntimeError(f"{self.jid}: {why}"))

    async def _started(self, _event):
        if not self.started.done():
            self.started.set_result(None)

    def _message(self, msg):
        if msg["type"] == "chat":
            self.messages.put_nowait((str(msg["from"]), msg["body"]))

    def _subscribe(self, pres):
        self.subscribe_requests.put_nowait(str(pres["from"].bare))

    def _future(self, table, bare):
        if bare not in table:
            table[bare] = asyncio.get_running_loop().create_future()
        return table[bare]

    def _available(self, pres):
        fut = self._future(self.available, str(pres["from"].bare))
        if not fut.done():
            fut.set_result(str(pres["from"]))

    def _unavailable(self, pres):
        # Only a resource going away counts: the server also acknowledges a
        # subscription request with unavailable presence from the bare JID
        # (as Prosody does), which can arrive at any time.
        if not pres["from"].resource:
            return
        fut = self._future(self.unavailable, str(pres["from"].bare))
        if not fut.done():
            fut.set_result(str(pres["from"]))

    async def roster(self):
        await self.client.get_roster()
        return {jid: self.client.client_roster[jid]["subscription"] for jid in self.client.client_roster}


async def step(what, awaitable, timeout):
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f"timed out: {what}") from None


async def run(args):
    t = args.timeout
    romeo, juliet = Peer("romeo", args), Peer("juliet", args)
    await step("login", asyncio.gather(romeo.started, juliet.started), t)
    for p in (romeo, juliet):
        if not p.tls:
            raise RuntimeError(f"{p.jid} logged in without TLS")
    print(f"logged in over {args.tls} with a verified certificate")

    # 1. Rosters, empty at first (fresh in-memory server).
    for p in (romeo, juliet):
        roster = await step(f"{p.jid} roster", p.roster(), t)
        if any(sub != "none" for jid, sub in roster.items() if jid != p.client.boundjid.bare):
            raise RuntimeError(f"{p.jid}: unexpected roster {roster}")
    print("rosters fetched")

    # Initial presence, then 2. mutual subscription.
    romeo.client.send_presence()
    juliet.client.send_presence()
    romeo.client.send_presence(pto=juliet.jid, ptype="subscribe")
    asker = await step("juliet sees romeo's request", juliet.subscribe_requests.get(), t)
    if asker != romeo.jid:
        raise RuntimeError(f"juliet got a request from {asker}")
    juliet.client.send_presence(pto=romeo.jid, ptype="subscribed")
    juliet.client.send_presence(pto=romeo.jid, ptype="subscribe")
    asker = await step("romeo sees juliet's request", romeo.subscribe_requests.get(), t)
    if asker != juliet.jid:
        raise RuntimeError(f"romeo got a request from {asker}")
    romeo.client.send_presence(pto=juliet.jid, ptype="subscribed")

    # 3. Presence both ways.
    romeo_full = await step("juliet sees romeo online", juliet._future(juliet.available, romeo.jid), t)
    juliet_full = await step("romeo sees juliet online", romeo._future(romeo.available, juliet.jid), t)
    print(f"presence seen: {romeo_full} and {juliet_full}")
    for p, other in ((romeo, juliet.jid), (juliet, romeo.jid)):
        roster = await step(f"{p.jid} roster again", p.roster(), t)
        if roster.get(other) != "both":
            raise RuntimeError(f"{p.jid}: subscription to {other} is {roster.get(other)!r}, not 'both'")
    print("subscribed to each other (both)")

    # 4. Chat both ways.
    romeo.client.send_message(mto=juliet.jid, mbody="Hello, Juliet", mtype="chat")
    got = await step("juliet gets the message", juliet.messages.get(), t)
    if got != (romeo_full, "Hello, Juliet"):
        raise RuntimeError(f"juliet got {got}")
    juliet.client.send_message(mto=romeo_full, mbody="Wherefore art thou?", mtype="chat")
    got = await step("romeo gets the answer", romeo.messages.get(), t)
    if got != (juliet_full, "Wherefore art thou?"):
        raise RuntimeError(f"romeo got {got}")
    print("chat exchanged both ways")

    # 5. juliet leaves; romeo sees it.
    juliet.client.disconnect()
    gone = await step("romeo sees juliet leave", romeo._future(romeo.unavailable, juliet.jid), t)
    if gone != juliet_full:
        raise RuntimeError(f"unavailable from {gone}, expected {juliet_full}")
    print(f"{gone} left")
    romeo.client.disconnect()
    await asyncio.sleep(0.1)


def options(parser):
    parser.add_argument("--tls", choices=["starttls", "direct"], default="starttls")
    parser.add_argument("--ca", required=True, help="CA certificate (PEM) to verify the server with")


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], options, run)
