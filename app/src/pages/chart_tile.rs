//! A chart on a page: the drawing (or a table), what it shows and how fresh
//! it is, and, on dashboards, its own refresh.

use crate::chart::definition::ChartType;
use crate::chart::view::{ChartView, ViewOptions, clock};
use crate::chart::{Cell, ChartRows};
use crate::pages::charts::tag;
use leptos::prelude::*;

/// Rows per page of a table chart.
const PAGE_ROWS: usize = 20;

/// A drawn chart with its caption.
#[component]
pub fn ChartBody(view: ChartView) -> impl IntoView {
    let caption = format!(
        "{} points · {} series · data as of {}",
        view.points,
        view.series,
        clock(view.data_as_of_ms)
    );
    let body = match (view.svg, view.table) {
        (Some(svg), _) => view! { <div class="chart-svg" inner_html=svg></div> }.into_any(),
        (None, Some(rows)) => view! { <DataTable rows/> }.into_any(),
        (None, None) => view! { <p>"Nothing to show."</p> }.into_any(),
    };
    view! {
        <figure class="chart" data-chart-type=tag(&view.chart_type) data-points=view.points data-series=view.series>
            {body}
            <figcaption data-testid="as-of" data-as-of=view.data_as_of_ms>{caption}</figcaption>
        </figure>
    }
}

fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Null => "—".into(),
        Cell::Time(ms) => crate::chart::view::iso_time(*ms),
        Cell::Text(t) => t.clone(),
        Cell::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Cell::Number(x) => format!("{x:.2}"),
    }
}

fn compare(a: &Cell, b: &Cell) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Cell::Number(x), Cell::Number(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Cell::Time(x), Cell::Time(y)) => x.cmp(y),
        (Cell::Text(x), Cell::Text(y)) => x.cmp(y),
        (Cell::Null, Cell::Null) => Ordering::Equal,
        (Cell::Null, _) => Ordering::Greater,
        (_, Cell::Null) => Ordering::Less,
        _ => Ordering::Equal,
    }
}

/// A table chart: click a heading to sort by it, page through the rows.
#[component]
pub fn DataTable(rows: ChartRows) -> impl IntoView {
    let ChartRows { columns, rows } = rows;
    let sort = RwSignal::new(None::<(usize, bool)>);
    let page = RwSignal::new(0_usize);
    let total = rows.len();
    let pages = total.div_ceil(PAGE_ROWS).max(1);
    let rows = StoredValue::new(rows);
    let shown = move || {
        let mut all = rows.get_value();
        if let Some((column, descending)) = sort.get() {
            all.sort_by(|a, b| {
                let order = compare(&a[column], &b[column]);
                if descending { order.reverse() } else { order }
            });
        }
        all.into_iter()
            .skip(page.get() * PAGE_ROWS)
            .take(PAGE_ROWS)
            .collect::<Vec<_>>()
    };
    view! {
        <table class="data chart-table">
            <thead>
                <tr>
                    {columns.into_iter().enumerate().map(|(i, name)| view! {
                        <th>
                            <button class="sort" on:click=move |_| sort.update(|s| *s = match *s {
                                Some((c, false)) if c == i => Some((i, true)),
                                _ => Some((i, false)),
                            })>
                                {name}
                                {move || match sort.get() {
                                    Some((c, false)) if c == i => " ▲",
                                    Some((c, true)) if c == i => " ▼",
                                    _ => "",
                                }}
                            </button>
                        </th>
                    }).collect_view()}
                </tr>
            </thead>
            <tbody>
                {move || shown().into_iter().map(|row| view! {
                    <tr>{row.iter().map(|cell| {
                        let numeric = matches!(cell, Cell::Number(_));
                        view! { <td class:num=numeric>{cell_text(cell)}</td> }
                    }).collect_view()}</tr>
                }).collect_view()}
            </tbody>
        </table>
        <div class="pager">
            <button on:click=move |_| page.update(|p| *p = p.saturating_sub(1)) disabled=move || page.get() == 0>"Previous"</button>
            <span>{move || format!("page {} of {pages} · {total} rows", page.get() + 1)}</span>
            <button on:click=move |_| page.update(|p| *p = (*p + 1).min(pages - 1)) disabled=move || { page.get() + 1 >= pages }>"Next"</button>
        </div>
    }
}

/// A tile's chart as its resource holds it. The page carries the resource
/// to the browser for hydration without the drawing, which the page's HTML
/// already holds: hydration keeps an `inner_html` element's content, so the
/// drawing is sent once. Refreshes fetch the whole chart.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct TileChart {
    /// The chart without its drawing.
    view: ChartView,
    #[serde(skip)]
    svg: Option<String>,
    drawn: bool,
}

impl From<ChartView> for TileChart {
    fn from(mut view: ChartView) -> Self {
        let svg = view.svg.take();
        let drawn = svg.is_some();
        TileChart { view, svg, drawn }
    }
}

impl TileChart {
    /// The chart to show; when hydrating, its drawing is empty, and the
    /// page's stands.
    fn into_view(self) -> ChartView {
        let TileChart {
            mut view,
            svg,
            drawn,
        } = self;
        view.svg = svg.or_else(|| drawn.then(String::new));
        view
    }
}

/// Pixels per grid column and row that a tile asks the server to draw.
pub const COLUMN_PX: u32 = 100;
pub const ROW_PX: u32 = 80;

/// What a dashboard tells each of its chart tiles.
#[derive(Clone, Copy)]
pub struct TileContext {
    pub range: Signal<Option<crate::chart::definition::TimeRange>>,
    pub filters: Signal<Vec<(String, String)>>,
    /// Seconds between refreshes, `None` off.
    pub refresh: Signal<Option<u32>>,
    pub live_event: ReadSignal<(u64, String)>,
    pub live: Signal<bool>,
    pub pick_filter: Callback<(String, String)>,
}

/// The drawing's size for a tile of `(columns, rows)`, leaving room for
/// its title and caption.
fn pixels((columns, rows): (u32, u32)) -> (u32, u32) {
    (
        columns * COLUMN_PX,
        (rows * ROW_PX).saturating_sub(70).max(80),
    )
}

#[component]
pub fn ChartTile(
    id: i64,
    /// Columns and rows the tile spans.
    size: Signal<(u32, u32)>,
    own_refresh: Option<u32>,
    dataset_streams: Vec<String>,
) -> impl IntoView {
    let context = expect_context::<TileContext>();
    let tile = NodeRef::<leptos::html::Div>::new();
    let tick = RwSignal::new(0_u64);
    // Refresh on this chart's interval, only while it is on screen and the tab is shown.
    let period = Signal::derive(move || own_refresh.or(context.refresh.get()));
    Effect::new(move |_| {
        let Some(seconds) = period.get() else { return };
        let advance = move || {
            let element = tile.get_untracked();
            if !crate::refresh::tab_hidden()
                && crate::browser::in_view(element.as_ref().map(|e| e.as_ref()))
            {
                tick.update(|t| *t += 1);
            }
        };
        if let Ok(handle) =
            set_interval_with_handle(advance, std::time::Duration::from_secs(u64::from(seconds)))
        {
            on_cleanup(move || handle.clear());
        }
    });
    // Live mode: refresh when one of this chart's streams stored data.
    Effect::new(move |_| {
        let (count, stream) = context.live_event.get();
        if count > 0
            && context.live.get_untracked()
            && dataset_streams.contains(&stream)
            && !crate::refresh::tab_hidden()
        {
            tick.update(|t| *t += 1);
        }
    });
    let options = move || ViewOptions {
        time_range: context.range.get(),
        filters: crate::dashboard::params::ViewParams {
            filters: context.filters.get(),
            ..Default::default()
        }
        .chart_filters(),
        width: pixels(size.get()).0,
        height: pixels(size.get()).1,
    };
    let chart = Resource::new(
        move || (tick.get(), options()),
        move |(_, options)| async move {
            crate::chart::api::view_chart(id, options)
                .await
                .map(TileChart::from)
        },
    );
    let query = move || {
        crate::dashboard::params::ViewParams {
            range: context.range.get(),
            filters: context.filters.get(),
            ..Default::default()
        }
        .to_query()
    };
    let download = move |format: &'static str| {
        let q = query();
        let (width, height) = pixels(size.get());
        let size = format!("width={width}&height={height}");
        if q.is_empty() {
            format!("/download/chart/{id}/{format}?{size}")
        } else {
            format!("/download/chart/{id}/{format}{q}&{size}")
        }
    };
    view! {
        <div class="tile-body" node_ref=tile data-chart-id=id
            on:click=move |ev| if let Some(pick) = crate::browser::filter_target(&ev) { context.pick_filter.run(pick) }>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                <ErrorBoundary fallback=crate::pages::error_list>
                    {move || Suspend::new(async move {
                        chart.await.map(|tile| {
                            let view = tile.into_view();
                            let filtered = !view.filtered_by.is_empty();
                            let is_table = view.chart_type == ChartType::Table;
                            view! {
                                <div class="tile-title">
                                    <h2>{view.name.clone()}</h2>
                                    {filtered.then(|| view! { <span class="badge">"filtered"</span> })}
                                    <span class="downloads">
                                        <a href=download("csv") data-testid="download-csv">"CSV"</a>
                                        {(!is_table).then(|| view! {
                                            <a href=download("svg") data-testid="download-svg">"SVG"</a>
                                            <a href=download("png") data-testid="download-png">"PNG"</a>
                                        })}
                                        <a href=format!("/charts/{id}")>"Edit"</a>
                                    </span>
                                </div>
                                <ChartBody view/>
                            }
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </div>
    }
}
