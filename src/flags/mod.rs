//! The command line: the flag families every command shares (`cli`), and the validated plan the
//! main command runs (`plan`).

pub mod cli;
pub mod plan;
