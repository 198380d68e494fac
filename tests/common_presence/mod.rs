//! Helpers shared by the presence and roster transcript tests.
#![allow(dead_code)]

use xmpp_session::jid::BareJid;
use xmpp_session::roster::{Roster, RosterChange, RosterItem, Subscription};
use xmpp_session::stream::element_bytes;
use xmpp_session::testkit::{TestServer, account, parse_stanza};
use xmpp_session::{Element, SessionId, Store};

/// The wall-clock stamp the testkit's clock shows before any `advance`.
pub const STAMP: &str = "2026-11-26T08:00:00Z";

/// A test server with these accounts (password "pass").
pub fn server(users: &[&str]) -> TestServer {
    let mut server = TestServer::new();
    for user in users {
        server.add_user(user, "pass");
    }
    server
}

/// Roster pushes carry a random id: rewrite it to `push` so expectations
/// can be written literally. Every other stanza is left alone.
pub fn normalize(mut el: Element) -> Element {
    let is_push = el.name() == "iq"
        && el.attr("type") == Some("set")
        && el.has_child("query", "jabber:iq:roster")
        && el.attr("id").is_some_and(|id| id.starts_with("push"));
    if is_push {
        el.attrs_mut().insert(
            xmpp_session::minidom::rxml::Namespace::NONE,
            xmpp_session::minidom::rxml::NcName::try_from("id").expect("a name"),
            "push".to_owned(),
        );
    }
    el
}

/// What a client received since the last check, pushes normalized.
pub fn received(server: &mut TestServer, id: SessionId) -> Vec<Element> {
    server.take(id).into_iter().map(normalize).collect()
}

fn render(elements: &[Element]) -> String {
    if elements.is_empty() {
        return "  (nothing)".to_owned();
    }
    elements
        .iter()
        .map(|e| format!("  {}", String::from_utf8_lossy(&element_bytes(e))))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Like `TestServer::expect`, with roster push ids normalized to `push`.
#[track_caller]
pub fn expect(server: &mut TestServer, id: SessionId, expected: &[&str]) {
    let got = received(server, id);
    let want: Vec<Element> = expected.iter().map(|x| parse_stanza(x)).collect();
    if got != want {
        panic!(
            "client {id} received:\n{}\nexpected:\n{}",
            render(&got),
            render(&want)
        );
    }
}

/// Asserts that the client received nothing since the last check.
#[track_caller]
pub fn expect_nothing(server: &mut TestServer, id: SessionId) {
    expect(server, id, &[]);
}

/// Asserts that nothing was routed off-server since the last check.
#[track_caller]
pub fn expect_no_route(server: &mut TestServer) {
    let routed = server.take_routed();
    assert!(routed.is_empty(), "routed:\n{}", render(&routed));
}

/// A subscription state as the state table names it, e.g. `none+ask`,
/// `from+ask`, `none+approved`.
pub fn item(contact: &str, state: &str) -> RosterItem {
    let jid = BareJid::new(contact).unwrap();
    let mut item = RosterItem::new(jid);
    for (i, part) in state.split('+').enumerate() {
        match (i, part) {
            (0, s) => item.subscription = Subscription::from_name(s).unwrap(),
            (_, "ask") => item.ask = true,
            (_, "approved") => item.approved = true,
            (_, other) => panic!("unknown state part {other}"),
        }
    }
    item
}

/// Writes an item straight into the store (as if saved long ago).
pub fn store_item(server: &mut TestServer, user: &str, contact: &str, state: &str) {
    let version = server
        .store
        .stored_roster(&account(user))
        .map_or(0, |r| r.version)
        + 1;
    server
        .store
        .change_roster(
            &account(user),
            version,
            &RosterChange::SetItem(item(contact, state)),
        )
        .unwrap();
}

/// Stores a pending inbound subscription request from `contact` to `user`.
pub fn store_pending(server: &mut TestServer, user: &str, contact: &str) {
    let version = server
        .store
        .stored_roster(&account(user))
        .map_or(0, |r| r.version)
        + 1;
    let stanza = parse_stanza(&format!(
        "<presence type='subscribe' from='{contact}' to='{user}@localhost'/>"
    ));
    server
        .store
        .change_roster(
            &account(user),
            version,
            &RosterChange::SetPending(BareJid::new(contact).unwrap(), stanza),
        )
        .unwrap();
}

/// One item as `jid=state`, with the state written as in [`item`].
pub fn describe(item: &RosterItem) -> String {
    let mut s = format!("{}={}", item.jid, item.subscription.as_str());
    if item.ask {
        s.push_str("+ask");
    }
    if item.approved {
        s.push_str("+approved");
    }
    if item.name.is_some() || !item.groups.is_empty() {
        s.push_str(&format!(
            " name={:?} groups={:?}",
            item.name.as_deref().unwrap_or(""),
            item.groups
        ));
    }
    s
}

/// A roster as sorted strings: items (see [`describe`]), then
/// `pending:jid` for each pending inbound request.
pub fn summary(roster: Option<&Roster>) -> Vec<String> {
    let Some(roster) = roster else {
        return Vec::new();
    };
    let mut out: Vec<String> = roster.items.values().map(describe).collect();
    out.extend(roster.pending_in.keys().map(|j| format!("pending:{j}")));
    out
}

/// The stored roster of `user` as in [`summary`].
pub fn stored(server: &TestServer, user: &str) -> Vec<String> {
    summary(server.store.stored_roster(&account(user)))
}

/// Asserts the stored roster of `user`.
#[track_caller]
pub fn expect_stored(server: &TestServer, user: &str, want: &[&str]) {
    let got = stored(server, user);
    assert_eq!(got, want, "stored roster of {user}");
}

/// The stored roster version of `user`.
pub fn stored_version(server: &TestServer, user: &str) -> u64 {
    server
        .store
        .stored_roster(&account(user))
        .map_or(0, |r| r.version)
}

/// Logs in and fetches the roster (so the session is interested); returns
/// the session and the roster result it received.
pub fn login_interested(
    server: &mut TestServer,
    user: &str,
    resource: &str,
) -> (SessionId, Element) {
    let id = server.login(user, resource);
    server.send(
        id,
        "<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>",
    );
    let mut got = received(server, id);
    assert_eq!(got.len(), 1, "roster get answered once: {got:?}");
    let result = got.remove(0);
    assert_eq!(result.attr("type"), Some("result"), "{result:?}");
    (id, result)
}

/// Logs in, fetches the roster and sends initial presence; drains what the
/// session itself received (other sessions keep what they got).
pub fn online(server: &mut TestServer, user: &str, resource: &str) -> SessionId {
    let (id, _) = login_interested(server, user, resource);
    server.send(id, "<presence/>");
    server.take(id);
    id
}

/// Drains every client listed.
pub fn drain(server: &mut TestServer, ids: &[SessionId]) {
    for &id in ids {
        server.take(id);
    }
    server.take_routed();
}

/// Items of a roster result or push as `jid=state` strings (ask and
/// approved as in [`item`]), in document order.
pub fn items_of(iq: &Element) -> Vec<String> {
    let Some(query) = iq.get_child("query", "jabber:iq:roster") else {
        return Vec::new();
    };
    query
        .children()
        .map(|i| {
            let mut s = format!(
                "{}={}",
                i.attr("jid").unwrap_or(""),
                i.attr("subscription").unwrap_or("")
            );
            if i.attr("ask") == Some("subscribe") {
                s.push_str("+ask");
            }
            if i.attr("approved") == Some("true") {
                s.push_str("+approved");
            }
            s
        })
        .collect()
}
