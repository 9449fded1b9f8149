//! Helpers for the tests in this folder. Each test file uses a part of
//! them, so the others would be reported as unused there.
#![allow(dead_code)]

pub mod child;
pub mod local;
pub mod pki;
pub mod process;
pub mod python;
