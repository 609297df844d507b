//! What pages need from the browser beyond Leptos: server-sent events,
//! visibility, reading a chosen file. Server rendering gets inert versions,
//! since none of it runs there.

use leptos::prelude::*;
use leptos::web_sys;

/// The name of the latest stream that stored new data, with a counter that
/// changes on every event (so equal names still notify). Opens `/events`
/// once `enabled` is true, and closes it when the owner goes.
pub fn use_data_events(enabled: Signal<bool>) -> ReadSignal<(u64, String)> {
    let (event, set_event) = signal((0_u64, String::new()));
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::prelude::Closure;
        if !enabled.get() {
            return;
        }
        let Ok(source) = web_sys::EventSource::new("/events") else {
            leptos::logging::error!("live updates unavailable");
            return;
        };
        let on_data = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |message: web_sys::MessageEvent| {
                let stream = message.data().as_string().unwrap_or_default();
                set_event.update(|(count, name)| {
                    *count += 1;
                    *name = stream;
                });
            },
        );
        let _ = source.add_event_listener_with_callback("data", on_data.as_ref().unchecked_ref());
        let source = send_wrapper::SendWrapper::new(source);
        let on_data = send_wrapper::SendWrapper::new(on_data);
        on_cleanup(move || {
            source.close();
            drop(on_data);
        });
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (enabled, set_event);
    event
}

/// Whether any part of the element is inside the window.
pub fn in_view(element: Option<&web_sys::Element>) -> bool {
    #[cfg(feature = "hydrate")]
    {
        let Some(element) = element else { return false };
        let rect = element.get_bounding_client_rect();
        let height = window()
            .inner_height()
            .ok()
            .and_then(|h| h.as_f64())
            .unwrap_or(f64::MAX);
        rect.bottom() > 0.0 && rect.top() < height
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = element;
        false
    }
}

/// The `data-filter-column` and `data-filter-value` of the marker (or other
/// element) an event happened on, if any.
pub fn filter_target(event: &web_sys::Event) -> Option<(String, String)> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let target: web_sys::Element = event.target()?.dyn_into().ok()?;
        let marker = target.closest("[data-filter-column]").ok()??;
        Some((
            marker.get_attribute("data-filter-column")?,
            marker.get_attribute("data-filter-value")?,
        ))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = event;
        None
    }
}

/// Reads the file chosen in an `<input type=file>` as text, then calls `done`.
pub fn read_chosen_file(event: &web_sys::Event, done: impl Fn(String) + 'static) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::prelude::Closure;
        let Some(input) = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|files| files.get(0)) else {
            return;
        };
        let Ok(reader) = web_sys::FileReader::new() else {
            return;
        };
        let reading = reader.clone();
        let on_load = Closure::once(move || {
            if let Some(text) = reading.result().ok().and_then(|r| r.as_string()) {
                done(text);
            }
        });
        reader.set_onload(Some(on_load.as_ref().unchecked_ref()));
        on_load.forget(); // runs once, when the file has been read
        let _ = reader.read_as_text(&file);
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (event, done);
    }
}

/// The width in pixels of the element, for turning drags into grid cells.
pub fn width_of(element: Option<&web_sys::Element>) -> f64 {
    #[cfg(feature = "hydrate")]
    {
        element.map_or(1200.0, |e| e.get_bounding_client_rect().width())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = element;
        1200.0
    }
}

/// Shows `url` in the address bar without navigating, so the page keeps its
/// state (a chart saved for the first time gets its own address).
pub fn replace_url(url: &str) {
    #[cfg(feature = "hydrate")]
    {
        if let Ok(history) = window().history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(url));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = url;
    }
}

/// The `<meta>` in which the server names the page's signed-in account
/// ("username role"), so the page shows it without asking again.
pub const ACCOUNT_META: &str = "pulseboard-account";

/// The signed-in account the page was served to: from the request on the
/// server, from the page's [`ACCOUNT_META`] in the browser.
pub fn served_account() -> Option<(String, crate::accounts::Role)> {
    #[cfg(feature = "ssr")]
    {
        crate::accounts::current().map(|a| (a.username, a.role))
    }
    #[cfg(not(feature = "ssr"))]
    {
        let text = document()
            .query_selector(&format!("meta[name={ACCOUNT_META}]"))
            .ok()
            .flatten()?
            .get_attribute("content")?;
        let (username, role) = text.rsplit_once(' ')?;
        Some((username.to_string(), crate::accounts::Role::parse(role)?))
    }
}

/// Now in epoch milliseconds, by the browser's clock (0 on the server,
/// which never asks).
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        web_sys::js_sys::Date::now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.0
    }
}
