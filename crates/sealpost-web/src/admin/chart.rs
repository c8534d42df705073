//! Bar charts as inline SVG, drawn on the server: no scripts, no external resources, and the
//! CSP needs no exception (presentation comes from the admin stylesheet).

/// A bar chart of daily values (oldest first) with the maximum and the day labels.
pub fn bars(title: &str, values: &[i64]) -> String {
    let width = 300.0_f64;
    let height = 80.0_f64;
    let top = 10.0;
    let n = values.len().max(1) as f64;
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let slot = width / n;
    let bar = (slot * 0.75).max(1.0);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        height + 12.0,
        escape(title)
    );
    svg.push_str(&format!("<title>{}</title>", escape(title)));
    for (i, v) in values.iter().enumerate() {
        let h = (*v.max(&0) as f64 / max) * (height - top);
        let x = i as f64 * slot + (slot - bar) / 2.0;
        svg.push_str(&format!(
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\"><title>{v}</title></rect>",
            height - h
        ));
    }
    svg.push_str(&format!(
        "<line class=\"base\" x1=\"0\" y1=\"{height}\" x2=\"{width}\" y2=\"{height}\"/>"
    ));
    svg.push_str(&format!(
        "<text x=\"0\" y=\"7\">max {}</text><text x=\"0\" y=\"{}\">30 days ago</text><text x=\"{width}\" y=\"{}\" text-anchor=\"end\">today</text>",
        max as i64,
        height + 10.0,
        height + 10.0
    ));
    svg.push_str("</svg>");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_day_and_no_script() {
        let svg = bars("Encrypted <mails>", &[0, 3, 1]);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("Encrypted &lt;mails&gt;"));
        assert!(!svg.contains("<script"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
