//! Where pushed events travel between the relay and the WebSocket hub. In
//! process by default; every subscriber has a bounded view of the stream
//! and learns when it fell behind (it is then disconnected and resumes by
//! token, so a slow client never slows the others or grows memory).

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Messages a subscriber may be behind before it is cut off, by default.
pub const CAPACITY: usize = 4096;

/// What a push is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushKind {
    /// A run's status or outputs changed (`graph_execution_event`).
    Graph,
    /// A node execution changed (`node_execution_event`).
    Node,
}

/// One pushed event: to whom, about what, and its place in the log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Push {
    /// Whose run.
    pub user_id: Uuid,
    /// The run's graph.
    pub graph_id: Uuid,
    /// The run.
    pub execution_id: Uuid,
    /// The event it came from (a redelivery carries the same id).
    pub event_id: Uuid,
    /// Its consistency token: a subscriber resumes after it.
    #[serde(with = "token_text")]
    pub token: eventlog::ConsistencyToken,
    /// When its event was appended.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// What kind of message.
    pub kind: PushKind,
    /// The message's `data`.
    pub data: Value,
}

/// The in-process bus.
#[derive(Debug, Clone)]
pub struct Bus {
    sender: broadcast::Sender<Arc<Push>>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new(CAPACITY)
    }
}

impl Bus {
    /// A bus whose subscribers may fall `capacity` (≥ 1) pushes behind.
    pub fn new(capacity: usize) -> Self {
        Self { sender: broadcast::channel(capacity.max(1)).0 }
    }

    /// Hand pushes to every current subscriber.
    pub fn publish(&self, push: Push) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.sender.send(Arc::new(push));
    }

    /// Everything published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Push>> {
        self.sender.subscribe()
    }
}

/// Tokens travel as their text.
mod token_text {
    use eventlog::ConsistencyToken;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(token: &ConsistencyToken, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(token)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ConsistencyToken, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}
