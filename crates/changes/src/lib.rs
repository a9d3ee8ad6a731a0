//! Change maps.
