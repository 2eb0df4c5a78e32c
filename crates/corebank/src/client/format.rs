//! Plain-text output of `corebank client`: aligned tables, key/value blocks, and
//! RFC 3339 times computed from ledger nanoseconds with integer arithmetic only.

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    /// Text: padded on the right.
    Left,
    /// Amounts and numbers: padded on the left, so the decimal points line up.
    Right,
}

/// A table with a header line and aligned columns, two spaces apart.
#[derive(Debug)]
pub(crate) struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(columns: &[(&'static str, Align)]) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub(crate) fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.columns.len(), String::new());
        self.rows.push(cells);
    }

    /// The table, one line per row after the header, each ending in a newline,
    /// without trailing spaces.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .map(|(title, _)| title.chars().count())
            .collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.columns.iter().map(|(t, _)| (*t).to_owned()).collect();
        let mut out = String::new();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (index, ((cell, width), (_, align))) in
                cells.iter().zip(&widths).zip(&self.columns).enumerate()
            {
                if index > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(width.saturating_sub(cell.chars().count()));
                match align {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `key  value` lines with the values lined up.
pub(crate) fn pairs(rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in rows {
        let line = format!("{key:<width$}  {value}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

const NS_PER_SECOND: u64 = 1_000_000_000;
const SECONDS_PER_DAY: u64 = 86_400;

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`), as (year, month 1-12, day 1-31).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Date and time of day of a timestamp in ns since the Unix epoch, UTC.
fn split(ns: u64) -> (String, u64) {
    let seconds = ns / NS_PER_SECOND;
    // Below 2^64 / 86400, so always representable.
    let days = i64::try_from(seconds / SECONDS_PER_DAY).unwrap_or(i64::MAX / 2);
    let (year, month, day) = civil_from_days(days);
    let of_day = seconds % SECONDS_PER_DAY;
    (
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            of_day / 3_600,
            of_day % 3_600 / 60,
            of_day % 60
        ),
        ns % NS_PER_SECOND,
    )
}

/// RFC 3339 in UTC with nanoseconds: `2026-01-01T09:30:00.123456789Z`.
pub(crate) fn rfc3339(ns: u64) -> String {
    let (date_time, nanos) = split(ns);
    format!("{date_time}.{nanos:09}Z")
}

/// RFC 3339 in UTC to the second, for tables: `2026-01-01T09:30:00Z`.
pub(crate) fn rfc3339_seconds(ns: u64) -> String {
    let (date_time, _) = split(ns);
    format!("{date_time}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_seconds(1_767_225_600_000_000_000),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(951_782_400 * NS_PER_SECOND + 5),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            rfc3339_seconds(4_102_444_799 * NS_PER_SECOND),
            "2099-12-31T23:59:59Z"
        );
        assert_eq!(
            rfc3339_seconds(1_709_164_800 * NS_PER_SECOND - 1),
            "2024-02-28T23:59:59Z"
        );
        assert_eq!(
            rfc3339_seconds(u64::MAX / 2),
            "2262-04-11T23:47:16Z",
            "the largest ledger timestamp (2^63 - 1 ns)"
        );
    }

    #[test]
    fn columns_line_up() {
        let mut table = Table::new(&[("NAME", Align::Left), ("AMOUNT", Align::Right)]);
        table.row(vec!["a".into(), "1.00".into()]);
        table.row(vec!["longer".into(), "1000.00".into()]);
        assert_eq!(
            table.render(),
            "NAME     AMOUNT\na          1.00\nlonger  1000.00\n"
        );
        assert_eq!(
            pairs(&[("id", "1".into()), ("amount", "2.00 EUR".into())]),
            "id      1\namount  2.00 EUR\n"
        );
    }
}
