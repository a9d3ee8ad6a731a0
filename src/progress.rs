//! Progress bars on stderr, shown only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

fn styled(total: u64, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// A bar over `total` bytes: "{verb} 1.2 GiB/8 GiB […] 300 MiB/s, 12s left".
pub fn bytes(total: u64, verb: &str) -> ProgressBar {
    styled(
        total,
        &format!(
            "{{spinner}} {verb} {{bytes}}/{{total_bytes}} [{{bar:40}}] {{bytes_per_sec}}, {{eta}} left"
        ),
    )
}

/// A bar over `total` `unit`s (not bytes): "{verb} 2965/4372 chunks […] 1s left".
pub fn count(total: u64, verb: &str, unit: &str) -> ProgressBar {
    styled(
        total,
        &format!("{{spinner}} {verb} {{pos}}/{{len}} {unit} [{{bar:40}}] {{eta}} left"),
    )
}
