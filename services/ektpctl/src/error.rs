//! What can end a command, how it is reported on stderr, and its exit code:
//! 1 when a call (or an imported row) failed, 2 for bad usage or input.

pub use ektp_proto::code_name;
use tonic::Status;
use tonic_types::StatusExt;

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage or an unreadable input file: exit 2.
    #[error("{0}")]
    Usage(String),
    /// A call failed: exit 1.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Call(Box<Status>),
    /// The command ran but some of its work failed (already reported): exit 1.
    #[error("{0}")]
    Failed(String),
}

impl From<Status> for CliError {
    fn from(status: Status) -> Self {
        CliError::Call(Box::new(status))
    }
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Call(_) | CliError::Failed(_) => 1,
        }
    }

    /// The lines to print on stderr: `ektpctl: ...`, then each field violation.
    pub fn report(&self) -> String {
        let mut out = format!("ektpctl: {self}\n");
        if let CliError::Call(status) = self {
            out.push_str(&violations(status));
        }
        out
    }
}

/// `  <field>: <description>` for each `BadRequest` field violation of a status.
pub fn violations(status: &Status) -> String {
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| format!("  {}: {}\n", v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use tonic_types::{ErrorDetails, FieldViolation};

    #[test]
    fn a_failed_call_reports_its_code_and_every_violation() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "invalid resident.nik: too short",
            ErrorDetails::with_bad_request(vec![
                FieldViolation::new("resident.nik", "a NIK has 16 digits"),
                FieldViolation::new("resident.rt", "1-3 digits"),
            ]),
        );
        let error = CliError::from(status);
        assert_eq!(error.exit_code(), 1);
        assert_eq!(
            error.report(),
            "ektpctl: INVALID_ARGUMENT: invalid resident.nik: too short\n  \
             resident.nik: a NIK has 16 digits\n  resident.rt: 1-3 digits\n"
        );
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
    }
}
