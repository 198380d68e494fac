// Two xmpp.js clients log in to the example server, romeo over WebSocket
// (RFC 7395) and juliet over plain TCP, and exchange a message each way.
// Usage: node exchange.js WS_URL TCP_URL DOMAIN PASSWORD
// Prints one line per step; exits 0 when both messages arrived.
import { client, xml } from "@xmpp/client";

const [wsUrl, tcpUrl, domain, password] = process.argv.slice(2);
const deadline = setTimeout(() => {
  console.error("timed out");
  process.exit(1);
}, 20000);

function start(service, username, resource) {
  const xmpp = client({ service, domain, username, password, resource });
  xmpp.on("error", (err) => {
    console.error(`${username}: ${err}`);
    process.exit(1);
  });
  return xmpp;
}

const romeo = start(wsUrl, "romeo", "web");
const juliet = start(tcpUrl, "juliet", "balcony");

const online = (xmpp) => new Promise((resolve) => xmpp.on("online", resolve));
const message = (xmpp) =>
  new Promise((resolve) =>
    xmpp.on("stanza", (stanza) => {
      if (stanza.is("message") && stanza.getChildText("body")) resolve(stanza);
    }),
  );

const romeoOnline = online(romeo);
const julietOnline = online(juliet);
await Promise.all([romeo.start(), juliet.start()]);
const [romeoJid, julietJid] = await Promise.all([romeoOnline, julietOnline]);
console.log(`online: ${romeoJid} (WebSocket), ${julietJid} (TCP)`);

const julietGot = message(juliet);
await romeo.send(xml("message", { to: julietJid.toString(), type: "chat" }, xml("body", {}, "Wherefore art thou?")));
const first = await julietGot;
console.log(`juliet got from ${first.attrs.from}: ${first.getChildText("body")}`);

const romeoGot = message(romeo);
await juliet.send(xml("message", { to: romeoJid.toString(), type: "chat" }, xml("body", {}, "Here!")));
const second = await romeoGot;
console.log(`romeo got from ${second.attrs.from}: ${second.getChildText("body")}`);

await Promise.all([romeo.stop(), juliet.stop()]);
clearTimeout(deadline);
console.log("exchanged");
