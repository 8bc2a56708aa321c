//! The runtime `--log` file: the format lives in `hookhost_core::runtime_log` (the stage runner
//! writes warnings there too); here, writing an error for one runtime call.

use super::argv::RuncCall;
pub use hookhost_core::runtime_log::{
    Level, LogError, LogFormat, RuntimeLog, append, format_line, write_error,
};

/// The log file and format of this call (its `--log` and `--log-format`), if it has one.
pub fn runtime_log(call: &RuncCall) -> Option<RuntimeLog> {
    call.log.as_ref().map(|path| RuntimeLog {
        path: path.clone(),
        json: LogFormat::from_flag(call.log_format.as_deref()) == LogFormat::Json,
    })
}

/// Writes an error to this call's `--log` file in its `--log-format`. Returns `Ok(false)` when
/// the call has no `--log` (the caller still prints to stderr, which it should do anyway).
pub fn log_error(call: &RuncCall, msg: &str) -> Result<bool, LogError> {
    let Some(path) = &call.log else {
        return Ok(false);
    };
    write_error(path, LogFormat::from_flag(call.log_format.as_deref()), msg)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    #[test]
    fn log_error_uses_the_calls_log_flags() {
        let dir = TempDir::new().unwrap();
        let log = dir.path().join("log.json");
        let args = [
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "id",
        ];
        let call = RuncCall::parse(&args, dir.path());
        assert!(log_error(&call, "refused: unregistered hook \"x\"").unwrap());
        let v: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "refused: unregistered hook \"x\"");

        let no_log = RuncCall::parse(&["create", "id"], dir.path());
        assert!(!log_error(&no_log, "x").unwrap());
        let bad = RuncCall::parse(
            &["--log", "/nonexistent-dir/x/log.json", "create"],
            dir.path(),
        );
        let err = log_error(&bad, "x").unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x/log.json"));
    }
}
