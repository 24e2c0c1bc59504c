//! Placeholder until the screen lands.

use leptos::prelude::*;

#[component]
pub fn Targets() -> impl IntoView {
    view! { <section class="screen"></section> }
}
