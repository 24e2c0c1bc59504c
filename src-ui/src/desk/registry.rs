//! Placeholder until the screen lands.

use leptos::prelude::*;

#[component]
pub fn Registry() -> impl IntoView {
    view! { <section class="screen"></section> }
}
