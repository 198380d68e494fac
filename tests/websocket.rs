use xmpp_session::testkit::TestServer;
#[test]
fn scratch() {
    let mut s = TestServer::new();
    s.add_user("romeo", "pass");
    let c = s.connect_websocket();
    for f in s.take_frames(c) {
        println!("{f}");
    }
    s.authenticate_scram(c, "romeo", "pass");
    for f in s.take_frames(c) {
        println!("{f}");
    }
    s.bind(c, Some("ws"));
    for f in s.take_frames(c) {
        println!("{f}");
    }
    s.send_frame(c, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    for f in s.take_frames(c) {
        println!("{f}");
    }
    println!("closed {} errors {:?}", s.is_closed(c), s.client_errors(c));
}
