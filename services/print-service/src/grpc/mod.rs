//! gRPC adapters of the print-service.

mod control;
mod validate;

pub use control::{PrintControlApi, PrinterInfo};
