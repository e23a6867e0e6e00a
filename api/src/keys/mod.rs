//! API keys at the edge: making a secret and what is kept of it, and
//! authenticating the external API's requests by `X-API-Key` with a scope.

mod extract;
mod secret;
mod verify;

pub use extract::{scope, KeyHolder, Scope, HEADER};
pub use secret::{generate, PlainKey};
pub use verify::KeyAuth;
