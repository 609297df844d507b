//! The seed's IoT sensor simulator: six sensors whose temperature follows a
//! sine wave with noise.

use crate::reading::Reading;
use rand::Rng;

/// A simulated sensor: its GUID and the amplitude of its wave (`temp_max`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SensorSpec {
    pub guid: &'static str,
    pub temp_max: f64,
}

/// The seed's six sensors, in the order its threads start them.
pub const SEED_SENSORS: [SensorSpec; 6] = [
    SensorSpec {
        guid: "03e39872-e105-4be4-83c0-9ade818465dc",
        temp_max: 25.0,
    },
    SensorSpec {
        guid: "fa565921-fddd-4bfb-a7fd-d617f816df4b",
        temp_max: 10.0,
    },
    SensorSpec {
        guid: "d120422d-5789-435d-9dc6-73d8489b04c2",
        temp_max: 7.0,
    },
    SensorSpec {
        guid: "93238559-4d55-4b2a-bdcb-6aa3be0f3908",
        temp_max: 30.0,
    },
    SensorSpec {
        guid: "dbc05806-6872-4f0a-aca2-f794cc39bd9b",
        temp_max: 5.0,
    },
    SensorSpec {
        guid: "f9ade639-f936-4954-aa5a-1f2ed86c9bcf",
        temp_max: 12.0,
    },
];

/// Steps in one cycle: `t` runs over [0, 20) in steps of 0.1.
pub const STEPS_PER_CYCLE: usize = 200;
const STEP: f64 = 0.1;
/// Half-width of the uniform noise added to each reading.
pub const NOISE: f64 = 5.0;

/// One sensor's position on its wave.
#[derive(Debug, Clone)]
pub struct SensorWave {
    pub spec: SensorSpec,
    step: usize,
}

impl SensorWave {
    pub fn new(spec: SensorSpec) -> Self {
        SensorWave { spec, step: 0 }
    }

    /// The next reading at `ts`: `((sin(t) + 1) * temp_max + uniform(-5, 5)) + 60`, two decimals.
    pub fn next_reading(&mut self, ts: i64, rng: &mut impl Rng) -> Reading {
        let t = self.step as f64 * STEP;
        self.step = (self.step + 1) % STEPS_PER_CYCLE;
        let noise = rng.random_range(-NOISE..=NOISE);
        let temp = ((t.sin() + 1.0) * self.spec.temp_max + noise) + 60.0;
        Reading::new(self.spec.guid, ts, round2(temp))
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// All six seed sensors at the start of their waves.
pub fn seed_waves() -> Vec<SensorWave> {
    SEED_SENSORS.iter().copied().map(SensorWave::new).collect()
}

/// Where simulated readings go.
pub enum Sink {
    Pipeline(tokio::sync::mpsc::Sender<Reading>),
    Kafka(crate::kafka::ReadingPublisher),
}

/// Emits one reading per sensor every `period` until shutdown.
pub async fn run(
    period: std::time::Duration,
    sink: Sink,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut waves = seed_waves();
    let mut pending: Vec<Reading> = Vec::new();
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(sensors = waves.len(), ?period, "sensor simulator started");
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let ts = epoch_seconds();
        pending.extend(waves.iter_mut().map(|wave| wave.next_reading(ts, &mut rng)));
        match &sink {
            Sink::Pipeline(tx) => {
                for reading in pending.drain(..) {
                    if tx.send(reading).await.is_err() {
                        tracing::info!("pipeline closed; simulator stopping");
                        return;
                    }
                }
            }
            Sink::Kafka(publisher) => match publisher.publish(&pending).await {
                Ok(()) => pending.clear(),
                Err(error) => crate::kafka::keep_for_retry(&mut pending, &error, "readings"),
            },
        }
    }
    tracing::info!("sensor simulator stopped");
}

fn epoch_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn readings_follow_the_seed_formula_within_the_noise() {
        let mut rng = StdRng::seed_from_u64(7);
        for spec in SEED_SENSORS {
            let mut wave = SensorWave::new(spec);
            for step in 0..STEPS_PER_CYCLE * 2 {
                let r = wave.next_reading(1_000 + step as i64, &mut rng);
                let t = (step % STEPS_PER_CYCLE) as f64 * 0.1;
                let centre = (t.sin() + 1.0) * spec.temp_max + 60.0;
                assert!(
                    (r.temp - centre).abs() <= NOISE + 0.005,
                    "step {step}: {} vs {centre}",
                    r.temp
                );
                assert_eq!(r.guid, spec.guid);
                assert_eq!(r.ts, 1_000 + step as i64);
            }
        }
    }

    #[test]
    fn readings_have_two_decimals() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut wave = SensorWave::new(SEED_SENSORS[0]);
        for _ in 0..500 {
            let temp = wave.next_reading(0, &mut rng).temp;
            assert!(
                ((temp * 100.0).round() - temp * 100.0).abs() < 1e-6,
                "{temp}"
            );
        }
    }

    #[test]
    fn the_wave_repeats_after_two_hundred_steps() {
        // With no noise the cycle is exact: compare the noiseless centre via a fixed RNG
        // that yields the same noise at step k and k + 200.
        let spec = SEED_SENSORS[3];
        let mut wave = SensorWave::new(spec);
        let mut first_cycle = Vec::new();
        for _ in 0..STEPS_PER_CYCLE {
            first_cycle.push(wave.next_reading(0, &mut StdRng::seed_from_u64(42)).temp);
        }
        for expected in first_cycle {
            assert_eq!(
                wave.next_reading(0, &mut StdRng::seed_from_u64(42)).temp,
                expected
            );
        }
    }

    #[test]
    fn the_seed_amplitudes_bound_each_sensor() {
        // Highest possible reading: 2 * temp_max + 5 + 60; lowest: 55.
        let mut rng = StdRng::seed_from_u64(3);
        for mut wave in seed_waves() {
            let max = 2.0 * wave.spec.temp_max + 65.0;
            for _ in 0..STEPS_PER_CYCLE {
                let temp = wave.next_reading(0, &mut rng).temp;
                assert!((55.0..=max).contains(&temp), "{temp} outside 55..={max}");
            }
        }
    }
}
