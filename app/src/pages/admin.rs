//! `/admin`: accounts and their roles, and which dashboards anyone may read
//! without signing in. Admins only; the server checks every change.

use crate::accounts::Role;
use crate::accounts::api::{
    NewKey, create_ingest_key, create_user, delete_user, list_dashboard_access, list_ingest_keys,
    list_users, reset_password, revoke_ingest_key, set_dashboard_public, set_user_role,
};
use crate::error::AppError;
use crate::pages::error_list;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn AdminPage() -> impl IntoView {
    let changed = RwSignal::new(0_u32);
    let status = RwSignal::new(String::new());
    let users = Resource::new(move || changed.get(), |_| list_users());
    let dashboards = Resource::new(move || changed.get(), |_| list_dashboard_access());
    let keys = Resource::new(move || changed.get(), |_| list_ingest_keys());
    let key_name = RwSignal::new(String::new());
    let new_key = RwSignal::new(None::<NewKey>);
    let create_key = move |_| {
        spawn_local(async move {
            match create_ingest_key(key_name.get_untracked()).await {
                Ok(key) => {
                    status.set("Key created; copy its secret now, it is not shown again.".into());
                    new_key.set(Some(key));
                }
                Err(error) => status.set(format!("Not done: {error}")),
            }
            changed.update(|c| *c += 1);
        })
    };
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
        <section class="panel">
            <h2>"Ingest keys"</h2>
            <p class="note">"The Firehose API takes a key as AWS credentials (requests signed with Signature Version 4); the NDJSON API takes "<code>"Authorization: Bearer <access key id>:<secret>"</code>". A revoked key is refused from the next request."</p>
            <form class="row" on:submit=|ev| ev.prevent_default()>
                <label>"Name" <input data-testid="new-key-name" prop:value=move || key_name.get() on:input=move |ev| key_name.set(event_target_value(&ev))/></label>
                <button class="primary" data-testid="create-key" on:click=create_key>"Create key"</button>
            </form>
            {move || new_key.get().map(|key| view! {
                <p class="note" data-testid="new-key">"Access key id "<code data-testid="new-key-id">{key.access_key_id}</code>", secret "<code data-testid="new-key-secret">{key.secret}</code></p>
            })}
            <Transition>
                {move || Suspend::new(async move {
                    keys.await.map(|keys| view! {
                        <table class="data" data-testid="key-list">
                            <thead><tr><th>"Name"</th><th>"Access key id"</th><th>"Made by"</th><th>"State"</th><th></th></tr></thead>
                            <tbody>
                                {keys.into_iter().map(|key| {
                                    let id = key.id;
                                    view! {
                                        <tr data-testid=format!("key-{}", key.access_key_id)>
                                            <td>{key.name}</td>
                                            <td><code>{key.access_key_id.clone()}</code></td>
                                            <td>{key.created_by}</td>
                                            <td>{if key.revoked { "revoked" } else { "active" }}</td>
                                            <td class="actions">{(!key.revoked).then(|| view! {
                                                <button on:click=move |_| act("Key revoked.", Box::pin(revoke_ingest_key(id)))>"Revoke"</button>
                                            })}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    })
                })}
            </Transition>
        </section>
    }
}
