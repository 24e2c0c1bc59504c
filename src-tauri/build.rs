fn main() {
    // tauri.conf.json sits at the repository root, beside the workspace manifest.
    if let Err(error) =
        tauri_build::try_build(tauri_build::Attributes::new().config_path("../tauri.conf.json"))
    {
        panic!("tauri build step failed: {error:#}");
    }
}
