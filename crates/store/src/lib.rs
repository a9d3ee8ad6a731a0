//! Repository.
