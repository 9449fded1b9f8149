//! Helpers for the tests in this folder.

pub mod process;
