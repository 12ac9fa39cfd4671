//! What a person gives a run: the flag families every command shares (`cli`), the validated
//! plan the main command runs (`plan`), and the batch file of users (`roster`).

pub mod cli;
pub mod plan;
pub mod roster;
