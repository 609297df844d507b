//! `/dashboards`: every dashboard, a new one, and importing a dashboard file.

use crate::dashboard::api::{
    create_dashboard, delete_dashboard, import_dashboard, list_dashboards,
};
use crate::error::AppError;
use crate::pages::error_list;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn DashboardsPage() -> impl IntoView {
    let changed = RwSignal::new(0_u32);
    let list = Resource::new(move || changed.get(), |_| list_dashboards());
    let status = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let slug = RwSignal::new(String::new());
    let report = move |result: Result<String, AppError>| {
        match result {
            Ok(message) => status.set(message),
            Err(error) => status.set(format!("Failed: {error}")),
        }
        changed.update(|c| *c += 1);
    };
    let create = move |_| {
        spawn_local(async move {
            let (n, s) = (name.get_untracked(), slug.get_untracked());
            report(
                create_dashboard(n, s.clone())
                    .await
                    .map(|()| format!("Created /d/{s}.")),
            );
        })
    };
    let import = move |ev: leptos::ev::Event| {
        crate::browser::read_chosen_file(&ev, move |text| {
            spawn_local(async move {
                report(
                    import_dashboard(text)
                        .await
                        .map(|slug| format!("Imported /d/{slug}.")),
                );
            })
        })
    };
    view! {
        <div class="dashboard-header"><h1>"Dashboards"</h1></div>
        <p class="status" role="status" data-testid="dashboards-status">{move || status.get()}</p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            <ErrorBoundary fallback=error_list>
                {move || Suspend::new(async move {
                    list.await.map(|dashboards| view! {
                        <table class="data" data-testid="dashboard-list">
                            <tbody>
                                {dashboards.into_iter().map(|(slug, name)| {
                                    let gone = slug.clone();
                                    view! {
                                        <tr>
                                            <td><a href=format!("/d/{slug}")>{name}</a></td>
                                            <td><code>{slug.clone()}</code></td>
                                            <td class="actions">
                                                <a href=format!("/download/dashboard/{slug}") data-testid="export-dashboard">"Export"</a>
                                                <button data-testid="delete-dashboard" on:click=move |_| {
                                                    let gone = gone.clone();
                                                    spawn_local(async move {
                                                        report(delete_dashboard(gone.clone()).await.map(|()| format!("Deleted {gone}.")));
                                                    })
                                                }>"Delete"</button>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    })
                })}
            </ErrorBoundary>
        </Transition>
        <section class="panel">
            <h2>"New dashboard"</h2>
            <form class="row" on:submit=|ev| ev.prevent_default()>
                <label>"Name" <input data-testid="new-dashboard-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
                <label>"Address /d/" <input data-testid="new-dashboard-slug" prop:value=move || slug.get() on:input=move |ev| slug.set(event_target_value(&ev))/></label>
                <button class="primary" data-testid="create-dashboard" on:click=create>"Create"</button>
            </form>
            <h2>"Import a dashboard file"</h2>
            <input type="file" accept=".json,application/json" data-testid="import-dashboard" on:change=import/>
        </section>
    }
}
