//! The report: one Markdown table row per figure, and the generated part of
//! `docs/benchmarks.md` between its markers.

use std::path::Path;
use std::time::Duration;

/// One figure's result.
pub struct Row {
    /// What was measured.
    figure: String,
    /// agentd's median.
    ours: String,
    /// pueue's or the baseline's median, or `—`.
    theirs: String,
    /// agentd / theirs, where the target is a ratio.
    ratio: Option<f64>,
    /// The target.
    target: &'static str,
    /// Whether the target was met.
    met: bool,
}

impl Row {
    /// A figure whose target is judged on the ratio `ours / theirs`.
    pub fn ratio(
        figure: String,
        ours: String,
        theirs: String,
        ratio: f64,
        target: &'static str,
        met: impl FnOnce(f64) -> bool,
    ) -> Row {
        Row {
            figure,
            ours,
            theirs,
            ratio: Some(ratio),
            target,
            met: met(ratio),
        }
    }

    /// A figure judged on agentd's value alone.
    pub fn plain(
        figure: String,
        ours: String,
        theirs: String,
        target: &'static str,
        met: bool,
    ) -> Row {
        Row {
            figure,
            ours,
            theirs,
            ratio: None,
            target,
            met,
        }
    }

    /// Whether the target was met.
    pub fn met(&self) -> bool {
        self.met
    }
}

/// Milliseconds with a precision that suits the size.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// Bytes in MiB (or GiB from 1 GiB on).
pub fn bytes(n: u64) -> String {
    let mib = n as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

/// The Markdown table of `rows`, with a heading line saying how and where
/// it was measured.
pub fn table(rows: &[Row], header: &str) -> String {
    let mut out = format!(
        "{header}\n\n| figure | agentd | pueue or baseline | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |\n"
    );
    for r in rows {
        let ratio = r.ratio.map_or("—".to_string(), |x| format!("{x:.3}×"));
        let met = if r.met { "yes" } else { "**no**" };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.figure, r.ours, r.theirs, ratio, r.target, met
        ));
    }
    out
}

/// The markers around the generated table in `docs/benchmarks.md`.
const BEGIN: &str = "<!-- bench:begin (written by agentd-bench; edit the text around it) -->";
const END: &str = "<!-- bench:end -->";

/// Puts `generated` between the markers of `doc` (appending markers and
/// all if the file or the markers are missing), keeping the text around it.
///
/// Errors: the file cannot be read or written.
pub fn update_doc(doc: &Path, generated: &str) -> anyhow::Result<()> {
    let old = match std::fs::read_to_string(doc) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n\n".to_string(),
        Err(e) => return Err(e.into()),
    };
    let block = format!("{BEGIN}\n{generated}{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &old[..b], &old[e + END.len()..]),
        _ => format!("{old}\n{block}\n"),
    };
    std::fs::write(doc, new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_doc_replaces_only_the_generated_part() {
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("b.md");
        update_doc(&doc, "one\n").unwrap();
        let first = std::fs::read_to_string(&doc).unwrap();
        assert!(first.contains("one"), "{first}");
        std::fs::write(&doc, format!("intro\n{first}outro\n")).unwrap();
        update_doc(&doc, "two\n").unwrap();
        let second = std::fs::read_to_string(&doc).unwrap();
        assert!(second.starts_with("intro\n"), "{second}");
        assert!(second.ends_with("outro\n"), "{second}");
        assert!(
            second.contains("two") && !second.contains("one"),
            "{second}"
        );
    }

    #[test]
    fn units_read_well() {
        assert_eq!(ms(Duration::from_micros(1500)), "1.50 ms");
        assert_eq!(ms(Duration::from_millis(250)), "250.0 ms");
        assert_eq!(ms(Duration::from_millis(2500)), "2.50 s");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(bytes(1 << 30), "1.0 GiB");
    }
}
