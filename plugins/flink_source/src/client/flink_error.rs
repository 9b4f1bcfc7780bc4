//! Flink answers every failure with `{"errors": [...]}` holding whole Java
//! stack traces (the SQL Gateway always with HTTP 500). Logs and errors get
//! the one line that says what went wrong: the deepest `Caused by:`.

use serde::Deserialize;

const MAX_LEN: usize = 300;

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<String>,
}

/// One line describing an error response body.
pub fn summarize(body: &[u8]) -> String {
    let line = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => root_cause(&parsed.errors),
        Err(_) => String::from_utf8_lossy(body)
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(str::to_string),
    };
    truncate(line.unwrap_or_else(|| "(empty response)".into()))
}

fn root_cause(errors: &[String]) -> Option<String> {
    let lines = || errors.iter().flat_map(|error| error.lines()).map(str::trim);
    let deepest = lines()
        .filter_map(|line| line.strip_prefix("Caused by: "))
        .next_back();
    let first = || {
        lines().find(|line| {
            !line.is_empty()
                && *line != "Internal server error."
                && !line.starts_with("<Exception on server side")
                && !line.starts_with("at ")
        })
    };
    deepest.or_else(first).map(short_class_name)
}

/// `org.apache.calcite.sql.validate.SqlValidatorException: msg` →
/// `SqlValidatorException: msg`: the package adds length, not meaning.
fn short_class_name(line: &str) -> String {
    let (head, rest) = match line.split_once(": ") {
        Some((head, rest)) => (head, Some(rest)),
        None => (line, None),
    };
    let is_class = !head.is_empty()
        && !head.contains(' ')
        && head.contains('.')
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '$' | '_'));
    let head = if is_class {
        head.rsplit('.').next().unwrap_or(head)
    } else {
        head
    };
    match rest {
        Some(rest) => format!("{head}: {rest}"),
        None => head.to_string(),
    }
}

fn truncate(mut line: String) -> String {
    if line.len() > MAX_LEN {
        let mut cut = MAX_LEN;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(errors: &[&str]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "errors": errors })).unwrap()
    }

    #[test]
    fn gateway_stack_trace_becomes_its_deepest_cause() {
        // The shape of gw-61 (bad SQL) and gw-31 (token out of order).
        let trace = "<Exception on server side:\norg.apache.flink.table.gateway.api.utils.SqlGatewayException: Failed to fetchResults.\n\tat org.apache.Foo.bar(Foo.java:1)\nCaused by: org.apache.flink.table.api.ValidationException: SQL validation failed. Object 'x' not found\n\t... 7 more\nCaused by: org.apache.calcite.sql.validate.SqlValidatorException: Object 'no_such_table' not found\n\t... 34 more\n\nEnd of exception on server side>";
        assert_eq!(
            summarize(&body(&["Internal server error.", trace])),
            "SqlValidatorException: Object 'no_such_table' not found"
        );
    }

    #[test]
    fn rest_error_without_cause_keeps_its_first_line() {
        let trace = "org.apache.flink.runtime.rest.NotFoundException: Job 00000000000000000000000000000000 not found\n\tat org.apache.Foo.bar(Foo.java:1)";
        assert_eq!(
            summarize(&body(&[trace])),
            "NotFoundException: Job 00000000000000000000000000000000 not found"
        );
        assert_eq!(summarize(&body(&["Not found: /nope"])), "Not found: /nope");
    }

    #[test]
    fn plain_bodies_and_long_lines() {
        assert_eq!(summarize(b"\n  bad gateway\nmore"), "bad gateway");
        assert_eq!(summarize(b""), "(empty response)");
        let long = "x".repeat(1000);
        let summary = summarize(&body(&[&long]));
        assert!(summary.chars().count() <= MAX_LEN + 1, "{}", summary.len());
    }
}
