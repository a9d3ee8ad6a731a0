//! Accelerator.
