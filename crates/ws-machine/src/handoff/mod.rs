//! The machine's ends of the caller's channels that must never make it
//! wait: statuses ([`status`]) and received messages ([`input`]) are handed
//! over when there is room and kept, bounded, when there is none.

pub(crate) mod input;
pub(crate) mod status;
