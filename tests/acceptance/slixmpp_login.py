#!/usr/bin/env python3
"""Interop check with a real client library (slixmpp).

Two clients (romeo and juliet, password `password`) log in with SCRAM over
plain TCP (`--tls none`, the default), STARTTLS (`--tls starttls`) or direct
TLS (`--tls direct`, XEP-0368), send initial presence and fetch their rosters; romeo sends a chat
message to juliet's bare JID and juliet answers the full JID it came from.
Exit status 0 when both messages arrive with the expected sender, body and
thread of events; 1 on any failure or timeout; 2 when slixmpp is missing.

`--scenario resume` checks stream management (XEP-0198) instead: romeo
enables it with resumption (slixmpp's `xep_0198` plugin), his TCP
connection is cut from the client side without closing the stream, juliet
sends him three messages meanwhile, romeo reconnects and resumes, and each
message must arrive exactly once.

By default romeo authenticates with SCRAM-SHA-256 and juliet with
SCRAM-SHA-1 (--mech forces one mechanism for both). The mechanism actually
used is checked, so a silent fallback to PLAIN fails the run.

With TLS, the server certificate is verified against `--ca PATH` (a PEM CA
certificate) for the domain, so a test can use a throwaway CA of its own.

Needs slixmpp >= 1.8 (tested with 1.17.0):
    python3 -m venv /tmp/slix && /tmp/slix/bin/pip install slixmpp
    /tmp/slix/bin/python tests/acceptance/slixmpp_login.py --port 5322
"""

import asyncio
import sys

from loopback_cli import run_main

try:
    import slixmpp
except ImportError:
    print("slixmpp is not installed", file=sys.stderr)
    sys.exit(2)


def make_client(jid, password, mech, args, sm=False):
    client = slixmpp.ClientXMPP(jid, password)
    if sm:
        client.register_plugin("xep_0198")
    # Exactly one way to connect: no fallback to another.
    client.enable_starttls = args.tls == "starttls"
    client.enable_direct_tls = args.tls == "direct"
    client.enable_plaintext = args.tls == "none"
    if args.ca:
        client.ca_certs = args.ca  # verification against this CA only
    client.tls_seen = False

    def on_tls(_event):
        client.tls_seen = True

    client.add_event_handler("ssl_cert", on_tls)
    mechanisms = client.plugin["feature_mechanisms"]
    mechanisms.unencrypted_scram = args.tls == "none"
    mechanisms.use_mech = mech  # nothing else, PLAIN included, may be picked
    client.used_mech = None
    client.ready = asyncio.get_running_loop().create_future()

    def on_auth(_stanza):
        client.used_mech = mechanisms.mech.name if mechanisms.mech else None

    async def on_session(_event):
        client.send_presence()
        await client.get_roster()
        if not client.ready.done():
            client.ready.set_result(str(client.boundjid))

    def on_failure(*_args):
        if not client.ready.done():
            client.ready.set_exception(RuntimeError(f"{jid}: authentication failed"))

    def on_disconnect(*_args):
        if not client.ready.done():
            client.ready.set_exception(RuntimeError(f"{jid}: disconnected before session start"))

    client.add_event_handler("auth_success", on_auth)
    client.add_event_handler("session_start", on_session)
    client.add_event_handler("failed_all_auth", on_failure)
    client.add_event_handler("disconnected", on_disconnect)
    client.connect(host=args.host, port=args.port)
    return client


async def run(args):
    domain = args.domain
    romeo_mech = args.mech or "SCRAM-SHA-256"
    juliet_mech = args.mech or "SCRAM-SHA-1"
    romeo = make_client(f"romeo@{domain}", "password", romeo_mech, args)
    juliet = make_client(f"juliet@{domain}", "password", juliet_mech, args)
    loop = asyncio.get_running_loop()
    got_juliet = loop.create_future()
    got_romeo = loop.create_future()

    def juliet_message(msg):
        if msg["type"] == "chat" and not got_juliet.done():
            got_juliet.set_result((str(msg["from"]), msg["body"]))
            msg.reply("Wherefore art thou?").send()

    def romeo_message(msg):
        if msg["type"] == "chat" and not got_romeo.done():
            got_romeo.set_result((str(msg["from"]), msg["body"]))

    juliet.add_event_handler("message", juliet_message)
    romeo.add_event_handler("message", romeo_message)

    romeo_jid, juliet_jid = await asyncio.wait_for(
        asyncio.gather(romeo.ready, juliet.ready), args.timeout
    )
    for client, jid, mech in ((romeo, romeo_jid, romeo_mech), (juliet, juliet_jid, juliet_mech)):
        if client.used_mech != mech:
            raise RuntimeError(f"{jid} authenticated with {client.used_mech}, expected {mech}")
        if args.tls != "none" and not client.tls_seen:
            raise RuntimeError(f"{jid} logged in without TLS")
        print(f"logged in: {jid} ({client.used_mech}, {args.tls})")

    romeo.send_message(mto=f"juliet@{domain}", mbody="Hello, Juliet", mtype="chat")
    sender, body = await asyncio.wait_for(got_juliet, args.timeout)
    if sender != romeo_jid or body != "Hello, Juliet":
        raise RuntimeError(f"juliet got {body!r} from {sender}")
    sender, body = await asyncio.wait_for(got_romeo, args.timeout)
    if sender != juliet_jid or body != "Wherefore art thou?":
        raise RuntimeError(f"romeo got {body!r} from {sender}")
    print("chat exchanged both ways")

    for client in (romeo, juliet):
        client.disconnect()
    await asyncio.sleep(0.1)


async def run_resume(args):
    domain = args.domain
    loop = asyncio.get_running_loop()
    romeo = make_client(f"romeo@{domain}", "password", "SCRAM-SHA-256", args, sm=True)
    juliet = make_client(f"juliet@{domain}", "password", "SCRAM-SHA-1", args)
    sm = romeo.plugin["xep_0198"]
    enabled, lost, resumed = (loop.create_future() for _ in range(3))

    def settle(future):
        return lambda *_args: future.done() or future.set_result(True)

    romeo.add_event_handler("sm_enabled", settle(enabled))
    romeo.add_event_handler("disconnected", settle(lost))
    romeo.add_event_handler("session_resumed", settle(resumed))
    received = []

    def romeo_message(msg):
        if msg["type"] == "chat":
            received.append(msg["body"])

    romeo.add_event_handler("message", romeo_message)
    romeo_jid, _ = await asyncio.wait_for(asyncio.gather(romeo.ready, juliet.ready), args.timeout)
    await asyncio.wait_for(enabled, args.timeout)
    if not sm.sm_id:
        raise RuntimeError("the server did not offer resumption")
    print(f"stream management enabled for {romeo_jid}, resumption id {sm.sm_id}")

    # Cut the TCP connection from the client side without closing the stream.
    romeo.transport.abort()
    await asyncio.wait_for(lost, args.timeout)
    await asyncio.sleep(0.3)  # the server notices the dropped socket
    bodies = [f"while you were away {i}" for i in range(3)]
    for body in bodies:
        juliet.send_message(mto=romeo_jid, mbody=body, mtype="chat")
    await asyncio.sleep(0.3)

    romeo.connect(host=args.host, port=args.port)
    await asyncio.wait_for(resumed, args.timeout)
    if str(romeo.boundjid) != romeo_jid:
        raise RuntimeError(f"resumed as {romeo.boundjid}, expected {romeo_jid}")
    for _ in range(int(args.timeout / 0.05)):
        if len(received) >= len(bodies):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # time for a duplicate to show up
    if sorted(received) != sorted(bodies):
        raise RuntimeError(f"romeo received {received}, expected each of {bodies} once")
    print("resumed; each message arrived exactly once")
    for client in (romeo, juliet):
        client.disconnect()
    await asyncio.sleep(0.1)


def options(parser):
    parser.add_argument("--mech", choices=["SCRAM-SHA-1", "SCRAM-SHA-256"], help="use this mechanism for both clients")
    parser.add_argument("--tls", choices=["none", "starttls", "direct"], default="none",
                        help="how to connect [none]")
    parser.add_argument("--ca", help="CA certificate (PEM) to verify the server with")
    parser.add_argument("--scenario", choices=["chat", "resume"], default="chat",
                        help="chat both ways, or stream management resumption [chat]")


def run_scenario(args):
    return run_resume(args) if args.scenario == "resume" else run(args)


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], options, run_scenario)
