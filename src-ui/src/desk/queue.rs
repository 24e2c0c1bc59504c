//! Placeholder until the screen lands.

use leptos::prelude::*;

#[component]
pub fn Queue() -> impl IntoView {
    view! { <section class="screen"></section> }
}
