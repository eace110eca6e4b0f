//! Printing for people (tables) and for scripts (`--json`).

use comfy_table::{Cell, ContentArrangement, LineStyle, Table, TableStyle};
use serde::Serialize;

/// A rule under the header and nothing else, so tables stay easy to read and to grep.
const STYLE: TableStyle =
    TableStyle::new().header_separator(LineStyle::none().fill('─').junction('─'));

/// A table with the program's look: a rule under the header, no other borders.
pub fn table<H, R>(header: H, rows: R) -> String
where
    H: IntoIterator,
    H::Item: Into<Cell>,
    R: IntoIterator,
    R::Item: IntoIterator,
    <R::Item as IntoIterator>::Item: Into<Cell>,
{
    let mut table = Table::new();
    table.load_style(STYLE).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(header);
    for row in rows {
        table.add_row(row);
    }
    // Cells are padded to their column's width; the last column needs no padding.
    table.lines().map(|line| line.trim_end().to_string()).collect::<Vec<_>>().join("\n")
}

/// Prints a value as pretty JSON on standard output.
pub fn print_json<T: Serialize>(value: &T) {
    let text = serde_json::to_string_pretty(value).expect("output values always serialise");
    line(format_args!("{text}"));
}

/// The first failure to write the output other than a reader going away.
static WRITE_FAILURE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Prints a line on standard output. A reader that went away (`| head`) is not an error, and
/// no write failure stops the command halfway through a change, which would be far worse
/// than losing output; any other failure (a full disk) is reported by [`write_failure`] so
/// the command ends non-zero.
pub fn line(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written =
        stdout.write_fmt(text).and_then(|()| stdout.write_all(b"\n")).and_then(|()| stdout.flush());
    if let Err(err) = written
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        let _ = WRITE_FAILURE.set(err.to_string());
    }
}

/// Why the output could not be written, if it could not.
pub fn write_failure() -> Option<&'static str> {
    WRITE_FAILURE.get().map(String::as_str)
}

/// Prints a line on standard error, with the same forgiveness as [`line`].
pub fn note(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_fmt(text).and_then(|()| stderr.write_all(b"\n"));
}

/// `println!` that survives a closed standard output; see [`line`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::output::line(format_args!($($arg)*)) };
}

/// `eprintln!` that survives a closed standard error; see [`note`].
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => { $crate::output::note(format_args!($($arg)*)) };
}
