//! The coordinator's desk page (`desk/index.html`).

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(fieldlog_ui::desk::Desk);
}
