//! Writes every CRD to a directory (default `deploy/crds`), one YAML file each.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("deploy/crds"));
    std::fs::create_dir_all(&dir)?;
    for (file, crd) in api::crds::all() {
        let path = dir.join(file);
        std::fs::write(&path, api::crds::to_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
