//! The work list: one loop per public call, no recursion between handlers.
//!
//! Handlers never call each other through a path that can loop (route →
//! deliver → bounce → route, drive → bind → close → unbind → presence →
//! route, queue drained → drive, ...). Instead they push a [`Task`] with
//! [`SessionManager::defer`]; each public `handle_*` / `complete` / `close`
//! call ends in [`SessionManager::run_tasks`], which drains the list in one
//! loop. Stack depth therefore never depends on input.
//!
//! Order is the same as a depth-first call would give: the tasks a handler
//! defers run right after it, before anything deferred earlier by its
//! callers, and in the order they were deferred. While a handler has
//! deferred something, whatever it does next that must follow that work —
//! an output ([`SessionManager::emit`]), a request, the rest of a session's
//! input, a queue's next item — is deferred too.

use std::time::Instant;

use bytes::Bytes;
use jid::BareJid;
use minidom::Element;

use super::routing::{Origin, Target, Work};
use super::{Pending, SessionManager};
use crate::error::StreamError;
use crate::ids::SessionId;
use crate::negotiation::BindRequest;
use crate::output::{Framing, Output};
use crate::stanza::Stanza;
use crate::storage::Request;
use crate::stream;
use crate::xml::StanzaKind;

/// One item of work.
#[derive(Debug)]
pub(super) enum Task {
    /// An output that must follow work deferred before it.
    Emit(Output),
    /// A request that must follow work deferred before it.
    Request(Pending, Request),
    /// Read a session's buffered input on; `after_stanza` first applies
    /// the per-user ordering check for the stanza just handled.
    Drive { id: SessionId, after_stanza: bool },
    /// A session blocked on its account's queue may read on.
    Unblock(SessionId),
    /// Route a stanza whose `from` is trustworthy.
    Route { stanza: Element, origin: Origin },
    /// Route a stanza whose target is already resolved.
    RouteTo {
        stanza: Stanza,
        origin: Origin,
        target: Target,
    },
    /// Queue work for a user (from inside other work for a user, so that
    /// running it never nests).
    Submit { user: BareJid, work: Work },
    /// Run a user's backlog on.
    ContinueQueue(BareJid),
    /// Suspend a user's work until `request` is answered.
    Park {
        user: BareJid,
        request: Request,
        work: Work,
    },
    /// Finish resource binding (after the session it replaces is gone).
    Bind { id: SessionId, request: BindRequest },
    /// Close a session (stream error or clean) and remove it.
    Close {
        id: SessionId,
        reason: Option<StreamError>,
    },
    /// The last step of removing a session: forget it.
    Forget(SessionId),
    /// Drop an account record nothing needs any more.
    TidyAccount(BareJid),
    /// Hand a stanza's bytes to a session's output, behind work deferred
    /// before it (see `sm`: counted there).
    Deliver {
        session: SessionId,
        data: Bytes,
        kind: StanzaKind,
    },
    /// A stream-management session holds more unacknowledged stanzas than
    /// allowed.
    SmQueueFull(SessionId),
}

impl SessionManager {
    /// Runs `task` after the current handler and what it deferred before.
    pub(super) fn defer(&mut self, task: Task) {
        self.batch.push(task);
    }

    /// Whether the current handler has deferred work: then anything that
    /// must follow it has to be deferred too.
    pub(super) fn deferring(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Queues an output, behind work the current handler deferred.
    pub(super) fn emit(&mut self, output: Output) {
        let output = self.framed(output);
        if self.batch.is_empty() {
            self.out.push_back(output);
        } else {
            self.batch.push(Task::Emit(output));
        }
    }

    /// On a WebSocket session, an element written for a TCP stream becomes
    /// one message's payload carrying its own namespace (RFC 7395).
    pub(super) fn framed(&self, output: Output) -> Output {
        match output {
            Output::Transmit { session, data }
                if self.websocket
                    && self
                        .sessions
                        .get(&session)
                        .is_some_and(|s| s.framing == Framing::WebSocket) =>
            {
                Output::Transmit {
                    session,
                    data: stream::frame_bytes(&data),
                }
            }
            other => other,
        }
    }

    /// Asks the caller for something, behind work the current handler
    /// deferred.
    pub(super) fn request(&mut self, pending: Pending, request: Request) {
        if self.batch.is_empty() {
            self.new_request(pending, request);
        } else {
            self.batch.push(Task::Request(pending, request));
        }
    }

    /// Moves what the last handler deferred to the front of the list, in
    /// the order it was deferred.
    fn flush_batch(&mut self) {
        while let Some(task) = self.batch.pop() {
            self.tasks.push(task);
        }
    }

    /// Drains the work list. Every public entry point ends here.
    pub(super) fn run_tasks(&mut self, now: Instant) {
        self.flush_batch();
        while let Some(task) = self.tasks.pop() {
            self.run_task(task, now);
            self.flush_batch();
        }
    }

    fn run_task(&mut self, task: Task, now: Instant) {
        match task {
            Task::Emit(output) => self.out.push_back(output),
            Task::Request(pending, request) => {
                self.new_request(pending, request);
            }
            Task::Drive { id, after_stanza } => {
                if after_stanza {
                    self.hold_for_queue(id);
                }
                self.drive(id, now);
            }
            Task::Unblock(id) => {
                self.unblock(id);
                self.drive(id, now);
            }
            Task::Route { stanza, origin } => self.route_now(stanza, origin, now),
            Task::RouteTo {
                stanza,
                origin,
                target,
            } => self.route_to_now(stanza, origin, target, now),
            Task::Submit { user, work } => self.submit(user, work, now),
            Task::ContinueQueue(user) => self.continue_queue(user, now),
            Task::Park {
                user,
                request,
                work,
            } => self.park(user, request, work),
            // The session's `Drive` task is already queued behind this one.
            Task::Bind { id, request } => self.bind(id, request, now),
            Task::Close { id, reason } => self.close_session(id, reason, now),
            Task::Forget(id) => self.forget_session(id),
            Task::TidyAccount(user) => self.tidy_account(&user),
            Task::Deliver {
                session,
                data,
                kind,
            } => self.deliver_now(session, data, kind),
            Task::SmQueueFull(id) => self.sm_queue_full(id, now),
        }
    }

    /// Drives a session now, or after the work deferred so far.
    pub(super) fn drive_later(&mut self, id: SessionId, now: Instant) {
        if self.deferring() {
            self.defer(Task::Drive {
                id,
                after_stanza: false,
            });
        } else {
            self.drive(id, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::Task;
    use crate::config::Config;
    use crate::ids::SessionId;
    use crate::manager::SessionManager;
    use crate::output::{Event, Output};

    fn closed(n: u64) -> Output {
        Output::Event(Event::Closed {
            session: SessionId(n),
        })
    }

    #[test]
    fn outputs_after_deferred_work_keep_call_order() {
        let mut m =
            SessionManager::new(Config::builder("localhost").build().expect("valid config"));
        let now = Instant::now();
        // Direct while nothing is deferred, queued behind deferred work after.
        m.emit(closed(1));
        m.defer(Task::Emit(closed(2)));
        m.emit(closed(3));
        assert!(m.deferring());
        m.run_tasks(now);
        assert!(!m.deferring());
        let got: Vec<Output> = std::iter::from_fn(|| m.poll_output()).collect();
        assert_eq!(got, vec![closed(1), closed(2), closed(3)]);
    }
}
