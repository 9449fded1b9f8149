//! The machine's ends of what it shares with the caller, none of which may
//! make it wait: statuses ([`status`]) and received messages ([`input`]) are
//! handed over when there is room and kept, bounded, when there is none;
//! the counters ([`stats`]) are read by the caller without stopping it.

pub(crate) mod input;
pub(crate) mod stats;
pub(crate) mod status;
