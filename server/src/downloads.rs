//! Files a user takes away: a chart's rows as CSV, its picture as SVG or
//! PNG, its definition as a chart file, and a dashboard with its charts as
//! one JSON file. The address takes
//! the dashboard's view parameters (`range`, `filter`) plus `width` and
//! `height`, so a download holds what the page showed.

use app::accounts::Account;
use app::chart::service::{ChartService, csv};
use app::chart::view::ViewOptions;
use app::dashboard::params::ViewParams;
use app::error::AppError;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

fn failure(error: AppError) -> Response {
    (error.status(), format!("{error}\n")).into_response()
}

fn attachment(content_type: &str, name: &str, body: impl IntoResponse) -> Response {
    // Only a safe subset of the chart's name goes into the header.
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Passes a signed-in request, or one for something on a public dashboard
/// (`public`); anything else is refused with 401.
async fn readable(
    signed_in: bool,
    public: impl Future<Output = Result<bool, app::dashboard::store::DashboardError>>,
) -> Result<(), Response> {
    if signed_in {
        return Ok(());
    }
    match public.await {
        Ok(true) => Ok(()),
        Ok(false) => Err(failure(AppError::SignInRequired)),
        Err(error) => Err(failure(error.into())),
    }
}

/// `GET /download/chart/{id}/{csv|svg|png|json}`.
pub async fn chart(
    State(service): State<ChartService>,
    account: Option<Extension<Account>>,
    Path((id, format)): Path<(i64, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    // Anyone may take away what a public dashboard shows.
    if let Err(refused) = readable(
        account.is_some(),
        app::dashboard::store::chart_is_public(&service.pool, id),
    )
    .await
    {
        return refused;
    }
    match chart_file(&service, id, &format, &pairs).await {
        Ok(response) => response,
        Err(error) => failure(error),
    }
}

async fn chart_file(
    service: &ChartService,
    id: i64,
    format: &str,
    pairs: &[(String, String)],
) -> Result<Response, AppError> {
    let params = ViewParams::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(AppError::BadRequest)?;
    let number = |key: &str, default: u32| -> Result<u32, AppError> {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map_or(Ok(default), |(_, v)| {
                v.parse()
                    .map_err(|_| AppError::BadRequest(format!("{key} {v:?} is not a number")))
            })
    };
    let options = ViewOptions {
        time_range: params.range,
        filters: params.chart_filters(),
        width: number("width", 960)?,
        height: number("height", 480)?,
    };
    let chart = app::chart::store::get(&service.pool, id).await?;
    let name = &chart.definition.name;
    match format {
        "csv" => {
            let (shown, _) = service.effective(&chart.definition, &options)?;
            let rows = service.rows(&shown).await?;
            Ok(attachment(
                "text/csv; charset=utf-8",
                &format!("{name}.csv"),
                csv(&rows),
            ))
        }
        "svg" => {
            let svg = service.svg(&chart.definition, &options).await?;
            Ok(attachment("image/svg+xml", &format!("{name}.svg"), svg))
        }
        "png" => {
            let png = service.png(&chart.definition, &options).await?;
            Ok(attachment("image/png", &format!("{name}.png"), png))
        }
        "json" => {
            let file = app::chart::store::to_file(&chart.definition)?;
            Ok(attachment(
                "application/json",
                &format!("{name}.chart.json"),
                file,
            ))
        }
        other => Err(AppError::NotFound(format!(
            "format {other:?} (csv, svg, png or json)"
        ))),
    }
}

/// `GET /download/dashboard/{slug}`: the dashboard file.
pub async fn dashboard(
    State(service): State<ChartService>,
    account: Option<Extension<Account>>,
    Path(slug): Path<String>,
) -> Response {
    if let Err(refused) = readable(
        account.is_some(),
        app::dashboard::store::is_public(&service.pool, &slug),
    )
    .await
    {
        return refused;
    }
    match app::dashboard::store::export(&service.pool, &slug).await {
        Ok(file) => attachment("application/json", &format!("{slug}.dashboard.json"), file),
        Err(error) => failure(error.into()),
    }
}
