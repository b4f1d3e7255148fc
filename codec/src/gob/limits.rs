//! The limits of the gob layer (`spec/05-rpc.md`, section 5.2.10, Table 5-6).
//!
//! - GOB-15, GOB-19: a receiver accepts messages of at least [`MIN_MAX_MESSAGE`] bytes and its
//!   limit is at most [`MAX_MESSAGE_CEILING`].
//! - GOB-16: a sender sends no message longer than [`MIN_MAX_MESSAGE`] (the encoder checks it).
//! - GOB-17: a receiver accepts composite values nested [`MIN_MAX_DEPTH`] levels deep.
//! - [`DecodeLimits`] holds one receiver's limits (the codec's defaults are
//!   [`DEFAULT_MAX_MESSAGE`] and [`DEFAULT_MAX_DEPTH`]); [`DecodeLimits::validate`] checks them
//!   against these bounds ([`DecodeLimitsError`]).

use thiserror::Error;

/// Every receiver accepts gob messages up to this many bytes (GOB_MIN_MAX_MESSAGE).
pub const MIN_MAX_MESSAGE: usize = 4 << 20;

/// No receiver's message limit is above this many bytes (GOB_MAX_MESSAGE_CEILING, GOB-19).
pub const MAX_MESSAGE_CEILING: usize = 16 << 20;

/// The codec's default message-size limit: [`MAX_MESSAGE_CEILING`].
pub const DEFAULT_MAX_MESSAGE: usize = MAX_MESSAGE_CEILING;

/// Every receiver accepts values nested this deep (GOB_MIN_MAX_DEPTH, GOB-17).
pub const MIN_MAX_DEPTH: usize = 16;

/// The codec's default nesting limit for values and types.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Decoding limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The longest message accepted; default [`DEFAULT_MAX_MESSAGE`].
    pub max_message: usize,
    /// The deepest nesting of values accepted; default [`DEFAULT_MAX_DEPTH`].
    pub max_depth: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_message: DEFAULT_MAX_MESSAGE,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl DecodeLimits {
    /// The smallest limits the spec allows: messages of [`MIN_MAX_MESSAGE`] bytes (GOB-15) and
    /// values nested [`MIN_MAX_DEPTH`] deep (GOB-17). A receiver with these limits accepts
    /// everything a conforming sender sends, and nothing more.
    pub const fn minimum() -> DecodeLimits {
        DecodeLimits {
            max_message: MIN_MAX_MESSAGE,
            max_depth: MIN_MAX_DEPTH,
        }
    }

    /// Checks the limits against the spec's bounds: a message limit from [`MIN_MAX_MESSAGE`]
    /// to [`MAX_MESSAGE_CEILING`] (GOB-15, GOB-19) and a depth limit of at least
    /// [`MIN_MAX_DEPTH`] (GOB-17).
    pub fn validate(&self) -> Result<(), DecodeLimitsError> {
        if !(MIN_MAX_MESSAGE..=MAX_MESSAGE_CEILING).contains(&self.max_message) {
            return Err(DecodeLimitsError::MaxMessage {
                requested: self.max_message,
            });
        }
        if self.max_depth < MIN_MAX_DEPTH {
            return Err(DecodeLimitsError::MaxDepth {
                requested: self.max_depth,
            });
        }
        Ok(())
    }
}

/// Decoding limits outside the spec's bounds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeLimitsError {
    /// The message limit is below GOB_MIN_MAX_MESSAGE or above GOB_MAX_MESSAGE_CEILING.
    #[error(
        "GOB-15, GOB-19: a gob message limit must lie between {min} and {max} bytes; {requested} was requested",
        min = MIN_MAX_MESSAGE,
        max = MAX_MESSAGE_CEILING
    )]
    MaxMessage {
        /// The limit asked for.
        requested: usize,
    },
    /// The depth limit is below GOB_MIN_MAX_DEPTH.
    #[error("GOB-17: a gob depth limit must be at least {min}; {requested} was requested", min = MIN_MAX_DEPTH)]
    MaxDepth {
        /// The limit asked for.
        requested: usize,
    },
}
