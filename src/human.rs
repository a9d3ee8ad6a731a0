//! Formatting for people (shared with the libraries through `diskray_core::human`).

pub use diskray_core::human::size;
