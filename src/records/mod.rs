//! What the cluster keeps for us, since Kubernetes keeps neither: the inventory of issued
//! certificates (`inventory`) and the revocation list with its admission policy (`revocation`).

pub mod inventory;
pub mod revocation;
