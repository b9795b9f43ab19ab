//! `streamport completions SHELL` and `streamport man`: shell completion scripts and
//! manual pages, generated from the command line itself (clap_complete, clap_mangen),
//! so they never disagree with `--help`. `scripts/package` puts both in the tarball.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{EXIT_FAILED, EXIT_OK};

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "streamport", &mut out);
    write_stdout(&out)
}

/// Prints the main manual page on stdout, or writes every page (`streamport.1`,
/// `streamport-run.1`, …) into `dir`.
pub fn man(dir: Option<&Path>) -> i32 {
    let command = Cli::command();
    match dir {
        Some(dir) => {
            let written =
                std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(command, dir));
            match written {
                Ok(()) => EXIT_OK,
                Err(e) => {
                    crate::error!("cannot write the manual pages into {}: {e}", dir.display());
                    EXIT_FAILED
                }
            }
        }
        None => {
            let mut out = Vec::new();
            if let Err(e) = clap_mangen::Man::new(command).render(&mut out) {
                crate::error!("cannot render the manual page: {e}");
                return EXIT_FAILED;
            }
            write_stdout(&out)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> i32 {
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => EXIT_OK,
        // A closed pipe (`| head`) is not worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            crate::error!("cannot write to stdout: {e}");
            EXIT_FAILED
        }
    }
}
