//! The frame every live panel shares.

use leptos::prelude::*;

/// A titled panel whose content comes from the server and refreshes in place:
/// the previous content stays on screen until the new one has arrived, and a
/// failure shows inside the panel.
#[component]
pub fn LivePanel(
    /// Element id of the heading, for `aria-labelledby`.
    id: &'static str,
    #[prop(into)] title: String,
    children: ChildrenFn,
) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby=id>
            <h2 id=id>{title}</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                <ErrorBoundary fallback=crate::pages::error_list>{children()}</ErrorBoundary>
            </Transition>
        </section>
    }
}
