//! Pushes across instances through NATS JetStream: the relay publishes each
//! push to `autogpt.<namespace>.execution.<user>.<run>` with the event id
//! as `Nats-Msg-Id` (a relay that publishes the same event again, after a
//! restart or from a second instance, is stored once), and every instance
//! reads the stream in order into its local bus. The namespace (the
//! database's name) keeps deployments sharing one NATS server apart.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::bus::{Bus, Push};

/// The JetStream stream every namespace publishes into.
const STREAM: &str = "AUTOGPT_EVENTS";

/// How long a publish may wait for JetStream's acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// A failure talking to NATS.
pub type NatsError = Box<dyn std::error::Error + Send + Sync>;

/// The NATS side of the bus.
#[derive(Clone)]
pub struct Nats {
    js: jetstream::Context,
    namespace: String,
    /// The last problem, for operators (cleared when publishing works again).
    pub last_error: Arc<Mutex<Option<String>>>,
}

impl Nats {
    /// Connect (in the background: NATS may come up later) for a namespace.
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, NatsError> {
        let client = async_nats::ConnectOptions::new().retry_on_initial_connect().connect(url).await?;
        let namespace: String =
            namespace.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        Ok(Self { js: jetstream::new(client), namespace, last_error: Arc::default() })
    }

    /// The stream, created when missing; an error when NATS does not
    /// answer in time (a client that is not connected waits otherwise).
    async fn stream(&self) -> Result<stream::Stream, NatsError> {
        match tokio::time::timeout(PUBLISH_TIMEOUT, self.create_stream()).await {
            Ok(stream) => stream,
            Err(_) => Err("NATS: not connected, or no answer in time".into()),
        }
    }

    async fn create_stream(&self) -> Result<stream::Stream, NatsError> {
        Ok(self
            .js
            .get_or_create_stream(stream::Config {
                name: STREAM.to_owned(),
                subjects: vec!["autogpt.>".to_owned()],
                max_age: Duration::from_secs(3600),
                duplicate_window: Duration::from_secs(120),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await?)
    }

    fn note(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = error;
    }

    /// Publish one push and wait for JetStream to store it.
    pub async fn publish(&self, push: &Push) -> Result<(), NatsError> {
        let subject = format!("autogpt.{}.execution.{}.{}", self.namespace, push.user_id, push.execution_id);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", push.event_id.to_string().as_str());
        let payload = serde_json::to_vec(push)?;
        let stored = async {
            self.js.publish_with_headers(subject, headers, payload.into()).await?.await?;
            Ok::<(), NatsError>(())
        };
        // A client that is not connected queues the message and waits; the
        // relay should rather fail the batch, say why and retry it.
        let result = match tokio::time::timeout(PUBLISH_TIMEOUT, stored).await {
            Ok(result) => result,
            Err(_) => Err("NATS: not connected, or no acknowledgement in time".into()),
        };
        if let Err(e) = &result {
            self.note(Some(e.to_string()));
            // The stream may be missing (a fresh server): create it for the retry.
            let _ = self.stream().await;
        } else {
            self.note(None);
        }
        result
    }

    /// Read this namespace's pushes in stream order into `bus`, from now
    /// on, until `stop`; after a lost connection, go on after the last one
    /// read.
    pub fn forward(&self, bus: Bus, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut next: Option<u64> = None;
            let mut pause = Duration::from_millis(100);
            while !stop.is_cancelled() {
                match this.read_into(&bus, &mut next, &stop).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "NATS: reading pushes failed; retrying");
                        this.note(Some(e.to_string()));
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = tokio::time::sleep(pause) => {}
                        }
                        pause = (pause * 2).min(Duration::from_secs(5));
                    }
                }
            }
        })
    }

    async fn read_into(&self, bus: &Bus, next: &mut Option<u64>, stop: &CancellationToken) -> Result<(), NatsError> {
        let deliver_policy = match *next {
            Some(start_sequence) => consumer::DeliverPolicy::ByStartSequence { start_sequence },
            None => consumer::DeliverPolicy::New,
        };
        let consumer = self
            .stream()
            .await?
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: format!("autogpt.{}.>", self.namespace),
                deliver_policy,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                message = messages.next() => message,
            };
            let Some(message) = message else { return Err("NATS: the consumer ended".into()) };
            let message = message?;
            if let Ok(info) = message.info() {
                *next = Some(info.stream_sequence + 1);
            }
            match serde_json::from_slice::<Push>(&message.payload) {
                Ok(push) => bus.publish(push),
                Err(e) => tracing::warn!(error = %e, "NATS: a push that does not decode was skipped"),
            }
        }
    }
}
