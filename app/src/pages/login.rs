//! `/login`: a plain form posted to the server, so signing in works before
//! (or without) the page's code loading.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = query.with_untracked(|q| q.get("next").unwrap_or_else(|| "/".into()));
    let problem = query.with_untracked(|q| match q.get("error").as_deref() {
        Some("wrong") => Some("Wrong username or password."),
        Some("throttled") => {
            Some("Too many failed sign-ins for this username; try again in 15 minutes.")
        }
        _ => None,
    });
    view! {
        <section class="panel sign-in">
            <h1>"Sign in"</h1>
            {problem.map(|p| view! { <p class="error" role="alert" data-testid="sign-in-error">{p}</p> })}
            <form method="post" action="/login">
                <input type="hidden" name="next" value=next/>
                <label>"Username" <input name="username" autocomplete="username" required data-testid="username"/></label>
                <label>"Password" <input name="password" type="password" autocomplete="current-password" required data-testid="password"/></label>
                <button class="primary" type="submit" data-testid="sign-in">"Sign in"</button>
            </form>
        </section>
    }
}
