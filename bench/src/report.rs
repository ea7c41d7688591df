//! Rows, targets, verdicts, the printed table and the JSON document.

use serde_json::{json, Value};

/// What a row asks of a proxy.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// At least this fraction of `direct`.
    RatioToDirect(f64),
    /// At least this fraction of the same server's value in another row.
    RatioToRow(&'static str, f64),
    /// At most `direct` plus this much (in the row's unit).
    AtMostDirectPlus(f64),
    /// At most this much.
    AtMost(f64),
    /// Within `[lo, hi]`.
    Within(f64, f64),
    /// Exactly zero.
    Zero,
    /// Reported for context; no target.
    Info,
    /// Reported for context, as a ratio to the same server's value in another row.
    InfoVsRow(&'static str),
}

impl Goal {
    pub fn describe(&self) -> String {
        match *self {
            Goal::RatioToDirect(x) => format!(">= {x}x direct"),
            Goal::RatioToRow(row, x) => format!(">= {x}x {row}"),
            Goal::AtMostDirectPlus(x) => format!("<= direct + {x}"),
            Goal::AtMost(x) => format!("<= {x}"),
            Goal::Within(lo, hi) => format!("{lo} to {hi}"),
            Goal::Zero => "0".into(),
            Goal::Info => "-".into(),
            Goal::InfoVsRow(row) => format!("- (vs {row})"),
        }
    }
}

/// Which way is better on a row, for comparing two proxies on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    /// Lower, compared as what each adds over `direct` (round trips).
    LowerAdded,
    /// Not compared.
    Neither,
}

/// One measured value: a number, nothing (not applicable), or the error that stopped it.
#[derive(Debug, Clone)]
pub enum Cell {
    Value(f64),
    NotApplicable,
    Failed(String),
}

impl Cell {
    pub fn value(&self) -> Option<f64> {
        match self {
            Cell::Value(v) => Some(*v),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Row {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub goal: Goal,
    pub better: Better,
    /// One per column: `direct` first, then each server.
    pub cells: Vec<Cell>,
}

/// A server's cell judged against the row's goal.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The ratio or difference the goal is about, as printed.
    pub relative: Option<String>,
    pub ratio: Option<f64>,
    pub pass: Option<bool>,
}

fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub fn judge(rows: &[Row], row: &Row, column: usize) -> Verdict {
    let none = Verdict {
        relative: None,
        ratio: None,
        pass: None,
    };
    let Some(v) = row.cells[column].value() else {
        return none;
    };
    let direct = row.cells[0].value();
    match row.goal {
        Goal::RatioToDirect(x) => match direct {
            Some(d) if d > 0.0 => {
                let r = v / d;
                Verdict {
                    relative: Some(format!("{r:.2}x")),
                    ratio: Some(r),
                    pass: Some(r >= x),
                }
            }
            _ => none,
        },
        Goal::RatioToRow(other, x) => {
            let reference = rows
                .iter()
                .find(|r| r.id == other)
                .and_then(|r| r.cells[column].value());
            match reference {
                Some(b) if b > 0.0 => {
                    let r = v / b;
                    Verdict {
                        relative: Some(format!("{r:.2}x")),
                        ratio: Some(r),
                        pass: Some(r >= x),
                    }
                }
                _ => none,
            }
        }
        Goal::AtMostDirectPlus(x) => match direct {
            Some(d) => Verdict {
                relative: Some(format!("+{}", fmt_value(v - d))),
                ratio: None,
                pass: Some(v - d <= x),
            },
            None => none,
        },
        Goal::AtMost(x) => Verdict {
            pass: Some(v <= x),
            ..none
        },
        Goal::Within(lo, hi) => Verdict {
            pass: Some(v >= lo && v <= hi),
            ..none
        },
        Goal::Zero => Verdict {
            pass: Some(v == 0.0),
            ..none
        },
        Goal::InfoVsRow(other) => match rows
            .iter()
            .find(|r| r.id == other)
            .and_then(|r| r.cells[column].value())
        {
            Some(b) if b > 0.0 => Verdict {
                relative: Some(format!("{:.2}x", v / b)),
                ratio: Some(v / b),
                pass: None,
            },
            _ => none,
        },
        Goal::Info => match direct {
            Some(d) if d > 0.0 => Verdict {
                relative: Some(format!("{:.2}x", v / d)),
                ratio: Some(v / d),
                pass: None,
            },
            _ => none,
        },
    }
}

fn cell_text(rows: &[Row], row: &Row, column: usize) -> String {
    match &row.cells[column] {
        Cell::NotApplicable => "-".into(),
        Cell::Failed(_) => "ERROR".into(),
        Cell::Value(v) => {
            let mut text = fmt_value(*v);
            if column > 0 {
                let verdict = judge(rows, row, column);
                if let Some(rel) = verdict.relative {
                    text.push_str(&format!(" ({rel})"));
                }
                if let Some(pass) = verdict.pass {
                    text.push_str(if pass { " PASS" } else { " MISS" });
                }
            }
            text
        }
    }
}

/// The median of one cell's rounds: a value if every round measured one, else the first error,
/// else not applicable.
pub fn median(rounds: &[Cell]) -> Cell {
    if let Some(failed) = rounds.iter().find(|c| matches!(c, Cell::Failed(_))) {
        return failed.clone();
    }
    let mut values: Vec<f64> = rounds.iter().filter_map(Cell::value).collect();
    if values.is_empty() || values.len() < rounds.len() {
        return Cell::NotApplicable;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Cell::Value(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// How column `subject` compares with column `reference` on a row: (ratio or difference as
/// printed, whether `subject` is at least as good).
pub fn compare(row: &Row, reference: usize, subject: usize) -> Option<(String, f64, bool)> {
    let r = row.cells[reference].value()?;
    let s = row.cells[subject].value()?;
    match row.better {
        Better::Neither => None,
        Better::Higher if r > 0.0 => Some((format!("{:.2}x", s / r), s / r, s >= r)),
        Better::Lower if r > 0.0 => Some((format!("{:.2}x", s / r), s / r, s <= r)),
        Better::LowerAdded => {
            let d = row.cells[0].value()?;
            let (ra, sa) = (r - d, s - d);
            Some((
                format!("+{} vs +{}", fmt_value(sa), fmt_value(ra)),
                sa - ra,
                sa <= ra,
            ))
        }
        _ => None,
    }
}

/// The table, as Markdown (readable as plain text too). With `versus` = (reference, subject)
/// columns, a last column compares the two.
pub fn table(rows: &[Row], columns: &[String], versus: Option<(usize, usize)>) -> String {
    let mut header = vec![
        "workload".to_string(),
        "unit".to_string(),
        "target".to_string(),
    ];
    header.extend(columns.iter().cloned());
    if let Some((r, s)) = versus {
        header.push(format!("{} vs {}", columns[s], columns[r]));
    }
    let mut lines = vec![header];
    for row in rows {
        let mut line = vec![
            row.title.to_string(),
            row.unit.to_string(),
            row.goal.describe(),
        ];
        line.extend((0..columns.len()).map(|c| cell_text(rows, row, c)));
        if let Some((r, s)) = versus {
            line.push(match compare(row, r, s) {
                Some((text, _, true)) => format!("{text} even or ahead"),
                Some((text, _, false)) => format!("{text} behind"),
                None => "-".into(),
            });
        }
        lines.push(line);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let render = |line: &Vec<String>| {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        format!("| {} |", cells.join(" | "))
    };
    let mut out = vec![render(&lines[0])];
    out.push(format!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    ));
    out.extend(lines[1..].iter().map(render));
    let mut text = out.join("\n");
    let errors: Vec<String> = rows
        .iter()
        .flat_map(|row| {
            row.cells
                .iter()
                .enumerate()
                .filter_map(move |(c, cell)| match cell {
                    Cell::Failed(e) => Some(format!("- {} / {}: {e}", row.id, columns[c])),
                    _ => None,
                })
        })
        .collect();
    if !errors.is_empty() {
        text.push_str("\n\nErrors:\n");
        text.push_str(&errors.join("\n"));
    }
    text
}

/// Every row as JSON: each column's median (with its verdict) and every round's value.
pub fn json_rows(
    rows: &[Row],
    columns: &[String],
    rounds: &[Vec<Vec<Cell>>],
    versus: Option<(usize, usize)>,
) -> Value {
    Value::Array(
        rows.iter()
            .zip(rounds)
            .map(|(row, row_rounds)| {
                let results: serde_json::Map<String, Value> = columns
                    .iter()
                    .enumerate()
                    .map(|(c, name)| {
                        let verdict = judge(rows, row, c);
                        let each: Vec<Value> = row_rounds[c]
                            .iter()
                            .map(|cell| cell.value().map_or(Value::Null, |v| json!(v)))
                            .collect();
                        let value = match &row.cells[c] {
                            Cell::Value(v) => json!({"value": v, "ratio": verdict.ratio,
                                "relative": verdict.relative, "pass": verdict.pass,
                                "rounds": each}),
                            Cell::NotApplicable => Value::Null,
                            Cell::Failed(e) => json!({"error": e}),
                        };
                        (name.clone(), value)
                    })
                    .collect();
                let versus = versus.and_then(|(r, s)| {
                    let (text, number, ok) = compare(row, r, s)?;
                    Some(json!({"reference": columns[r], "subject": columns[s],
                        "relative": text, "number": number, "even_or_ahead": ok}))
                });
                json!({"id": row.id, "workload": row.title, "unit": row.unit,
                    "target": row.goal.describe(), "results": results, "versus": versus})
            })
            .collect(),
    )
}
