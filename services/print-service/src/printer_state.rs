//! Whether an operator paused the printer, kept in etcd at
//! `/ektp/{office}/printers/{name}/paused` so a pause survives failover.
//! Changed only by the print leader under its fence.

use crate::stock::{StateError, bounded};
use ektp_election::{Fence, FencedTxn};
use etcd_client::{Client, TxnOp};

/// The pause flag of one printer.
#[derive(Clone)]
pub struct PrinterState {
    client: Client,
    key: String,
}

impl PrinterState {
    pub fn new(client: Client, prefix: &str, printer: &str) -> Self {
        Self {
            client,
            key: format!("{prefix}printers/{printer}/paused"),
        }
    }

    /// Whether the printer is paused.
    pub async fn paused(&self) -> Result<bool, StateError> {
        let mut client = self.client.clone();
        let response = bounded("get", client.get(self.key.as_str(), None)).await?;
        Ok(!response.kvs().is_empty())
    }

    /// Pauses or resumes the printer.
    pub async fn set_paused(&self, fence: &Fence, paused: bool) -> Result<(), StateError> {
        let op = if paused {
            TxnOp::put(self.key.as_str(), "paused by an operator", None)
        } else {
            TxnOp::delete(self.key.as_str(), None)
        };
        let mut client = self.client.clone();
        bounded("txn", FencedTxn::new([fence]).op(op).commit(&mut client)).await?;
        Ok(())
    }
}
