//! Live events: what happens to proxies, toxics and connections, as JSON objects with a
//! timestamp and a sequence number, for `GET /events`.
//!
//! Events go through a bounded broadcast channel: publishing never waits, and a consumer that
//! falls behind loses the oldest events (and is told how many) instead of slowing anything.

use serde::Serialize;
use serde_json::Value;
use std::sync::Mutex;
use std::time::SystemTime;
use tokio::sync::broadcast;

/// Events kept for a slow consumer before it starts losing the oldest.
const CAPACITY: usize = 4096;

/// One thing that happened.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Increases by one per event, so a consumer can tell it missed some.
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// `proxy_created`, `toxic_added`, `connection_opened`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toxic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// Publishes events to whoever listens.
#[derive(Debug)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    /// The last sequence number; held while sending, so events leave in sequence order.
    seq: Mutex<u64>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            sender: broadcast::Sender::new(CAPACITY),
            seq: Mutex::new(0),
        }
    }
}

/// The parts of an event that vary; the bus adds the sequence number and the time.
#[derive(Debug, Default)]
pub struct EventData<'a> {
    pub proxy: Option<&'a str>,
    pub toxic: Option<&'a str>,
    pub client: Option<String>,
    pub detail: Option<Value>,
}

impl EventBus {
    /// Whether anyone subscribes: callers on hot paths skip building events nobody reads.
    pub fn is_watched(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    pub fn publish(&self, kind: &'static str, data: EventData<'_>) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        *seq += 1;
        let _ = self.sender.send(event(*seq, kind, data));
    }

    /// Publishes the event whether or not anyone listens, and returns it with its sequence
    /// number and time, for callers that keep it (the experiments' recent history).
    pub fn publish_numbered(&self, kind: &'static str, data: EventData<'_>) -> Event {
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        *seq += 1;
        let event = event(*seq, kind, data);
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(event.clone());
        }
        event
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

fn event(seq: u64, kind: &'static str, data: EventData<'_>) -> Event {
    Event {
        seq,
        time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        kind,
        proxy: data.proxy.map(str::to_string),
        toxic: data.toxic.map(str::to_string),
        client: data.client,
        detail: data.detail,
    }
}
