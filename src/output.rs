//! The `-o text|json` choice several commands share.

use clap::ValueEnum;

/// How a command prints its result.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// For scripts: one JSON document.
    Json,
}
