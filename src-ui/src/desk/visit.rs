//! Placeholder until the screen lands.

use fieldlog_domain::VisitId;
use leptos::prelude::*;

#[component]
pub fn DeskVisit(id: VisitId) -> impl IntoView {
    let _ = id;
    view! { <section class="screen"></section> }
}
