//! Live updates: the relay turns run events into pushes, the bus carries
//! them, the WebSocket hub hands them to the clients watching.

pub mod bus;
pub mod nats;
pub mod relay;
pub mod ws;

pub use bus::Bus;
pub use relay::Relay;
