//! How the tool's output looks: colour only when stdout is a terminal (and
//! `NO_COLOR` is not set), progress bars on stderr only when it is one.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Colours a word of output, or leaves it plain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    colour: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub(crate) fn detect() -> Style {
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            colour: !no_colour && std::io::stdout().is_terminal(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Something as it should be.
    pub(crate) fn good(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Something that works, but worse than it could.
    pub(crate) fn warn(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Something broken.
    pub(crate) fn bad(self, text: &str) -> String {
        self.paint("31", text)
    }

    /// A heading or a key.
    pub(crate) fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
}

/// A spinner on stderr for work of unknown length, drawn only on a terminal.
pub(crate) fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message.into());
    hide_unless_terminal(&bar);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A bar on stderr counting `total` steps, drawn only on a terminal.
pub(crate) fn bar(total: u64, message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new(total).with_message(message.into());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    hide_unless_terminal(&bar);
    bar
}

fn hide_unless_terminal(bar: &ProgressBar) {
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
}
