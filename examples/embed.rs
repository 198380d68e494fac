//! Adding one IQ namespace (XEP-0202 entity time, simplified) to the core:
//! the embedder claims it, answers each claimed iq, and disco lists it.
use xmpp_session::testkit::{TestServer, parse_stanza};
use xmpp_session::{Event, xml};

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
            let mut time = xmpp_session::Element::bare("time", "urn:xmpp:time");
            time.append_child(xml::text_element(
                "utc",
                "urn:xmpp:time",
                "2026-11-26T12:00:00Z",
            ));
            time.append_child(xml::text_element("tzo", "urn:xmpp:time", "+00:00"));
            let reply = xml::iq_result(&stanza, Some(time));
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
