//! SIGINT and SIGTERM, turned into errors of their own kinds while a step runs, so that the
//! step's owner can withdraw what it created and say so.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::{Error, Kind, Result};

pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    pub fn install() -> Result<Signals> {
        let install = |kind| {
            signal(kind).map_err(|e| Error::failed(format!("cannot install a signal handler: {e}")))
        };
        Ok(Signals {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
        })
    }

    pub async fn interruptible<T>(&mut self, step: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            result = step => result,
            _ = self.interrupt.recv() => Err(Error::new(Kind::Interrupted, "interrupted")),
            _ = self.terminate.recv() => Err(Error::new(Kind::Terminated, "terminated")),
        }
    }
}
