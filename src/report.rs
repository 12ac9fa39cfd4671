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
    /// The CertificateSigningRequest it went through; `None` when signed here (offline).
    pub csr: Option<String>,
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
        });
        if let Some(csr) = &self.csr {
            v["csrName"] = json!(csr);
        }
        v["notBefore"] = json!(rfc3339(self.certificate.not_before));
        v["notAfter"] = json!(rfc3339(self.certificate.not_after));
        v["keyAlgorithm"] = json!(self.key_algorithm);
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

/// Rows of cells as a kubectl-style table: columns left-aligned, three spaces apart.
pub fn table<R: AsRef<[String]>>(rows: &[R]) -> String {
    let columns = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            let cell = |r: &R| r.as_ref().get(i).map_or(0, |c| c.chars().count());
            rows.iter().map(cell).max().unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .as_ref()
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out += cells.join("   ").trim_end();
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let rows = vec![
            vec!["NAME".to_string(), "AGE".to_string()],
            vec!["jane-4kx9q2".to_string(), "3s".to_string()],
        ];
        assert_eq!(super::table(&rows), "NAME          AGE\njane-4kx9q2   3s\n");
    }
}
