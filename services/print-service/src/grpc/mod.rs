//! gRPC adapters of the print-service.

mod control;

pub use control::{PrintControlApi, PrinterInfo};
