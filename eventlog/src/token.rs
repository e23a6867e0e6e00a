//! Consistency tokens: an opaque "at least this far" mark in the log's
//! order, answered by every command and accepted by every query.
//!
//! The order is `(tx_id, position)`, not the position alone (see the
//! migration of the `events` table), so a token carries both. Clients must
//! treat it as opaque: its text is versioned so the encoding can change.

use std::fmt;
use std::str::FromStr;

use crate::store::GlobalPosition;

/// The version prefix of the current encoding.
const PREFIX: &str = "1.";

/// A place in the log a reader must have passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsistencyToken(pub GlobalPosition);

/// Text that is not a consistency token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a consistency token: expected the value of an X-Consistency-Token response header")]
pub struct InvalidToken;

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hex of the two parts: short, and plainly not a position to do sums with.
        write!(f, "{PREFIX}{:x}.{:x}", self.0.tx_id, self.0.position)
    }
}

impl FromStr for ConsistencyToken {
    type Err = InvalidToken;

    fn from_str(s: &str) -> Result<Self, InvalidToken> {
        let rest = s.trim().strip_prefix(PREFIX).ok_or(InvalidToken)?;
        let (tx, position) = rest.split_once('.').ok_or(InvalidToken)?;
        let part = |p: &str| {
            let valid = !p.is_empty() && p.len() <= 16 && p.bytes().all(|b| b.is_ascii_hexdigit());
            valid.then(|| i64::from_str_radix(p, 16).ok()).flatten().filter(|v| *v >= 0).ok_or(InvalidToken)
        };
        Ok(Self(GlobalPosition { tx_id: part(tx)?, position: part(position)? }))
    }
}

impl From<GlobalPosition> for ConsistencyToken {
    fn from(at: GlobalPosition) -> Self {
        Self(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_keep_the_log_order() {
        let early = ConsistencyToken(GlobalPosition { tx_id: 900, position: 12 });
        let late = ConsistencyToken(GlobalPosition { tx_id: 901, position: 3 });
        assert!(early < late, "a later transaction sorts after, whatever its position");
        for token in [early, late, ConsistencyToken::default()] {
            assert_eq!(token.to_string().parse::<ConsistencyToken>(), Ok(token));
        }
        assert_eq!(early.to_string(), "1.384.c");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in ["", "12", "1.", "1.5", "1.x.1", "2.1.1", "1.1.-1", "1.11111111111111111.1", "1.ffffffffffffffff.1"]
        {
            assert_eq!(bad.parse::<ConsistencyToken>(), Err(InvalidToken), "{bad:?}");
        }
    }
}
