//! The field screens' page (`index.html`): what volunteers and crews use.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(fieldlog_ui::app::App);
}
