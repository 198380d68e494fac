// xmpp.js against the example server (started with --sasl2) over plain TCP
// on loopback: a SASL2 + Bind2 login with a password that asks for a FAST
// token, then a second client with the same user-agent id that logs in with
// that token alone (its password is wrong, so only FAST can succeed). Each
// client sends itself a message and waits for it. Prints one JSON line with
// what happened; exits non-zero on any failure or after 20 seconds.
//
// Usage: node login.js xmpp://127.0.0.1:PORT USER PASSWORD

import { client, xml } from "@xmpp/client";

const [service, username, password] = process.argv.slice(2);
const userAgentId = "4f2b1c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

setTimeout(() => {
  console.error("timed out");
  process.exit(2);
}, 20_000).unref();

// One login: resolves with its bound JID, the SASL2 mechanism it used,
// whether stream management was enabled inline, and the token it was given.
async function login(secret, token) {
  const xmpp = client({
    service,
    domain: "localhost",
    username,
    password: secret,
    resource: "interop",
    userAgent: xml("user-agent", { id: userAgentId }, xml("software", {}, "xmpp.js")),
  });
  let saved = null;
  xmpp.fast.fetchToken = async () => token;
  xmpp.fast.saveToken = async (t) => {
    saved = t;
  };
  let mechanism = null;
  xmpp.on("send", (el) => {
    if (el.is("authenticate", "urn:xmpp:sasl:2")) mechanism = el.attrs.mechanism;
  });
  if (process.env.XMPP_DEBUG) {
    xmpp.on("send", (el) => console.error("OUT", el.toString()));
    xmpp.on("element", (el) => console.error("IN ", el.toString()));
  }
  xmpp.on("error", (err) => {
    console.error("xmpp error:", err.message ?? err);
  });
  const echoed = new Promise((resolve) => {
    xmpp.on("stanza", (stanza) => {
      if (stanza.is("message") && stanza.getChildText("body") === "echo") resolve();
    });
  });
  const address = await xmpp.start();
  await xmpp.send(xml("message", { to: address.toString(), type: "chat" }, xml("body", {}, "echo")));
  await echoed;
  const result = {
    jid: address.toString(),
    mechanism,
    sm: xmpp.streamManagement.enabled,
    token: saved?.token ?? null,
    expiry: saved?.expiry ?? null,
  };
  await xmpp.stop();
  return result;
}

try {
  const first = await login(password, null);
  if (!first.token) throw new Error(`no FAST token issued: ${JSON.stringify(first)}`);
  const second = await login("not the password", {
    mechanism: "HT-SHA-256-NONE",
    token: first.token,
    expiry: first.expiry,
  });
  console.log(JSON.stringify({ first, second }));
  process.exit(0);
} catch (err) {
  console.error("failed:", err?.stack ?? err);
  process.exit(1);
}
