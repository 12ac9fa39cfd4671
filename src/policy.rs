//! What a person's certificate may ask for: the one rule every path that builds or approves a
//! request applies (`kubectl onboard USER`, `request`, `sign`, `renew`, `batch`, `approve`).
//!
//! The `system:` prefix belongs to Kubernetes components: `system:masters` is cluster-admin
//! beyond RBAC, `system:nodes` and `system:node:NAME` act as kubelets, and
//! `system:serviceaccounts:*` as the workloads of a namespace. A user or group there is never
//! granted through these commands; offline signing may add `system:masters` with
//! `--allow-masters`, an explicit escape.

use std::fmt;

/// The group that bypasses all authorization.
pub const MASTERS: &str = "system:masters";
const RESERVED: &str = "system:";

/// Why a user or group may not be asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    SystemUser(String),
    Masters,
    SystemGroup(String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::SystemUser(user) => write!(
                f,
                "user '{user}' is in the system: namespace reserved for Kubernetes components"
            ),
            Refused::Masters => f.write_str(
                "group system:masters makes its holder a cluster administrator beyond the reach of RBAC",
            ),
            Refused::SystemGroup(group) => write!(
                f,
                "group '{group}' is in the system: namespace reserved for Kubernetes components (nodes, service accounts, the control plane), whose powers it would grant"
            ),
        }
    }
}

/// The user (the certificate's CN) may be asked for.
pub fn user(user: &str) -> Result<(), Refused> {
    match user.starts_with(RESERVED) {
        true => Err(Refused::SystemUser(user.to_string())),
        false => Ok(()),
    }
}

/// The group (one O of the certificate) may be asked for; `system:masters` only with
/// `allow_masters` (offline signing's `--allow-masters`).
pub fn group(group: &str, allow_masters: bool) -> Result<(), Refused> {
    match group {
        MASTERS if allow_masters => Ok(()),
        MASTERS => Err(Refused::Masters),
        g if g.starts_with(RESERVED) => Err(Refused::SystemGroup(g.to_string())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_name_is_refused_and_masters_only_without_the_escape() {
        for g in [
            "system:nodes",
            "system:node:worker-1",
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            "system:authenticated",
            "system:kube-controller-manager",
        ] {
            assert_eq!(group(g, true), Err(Refused::SystemGroup(g.into())), "{g}");
        }
        assert_eq!(group(MASTERS, false), Err(Refused::Masters));
        assert_eq!(group(MASTERS, true), Ok(()));
        assert_eq!(group("dev", false), Ok(()));
        assert_eq!(group("systems:dev", false), Ok(()));
        assert!(user("system:admin").is_err());
        assert_eq!(user("jane"), Ok(()));
    }
}
