//! What `approve` and `pending` make of a request made with an invitation: it is approved only
//! when it asks for exactly what was invited, and the invitation is open.

use std::time::SystemTime;

use super::{Asked, Invitation, differences, of_requester, server};
use crate::cluster::Connection;
use crate::csr::review::Reviewed;
use crate::error::Result;

/// A request, held against the invitation it was made with.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Not made with an invitation.
    NotInvited,
    /// Asks for exactly what invitation `invitation` (read at `version`) allows.
    Matches {
        invitation: Box<Invitation>,
        version: String,
    },
    /// Made with invitation `name`, but not as it allows: each difference in words.
    Differs { name: String, why: Vec<String> },
    /// Made with invitation `name`, which could not be read (`pending` without permission).
    Unknown { name: String, why: String },
}

impl Verdict {
    /// `pending`'s INVITE column.
    pub fn column(&self) -> String {
        match self {
            Verdict::NotInvited => "-".into(),
            Verdict::Matches { .. } => "matches".into(),
            Verdict::Differs { .. } => "differs".into(),
            Verdict::Unknown { .. } => "unknown".into(),
        }
    }
}

/// The verdict for `pending`: an invitation that cannot be read makes the verdict unknown, not
/// the listing fail.
pub async fn verdict_or_unknown(conn: &Connection, request: &Reviewed, now: SystemTime) -> Verdict {
    match verdict(conn, request, now).await {
        Ok(verdict) => verdict,
        Err(e) => Verdict::Unknown {
            name: request
                .requester
                .as_deref()
                .and_then(of_requester)
                .unwrap_or_default()
                .to_string(),
            why: e.to_string(),
        },
    }
}

/// The verdict on `request` at `now` (the invitation read from the cluster).
pub async fn verdict(conn: &Connection, request: &Reviewed, now: SystemTime) -> Result<Verdict> {
    let Some(name) = request.requester.as_deref().and_then(of_requester) else {
        return Ok(Verdict::NotInvited);
    };
    let Some((invitation, version)) = server::get(conn, name).await? else {
        return Ok(Verdict::Differs {
            name: name.to_string(),
            why: vec![format!("invitation {name} does not exist (any more)")],
        });
    };
    let why = match &request.asked {
        Ok(asked) => {
            let asked = Asked {
                request: &request.name,
                uid: request.checked.metadata.uid.as_deref().unwrap_or_default(),
                common_name: asked.common_name(),
                groups: &asked.groups,
                expiration_seconds: request.expiration_seconds,
            };
            differences(&invitation, &asked, now)
        }
        Err(unreadable) => vec![unreadable.clone()],
    };
    Ok(match why.is_empty() {
        true => Verdict::Matches {
            invitation: Box::new(invitation),
            version,
        },
        false => Verdict::Differs {
            name: name.to_string(),
            why,
        },
    })
}
