//! The temperature time series: one line per sensor over the recent past.

use crate::chart::Chart;
use crate::error::{AppError, Result};
use crate::panel::LivePanel;
use leptos::prelude::*;

/// How far back the temperature chart looks.
pub const WINDOW_MINUTES: i64 = 10;

#[server(output = crate::codec::JsonText)]
pub async fn get_temperature_chart() -> Result<Chart, AppError> {
    crate::accounts::require(crate::accounts::Role::Viewer)?;
    let pool = crate::error::pool()?;
    let series = ssr::recent_series(&pool, WINDOW_MINUTES).await?;
    ssr::render(series).await
}

#[component]
pub fn TemperatureChart(tick: ReadSignal<u64>) -> impl IntoView {
    let chart = Resource::new(move || tick.get(), |_| get_temperature_chart());
    view! {
        <LivePanel id="temperature-title" title=format!("Temperature by sensor, last {WINDOW_MINUTES} minutes")>
                    {move || Suspend::new(async move {
                        chart.await.map(|chart| view! {
                            <figure
                                class="chart"
                                data-testid="temperature-chart"
                                data-series=chart.series
                                data-points=chart.points
                            >
                                <div class="chart-svg" inner_html=chart.svg></div>
                                <figcaption>
                                    <span data-testid="temperature-points">{chart.points}</span>
                                    " readings from "
                                    {chart.series}
                                    " sensors · data as of "
                                    <time data-testid="temperature-as-of">
                                        {chart.data_as_of.unwrap_or_else(|| "—".to_string())}
                                    </time>
                                </figcaption>
                            </figure>
                        })
                    })}
        </LivePanel>
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use crate::chart::Chart;
    use crate::chart::render::{self, Series};
    use crate::error::Result;
    use sqlx::PgPool;

    #[derive(sqlx::FromRow)]
    struct SensorRow {
        guid: String,
        location: String,
    }

    #[derive(sqlx::FromRow)]
    struct ReadingRow {
        guid: String,
        ts: i64,
        temp: f64,
    }

    /// Every installed, active sensor (one series each, even when silent) with its readings of the last `minutes`.
    pub async fn recent_series(pool: &PgPool, minutes: i64) -> Result<Vec<Series>> {
        let sensors: Vec<SensorRow> = sqlx::query_as(
            "SELECT guid::text AS guid, coalesce(location, guid)::text AS location
               FROM sensor_installations
              ORDER BY location, guid",
        )
        .fetch_all(pool)
        .await?;
        let readings: Vec<ReadingRow> = sqlx::query_as(
            "SELECT guid::text AS guid, ts, temp::float8 AS temp
               FROM message
              WHERE ts >= extract(epoch FROM now())::bigint - $1 * 60
              ORDER BY guid, ts",
        )
        .bind(minutes)
        .fetch_all(pool)
        .await?;
        Ok(group_by_sensor(sensors, readings))
    }

    fn group_by_sensor(sensors: Vec<SensorRow>, readings: Vec<ReadingRow>) -> Vec<Series> {
        let mut series: Vec<Series> = sensors
            .iter()
            .map(|s| Series {
                label: s.location.clone(),
                points: Vec::new(),
            })
            .collect();
        for reading in readings {
            if let Some(index) = sensors.iter().position(|s| s.guid == reading.guid) {
                series[index].points.push((reading.ts, reading.temp));
            }
        }
        series
    }

    pub async fn render(series: Vec<Series>) -> Result<Chart> {
        let points = series.iter().map(|s| s.points.len()).sum();
        let newest = series
            .iter()
            .flat_map(|s| s.points.last())
            .map(|p| p.0)
            .max();
        let count = series.len();
        let svg = crate::chart::service::off_runtime("temperature", move || {
            render::line_chart_svg("Temperature (°F)", "°F", &series, (960, 380))
        })
        .await?;
        Ok(Chart {
            svg,
            series: count,
            points,
            data_as_of: newest.map(|ts| format!("{} UTC", render::clock_time(ts))),
        })
    }
}
