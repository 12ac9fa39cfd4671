//! Step 9: the result, on stdout. A few plain lines, or with `-o json|yaml` a summary for
//! scripts. Progress and warnings went to stderr.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::error::Result;
use crate::kubeconfig::yaml;
use crate::plan::OutputFormat;
use crate::verify::{CertInfo, rfc3339};
use crate::whoami::Identity;

pub struct Summary {
    pub user: String,
    pub groups: Vec<String>,
    pub context: String,
    pub cluster: String,
    /// The files written: the kubeconfig(s), or the standalone one.
    pub kubeconfigs: Vec<PathBuf>,
    pub standalone: bool,
    pub csr: String,
    pub certificate: CertInfo,
    pub key_algorithm: String,
    pub identity: Option<Identity>,
    pub switched: bool,
}

impl Summary {
    pub fn to_value(&self) -> Value {
        let mut v = json!({
            "user": self.user,
            "groups": self.groups,
            "context": self.context,
            "cluster": self.cluster,
            "kubeconfig": self.kubeconfigs.first().map(|p| p.display().to_string()),
            "csrName": self.csr,
            "notBefore": rfc3339(self.certificate.not_before),
            "notAfter": rfc3339(self.certificate.not_after),
            "keyAlgorithm": self.key_algorithm,
        });
        // Offline, the certificate was signed here: there was no request object.
        if self.csr.is_empty()
            && let Some(map) = v.as_object_mut()
        {
            map.remove("csrName");
        }
        if let Some(id) = &self.identity {
            v["authenticatedAs"] = json!({"username": id.username, "groups": id.groups});
        }
        v
    }

    pub fn render(&self, format: Option<OutputFormat>) -> Result<String> {
        Ok(match format {
            Some(OutputFormat::Json) => {
                serde_json::to_string_pretty(&self.to_value()).expect("a JSON value serializes")
                    + "\n"
            }
            Some(OutputFormat::Yaml) => yaml::emit(&self.to_value())?,
            None => self.to_text(),
        })
    }

    fn to_text(&self) -> String {
        let files: Vec<String> = self
            .kubeconfigs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut out = if self.standalone {
            format!(
                "Wrote kubeconfig {} for user \"{}\" (context \"{}\").\n",
                files.join(", "),
                self.user,
                self.context
            )
        } else {
            format!(
                "User \"{}\" and context \"{}\" added to {}.\n",
                self.user,
                self.context,
                files.join(", ")
            )
        };
        if let Some(id) = &self.identity {
            out += &format!(
                "Authenticated as {} (groups: {}).\n",
                id.username,
                id.groups.join(", ")
            );
        }
        if self.standalone {
            out += &format!(
                "Hand it over securely; it holds the private key. Use it with: kubectl --kubeconfig {} auth whoami\n",
                files.join(", ")
            );
        } else if self.switched {
            out += &format!("Switched to context \"{}\".\n", self.context);
        } else {
            out += &format!(
                "Switch to it with: kubectl config use-context {}\n",
                self.context
            );
        }
        out
    }
}
