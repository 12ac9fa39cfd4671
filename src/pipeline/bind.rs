//! Bind: the RBAC bindings the new user gets. Made after the certificate is proven and before
//! any file is written, so that a refused binding leaves every file as it was.

use crate::cluster::Connection;
use crate::cluster::rbac::{self, Grant};
use crate::error::Result;
use crate::signals::Signals;
use crate::ui::progress::Progress;

use super::answered;

pub async fn bind(
    conn: &Connection,
    user: &str,
    grants: &[Grant],
    signals: &mut Signals,
    progress: &mut Progress,
) -> Result<()> {
    for grant in grants {
        let doing = format!("creating the {}", grant.describe());
        let binding = answered(&doing, rbac::bind(conn, user, grant));
        let made = signals.interruptible(binding).await?;
        progress.step(&format!(
            "{} {} for {user}",
            if made { "Created" } else { "Kept the existing" },
            grant.describe(),
        ));
        let looking = answered("reading the role", async {
            Ok(rbac::role_exists(conn, grant).await)
        });
        if signals.interruptible(looking).await? == Some(false) {
            let role = match grant {
                Grant::ClusterRole(role) => format!("ClusterRole {role}"),
                Grant::Role { role, namespace } => format!("Role {role} in namespace {namespace}"),
            };
            progress.warn(&format!(
                "{role} does not exist (yet): the binding grants {user} nothing until it is created; check the name (kubectl get clusterroles, kubectl get roles -n NS)"
            ));
        }
    }
    Ok(())
}
