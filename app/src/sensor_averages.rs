//! The `sensor_avg_temp` view as a table: average temperature per sensor.

use crate::error::{AppError, Result};
use crate::panel::LivePanel;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorAverage {
    pub avg_temp: f64,
    pub guid: String,
    pub lat: f64,
    pub long: f64,
    pub location: String,
}

#[server(output = crate::codec::JsonText)]
pub async fn list_sensor_averages() -> Result<Vec<SensorAverage>, AppError> {
    crate::accounts::require(crate::accounts::Role::Viewer)?;
    let pool = crate::error::pool()?;
    let rows = sqlx::query_as::<_, (f64, String, f64, f64, String)>(
        "SELECT avg_temp::float8, guid::text, lat::float8, long::float8, coalesce(location, '')::text
           FROM sensor_avg_temp
          ORDER BY avg_temp, guid",
    )
    .fetch_all(&pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(avg_temp, guid, lat, long, location)| SensorAverage {
            avg_temp,
            guid,
            lat,
            long,
            location,
        })
        .collect())
}

#[component]
pub fn SensorAverageTable(tick: ReadSignal<u64>) -> impl IntoView {
    let averages = Resource::new(move || tick.get(), |_| list_sensor_averages());
    view! {
        <LivePanel id="averages-title" title="Average temperature per sensor">
                    {move || Suspend::new(async move {
                        averages.await.map(|rows| view! {
                            <table class="data" data-testid="sensor-averages">
                                <thead>
                                    <tr>
                                        <th scope="col" class="num">"avg_temp"</th>
                                        <th scope="col">"guid"</th>
                                        <th scope="col" class="num">"lat"</th>
                                        <th scope="col" class="num">"long"</th>
                                        <th scope="col">"location"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {rows.into_iter().map(|row| view! {
                                        <tr data-guid=row.guid.clone()>
                                            <td class="num avg">{format!("{:.2}", row.avg_temp)}</td>
                                            <td class="guid">{row.guid.clone()}</td>
                                            <td class="num">{format!("{:.7}", row.lat)}</td>
                                            <td class="num">{format!("{:.7}", row.long)}</td>
                                            <td>{row.location}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        })
                    })}
        </LivePanel>
    }
}
