//! `/admin`: accounts and their roles, and which dashboards anyone may read
//! without signing in. Admins only; the server checks every change.

use crate::accounts::Role;
use crate::accounts::api::{
    create_user, delete_user, list_dashboard_access, list_users, reset_password,
    set_dashboard_public, set_user_role,
};
use crate::error::AppError;
use crate::pages::error_list;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn AdminPage() -> impl IntoView {
    let changed = RwSignal::new(0_u32);
    let users = Resource::new(move || changed.get(), |_| list_users());
    let dashboards = Resource::new(move || changed.get(), |_| list_dashboard_access());
    let status = RwSignal::new(String::new());
    let act =
        move |done: &'static str,
              work: std::pin::Pin<Box<dyn Future<Output = Result<(), AppError>>>>| {
            spawn_local(async move {
                match work.await {
                    Ok(()) => status.set(done.to_string()),
                    Err(error) => status.set(format!("Not done: {error}")),
                }
                changed.update(|c| *c += 1);
            })
        };
    let (name, password, role) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new("viewer".to_string()),
    );
    view! {
        <div class="dashboard-header"><h1>"Accounts and access"</h1></div>
        <p class="status" role="status" data-testid="admin-status">{move || status.get()}</p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            <ErrorBoundary fallback=error_list>
                {move || Suspend::new(async move {
                    users.await.map(|users| view! {
                        <table class="data" data-testid="user-list">
                            <thead><tr><th>"Username"</th><th>"Role"</th><th>"New password"</th><th></th></tr></thead>
                            <tbody>
                                {users.into_iter().map(|row| {
                                    let id = row.account.id;
                                    let current = row.account.role;
                                    let new_password = RwSignal::new(String::new());
                                    view! {
                                        <tr data-testid=format!("user-{}", row.account.username)>
                                            <td>{row.account.username.clone()}</td>
                                            <td>
                                                <select on:change=move |ev| {
                                                    let role = event_target_value(&ev);
                                                    act("Role changed.", Box::pin(set_user_role(id, role)))
                                                }>
                                                    {Role::ALL.into_iter().map(|r| view! { <option value=r.name() selected=r == current>{r.name()}</option> }).collect_view()}
                                                </select>
                                            </td>
                                            <td>
                                                <input type="password" autocomplete="new-password" prop:value=move || new_password.get()
                                                    on:input=move |ev| new_password.set(event_target_value(&ev))/>
                                                <button on:click=move |_| act("Password set; the account's sessions ended.", Box::pin(reset_password(id, new_password.get_untracked())))>"Set"</button>
                                            </td>
                                            <td class="actions"><button on:click=move |_| act("Account deleted.", Box::pin(delete_user(id)))>"Delete"</button></td>
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
            <h2>"New account"</h2>
            <form class="row" on:submit=|ev| ev.prevent_default()>
                <label>"Username" <input data-testid="new-user-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
                <label>"Password" <input type="password" autocomplete="new-password" data-testid="new-user-password" prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev))/></label>
                <label>"Role"
                    <select data-testid="new-user-role" on:change=move |ev| role.set(event_target_value(&ev))>
                        {Role::ALL.into_iter().map(|r| view! { <option value=r.name()>{r.name()}</option> }).collect_view()}
                    </select>
                </label>
                <button class="primary" data-testid="create-user" on:click=move |_| {
                    let work = create_user(name.get_untracked(), password.get_untracked(), role.get_untracked());
                    act("Account created.", Box::pin(async move { work.await.map(|_| ()) }))
                }>"Create"</button>
            </form>
        </section>
        <section class="panel">
            <h2>"Public dashboards"</h2>
            <p class="note">"A public dashboard can be read, not changed, by anyone who has its address."</p>
            <Transition>
                {move || Suspend::new(async move {
                    dashboards.await.map(|list| view! {
                        <ul class="plain" data-testid="dashboard-access">
                            {list.into_iter().map(|d| {
                                let slug = d.slug.clone();
                                view! {
                                    <li><label class="check">
                                        <input type="checkbox" data-testid=format!("public-{}", d.slug) prop:checked=d.public on:change=move |ev| {
                                            let public = event_target_checked(&ev);
                                            act(if public { "Dashboard made public." } else { "Dashboard made private." }, Box::pin(set_dashboard_public(slug.clone(), public)))
                                        }/>
                                        {d.name}" (/d/"{d.slug.clone()}")"
                                    </label></li>
                                }
                            }).collect_view()}
                        </ul>
                    })
                })}
            </Transition>
        </section>
    }
}
