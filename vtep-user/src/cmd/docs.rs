//! `vtep completions SHELL` and `vtep man`: shell completion scripts and
//! the manual page, generated from the command line's own definition
//! (clap_complete, clap_mangen), so they never drift from it.

use std::io::Write as _;

use clap::CommandFactory as _;

use super::Cli;

/// Print a shell completion script.
///
/// Examples:
///   vtep completions bash > /etc/bash_completion.d/vtep
///   vtep completions zsh > /usr/local/share/zsh/site-functions/_vtep
///   vtep completions fish > ~/.config/fish/completions/vtep.fish
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Print the manual page (roff), e.g. `vtep man > /usr/local/share/man/man1/vtep.1`.
#[derive(clap::Args)]
pub struct ManArgs {}

/// Writes the completion script for `args.shell` to stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    // Into memory first: the generator panics on a write error (a closed
    // pipe), where we report it.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "vtep", &mut script);
    std::io::stdout().write_all(&script)?;
    Ok(())
}

/// Writes the manual page to stdout.
pub fn man() -> anyhow::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(())
}
