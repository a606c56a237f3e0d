//! The `intake` binary as users run it: real `intake serve` processes (killed, restarted, starved of disk),
//! the command line, and the documented commands. One test binary for the crate; shared helpers in `common`.

mod common;

mod chaos;
mod cli;
mod cluster;
mod conversion;
mod crash;
mod disk_full;
mod disk_use;
mod hostile;
mod push;
mod reproduce_errors;
mod upgrade;
