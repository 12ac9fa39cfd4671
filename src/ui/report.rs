//! Report: the result, on stdout. A few plain lines, or with `-o json|yaml` a summary for scripts.
//! Progress and warnings went to stderr.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::cluster::whoami::Identity;
use crate::error::{Error, Result};
use crate::kubeconfig::yaml;
use crate::pipeline::Replaced;
use crate::pki::verify::{CertInfo, rfc3339};
use crate::terminal::{printable, printable_lines};
use crate::ui::progress::Progress;

/// `-o json|yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Yaml,
}

impl std::str::FromStr for OutputFormat {
    type Err = Error;

    fn from_str(text: &str) -> Result<OutputFormat> {
        match text {
            "json" => Ok(OutputFormat::Json),
            "yaml" => Ok(OutputFormat::Yaml),
            other => Err(Error::usage(format!(
                "-o {other} is not a known output format: use -o json or -o yaml"
            ))),
        }
    }
}

/// The output flags every command has, checked once: `-o json|yaml` for the result on stdout,
/// `-q` for no progress, `-v` for what it looks at and decides (never key material).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub format: Option<OutputFormat>,
    pub quiet: bool,
    pub verbose: bool,
}

impl Output {
    pub fn from_flags(output: Option<&str>, quiet: bool, verbose: bool) -> Result<Output> {
        Ok(Output {
            format: output.map(str::parse).transpose()?,
            quiet,
            verbose,
        })
    }

    /// Progress on stderr, as `-q` and `-v` (and `--timings`) ask.
    pub fn progress(&self, timings: bool) -> Progress {
        Progress::new(self.quiet, self.verbose, timings)
    }

    /// The result on stdout: `value` as JSON or YAML with `-o`, else `text` (as is).
    pub fn print(&self, value: impl FnOnce() -> Value, text: &str) -> Result<()> {
        print!("{}", self.render(value, text)?);
        Ok(())
    }

    pub fn render(&self, value: impl FnOnce() -> Value, text: &str) -> Result<String> {
        Ok(match self.format {
            Some(OutputFormat::Json) => {
                serde_json::to_string_pretty(&value()).expect("a JSON value serializes") + "\n"
            }
            Some(OutputFormat::Yaml) => yaml::emit(&value())?,
            None => printable_lines(text),
        })
    }
}

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
    /// Entries that `--force` replaced rather than added.
    pub replaced: Replaced,
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
        if self.replaced != Replaced::default() {
            v["replaced"] = json!({"user": self.replaced.user, "context": self.replaced.context});
        }
        if let Some(id) = &self.identity {
            v["authenticatedAs"] = json!({"username": id.username, "groups": id.groups});
        }
        v
    }

    pub fn render(&self, format: Option<OutputFormat>) -> Result<String> {
        let output = Output {
            format,
            ..Output::default()
        };
        output.render(|| self.to_value(), &self.to_text())
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
        } else if self.replaced == Replaced::default() {
            format!(
                "User \"{}\" and context \"{}\" added to {}.\n",
                self.user,
                self.context,
                files.join(", ")
            )
        } else {
            let verb = |replaced| if replaced { "Replaced" } else { "Added" };
            let in_use = match self.replaced.in_use {
                true => ", used by the current context,",
                false => "",
            };
            format!(
                "{} user \"{}\"{in_use} and {} context \"{}\" in {}.\n",
                verb(self.replaced.user),
                self.user,
                verb(self.replaced.context).to_lowercase(),
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

/// The most characters a table cell shows; the rest is summarised (`-o json` has it all).
const MAX_CELL: usize = 256;

/// A cell as the table shows it: printable, and at most [`MAX_CELL`] characters.
fn cell_text(cell: &str) -> String {
    let text = printable(cell);
    let count = text.chars().count();
    if count <= MAX_CELL {
        return text.into_owned();
    }
    let kept: String = text.chars().take(MAX_CELL - 20).collect();
    format!("{kept}…({} more chars)", count - (MAX_CELL - 20))
}

/// Rows of cells as a kubectl-style table: columns left-aligned, three spaces apart.
pub fn table<R: AsRef<[String]>>(rows: &[R]) -> String {
    let shown: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.as_ref().iter().map(|c| cell_text(c)).collect())
        .collect();
    let columns = shown.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            let width = |r: &Vec<String>| r.get(i).map_or(0, |c| c.chars().count());
            shown.iter().map(width).max().unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &shown {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
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

    #[test]
    fn a_huge_cell_is_summarised_not_panicked_on() {
        let rows = vec![
            vec!["NAME".to_string(), "GROUPS".to_string()],
            vec!["x".to_string(), "g".repeat(70_000)],
        ];
        let out = super::table(&rows);
        assert!(out.len() < 400, "{}", out.len());
        assert!(out.contains("…(69764 more chars)"), "{out}");
    }

    #[test]
    fn cells_cannot_forge_rows_or_rewrite_the_screen() {
        let rows = vec![
            vec!["NAME".to_string(), "CN".to_string()],
            vec!["x".to_string(), "eve\nfake   row\x1b[1A".to_string()],
        ];
        let out = super::table(&rows);
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(
            out.contains("eve\\u{a}fake   row\\u{1b}[1A") && !out.contains('\x1b'),
            "{out}"
        );
    }
}
