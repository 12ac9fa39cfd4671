//! What a person sees: progress and warnings on stderr (`progress`), results as text, JSON or
//! YAML on stdout (`report`).

pub mod progress;
pub mod report;
