//! `entitle install DIR`: this executable, byte for byte (a seal included), as DIR/entitle.

use crate::exit::Failure;
use crate::record;
use std::path::Path;
use tracing::info;

pub fn install(folder: &Path) -> Result<(), Failure> {
    let target = folder.join("entitle");
    let binary = own_executable()?;
    record::write_atomically(&target, &binary, 0o755).map_err(|e| {
        Failure::Config(format!(
            "cannot install into {}: {e}; mount a writable folder (e.g. an emptyDir) there",
            folder.display()
        ))
    })?;
    info!(path = %target.display(), bytes = binary.len(), "installed");
    Ok(())
}

/// This program's own file, read through /proc so it works however it was started.
pub fn own_executable() -> Result<Vec<u8>, Failure> {
    std::fs::read("/proc/self/exe").map_err(|e| {
        Failure::Config(format!(
            "cannot read this executable through /proc/self/exe ({e}); /proc must be mounted (run it in a normal container or mount proc)"
        ))
    })
}
