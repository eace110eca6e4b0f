//! `projects.csv`: the fleet a user asks for, one project a row.
//!
//! The file is often exported from a spreadsheet, so a byte-order mark, CRLF line ends,
//! spaces around fields and blank lines are accepted. Anything else that is wrong is refused
//! with the file, line and field named, before anything is changed.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::names::{self, NameError};
use crate::sizes;

/// The columns, in the order `--setup` writes them.
pub const COLUMNS: [&str; 4] = ["Project", "Servers", "MasterSpec", "WebSpec"];

/// More servers than this for one project is taken for a typo, not a wish.
pub const MAX_SERVERS: u32 = 100;

/// One project as the CSV asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    pub name: String,
    /// Master plus web droplets the project runs on; 1 means master only.
    pub servers: u32,
    pub master_spec: String,
    pub web_spec: String,
    /// The line of the file the row starts on, for messages.
    pub line: u64,
}

/// A refusal of `projects.csv`, naming where the problem is.
#[derive(Debug, thiserror::Error)]
#[error("{path}{location}: {problem}", path = path.display(), location = Location(*line, *field))]
pub struct ProjectsCsvError {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub field: Option<&'static str>,
    pub problem: CsvProblem,
}

struct Location(Option<u64>, Option<&'static str>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.0 {
            write!(f, ", line {line}")?;
        }
        if let Some(field) = self.1 {
            write!(f, ", field {field}")?;
        }
        Ok(())
    }
}

/// What is wrong with `projects.csv`.
#[derive(Debug, thiserror::Error)]
pub enum CsvProblem {
    #[error("cannot be read: {0}")]
    Read(#[source] std::io::Error),
    #[error("is not valid UTF-8; save it from the spreadsheet as \"CSV UTF-8\"")]
    InvalidUtf8,
    #[error("a quoted field opened here is never closed")]
    UnterminatedQuote,
    #[error("text follows a closing quote; quote the whole field, as in \"a \"\"b\"\" c\"")]
    TextAfterQuote,
    #[error("the header is repeated here; remove this line")]
    RepeatedHeader,
    #[error("has no header; the first line must be {}", COLUMNS.join(","))]
    NoHeader,
    #[error("the header has no column {name:?}; expected {}", COLUMNS.join(","))]
    MissingColumn { name: &'static str },
    #[error("the header has an unknown column {name:?}; expected {}", COLUMNS.join(","))]
    UnknownColumn { name: String },
    #[error("the header names column {name:?} twice")]
    DuplicateColumn { name: String },
    #[error("has {found} fields where the header has {expected}")]
    FieldCount { expected: usize, found: usize },
    #[error("must be a positive whole number, got {:?}", shorten(value))]
    Servers { value: String },
    #[error("{value} is more than the {max} servers a project may ask for", max = MAX_SERVERS)]
    TooManyServers { value: String },
    #[error("{:?} is not a droplet size{}", shorten(value), suggestion.map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownSize { value: String, suggestion: Option<&'static str> },
    #[error("project name {:?} {reason}", shorten(value))]
    BadName { value: String, reason: NameError },
    #[error(
        "project {name:?} is already defined on line {first_line} (names are compared without case)"
    )]
    DuplicateProject { name: String, first_line: u64 },
    #[error("cannot be parsed: {0}")]
    Syntax(String),
}

/// A value as quoted in a message: a pasted novel is cut short.
fn shorten(value: &str) -> String {
    if value.chars().count() <= 60 {
        return value.to_string();
    }
    format!("{}…", value.chars().take(60).collect::<String>())
}

impl ProjectsCsvError {
    fn new(
        path: &Path,
        line: Option<u64>,
        field: Option<&'static str>,
        problem: CsvProblem,
    ) -> Self {
        ProjectsCsvError { path: path.to_path_buf(), line, field, problem }
    }
}

/// Reads and validates `projects.csv`.
pub fn load(path: &Path) -> Result<Vec<ProjectRow>, ProjectsCsvError> {
    let bytes = std::fs::read(path)
        .map_err(|err| ProjectsCsvError::new(path, None, None, CsvProblem::Read(err)))?;
    parse(path, &bytes)
}

/// Validates the bytes of a `projects.csv`; `path` is only used in messages.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<ProjectRow>, ProjectsCsvError> {
    let text = decode(path, bytes)?;
    let mut reader = reader_of(text);
    let mut records = reader.records();
    let mut lines = LineCounter::new(text);
    let err = |line, field, problem| ProjectsCsvError::new(path, line, field, problem);

    let (header_line, header) = loop {
        match records.next() {
            None => return Err(err(None, None, CsvProblem::NoHeader)),
            Some(record) => {
                let mut record =
                    record.map_err(|e| err(None, None, CsvProblem::Syntax(e.to_string())))?;
                let line = lines.line_of(&record);
                record.trim();
                if !is_blank(&record) {
                    break (line, record);
                }
            }
        }
    };
    let columns = Columns::from_header(&header).map_err(|p| err(Some(header_line), None, p))?;

    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in records {
        let mut record = record.map_err(|e| err(None, None, CsvProblem::Syntax(e.to_string())))?;
        let line = lines.line_of(&record);
        // Trimmed after the line is taken: trimming drops the record's position.
        record.trim();
        if is_blank(&record) {
            continue;
        }
        if let Some(name) = record.get(columns.project).filter(|name| !name.is_empty())
            && let Some(first_line) = seen.insert(name.to_ascii_lowercase(), line)
        {
            let problem = CsvProblem::DuplicateProject { name: name.to_string(), first_line };
            return Err(err(Some(line), Some("Project"), problem));
        }
        let row = columns.row(&record, line).map_err(|(field, p)| err(Some(line), field, p))?;
        rows.push(row);
    }
    Ok(rows)
}

/// The same CSV text with `project`'s `Servers` set to `servers`; every other line is kept
/// byte for byte. `None` when the project has no row.
pub fn with_servers(
    path: &Path,
    bytes: &[u8],
    project: &str,
    servers: u32,
) -> Result<Option<String>, ProjectsCsvError> {
    let rows = parse(path, bytes)?;
    let Some(row) = rows.iter().find(|row| row.name == project) else {
        return Ok(None);
    };
    let text = decode(path, bytes)?;
    let mut reader = reader_of(text);
    let header = reader
        .records()
        .filter_map(Result::ok)
        .map(|mut record| {
            record.trim();
            record
        })
        .find(|record| !is_blank(record))
        .expect("parse found a header");
    let servers_index = header
        .iter()
        .position(|name| name.eq_ignore_ascii_case("Servers"))
        .expect("parse checked the Servers column");

    let mut out = String::with_capacity(bytes.len());
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        out.push('\u{feff}');
    }
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if index as u64 + 1 != row.line {
            out.push_str(line);
            continue;
        }
        let ending = &line[line.trim_end_matches(['\r', '\n']).len()..];
        let mut record =
            reader_of(line).records().next().and_then(Result::ok).expect("parse read this row");
        record.trim();
        let fields: Vec<String> = record
            .iter()
            .enumerate()
            .map(
                |(i, field)| {
                    if i == servers_index { servers.to_string() } else { field.to_string() }
                },
            )
            .collect();
        let mut writer =
            csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(vec![]);
        writer.write_record(&fields).expect("writing to memory");
        let written = writer.into_inner().expect("writing to memory");
        let written = String::from_utf8(written).expect("fields were UTF-8");
        out.push_str(written.trim_end_matches('\n'));
        out.push_str(ending);
    }
    Ok(Some(out))
}

fn decode<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, ProjectsCsvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() as u64 + 1;
        ProjectsCsvError::new(path, Some(line), None, CsvProblem::InvalidUtf8)
    })?;
    if let Some((line, problem)) = quoting_problem(text) {
        return Err(ProjectsCsvError::new(path, Some(line), None, problem));
    }
    Ok(text)
}

fn reader_of(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes())
}

fn is_blank(record: &csv::StringRecord) -> bool {
    record.iter().all(str::is_empty)
}

/// Counts lines as the reader moves through the text, so finding a record's line costs only
/// the bytes since the previous record.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter { bytes: text.as_bytes(), offset: 0, line: 1 }
    }

    /// The line a record starts on. The reader's own line count misses blank lines it
    /// skipped, and after CRLF its offset points at the line feed before the record.
    fn line_of(&mut self, record: &csv::StringRecord) -> u64 {
        let mut target = record.position().map_or(0, |p| p.byte() as usize).min(self.bytes.len());
        while target < self.bytes.len() && matches!(self.bytes[target], b'\r' | b'\n') {
            target += 1;
        }
        if target >= self.offset {
            self.line +=
                self.bytes[self.offset..target].iter().filter(|b| **b == b'\n').count() as u64;
            self.offset = target;
        }
        self.line
    }
}

/// A quoting mistake the CSV reader would silently paper over, and its line.
///
/// The reader takes an unclosed quote to run to the end of the file, turning a typo into one
/// enormous field, and glues text after a closing quote onto the field; this finds both first
/// so the message points at the typo.
fn quoting_problem(text: &str) -> Option<(u64, CsvProblem)> {
    let mut line = 1;
    let mut opened_on = None;
    let mut just_closed = false;
    let mut at_field_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if just_closed && !matches!(c, ',' | '\r' | '\n' | ' ' | '\t') {
            return Some((line, CsvProblem::TextAfterQuote));
        }
        just_closed = just_closed && matches!(c, ' ' | '\t');
        if c == '\n' {
            line += 1;
        }
        match opened_on {
            Some(_) if c == '"' => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                } else {
                    opened_on = None;
                    just_closed = true;
                }
            }
            Some(_) => {}
            None if c == '"' && at_field_start => opened_on = Some(line),
            None => {}
        }
        at_field_start =
            opened_on.is_none() && (c == ',' || c == '\n' || (at_field_start && c == ' '));
    }
    opened_on.map(|line| (line, CsvProblem::UnterminatedQuote))
}

struct Columns {
    count: usize,
    project: usize,
    servers: usize,
    master_spec: usize,
    web_spec: usize,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Columns, CsvProblem> {
        let mut found: HashMap<&'static str, usize> = HashMap::new();
        for (index, name) in header.iter().enumerate() {
            let Some(column) = COLUMNS.iter().find(|c| c.eq_ignore_ascii_case(name)) else {
                return Err(CsvProblem::UnknownColumn { name: name.to_string() });
            };
            if found.insert(column, index).is_some() {
                return Err(CsvProblem::DuplicateColumn { name: name.to_string() });
            }
        }
        let index =
            |name: &'static str| found.get(name).copied().ok_or(CsvProblem::MissingColumn { name });
        Ok(Columns {
            count: header.len(),
            project: index("Project")?,
            servers: index("Servers")?,
            master_spec: index("MasterSpec")?,
            web_spec: index("WebSpec")?,
        })
    }

    fn row(
        &self,
        record: &csv::StringRecord,
        line: u64,
    ) -> Result<ProjectRow, (Option<&'static str>, CsvProblem)> {
        let is_column = |field: &str| COLUMNS.iter().any(|c| c.eq_ignore_ascii_case(field));
        if record.len() == self.count && record.iter().all(is_column) {
            return Err((None, CsvProblem::RepeatedHeader));
        }
        if record.len() != self.count {
            return Err((
                None,
                CsvProblem::FieldCount { expected: self.count, found: record.len() },
            ));
        }
        let name = &record[self.project];
        names::check(name, names::MAX_PROJECT_NAME).map_err(|reason| {
            (Some("Project"), CsvProblem::BadName { value: name.to_string(), reason })
        })?;
        Ok(ProjectRow {
            name: name.to_string(),
            servers: parse_servers(&record[self.servers]).map_err(|p| (Some("Servers"), p))?,
            master_spec: parse_size(&record[self.master_spec])
                .map_err(|p| (Some("MasterSpec"), p))?,
            web_spec: parse_size(&record[self.web_spec]).map_err(|p| (Some("WebSpec"), p))?,
            line,
        })
    }
}

fn parse_servers(value: &str) -> Result<u32, CsvProblem> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CsvProblem::Servers { value: value.to_string() });
    }
    match digits.parse::<u64>() {
        Ok(0) => Err(CsvProblem::Servers { value: value.to_string() }),
        Ok(n) if n > u64::from(MAX_SERVERS) => {
            Err(CsvProblem::TooManyServers { value: shorten(value) })
        }
        Ok(n) => Ok(u32::try_from(n).expect("bounded by MAX_SERVERS")),
        Err(_) => Err(CsvProblem::TooManyServers { value: shorten(value) }),
    }
}

fn parse_size(value: &str) -> Result<String, CsvProblem> {
    match sizes::find(value) {
        Some(size) => Ok(size.slug.to_string()),
        None => Err(CsvProblem::UnknownSize {
            value: value.to_string(),
            suggestion: sizes::closest(value),
        }),
    }
}

#[cfg(test)]
mod tests;
