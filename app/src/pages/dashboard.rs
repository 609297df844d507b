//! `/d/{slug}`: a dashboard. Its time range, the filters picked on it, its
//! refresh interval, live mode and tab live in the address, so a link shows
//! what its sender saw. Edit mode moves and resizes elements on the grid,
//! adds and removes them, and saves the layout.

use crate::chart::definition::{FieldError, TimeRange};
use crate::dashboard::api::{DashboardPage, get_dashboard, save_dashboard};
use crate::dashboard::definition::{
    Content, GRID_COLUMNS, MAX_HEIGHT, REFRESH_CHOICES, Tab, format_interval,
};
use crate::dashboard::markdown;
use crate::dashboard::params::{
    RELATIVE_CHOICES, ViewParams, format_range, parse_range, relative_label,
};
use crate::pages::chart_tile::{ChartTile, ROW_PX, TileContext};
use crate::pages::{Choice, error_list};
use crate::text::escape;
use leptos::either::Either;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

#[component]
pub fn DashboardPageView() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.with(|p| p.get("slug").unwrap_or_default());
    let page = Resource::new(slug, get_dashboard);
    let dashboard =
        move || Suspend::new(async move { page.await.map(|page| view! { <DashboardView page/> }) });
    // On the server, Suspense walks a closure child again each time it checks
    // for resources, building the dashboard and its charts' resources anew (and
    // sending each chart twice). The page does not change within a request, so
    // the server polls one Suspend until ready: the dashboard is built once.
    #[cfg(feature = "ssr")]
    let dashboard = dashboard();
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            <ErrorBoundary fallback=error_list>
                {dashboard}
            </ErrorBoundary>
        </Suspense>
    }
}

/// An element being moved or resized with the pointer.
#[derive(Clone, Copy, PartialEq)]
struct Drag {
    index: usize,
    resize: bool,
    start: (f64, f64),
    original: (u32, u32, u32, u32),
}

#[component]
fn DashboardView(page: DashboardPage) -> impl IntoView {
    let DashboardPage {
        dashboard,
        minimum_refresh,
        charts,
        can_edit,
    } = page;
    let navigate = use_navigate();
    let query = use_query_map();
    let initial = query.with_untracked(|q| {
        let pairs: Vec<(String, String)> = q
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ViewParams::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    });
    let (initial, url_problem) = match initial {
        Ok(params) => (params, None),
        Err(problem) => (ViewParams::default(), Some(problem)),
    };
    let saved_slug = RwSignal::new(dashboard.slug.clone());
    let saved = RwSignal::new(dashboard.clone());
    let working = RwSignal::new(dashboard.clone());
    let range = RwSignal::new(initial.range.or(dashboard.time_range));
    let filters = RwSignal::new(initial.filters.clone());
    let clamp = move |seconds: Option<u32>| seconds.map(|s| s.max(minimum_refresh));
    let refresh = RwSignal::new(clamp(initial.refresh.unwrap_or(dashboard.refresh_seconds)));
    let clamped = initial
        .refresh
        .flatten()
        .is_some_and(|s| s < minimum_refresh);
    let live = RwSignal::new(initial.live.unwrap_or(dashboard.live));
    let tab = RwSignal::new(
        initial
            .tab
            .unwrap_or(0)
            .min(dashboard.tabs.len().saturating_sub(1)),
    );
    let edit = RwSignal::new(false);
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let status = RwSignal::new(url_problem.unwrap_or_default());

    // The address follows what is shown.
    let slug_now = saved_slug;
    Effect::new(move |first: Option<()>| {
        let params = ViewParams {
            range: range.get(),
            filters: filters.get(),
            refresh: Some(refresh.get()),
            live: Some(live.get()),
            tab: Some(tab.get()),
        };
        if first.is_some() {
            navigate(
                &format!("/d/{}{}", slug_now.get_untracked(), params.to_query()),
                NavigateOptions {
                    replace: true,
                    scroll: false,
                    ..Default::default()
                },
            );
        }
    });

    let live_event = crate::browser::use_data_events(live.into());
    provide_context(TileContext {
        range: range.into(),
        filters: filters.into(),
        refresh: refresh.into(),
        live_event,
        live: live.into(),
        pick_filter: Callback::new(move |(column, value): (String, String)| {
            filters.update(|f| {
                f.retain(|(c, _)| *c != column);
                f.push((column, value));
            })
        }),
    });

    let grid = NodeRef::<leptos::html::Div>::new();
    let drag = RwSignal::new(None::<Drag>);
    Effect::new(move |_| {
        let moving = window_event_listener(leptos::ev::pointermove, move |ev| {
            let Some(d) = drag.get_untracked() else {
                return;
            };
            let element = grid.get_untracked();
            let column_px = crate::browser::width_of(element.as_ref().map(|e| e.as_ref()))
                / f64::from(GRID_COLUMNS);
            let dx = ((f64::from(ev.client_x()) - d.start.0) / column_px).round() as i64;
            let dy = ((f64::from(ev.client_y()) - d.start.1) / f64::from(ROW_PX)).round() as i64;
            let (x, y, w, h) = d.original;
            let clampu = |v: i64, lo: i64, hi: i64| v.clamp(lo, hi.max(lo)) as u32;
            working.update(|dash| {
                let Some(el) = dash
                    .tabs
                    .get_mut(tab.get_untracked())
                    .and_then(|t| t.elements.get_mut(d.index))
                else {
                    return;
                };
                if d.resize {
                    el.w = clampu(i64::from(w) + dx, 1, i64::from(GRID_COLUMNS - x));
                    el.h = clampu(i64::from(h) + dy, 1, i64::from(MAX_HEIGHT));
                } else {
                    el.x = clampu(i64::from(x) + dx, 0, i64::from(GRID_COLUMNS - w));
                    el.y = clampu(i64::from(y) + dy, 0, 190);
                }
            });
        });
        let up = window_event_listener(leptos::ev::pointerup, move |_| drag.set(None));
        on_cleanup(move || {
            moving.remove();
            up.remove();
        });
    });

    let save = move |_| {
        spawn_local(async move {
            let dashboard = working.get_untracked();
            match save_dashboard(saved_slug.get_untracked(), dashboard.clone()).await {
                Ok(()) => {
                    saved_slug.set(dashboard.slug.clone());
                    saved.set(dashboard);
                    errors.set(Vec::new());
                    edit.set(false);
                    status.set("Saved.".into());
                }
                Err(crate::error::AppError::Invalid(found)) => {
                    errors.set(found);
                    status.set("Not saved: see below.".into());
                }
                Err(error) => status.set(format!("Not saved: {error}")),
            }
        });
    };
    let cancel = move |_| {
        working.set(saved.get_untracked());
        errors.set(Vec::new());
        edit.set(false);
    };
    let charts = StoredValue::new(charts);
    let chart_choice = RwSignal::new(String::new());
    let text_choice = RwSignal::new(String::new());
    let add = move |content: Content, h: u32| {
        working.update(|d| {
            let t = tab.get_untracked().min(d.tabs.len() - 1);
            d.tabs[t].append(content, h);
        })
    };

    view! {
        <div class="dashboard-header">
            <h1 data-testid="dashboard-name">{move || working.with(|d| d.name.clone())}</h1>
            <div class="toolbar">
                <label>"Time "
                    <RangeSelect test_id="range-picker" current=range.into() choose=Callback::new(move |r| range.set(r))/>
                </label>
                <label>"From (UTC)"
                    <input class="when" size="16" placeholder="2026-01-31 09:00" data-testid="range-from"
                        prop:value=move || between(range.get()).map(|(from, _)| utc_minute(from)).unwrap_or_default()
                        on:change=move |ev| set_between(range, status, Some(event_target_value(&ev)), None)/>
                </label>
                <label>"To (UTC)"
                    <input class="when" size="16" placeholder="2026-01-31 10:00" data-testid="range-to"
                        prop:value=move || between(range.get()).map(|(_, to)| utc_minute(to)).unwrap_or_default()
                        on:change=move |ev| set_between(range, status, None, Some(event_target_value(&ev)))/>
                </label>
                <label>"Refresh "
                    <RefreshSelect test_id="refresh-picker" minimum_refresh current=refresh.into()
                        choose=Callback::new(move |seconds| refresh.set(clamp(seconds)))/>
                </label>
                <label>"Custom"
                    <input class="interval" size="5" placeholder="45s" data-testid="refresh-custom" on:change=move |ev| {
                        match crate::dashboard::definition::parse_interval(&event_target_value(&ev)) {
                            Ok(seconds) => refresh.set(clamp(seconds)),
                            Err(problem) => status.set(problem),
                        }
                    }/>
                </label>
                <label class="check"><input type="checkbox" data-testid="live-toggle" prop:checked=move || live.get()
                    on:change=move |ev| live.set(event_target_checked(&ev))/>"Live"</label>
                <Show when=move || can_edit && !edit.get()>
                    <button data-testid="edit-dashboard" on:click=move |_| edit.set(true)>"Edit"</button>
                </Show>
                <Show when=move || edit.get()>
                    <button class="primary" data-testid="save-dashboard" on:click=save>"Save"</button>
                    <button on:click=cancel>"Cancel"</button>
                </Show>
                <a class="button" href=move || format!("/download/dashboard/{}", saved_slug.get())>"Export"</a>
            </div>
        </div>
        {clamped.then(|| view! { <p class="note">{format!("This server refreshes at most every {minimum_refresh} s.")}</p> })}
        <p class="status" role="status" data-testid="dashboard-status">{move || status.get()}</p>
        <ul class="field-errors">{move || errors.get().into_iter().map(|e| view! { <li>{format!("{}: {}", e.field, e.message)}</li> }).collect_view()}</ul>
        <Show when=move || !filters.with(Vec::is_empty)>
            <div class="filters" data-testid="active-filters">
                "Filtered to "
                {move || filters.get().into_iter().map(|(column, value)| {
                    let (c, label) = (column.clone(), format!("{column} = {value}"));
                    view! {
                        <span class="chip" data-testid="filter-chip">{label}
                            <button aria-label="Clear this filter" on:click=move |_| filters.update(|f| f.retain(|(x, _)| *x != c))>"×"</button>
                        </span>
                    }
                }).collect_view()}
                <button data-testid="clear-filters" on:click=move |_| filters.set(Vec::new())>"Clear filters"</button>
            </div>
        </Show>
        <nav class="tabs" role="tablist">
            {move || working.with(|d| d.tabs.iter().enumerate().map(|(i, t)| view! {
                <button role="tab" class:active=move || tab.get() == i aria-selected=move || (tab.get() == i).to_string()
                    on:click=move |_| tab.set(i)>{t.name.clone()}</button>
            }).collect_view())}
        </nav>
        <Show when=move || edit.get()>
            <div class="edit-bar" data-testid="edit-bar">
                <label>"Name" <input prop:value=move || working.with(|d| d.name.clone())
                    on:change=move |ev| { let v = event_target_value(&ev); working.update(|d| d.name = v) }/></label>
                <label>"Chart"
                    <select data-testid="add-chart-select" on:change=move |ev| chart_choice.set(event_target_value(&ev))>
                        <option value="">"choose…"</option>
                        {charts.get_value().into_iter().map(|c| view! { <option value=c.id.to_string()>{c.name}</option> }).collect_view()}
                    </select>
                </label>
                <button data-testid="add-chart" on:click=move |_| {
                    if let Ok(id) = chart_choice.get_untracked().parse() { add(Content::Chart(id), 4) }
                }>"Add chart"</button>
                <input placeholder="Header or Markdown text" prop:value=move || text_choice.get()
                    on:change=move |ev| text_choice.set(event_target_value(&ev))/>
                <button on:click=move |_| add(Content::Header(text_choice.get_untracked()), 1)>"Add header"</button>
                <button on:click=move |_| add(Content::Markdown(text_choice.get_untracked()), 2)>"Add text"</button>
                <button on:click=move |_| add(Content::Divider, 1)>"Add divider"</button>
                <button on:click=move |_| working.update(|d| d.tabs.push(Tab { name: format!("Tab {}", d.tabs.len() + 1), elements: Vec::new() }))>"Add tab"</button>
                <button on:click=move |_| {
                    let name = text_choice.get_untracked();
                    if !name.trim().is_empty() { working.update(|d| if let Some(t) = d.tabs.get_mut(tab.get_untracked()) { t.name = name }) }
                }>"Rename tab"</button>
                <button on:click=move |_| working.update(|d| if d.tabs.len() > 1 { d.tabs.remove(tab.get_untracked().min(d.tabs.len() - 1)); tab.set(0) })>"Remove tab"</button>
                <label>"Default time"
                    <RangeSelect current=Signal::derive(move || working.with(|d| d.time_range))
                        choose=Callback::new(move |r| working.update(|d| d.time_range = r))/>
                </label>
                <label>"Default refresh"
                    <RefreshSelect minimum_refresh current=Signal::derive(move || working.with(|d| d.refresh_seconds))
                        choose=Callback::new(move |seconds| working.update(|d| d.refresh_seconds = seconds))/>
                </label>
                <label class="check"><input type="checkbox" prop:checked=move || working.with(|d| d.live)
                    on:change=move |ev| { let on = event_target_checked(&ev); working.update(|d| d.live = on) }/>"Live by default"</label>
            </div>
        </Show>
        <div class="grid" class:editing=move || edit.get() node_ref=grid data-testid="dashboard-grid"
            style=move || {
                let rows = working.with(|d| d.tabs.get(tab.get()).map_or(1, |t| t.elements.iter().map(|e| e.y + e.h).max().unwrap_or(1)));
                format!("grid-template-rows: repeat({rows}, {ROW_PX}px)")
            }>
            <For
                each=move || {
                    let t = tab.get();
                    working.with(|d| d.tabs.get(t).map(|tab| tab.elements.iter().enumerate().map(|(i, e)| (t, i, e.content.clone())).collect::<Vec<_>>()).unwrap_or_default())
                }
                key=|item| item.clone()
                children=move |(t, index, content)| {
                    let place = move || working.with(|d| d.tabs.get(t).and_then(|tab| tab.elements.get(index)).map(|e| (e.x, e.y, e.w, e.h)).unwrap_or((0, 0, 1, 1)));
                    let size = Signal::derive(move || { let (_, _, w, h) = place(); (w, h) });
                    let body = match content {
                        Content::Chart(id) => {
                            let summary = charts.get_value().into_iter().find(|c| c.id == id);
                            let streams = summary.as_ref().map(|c| c.streams.clone()).unwrap_or_default();
                            // A chart's own interval wins, within the server's minimum.
                            let own_refresh = summary.and_then(|c| c.refresh_seconds).map(|s| s.max(minimum_refresh));
                            Either::Left(view! { <ChartTile id size own_refresh dataset_streams=streams/> })
                        }
                        text => Either::Right(view! { <div class="text-element" inner_html=text_html(&text)></div> }),
                    };
                    let start = move |ev: leptos::ev::PointerEvent, resize: bool| {
                        ev.prevent_default();
                        drag.set(Some(Drag { index, resize, start: (f64::from(ev.client_x()), f64::from(ev.client_y())), original: place() }));
                    };
                    view! {
                        <div class="cell" data-testid="grid-cell" data-index=index style=move || placement(place())>
                            <Show when=move || edit.get()>
                                <CellTools
                                    start=Callback::new(move |(ev, resize)| start(ev, resize))
                                    remove=Callback::new(move |()| working.update(|d| { if let Some(tab) = d.tabs.get_mut(t) && index < tab.elements.len() { tab.elements.remove(index); } }))/>
                            </Show>
                            {body}
                        </div>
                    }
                }
            />
        </div>
    }
}

/// Where a cell sits on the grid, as CSS: one value for the whole placement.
fn placement((x, y, w, h): (u32, u32, u32, u32)) -> String {
    format!(
        "grid-column: {} / span {w}; grid-row: {} / span {h}",
        x + 1,
        y + 1
    )
}

/// A header, a Markdown text or a divider as HTML: none of them changes once
/// placed, so one plain element serves all three. Text is escaped, so it can
/// never become markup. A chart has no text; its tile draws it.
fn text_html(content: &Content) -> String {
    match content {
        Content::Header(text) => format!("<h2 class=\"header-element\">{}</h2>", escape(text)),
        Content::Markdown(text) => {
            format!("<div class=\"markdown\">{}</div>", markdown::to_html(text))
        }
        Content::Divider => "<hr class=\"divider\">".to_string(),
        Content::Chart(_) => String::new(),
    }
}

/// A cell's tools in edit mode: move, resize and remove.
#[component]
fn CellTools(
    /// Starts a drag; `true` resizes instead of moving.
    start: Callback<(leptos::ev::PointerEvent, bool)>,
    remove: Callback<()>,
) -> impl IntoView {
    view! {
        <div class="cell-tools">
            <span class="drag-handle" data-testid="drag-handle" title="Drag to move" on:pointerdown=move |ev| start.run((ev, false))>"⠿ move"</span>
            <button class="remove" on:click=move |_| remove.run(())>"Remove"</button>
        </div>
        <span class="resize-handle" data-testid="resize-handle" title="Drag to resize" on:pointerdown=move |ev| start.run((ev, true))></span>
    }
}

/// A choice of time range: each chart's own, a relative range, all time, or
/// the absolute range already chosen. The toolbar and the edit bar share it.
#[component]
fn RangeSelect(
    current: Signal<Option<TimeRange>>,
    choose: Callback<Option<TimeRange>>,
    #[prop(optional)] test_id: Option<&'static str>,
) -> impl IntoView {
    let options = Signal::derive(move || {
        let mut options = vec![(String::new(), "each chart's own".to_string())];
        options.extend(RELATIVE_CHOICES.iter().map(|r| {
            (
                relative_label(*r).to_string(),
                format!("last {}", relative_label(*r)),
            )
        }));
        options.push(("all".into(), "all time".into()));
        if let Some((from, to)) = between(current.get()) {
            let range = TimeRange::Between {
                from_ms: from,
                to_ms: to,
            };
            options.push((
                format_range(range),
                format!("{} to {} UTC", utc_minute(from), utc_minute(to)),
            ));
        }
        options
    });
    view! {
        <Choice test_id options current=Signal::derive(move || current.get().map(format_range).unwrap_or_default())
            choose=Callback::new(move |v: String| choose.run(if v.is_empty() { None } else { parse_range(&v).ok() }))/>
    }
}

/// A choice of refresh interval no shorter than the server allows; an
/// interval set some other way (the address, a custom entry) shows too.
#[component]
fn RefreshSelect(
    minimum_refresh: u32,
    current: Signal<Option<u32>>,
    choose: Callback<Option<u32>>,
    #[prop(optional)] test_id: Option<&'static str>,
) -> impl IntoView {
    let options = Signal::derive(move || {
        let shown = current.get();
        let mut choices: Vec<Option<u32>> = REFRESH_CHOICES
            .iter()
            .copied()
            .filter(|c| c.is_none_or(|s| s >= minimum_refresh))
            .collect();
        if !choices.contains(&shown) {
            choices.push(shown);
        }
        choices
            .into_iter()
            .map(|c| (format_interval(c), format_interval(c)))
            .collect()
    });
    view! {
        <Choice test_id options current=Signal::derive(move || format_interval(current.get()))
            choose=Callback::new(move |v: String| {
                if let Ok(seconds) = crate::dashboard::definition::parse_interval(&v) {
                    choose.run(seconds)
                }
            })/>
    }
}

/// The bounds of an absolute range.
fn between(range: Option<TimeRange>) -> Option<(i64, i64)> {
    match range {
        Some(TimeRange::Between { from_ms, to_ms }) => Some((from_ms, to_ms)),
        _ => None,
    }
}

/// `YYYY-MM-DD HH:MM` in UTC.
fn utc_minute(ms: i64) -> String {
    crate::chart::view::iso_time(ms)[..16].replace('T', " ")
}

/// Sets one end of an absolute range, the other end kept or, for a range
/// that was relative, an hour away.
fn set_between(
    range: RwSignal<Option<TimeRange>>,
    status: RwSignal<String>,
    from: Option<String>,
    to: Option<String>,
) {
    let read = |text: Option<String>| match text {
        None => Ok(None),
        Some(text) => crate::chart::view::parse_utc(&text).map(Some).ok_or(text),
    };
    let (from, to) = match (read(from), read(to)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(bad), _) | (_, Err(bad)) => {
            status.set(format!("{bad:?} is not a time like 2026-01-31 09:00 (UTC)"));
            return;
        }
    };
    let (old_from, old_to) = between(range.get_untracked()).unwrap_or_else(|| {
        let anchor = from.or(to).unwrap_or_default();
        (anchor - 3_600_000, anchor + 3_600_000)
    });
    let (from_ms, to_ms) = (from.unwrap_or(old_from), to.unwrap_or(old_to));
    if from_ms >= to_ms {
        status.set("From must be before to.".into());
        return;
    }
    status.set(String::new());
    range.set(Some(TimeRange::Between { from_ms, to_ms }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_elements_escape_what_their_author_typed() {
        let header = text_html(&Content::Header("<script>x</script> & co".into()));
        assert_eq!(
            header,
            "<h2 class=\"header-element\">&lt;script&gt;x&lt;/script&gt; &amp; co</h2>"
        );
        let text = text_html(&Content::Markdown("**<img src=x>**".into()));
        assert!(!text.contains("<img"), "{text}");
        assert!(
            text.starts_with("<div class=\"markdown\"><p><strong>"),
            "{text}"
        );
        assert_eq!(text_html(&Content::Divider), "<hr class=\"divider\">");
    }

    #[test]
    fn a_placement_counts_grid_lines_from_one() {
        assert_eq!(
            placement((2, 1, 8, 6)),
            "grid-column: 3 / span 8; grid-row: 2 / span 6"
        );
    }
}
