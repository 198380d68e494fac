#!/usr/bin/env python3
"""Message carbons (XEP-0280) with a real client library (slixmpp).

Two sessions of romeo (`one` with priority 1, `two` with priority 0) enable
carbons with slixmpp's `xep_0280` plugin; juliet is the third party. Over
plain TCP with SCRAM-SHA-256 (the server runs with `--no-tls`):

1. juliet sends a chat message to romeo's bare JID: romeo/one (the top
   priority) gets it, romeo/two gets a *received* carbon of it;
2. romeo/one sends a chat message to juliet: romeo/two gets a *sent* carbon.

slixmpp only reports carbons whose wrapper comes from the account's bare
JID. Exit status 0 on success, 1 on any failure or timeout, 2 when slixmpp
is missing.
"""

import argparse
import asyncio
import sys

try:
    import slixmpp
except ImportError:
    print("slixmpp is not installed", file=sys.stderr)
    sys.exit(2)


def make_client(jid, priority, args):
    client = slixmpp.ClientXMPP(jid, "password")
    client.enable_starttls = False
    client.enable_direct_tls = False
    client.enable_plaintext = True
    client.register_plugin("xep_0280")
    mechanisms = client.plugin["feature_mechanisms"]
    mechanisms.unencrypted_scram = True
    mechanisms.use_mech = "SCRAM-SHA-256"
    client.ready = asyncio.get_running_loop().create_future()

    async def on_session(_event):
        try:
            client.send_presence(ppriority=priority)
            # The answer also proves the presence before it was handled.
            await client.plugin["xep_0280"].enable(timeout=args.timeout)
            if not client.ready.done():
                client.ready.set_result(str(client.boundjid))
        except Exception as e:  # noqa: BLE001 - reported through the future
            if not client.ready.done():
                client.ready.set_exception(e)

    def on_failure(*_args):
        if not client.ready.done():
            client.ready.set_exception(RuntimeError(f"{jid}: authentication failed"))

    client.add_event_handler("session_start", on_session)
    client.add_event_handler("failed_all_auth", on_failure)
    client.connect(host=args.host, port=args.port)
    return client


def inner(msg, kind):
    # An extension: the plugin returns the forwarded message itself.
    return msg[kind]


async def run(args):
    domain = args.domain
    one = make_client(f"romeo@{domain}/one", 1, args)
    two = make_client(f"romeo@{domain}/two", 0, args)
    juliet = make_client(f"juliet@{domain}/balcony", 0, args)
    loop = asyncio.get_running_loop()
    direct = loop.create_future()
    received = loop.create_future()
    sent = loop.create_future()

    def one_message(msg):
        if msg["type"] == "chat" and msg["body"] and not direct.done():
            direct.set_result((str(msg["from"]), msg["body"]))

    def two_message(msg):
        # A direct delivery to romeo/two would be wrong: it is not the top.
        if msg["type"] == "chat" and msg["body"] and not direct.done():
            direct.set_exception(RuntimeError(f"romeo/two got the message itself: {msg}"))

    def two_received(msg):
        if not received.done():
            m = inner(msg, "carbon_received")
            received.set_result((str(msg["from"]), str(m["from"]), m["body"]))

    def two_sent(msg):
        if not sent.done():
            m = inner(msg, "carbon_sent")
            sent.set_result((str(msg["from"]), str(m["to"]), m["body"]))

    one.add_event_handler("message", one_message)
    two.add_event_handler("message", two_message)
    two.add_event_handler("carbon_received", two_received)
    two.add_event_handler("carbon_sent", two_sent)

    await asyncio.wait_for(asyncio.gather(one.ready, two.ready, juliet.ready), args.timeout)
    print("logged in with carbons enabled: romeo/one, romeo/two; juliet")

    juliet.send_message(mto=f"romeo@{domain}", mbody="To the bare JID", mtype="chat")
    sender, body = await asyncio.wait_for(direct, args.timeout)
    if sender != f"juliet@{domain}/balcony" or body != "To the bare JID":
        raise RuntimeError(f"romeo/one got {body!r} from {sender}")
    wrapper, sender, body = await asyncio.wait_for(received, args.timeout)
    if (wrapper, sender, body) != (f"romeo@{domain}", f"juliet@{domain}/balcony", "To the bare JID"):
        raise RuntimeError(f"received carbon: {(wrapper, sender, body)}")
    print("romeo/two got a received carbon")

    one.send_message(mto=f"juliet@{domain}", mbody="From romeo/one", mtype="chat")
    wrapper, to, body = await asyncio.wait_for(sent, args.timeout)
    if (wrapper, to, body) != (f"romeo@{domain}", f"juliet@{domain}", "From romeo/one"):
        raise RuntimeError(f"sent carbon: {(wrapper, to, body)}")
    print("romeo/two got a sent carbon")

    for client in (one, two, juliet):
        client.disconnect()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5222)
    parser.add_argument("--domain", default="localhost")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    try:
        asyncio.run(run(args))
    except Exception as e:  # noqa: BLE001 - any failure is a test failure
        print(f"FAILED: {e!r}", file=sys.stderr)
        sys.exit(1)
    print("carbons OK")


if __name__ == "__main__":
    main()
