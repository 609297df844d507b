//! `/charts`: saved charts; `/charts/new` and `/charts/{id}`: the editor,
//! with a live preview, field-by-field errors, history and restore.

use crate::chart::api::{
    SavedChart, chart_revisions, delete_chart, duplicate_chart, get_chart, import_chart,
    list_charts, list_datasets, preview_chart, restore_chart, save_chart,
};
use crate::chart::dataset::{ColumnKind, Dataset};
use crate::chart::definition::{
    Aggregate, ChartDefinition, ChartType, FieldError, Filter, FilterOp, Metric, Relative, Scalar,
    Sort, TimeGrain, TimeRange,
};
use crate::chart::view::{ViewOptions, iso_time, parse_utc};
use crate::dashboard::api::{add_chart_to_dashboard, list_dashboards};
use crate::error::AppError;
use crate::json_layout::indent_json;
use crate::number::parse_number;
use crate::pages::chart_tile::ChartBody;
use crate::pages::{Choice, error_list};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An enum's name as written in JSON: `line`, `avg`, `5m`.
pub fn tag<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .map(|quoted| quoted.trim_matches('"').to_string())
        .unwrap_or_default()
}

pub fn untag<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::to_string(name)
        .ok()
        .and_then(|quoted| serde_json::from_str(&quoted).ok())
}

const CHART_TYPES: [ChartType; 9] = [
    ChartType::Line,
    ChartType::Area,
    ChartType::Bar,
    ChartType::StackedBar,
    ChartType::HorizontalBar,
    ChartType::Kpi,
    ChartType::Table,
    ChartType::Histogram,
    ChartType::Map,
];
const AGGREGATES: [Aggregate; 6] = [
    Aggregate::Count,
    Aggregate::CountDistinct,
    Aggregate::Sum,
    Aggregate::Avg,
    Aggregate::Min,
    Aggregate::Max,
];
const OPS: [FilterOp; 8] = [
    FilterOp::Eq,
    FilterOp::Ne,
    FilterOp::Lt,
    FilterOp::Le,
    FilterOp::Gt,
    FilterOp::Ge,
    FilterOp::In,
    FilterOp::Contains,
];

#[component]
pub fn ChartsPage() -> impl IntoView {
    let changed = RwSignal::new(0_u32);
    let charts = Resource::new(move || changed.get(), |_| list_charts());
    let act = move |work: std::pin::Pin<Box<dyn Future<Output = Result<(), AppError>>>>| {
        spawn_local(async move {
            if let Err(error) = work.await {
                leptos::logging::error!("{error}");
            }
            changed.update(|c| *c += 1);
        })
    };
    let status = RwSignal::new(String::new());
    let import = move |ev: leptos::ev::Event| {
        crate::browser::read_chosen_file(&ev, move |text| {
            spawn_local(async move {
                match import_chart(text).await {
                    Ok(saved) => status.set(format!("Imported as chart {}.", saved.id)),
                    Err(error) => status.set(format!("Not imported: {error}")),
                }
                changed.update(|c| *c += 1);
            })
        })
    };
    view! {
        <div class="dashboard-header">
            <h1>"Charts"</h1>
            <div class="toolbar">
                <label>"Import a chart file"
                    <input type="file" accept=".json,application/json" data-testid="import-chart" on:change=import/>
                </label>
                <a class="button" href="/charts/new">"New chart"</a>
            </div>
        </div>
        <p class="status" role="status">{move || status.get()}</p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            <ErrorBoundary fallback=error_list>
                {move || Suspend::new(async move {
                    charts.await.map(|charts| view! {
                        <table class="data" data-testid="chart-list">
                            <thead><tr><th>"Name"</th><th>"Type"</th><th>"Dataset"</th><th>"Revision"</th><th></th></tr></thead>
                            <tbody>
                                {charts.into_iter().map(|c| {
                                    let id = c.id;
                                    view! {
                                        <tr>
                                            <td><a href=format!("/charts/{id}")>{c.name}</a></td>
                                            <td>{tag(&c.chart_type)}</td>
                                            <td>{c.dataset}</td>
                                            <td class="num">{c.revision}</td>
                                            <td class="actions">
                                                <button on:click=move |_| act(Box::pin(async move { duplicate_chart(id).await.map(|_| ()) }))>"Duplicate"</button>
                                                <button on:click=move |_| act(Box::pin(delete_chart(id)))>"Delete"</button>
                                                <a href=format!("/download/chart/{id}/csv")>"CSV"</a>
                                                <a href=format!("/download/chart/{id}/json") data-testid="export-chart">"Export"</a>
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
    }
}

#[component]
pub fn ChartEditorPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok()));
    let loaded = Resource::new(id, |id| async move {
        let saved = match id {
            Some(id) => Some(get_chart(id).await?),
            None => None,
        };
        Ok::<_, AppError>((saved, list_datasets().await?))
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            <ErrorBoundary fallback=error_list>
                {move || Suspend::new(async move {
                    loaded.await.map(|(saved, datasets)| view! { <Editor saved datasets/> })
                })}
            </ErrorBoundary>
        </Suspense>
    }
}

/// The errors of `field` and the fields under it.
fn errors_for(errors: RwSignal<Vec<FieldError>>, field: &'static str) -> impl IntoView {
    move || {
        errors.with(|errors| {
            errors
                .iter()
                .filter(|e| e.field == field || e.field.starts_with(&format!("{field}[")) || e.field.starts_with(&format!("{field}.")))
                .map(|e| view! { <p class="field-error" data-field=e.field.clone()>{format!("{}: {}", e.field, e.message)}</p> })
                .collect_view()
        })
    }
}

fn find(datasets: &[Dataset], name: &str) -> Option<Dataset> {
    datasets.iter().find(|d| d.name == name).cloned()
}

fn columns_of(dataset: Option<Dataset>, kinds: &[ColumnKind]) -> Vec<String> {
    dataset
        .map(|d| {
            d.columns
                .into_iter()
                .filter(|c| kinds.contains(&c.kind))
                .map(|c| c.name)
                .collect()
        })
        .unwrap_or_default()
}

fn parse_value(text: &str, kind: Option<ColumnKind>) -> Scalar {
    match kind {
        Some(ColumnKind::Dimension) | None => Scalar::Text(text.to_string()),
        Some(ColumnKind::Time) => parse_utc(text)
            .map(|ms| Scalar::Number(ms as f64))
            .unwrap_or_else(|| Scalar::Text(text.into())),
        Some(_) => parse_number(text)
            .map(Scalar::Number)
            .unwrap_or_else(|| Scalar::Text(text.into())),
    }
}

fn value_text(value: &Scalar) -> String {
    match value {
        Scalar::Text(t) => t.clone(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Number(x) => x.to_string(),
    }
}

#[component]
fn Editor(saved: Option<SavedChart>, datasets: Vec<Dataset>) -> impl IntoView {
    let catalog = StoredValue::new(datasets);
    let dataset_of = move |definition: &ChartDefinition| {
        catalog.with_value(|all| find(all, &definition.dataset))
    };
    let id = RwSignal::new(saved.as_ref().map(|s| s.id));
    let revision = RwSignal::new(saved.as_ref().map_or(0, |s| s.revision));
    let def = RwSignal::new(saved.map_or_else(ChartDefinition::starter, |s| s.definition));
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let status = RwSignal::new(String::new());

    let preview = Resource::new(
        move || def.get(),
        |definition| {
            preview_chart(
                definition,
                ViewOptions {
                    width: 880,
                    height: 400,
                    ..ViewOptions::default()
                },
            )
        },
    );
    let history = Resource::new(
        move || (id.get(), revision.get()),
        |(id, _)| async move {
            match id {
                Some(id) => chart_revisions(id).await,
                None => Ok(Vec::new()),
            }
        },
    );
    let dashboards = Resource::new(|| (), |_| list_dashboards());

    let save = move |_| {
        spawn_local(async move {
            let was_new = id.get_untracked().is_none();
            match save_chart(id.get_untracked(), def.get_untracked()).await {
                Ok(saved) => {
                    errors.set(Vec::new());
                    id.set(Some(saved.id));
                    revision.set(saved.revision);
                    status.set(format!("Saved revision {}.", saved.revision));
                    if was_new {
                        crate::browser::replace_url(&format!("/charts/{}", saved.id));
                    }
                }
                Err(AppError::Invalid(found)) => {
                    status.set("Not saved: fix the fields marked below.".into());
                    errors.set(found);
                }
                Err(error) => status.set(format!("Not saved: {error}")),
            }
        });
    };
    let restore = move |number: i32| {
        spawn_local(async move {
            let Some(chart) = id.get_untracked() else {
                return;
            };
            match restore_chart(chart, number).await {
                Ok(saved) => {
                    def.set(saved.definition);
                    revision.set(saved.revision);
                    status.set(format!(
                        "Restored revision {number} as revision {}.",
                        saved.revision
                    ));
                }
                Err(error) => status.set(format!("Not restored: {error}")),
            }
        });
    };
    let chosen_dashboard = RwSignal::new(String::new());
    let add_to_dashboard = move |_| {
        spawn_local(async move {
            let (Some(chart), slug) = (id.get_untracked(), chosen_dashboard.get_untracked()) else {
                status.set("Save the chart first.".into());
                return;
            };
            let result = add_chart_to_dashboard(slug.clone(), chart).await;
            match result {
                Ok(()) => status.set(format!("Added to dashboard {slug}.")),
                Err(error) => status.set(format!("Not added: {error}")),
            }
        });
    };
    let json_area = NodeRef::<leptos::html::Textarea>::new();
    let apply_json = move |_| {
        let Some(area) = json_area.get() else { return };
        match serde_json::from_str::<ChartDefinition>(&area.value()) {
            Ok(parsed) => {
                def.set(parsed);
                status.set("JSON applied; save to keep it.".into());
            }
            Err(error) => status.set(format!("Not applied: {error}")),
        }
    };

    view! {
        <div class="dashboard-header">
            <h1>{move || if id.get().is_some() { "Edit chart" } else { "New chart" }}</h1>
            <div class="toolbar">
                <button class="primary" data-testid="save-chart" on:click=save>"Save"</button>
                {move || id.get().map(|chart| view! {
                    <button on:click=move |_| spawn_local(async move {
                        if let Ok(copy) = duplicate_chart(chart).await {
                            status.set(format!("Saved a copy as chart {}.", copy.id));
                        }
                    })>"Duplicate"</button>
                    <a class="button" href=format!("/download/chart/{chart}/csv")>"CSV"</a>
                    <a class="button" href=format!("/download/chart/{chart}/svg")>"SVG"</a>
                    <a class="button" href=format!("/download/chart/{chart}/png")>"PNG"</a>
                })}
            </div>
        </div>
        <p class="status" role="status" data-testid="editor-status">{move || status.get()}</p>
        <div class="editor">
            <form class="chart-form" on:submit=|ev| ev.prevent_default()>
                <label>"Name"
                    <input data-testid="chart-name" prop:value=move || def.with(|d| d.name.clone())
                        on:input=move |ev| { let v = event_target_value(&ev); def.update(|d| d.name = v) }/>
                </label>
                {errors_for(errors, "name")}
                <label>"Dataset"
                    <Choice test_id="chart-dataset"
                        options=Signal::stored(catalog.with_value(|all| all.iter().map(|d| (d.name.clone(), format!("{} — {}", d.name, d.description))).collect()))
                        current=Signal::derive(move || def.with(|d| d.dataset.clone()))
                        choose=Callback::new(move |name: String| def.update(|d| {
                            d.dataset = name;
                            d.metrics = vec![Metric { aggregate: Aggregate::Count, column: None }];
                            d.group_by.clear();
                            d.filters.clear();
                            d.sort = None;
                            if dataset_of(d).and_then(|ds| ds.time_column().cloned()).is_none() {
                                d.time_grain = None;
                            }
                        }))/>
                </label>
                {errors_for(errors, "dataset")}
                <label>"Chart type"
                    <Choice test_id="chart-type" options=Signal::stored(named(&CHART_TYPES))
                        current=Signal::derive(move || def.with(|d| tag(&d.chart_type)))
                        choose=Callback::new(move |name: String| if let Some(t) = untag::<ChartType>(&name) { def.update(|d| d.chart_type = t) })/>
                </label>
                <fieldset>
                    <legend>"Metrics"</legend>
                    {move || {
                        let definition = def.get();
                        let columns = columns_of(dataset_of(&definition), &[ColumnKind::Metric, ColumnKind::Time, ColumnKind::Dimension, ColumnKind::Latitude, ColumnKind::Longitude]);
                        definition.metrics.iter().enumerate().map(|(i, metric)| {
                            let current = metric.column.clone().unwrap_or_default();
                            let aggregate = metric.aggregate;
                            view! {
                                <div class="row" data-testid=format!("metric-{i}")>
                                    <Choice class="metric-aggregate" options=Signal::stored(named(&AGGREGATES)) current=Signal::stored(tag(&aggregate))
                                        choose=Callback::new(move |name: String| if let Some(a) = untag::<Aggregate>(&name) { def.update(|d| d.metrics[i].aggregate = a) })/>
                                    <Choice class="metric-column" options=Signal::stored(with_none("(rows)", &columns)) current=Signal::stored(current)
                                        choose=Callback::new(move |v: String| def.update(|d| d.metrics[i].column = (!v.is_empty()).then_some(v)))/>
                                    <button type="button" on:click=move |_| def.update(|d| { d.metrics.remove(i); })>"Remove"</button>
                                </div>
                            }
                        }).collect_view()
                    }}
                    <button type="button" on:click=move |_| def.update(|d| d.metrics.push(Metric { aggregate: Aggregate::Count, column: None }))>"Add metric"</button>
                    {errors_for(errors, "metrics")}
                </fieldset>
                <fieldset>
                    <legend>"Group by"</legend>
                    {move || {
                        let definition = def.get();
                        columns_of(dataset_of(&definition), &[ColumnKind::Dimension, ColumnKind::Latitude, ColumnKind::Longitude]).into_iter().map(|c| {
                            let checked = definition.group_by.contains(&c);
                            let name = c.clone();
                            view! {
                                <label class="check"><input type="checkbox" data-testid=format!("group-{c}") prop:checked=checked on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    let name = name.clone();
                                    def.update(|d| if on { if !d.group_by.contains(&name) { d.group_by.push(name) } } else { d.group_by.retain(|g| *g != name) })
                                }/>{c}</label>
                            }
                        }).collect_view()
                    }}
                    {errors_for(errors, "group_by")}
                </fieldset>
                <label>"Time grain"
                    <Choice test_id="chart-grain" options=Signal::stored(with_none("none", &named(&TimeGrain::ALL).into_iter().map(|(v, _)| v).collect::<Vec<_>>()))
                        current=Signal::derive(move || def.with(|d| d.time_grain.map(|g| tag(&g)).unwrap_or_default()))
                        choose=Callback::new(move |v: String| def.update(|d| d.time_grain = untag(&v)))/>
                </label>
                {errors_for(errors, "time_grain")}
                <TimeRangeField def/>
                {errors_for(errors, "time_range")}
                <fieldset>
                    <legend>"Filters"</legend>
                    {move || {
                        let definition = def.get();
                        let dataset = dataset_of(&definition);
                        let columns: Vec<String> = dataset.as_ref().map(|d| d.columns.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
                        definition.filters.iter().enumerate().map(|(i, filter)| {
                            let column = filter.column.clone();
                            let op = filter.op;
                            let text = filter.values.iter().map(value_text).collect::<Vec<_>>().join(", ");
                            let kind = dataset.as_ref().and_then(|d| d.column(&column)).map(|c| c.kind);
                            view! {
                                <div class="row" data-testid=format!("filter-{i}")>
                                    <Choice options=Signal::stored(columns.iter().map(|c| (c.clone(), c.clone())).collect()) current=Signal::stored(column)
                                        choose=Callback::new(move |v: String| def.update(|d| d.filters[i].column = v))/>
                                    <Choice options=Signal::stored(named(&OPS)) current=Signal::stored(tag(&op))
                                        choose=Callback::new(move |v: String| if let Some(o) = untag::<FilterOp>(&v) { def.update(|d| d.filters[i].op = o) })/>
                                    <input class="filter-value" prop:value=text on:change=move |ev| {
                                        let v = event_target_value(&ev);
                                        def.update(|d| {
                                            d.filters[i].values = if d.filters[i].op == FilterOp::In {
                                                v.split(',').map(|p| parse_value(p.trim(), kind)).collect()
                                            } else {
                                                vec![parse_value(&v, kind)]
                                            }
                                        })
                                    }/>
                                    <button type="button" on:click=move |_| def.update(|d| { d.filters.remove(i); })>"Remove"</button>
                                </div>
                            }
                        }).collect_view()
                    }}
                    <button type="button" on:click=move |_| def.update(|d| {
                        let column = dataset_of(d).and_then(|ds| ds.columns.first().map(|c| c.name.clone())).unwrap_or_default();
                        d.filters.push(Filter { column, op: FilterOp::Eq, values: vec![Scalar::Text(String::new())] })
                    })>"Add filter"</button>
                    {errors_for(errors, "filters")}
                </fieldset>
                <div class="row">
                    <label>"Sort by"
                        <Choice
                            options=Signal::derive(move || def.with(|d| {
                                let mut choices = Vec::new();
                                if d.time_grain.is_some() { choices.push("time".to_string()) }
                                choices.extend(d.group_by.iter().cloned());
                                choices.extend(d.metrics.iter().map(Metric::output_name));
                                with_none("default", &choices)
                            }))
                            current=Signal::derive(move || def.with(|d| d.sort.as_ref().map(|s| s.by.clone()).unwrap_or_default()))
                            choose=Callback::new(move |v: String| def.update(|d| d.sort = (!v.is_empty()).then(|| Sort { by: v, descending: d.sort.as_ref().is_some_and(|s| s.descending) })))/>
                    </label>
                    <label class="check"><input type="checkbox" prop:checked=move || def.with(|d| d.sort.as_ref().is_some_and(|s| s.descending))
                        on:change=move |ev| { let on = event_target_checked(&ev); def.update(|d| if let Some(s) = &mut d.sort { s.descending = on }) }/>"descending"</label>
                    <DefinitionField def label="Limit" number=true
                        read={|d| number_text(d.limit)} write={|d, v| { d.limit = whole_number(&v)?; Ok(()) }}/>
                </div>
                {errors_for(errors, "sort")}
                {errors_for(errors, "limit")}
                <fieldset>
                    <legend>"Look"</legend>
                    <DefinitionField def label="Colours (#rrggbb, comma-separated)"
                        read={|d| d.visual.colors.join(", ")}
                        write={|d, v| { d.visual.colors = v.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect(); Ok(()) }}/>
                    <DefinitionField def label="Value axis label"
                        read={|d| d.visual.y_label.clone().unwrap_or_default()}
                        write={|d, v| { d.visual.y_label = (!v.is_empty()).then_some(v); Ok(()) }}/>
                    <DefinitionField def label="Unit" test_id="chart-unit"
                        read={|d| d.visual.unit.clone().unwrap_or_default()}
                        write={|d, v| { d.visual.unit = (!v.is_empty()).then_some(v); Ok(()) }}/>
                    <DefinitionField def label="Thresholds (comma-separated)" test_id="chart-thresholds"
                        read={|d| d.visual.thresholds.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")}
                        write={|d, v| { d.visual.thresholds = numbers(&v)?; Ok(()) }}/>
                    <DefinitionField def label="Histogram bins" number=true
                        read={|d| number_text(d.visual.bins)} write={|d, v| { d.visual.bins = whole_number(&v)?; Ok(()) }}/>
                    <DefinitionField def label="Map: stale after (seconds)" number=true
                        read={|d| number_text(d.visual.stale_after_seconds)}
                        write={|d, v| { d.visual.stale_after_seconds = whole_number(&v)?; Ok(()) }}/>
                    {errors_for(errors, "visual")}
                </fieldset>
                <DefinitionField def label="Refresh every (seconds; empty: the dashboard's)" number=true
                    read={|d| number_text(d.refresh_seconds)} write={|d, v| { d.refresh_seconds = whole_number(&v)?; Ok(()) }}/>
                {errors_for(errors, "refresh_seconds")}
                <details>
                    <summary>"JSON"</summary>
                    <textarea data-testid="chart-json" node_ref=json_area rows="16"
                        prop:value=move || def.with(|d| serde_json::to_string(d).map(|json| indent_json(&json)).unwrap_or_default())></textarea>
                    <button type="button" on:click=apply_json>"Apply JSON"</button>
                </details>
            </form>
            <section class="preview panel" aria-label="Preview">
                <h2>"Preview"</h2>
                <Transition fallback=|| view! { <p class="loading">"Drawing…"</p> }>
                    <ErrorBoundary fallback=error_list>
                        {move || Suspend::new(async move {
                            preview.await.map(|preview| match preview {
                                crate::chart::api::Preview::Drawn(view) => view! { <ChartBody view/> }.into_any(),
                                crate::chart::api::Preview::Invalid(found) => view! {
                                    <ul class="field-errors" data-testid="preview-errors">
                                        {found.into_iter().map(|e| view! { <li>{format!("{}: {}", e.field, e.message)}</li> }).collect_view()}
                                    </ul>
                                }.into_any(),
                            })
                        })}
                    </ErrorBoundary>
                </Transition>
                <div class="row">
                    <label>"Add to dashboard"
                        <select data-testid="add-to-dashboard" on:change=move |ev| chosen_dashboard.set(event_target_value(&ev))>
                            <option value="">"choose…"</option>
                            <Suspense>
                                {move || Suspend::new(async move {
                                    dashboards.await.map(|list| list.into_iter().map(|(slug, name)| view! { <option value=slug>{name}</option> }).collect_view())
                                })}
                            </Suspense>
                        </select>
                    </label>
                    <button type="button" data-testid="add-to-dashboard-button" on:click=add_to_dashboard>"Add"</button>
                </div>
                <h3>"History"</h3>
                <Transition>
                    {move || Suspend::new(async move {
                        history.await.map(|revisions| view! {
                            <ol class="history" data-testid="chart-history">
                                {revisions.into_iter().map(|(number, saved_ms)| view! {
                                    <li>"Revision " {number} " · " {iso_time(saved_ms)}
                                        <button type="button" on:click=move |_| restore(number)>"Restore"</button>
                                    </li>
                                }).collect_view()}
                            </ol>
                        })
                    })}
                </Transition>
            </section>
        </div>
    }
}

/// Each value under its JSON name.
fn named<T: Serialize>(values: &[T]) -> Vec<(String, String)> {
    values.iter().map(|v| (tag(v), tag(v))).collect()
}

/// `names` after an empty choice labelled `none`.
fn with_none(none: &str, names: &[String]) -> Vec<(String, String)> {
    std::iter::once((String::new(), none.to_string()))
        .chain(names.iter().map(|n| (n.clone(), n.clone())))
        .collect()
}

/// A text or number input bound to one field of the definition, which it
/// reads and writes through plain functions: every such field then shares
/// one copy of the input's code in the browser bundle.
#[component]
fn DefinitionField(
    def: RwSignal<ChartDefinition>,
    label: &'static str,
    read: fn(&ChartDefinition) -> String,
    /// Sets the field from what was typed, or says why it cannot.
    write: fn(&mut ChartDefinition, String) -> Result<(), String>,
    #[prop(optional)] number: bool,
    #[prop(optional)] test_id: Option<&'static str>,
) -> impl IntoView {
    // What was typed and refused stays in the field beside the reason.
    let problem = RwSignal::new(None::<String>);
    let change = move |ev| {
        let mut next = def.get_untracked();
        match write(&mut next, event_target_value(&ev)) {
            Ok(()) => {
                problem.set(None);
                def.set(next);
            }
            Err(reason) => problem.set(Some(reason)),
        }
    };
    view! {
        <label>{label}
            <input type=if number { "number" } else { "text" } min=number.then_some("1") data-testid=test_id
                prop:value=move || def.with(read) on:change=change/>
            {move || problem.get().map(|reason| view! { <span class="field-error" role="alert">{reason}</span> })}
        </label>
    }
}

/// An optional whole number as typed: empty for none.
fn whole_number(text: &str) -> Result<Option<u32>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{text:?} is not a whole number"))
}

/// Comma-separated numbers as typed; empty for none.
fn numbers(text: &str) -> Result<Vec<f64>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| parse_number(t).ok_or_else(|| format!("{t:?} is not a number")))
        .collect()
}

/// An optional number as an input shows it: empty when absent.
fn number_text<N: ToString>(value: Option<N>) -> String {
    value.map(|n| n.to_string()).unwrap_or_default()
}

#[component]
fn TimeRangeField(def: RwSignal<ChartDefinition>) -> impl IntoView {
    let choice = move || {
        def.with(|d| match d.time_range {
            TimeRange::All => "all".to_string(),
            TimeRange::Last(r) => tag(&r),
            TimeRange::Between { .. } => "between".to_string(),
        })
    };
    let bound = move |which: usize| {
        def.with(|d| match d.time_range {
            TimeRange::Between { from_ms, to_ms } => {
                iso_time(if which == 0 { from_ms } else { to_ms })
            }
            _ => String::new(),
        })
    };
    let set_bound = move |which: usize, text: String| {
        let Some(ms) = parse_utc(&text) else { return };
        def.update(|d| {
            let (mut from, mut to) = match d.time_range {
                TimeRange::Between { from_ms, to_ms } => (from_ms, to_ms),
                _ => (ms - 3_600_000, ms),
            };
            if which == 0 {
                from = ms
            } else {
                to = ms
            }
            d.time_range = TimeRange::Between {
                from_ms: from,
                to_ms: to,
            };
        })
    };
    view! {
        <label>"Time range"
            <Choice test_id="chart-range"
                options=Signal::stored(crate::dashboard::params::RELATIVE_CHOICES.iter().map(|r| (tag(r), format!("last {}", tag(r))))
                    .chain([("all".to_string(), "all time".to_string()), ("between".to_string(), "between (UTC)".to_string())]).collect())
                current=Signal::derive(choice)
                choose=Callback::new(move |v: String| def.update(|d| d.time_range = match v.as_str() {
                    "all" => TimeRange::All,
                    "between" => {
                        let now = crate::browser::now_ms() as i64;
                        TimeRange::Between { from_ms: now - 3_600_000, to_ms: now }
                    }
                    other => untag::<Relative>(other).map(TimeRange::Last).unwrap_or_default(),
                }))/>
        </label>
        <Show when=move || choice() == "between">
            <div class="row">
                <label>"From (UTC)"<input prop:value=move || bound(0) on:change=move |ev| set_bound(0, event_target_value(&ev))/></label>
                <label>"To (UTC)"<input prop:value=move || bound(1) on:change=move |ev| set_bound(1, event_target_value(&ev))/></label>
            </div>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_numbers_are_read_or_refused_with_the_reason() {
        assert_eq!(whole_number(" 12 "), Ok(Some(12)));
        assert_eq!(whole_number(""), Ok(None));
        assert_eq!(
            whole_number("-5"),
            Err("\"-5\" is not a whole number".to_string())
        );
        assert_eq!(numbers("10, .5 ,-2e1,"), Ok(vec![10.0, 0.5, -20.0]));
        assert_eq!(numbers(" "), Ok(Vec::new()));
        assert_eq!(
            numbers("10, abc, 20"),
            Err("\"abc\" is not a number".to_string())
        );
    }
}
