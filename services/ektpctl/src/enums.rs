//! Proto enum values by their short names: `FEMALE` for `SEX_FEMALE`, parsed
//! case-insensitively (with or without the prefix) and shown without it.

use ektp_proto::v1 as pb;

/// A generated proto enum with a common value-name prefix.
pub trait ProtoEnum: Sized + Copy + 'static {
    /// The value-name prefix, e.g. `SEX_`.
    const PREFIX: &'static str;
    /// The value of a full name, e.g. `SEX_FEMALE`.
    fn from_name(name: &str) -> Option<Self>;
    /// The full name of a value.
    fn name(self) -> &'static str;
    /// The value of a wire number.
    fn from_number(n: i32) -> Option<Self>;
}

macro_rules! proto_enum {
    ($($t:ty => $prefix:literal),* $(,)?) => {$(
        impl ProtoEnum for $t {
            const PREFIX: &'static str = $prefix;
            fn from_name(name: &str) -> Option<Self> {
                <$t>::from_str_name(name)
            }
            fn name(self) -> &'static str {
                self.as_str_name()
            }
            fn from_number(n: i32) -> Option<Self> {
                <$t>::try_from(n).ok()
            }
        }
    )*};
}

proto_enum! {
    pb::Sex => "SEX_",
    pb::BloodType => "BLOOD_TYPE_",
    pb::Religion => "RELIGION_",
    pb::MaritalStatus => "MARITAL_STATUS_",
    pb::Citizenship => "CITIZENSHIP_",
    pb::ResidentStatus => "RESIDENT_STATUS_",
    pb::PrintJobState => "PRINT_JOB_STATE_",
    pb::PrintReason => "PRINT_REASON_",
    pb::Role => "ROLE_",
}

/// A value's name without its prefix, e.g. `FEMALE`.
pub fn short<E: ProtoEnum>(value: E) -> &'static str {
    let name = value.name();
    name.strip_prefix(E::PREFIX).unwrap_or(name)
}

/// The short name of a wire number, or the number when it is unknown.
pub fn short_of<E: ProtoEnum>(n: i32) -> String {
    E::from_number(n).map_or_else(|| n.to_string(), |e| short(e).to_owned())
}

/// Short names of every value but UNSPECIFIED.
fn choices<E: ProtoEnum>() -> Vec<&'static str> {
    (1..64).filter_map(E::from_number).map(short).collect()
}

/// Parses a short (or full) value name, case-insensitively; UNSPECIFIED and
/// unknown names are refused with the list of valid ones.
pub fn parse<E: ProtoEnum>(value: &str) -> Result<E, String> {
    let name = value.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    let choices = || choices::<E>().join(", ");
    if name.is_empty() {
        return Err(format!("is required; one of {}", choices()));
    }
    let full = if name.starts_with(E::PREFIX) {
        name
    } else {
        format!("{}{name}", E::PREFIX)
    };
    match E::from_name(&full) {
        Some(e) if !full.ends_with("_UNSPECIFIED") => Ok(e),
        _ => Err(format!("{:?} is not one of {}", value.trim(), choices())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_parse_case_insensitively() {
        assert_eq!(parse::<pb::Sex>("FEMALE"), Ok(pb::Sex::Female));
        assert_eq!(parse::<pb::Sex>(" male "), Ok(pb::Sex::Male));
        assert_eq!(parse::<pb::BloodType>("o"), Ok(pb::BloodType::O));
        assert_eq!(parse::<pb::BloodType>("AB"), Ok(pb::BloodType::Ab));
        assert_eq!(parse::<pb::Religion>("Islam"), Ok(pb::Religion::Islam));
        assert_eq!(
            parse::<pb::MaritalStatus>("married"),
            Ok(pb::MaritalStatus::Married)
        );
        assert_eq!(parse::<pb::Citizenship>("WNI"), Ok(pb::Citizenship::Wni));
        assert_eq!(parse::<pb::Sex>("SEX_FEMALE"), Ok(pb::Sex::Female));
    }

    #[test]
    fn unknown_empty_and_unspecified_names_are_refused() {
        let err = parse::<pb::Sex>("X").unwrap_err();
        assert_eq!(err, "\"X\" is not one of MALE, FEMALE");
        assert!(parse::<pb::Sex>("").unwrap_err().starts_with("is required"));
        assert!(parse::<pb::Sex>("unspecified").is_err());
        assert!(parse::<pb::BloodType>("C").is_err());
    }

    #[test]
    fn values_show_without_their_prefix() {
        assert_eq!(short(pb::PrintJobState::InDoubt), "IN_DOUBT");
        assert_eq!(short_of::<pb::Role>(1), "LEADER");
        assert_eq!(short_of::<pb::Role>(99), "99");
    }
}
