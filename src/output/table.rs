//! Plain-text tables: a title, a header row, aligned columns.

/// A table built row by row and rendered with aligned columns.
#[derive(Debug, Clone)]
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: &str, header: &[&str]) -> Table {
        Table {
            title: title.to_string(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Multi-line cells are split over several physical lines; colour codes
    /// take no room.
    pub fn render(&self) -> String {
        let width = |s: &str| s.lines().map(visible_width).max().unwrap_or(0);
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(width(cell));
                }
            }
        }
        let mut out = format!("{}\n", self.title);
        let line = |cells: &[String], out: &mut String| {
            let height = cells
                .iter()
                .map(|c| c.lines().count().max(1))
                .max()
                .unwrap_or(1);
            for l in 0..height {
                let parts: Vec<String> = cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let text = c.lines().nth(l).unwrap_or("");
                        let pad = widths[i].saturating_sub(visible_width(text));
                        format!("{text}{}", " ".repeat(pad))
                    })
                    .collect();
                out.push_str("  ");
                out.push_str(parts.join("  ").trim_end());
                out.push('\n');
            }
        };
        line(&self.header, &mut out);
        let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
        line(&rule, &mut out);
        for row in &self.rows {
            line(row, &mut out);
        }
        out
    }
}

/// Characters shown, not counting ANSI colour sequences (`ESC [ … m`).
fn visible_width(s: &str) -> usize {
    let mut n = 0;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_multiline_cells_wrap() {
        let mut t = Table::new("T", &["a", "bb"]);
        t.row(vec!["xxx".into(), "y\nz".into()]);
        assert_eq!(t.render(), "T\n  a    bb\n  ───  ──\n  xxx  y\n       z\n");
        let mut c = Table::new("T", &["a", "b"]);
        c.row(vec!["\x1b[32mok\x1b[0m".into(), "x".into()]);
        assert_eq!(c.render(), "T\n  a   b\n  ──  ─\n  \x1b[32mok\x1b[0m  x\n");
    }
}
