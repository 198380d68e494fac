//! Adding one IQ namespace (XEP-0202 entity time, simplified) to the core:
//! the embedder claims it, answers each claimed iq, and disco lists it.
use xmpp_session::minidom::rxml::{Namespace, NcName};
use xmpp_session::testkit::{TestServer, parse_stanza};
use xmpp_session::{Element, Event};

/// Sets an attribute in no namespace (minidom keys attributes by namespace
/// and XML name).
fn set_attr(el: &mut Element, name: &str, value: &str) {
    let name = NcName::try_from(name).expect("a valid attribute name");
    el.attrs_mut()
        .insert(Namespace::NONE, name, value.to_owned());
}

fn main() {
    let mut server = TestServer::new();
    server.add_user("romeo", "pass");
    server.manager.register_iq_namespace("urn:xmpp:time");
    let romeo = server.login("romeo", "orchard");
    server.send(
        romeo,
        "<iq type='get' id='t1' to='localhost'><time xmlns='urn:xmpp:time'/></iq>",
    );

    // Claimed stanzas come out as events; answer each iq exactly once.
    for event in server.take_events() {
        if let Event::Stanza { stanza, .. } = event {
            // The result: same id, `from` and `to` swapped.
            let mut reply = parse_stanza(
                "<iq type='result'><time xmlns='urn:xmpp:time'>\
                 <utc>2026-11-26T12:00:00Z</utc><tzo>+00:00</tzo></time></iq>",
            );
            for (name, from) in [("id", "id"), ("to", "from"), ("from", "to")] {
                if let Some(value) = stanza.attr(from) {
                    set_attr(&mut reply, name, value);
                }
            }
            let now = server.now();
            server.manager.handle_routed(reply, now);
        }
    }
    server.pump();
    let got = server.take(romeo);
    assert_eq!(got.len(), 1);
    println!(
        "romeo received: {}",
        String::from_utf8_lossy(&xmpp_session::stream::element_bytes(&got[0]))
    );
    assert!(got[0].has_child("time", "urn:xmpp:time"));

    server.send(romeo, "<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    let disco = server.take(romeo);
    let expected = parse_stanza(
        "<feature xmlns='http://jabber.org/protocol/disco#info' var='urn:xmpp:time'/>",
    );
    assert!(
        disco[0]
            .children()
            .flat_map(|q| q.children())
            .any(|f| *f == expected)
    );
    println!("disco#info lists urn:xmpp:time");
}
