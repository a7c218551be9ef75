//! The committed `deploy/crds` must be exactly what the types generate: run `just crds`.

#[test]
fn committed_crds_match_the_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    let mut expected_files = Vec::new();
    for (file, crd) in api::crds::all() {
        let committed = std::fs::read_to_string(dir.join(&file))
            .unwrap_or_else(|e| panic!("deploy/crds/{file} is missing ({e}): run `just crds`"));
        assert!(
            committed == api::crds::to_yaml(&crd).unwrap(),
            "deploy/crds/{file} differs from the types in crates/api: run `just crds`"
        );
        expected_files.push(file);
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    expected_files.sort();
    assert_eq!(
        on_disk, expected_files,
        "deploy/crds holds a file no type generates"
    );
}
