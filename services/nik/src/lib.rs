//! The NIK (*Nomor Induk Kependudukan*), Indonesia's 16-digit national
//! identity number as printed on the e-KTP identity card: parsing,
//! validation, masking for logs ([`Nik::masked`], and [`mask_raw`] for raw
//! input), and warnings when a NIK disagrees with a resident's declared birth
//! date or sex.
//!
//! A NIK reads `PPRRDDddmmyySSSS`: province (2 digits), regency (2),
//! district (2), birth date as day, month and two-digit year (for women the
//! day has 40 added, so 41–71) and a serial number starting at `0001`. There
//! is no check digit.
//!
//! NIKs are never reissued, so a NIK whose encoded birth date or sex
//! disagrees with the declared one is reported as a [`NikWarning`], never
//! rejected.
//!
//! ```
//! use ektp_nik::{CivilDate, Nik, Sex};
//!
//! let nik = Nik::parse("3527014507900001")?;
//! assert_eq!(nik.encoded_sex(), Sex::Female);
//! assert_eq!(nik.birth_day(), 5);
//! assert_eq!(nik.masked(), "3527**********01");
//!
//! let declared = CivilDate::new(1990, 7, 5)?;
//! assert!(nik.check_declared(declared, Sex::Female).is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod date;
mod mask;
mod nik;
mod province;

pub use date::{CivilDate, DateError, days_in_month, is_leap_year};
pub use mask::{Masked, mask_raw};
pub use nik::{Nik, NikError, NikWarning, Sex, compose};
pub use province::{PROVINCES, province_name};
