//! `--log-outputs`: where log lines go. `default` and `stderr` are standard error, `stdout` is
//! standard output, anything else is a file appended to (created if missing), as etcd's zap
//! logger opens it. Each line is written whole to every output, under one lock, so lines from
//! different threads never interleave.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use parking_lot::Mutex;
use tracing_subscriber::fmt::MakeWriter;

use super::LogError;

enum Output {
    Stderr,
    Stdout,
    File(File),
}

/// The opened outputs.
pub struct Outputs {
    outputs: Mutex<Vec<Output>>,
    terminal: bool,
}

impl Outputs {
    /// Opens every output named in `names`; also returns notes worth logging.
    ///
    /// # Errors
    /// A file that cannot be opened for appending.
    pub fn open(names: &[String]) -> Result<(Outputs, Vec<String>), LogError> {
        let mut outputs = Vec::new();
        let mut notes = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for name in names {
            let name = name.as_str();
            // etcd merges duplicates ("default" and "stderr" are the same stream).
            let key = if name == "default" { "stderr" } else { name };
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            outputs.push(match name {
                "default" | "stderr" => Output::Stderr,
                "stdout" => Output::Stdout,
                "systemd/journal" => {
                    notes.push(
                        "--log-outputs systemd/journal: kvd writes these lines to stderr, which systemd records in the journal".to_string(),
                    );
                    Output::Stderr
                }
                path => Output::File(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|reason| LogError::Output {
                            path: path.to_string(),
                            reason,
                        })?,
                ),
            });
        }
        let terminal = outputs.iter().all(|o| match o {
            Output::Stderr => std::io::stderr().is_terminal(),
            Output::Stdout => std::io::stdout().is_terminal(),
            Output::File(_) => false,
        });
        Ok((
            Outputs {
                outputs: Mutex::new(outputs),
                terminal,
            },
            notes,
        ))
    }

    /// True when every output is a terminal (colours are then welcome).
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// Writes one complete line (or several) to every output. A failing output does not stop
    /// the others; there is nowhere left to report the failure.
    pub fn write_all(&self, bytes: &[u8]) {
        let mut outputs = self.outputs.lock();
        for o in outputs.iter_mut() {
            let _ = match o {
                Output::Stderr => std::io::stderr().lock().write_all(bytes),
                Output::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(bytes).and_then(|()| out.flush())
                }
                Output::File(f) => f.write_all(bytes),
            };
        }
    }
}

/// Collects what one event writes and hands it to every output when dropped.
pub struct LineWriter {
    outputs: Arc<Outputs>,
    buffer: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buffer.is_empty() {
            self.outputs.write_all(&self.buffer);
        }
    }
}

/// The outputs as a `tracing_subscriber::fmt` writer: one [`LineWriter`] per event.
#[derive(Clone)]
pub struct SharedOutputs(pub Arc<Outputs>);

impl<'a> MakeWriter<'a> for SharedOutputs {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            outputs: self.0.clone(),
            buffer: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_to_every_file_and_duplicates_are_merged() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a.log");
        let b = dir.path().join("b.log");
        std::fs::write(&a, "earlier\n").expect("write");
        let names = vec![
            a.display().to_string(),
            b.display().to_string(),
            a.display().to_string(),
        ];
        let (outputs, notes) = Outputs::open(&names).expect("open");
        assert!(notes.is_empty());
        outputs.write_all(b"one\n");
        outputs.write_all(b"two\n");
        assert_eq!(
            std::fs::read_to_string(&a).expect("read"),
            "earlier\none\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&b).expect("read"), "one\ntwo\n");
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_named() {
        let names = vec!["/nonexistent-dir/kvd.log".to_string()];
        let err = Outputs::open(&names).err().expect("refused");
        assert!(
            err.to_string()
                .starts_with("cannot open log output /nonexistent-dir/kvd.log: "),
            "{err}"
        );
    }
}
