//! Settings: typed per concern, defaults in code, overridden by `PULSEBOARD_*`
//! environment variables (and `DATABASE_URL`).

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub http: HttpConfig,
    /// The folder of stream definitions (`*.toml`).
    pub streams_dir: std::path::PathBuf,
    pub database: DatabaseConfig,
    pub flush: FlushConfig,
    pub simulator: SimulatorConfig,
    pub kafka: Option<KafkaConfig>,
    pub dashboards: DashboardConfig,
    /// Raw rows older than this are removed; `None` keeps them.
    pub raw_retention: Option<Duration>,
    pub first_admin: FirstAdmin,
}

/// The admin account created when there is no account at all. Without a
/// password nobody is created: there is never a default password.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstAdmin {
    pub username: String,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DashboardConfig {
    /// The folder of dashboard files (`*.json`) loaded at start.
    pub dir: std::path::PathBuf,
    /// The shortest refresh interval a dashboard may use, in seconds.
    pub minimum_refresh: u32,
    /// A map tile template; maps draw no tiles without one.
    pub tile_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    /// Where the built browser bundle, stylesheet and assets are served from.
    pub site_root: String,
    pub limits: HttpLimits,
}

/// What one client may take of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpLimits {
    /// Open connections at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// The longest a request may take to arrive and be answered, and the
    /// longest a kept-alive connection may sit idle.
    pub request_timeout: Duration,
    /// Records per second one ingest key may send, in bursts of up to a
    /// second's worth.
    pub ingest_records_per_second: u32,
}

impl HttpLimits {
    pub const DEFAULT: HttpLimits = HttpLimits {
        max_connections: 1_000,
        request_timeout: Duration::from_secs(30),
        ingest_records_per_second: 200_000,
    };
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
}

/// When buffered records are written: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlushConfig {
    pub max_records: usize,
    pub interval: Duration,
}

impl FlushConfig {
    /// A flush at least every 250 ms keeps data fresh at any rate; while a
    /// backlog is read, 20,000 records per flush spread each transaction's
    /// fixed costs and aggregate updates over many records (a few MB held).
    pub const DEFAULT: FlushConfig = FlushConfig {
        max_records: 20_000,
        interval: Duration::from_millis(250),
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulatorSink {
    /// Straight into the in-process pipeline.
    Pipeline,
    /// Produced to the Kafka readings topic (and consumed back from it).
    Kafka,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorConfig {
    pub enabled: bool,
    /// Time between two readings of one sensor.
    pub period: Duration,
    pub sink: SimulatorSink,
    /// Run the smoothie-shop sales simulator too.
    pub sales: bool,
    /// Purchases per second; `None` keeps the generator's own pace (one every 2 to 5 s).
    pub sales_rate: Option<f64>,
    /// Imperfections the sales simulator injects: out-of-order, late and
    /// duplicate events, and bursts.
    pub sales_disorder: crate::sales::Disorder,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    /// The topic that carries sensor readings as JSON `{guid, ts, temp}`.
    pub readings_topic: String,
    pub group_id: String,
    pub security: KafkaSecurity,
}

/// How Pulseboard connects to the brokers: the modes MSK offers (plaintext,
/// TLS, SASL/SCRAM over TLS), plus SASL without TLS for local brokers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaSecurity {
    pub protocol: SecurityProtocol,
    /// PEM file of the certificate authorities to trust; the system's when absent.
    pub ca_file: Option<std::path::PathBuf>,
    /// Client certificate and key (PEM), for brokers that ask for mutual TLS.
    pub certificate_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
    pub sasl: Option<SaslLogin>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// The name librdkafka's `security.protocol` takes.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SaslLogin {
    /// `SCRAM-SHA-512` (MSK's), `SCRAM-SHA-256` or `PLAIN`.
    pub mechanism: String,
    pub username: String,
    pub password: Secret,
}

/// A value that must never reach a log: its `Debug` shows only that it is set.
#[derive(Clone, PartialEq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{0} is not set; point it at a Postgres database (postgres://user@host:port/db)")]
    Missing(&'static str),
    #[error("{name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the config from any variable source, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &'static str| get(name).filter(|v| !v.trim().is_empty());
        let kafka = match var("PULSEBOARD_KAFKA_BOOTSTRAP") {
            Some(bootstrap_servers) => Some(KafkaConfig {
                bootstrap_servers,
                readings_topic: var("PULSEBOARD_KAFKA_TOPIC")
                    .unwrap_or_else(|| "sensor.readings".into()),
                group_id: var("PULSEBOARD_KAFKA_GROUP").unwrap_or_else(|| "pulseboard".into()),
                security: kafka_security(&var)?,
            }),
            None => None,
        };
        let sink = match var("PULSEBOARD_SIMULATOR_SINK").as_deref() {
            None | Some("pipeline") => SimulatorSink::Pipeline,
            Some("kafka") if kafka.is_some() => SimulatorSink::Kafka,
            Some("kafka") => {
                return Err(invalid(
                    "PULSEBOARD_SIMULATOR_SINK",
                    "kafka",
                    "needs PULSEBOARD_KAFKA_BOOTSTRAP",
                ));
            }
            Some(other) => {
                return Err(invalid(
                    "PULSEBOARD_SIMULATOR_SINK",
                    other,
                    "expected pipeline or kafka",
                ));
            }
        };
        let minimum_refresh = match var("PULSEBOARD_MIN_REFRESH") {
            None => 1,
            Some(text) => match app::dashboard::definition::parse_interval(&text) {
                Ok(Some(seconds)) => seconds,
                Ok(None) => return Err(invalid("PULSEBOARD_MIN_REFRESH", &text, "cannot be off")),
                Err(reason) => return Err(invalid("PULSEBOARD_MIN_REFRESH", &text, reason)),
            },
        };
        let dashboards = DashboardConfig {
            dir: var("PULSEBOARD_DASHBOARDS_DIR")
                .unwrap_or_else(|| "dashboards".into())
                .into(),
            minimum_refresh,
            tile_url: var("PULSEBOARD_MAP_TILE_URL"),
        };
        let raw_retention = match var("PULSEBOARD_RAW_RETENTION") {
            None => None,
            Some(age) => Some(duration(
                Some(age),
                "PULSEBOARD_RAW_RETENTION",
                Duration::ZERO,
            )?),
        };
        let first_admin = FirstAdmin {
            username: var("PULSEBOARD_ADMIN_USER").unwrap_or_else(|| "admin".into()),
            password: secret(
                &var,
                "PULSEBOARD_ADMIN_PASSWORD",
                "PULSEBOARD_ADMIN_PASSWORD_FILE",
            )?,
        };
        Ok(Config {
            dashboards,
            raw_retention,
            first_admin,
            streams_dir: var("PULSEBOARD_STREAMS_DIR")
                .unwrap_or_else(|| "streams".into())
                .into(),
            http: HttpConfig {
                addr: parse(
                    var("PULSEBOARD_ADDR"),
                    "PULSEBOARD_ADDR",
                    "127.0.0.1:3000".parse().expect("valid literal"),
                )?,
                site_root: var("PULSEBOARD_SITE_ROOT").unwrap_or_else(|| "target/site".into()),
                limits: http_limits(&var)?,
            },
            database: DatabaseConfig {
                url: var("DATABASE_URL").ok_or(ConfigError::Missing("DATABASE_URL"))?,
                max_connections: parse(
                    var("PULSEBOARD_DB_MAX_CONNECTIONS"),
                    "PULSEBOARD_DB_MAX_CONNECTIONS",
                    10,
                )?,
            },
            flush: FlushConfig {
                max_records: positive(
                    parse(
                        var("PULSEBOARD_FLUSH_MAX_RECORDS"),
                        "PULSEBOARD_FLUSH_MAX_RECORDS",
                        FlushConfig::DEFAULT.max_records,
                    )?,
                    "PULSEBOARD_FLUSH_MAX_RECORDS",
                )?,
                interval: duration(
                    var("PULSEBOARD_FLUSH_INTERVAL"),
                    "PULSEBOARD_FLUSH_INTERVAL",
                    FlushConfig::DEFAULT.interval,
                )?,
            },
            simulator: SimulatorConfig {
                enabled: flag(var("PULSEBOARD_SIMULATOR"), "PULSEBOARD_SIMULATOR", true)?,
                period: duration(
                    var("PULSEBOARD_SIMULATOR_PERIOD"),
                    "PULSEBOARD_SIMULATOR_PERIOD",
                    Duration::from_secs(1),
                )?,
                sink,
                sales: flag(
                    var("PULSEBOARD_SALES_SIMULATOR"),
                    "PULSEBOARD_SALES_SIMULATOR",
                    true,
                )?,
                sales_disorder: sales_disorder(&var)?,
                sales_rate: match var("PULSEBOARD_SALES_RATE") {
                    None => None,
                    Some(v) => match v.trim().parse::<f64>() {
                        Ok(rate) if rate > 0.0 && rate.is_finite() => Some(rate),
                        _ => {
                            return Err(invalid(
                                "PULSEBOARD_SALES_RATE",
                                &v,
                                "expected purchases per second, above 0",
                            ));
                        }
                    },
                },
            },
            kafka,
        })
    }
}

fn http_limits(var: &impl Fn(&'static str) -> Option<String>) -> Result<HttpLimits> {
    let default = HttpLimits::DEFAULT;
    Ok(HttpLimits {
        max_connections: positive(
            parse(
                var("PULSEBOARD_MAX_CONNECTIONS"),
                "PULSEBOARD_MAX_CONNECTIONS",
                default.max_connections,
            )?,
            "PULSEBOARD_MAX_CONNECTIONS",
        )?,
        request_timeout: duration(
            var("PULSEBOARD_REQUEST_TIMEOUT"),
            "PULSEBOARD_REQUEST_TIMEOUT",
            default.request_timeout,
        )?,
        ingest_records_per_second: positive(
            parse(
                var("PULSEBOARD_INGEST_RATE_LIMIT"),
                "PULSEBOARD_INGEST_RATE_LIMIT",
                default.ingest_records_per_second as usize,
            )?,
            "PULSEBOARD_INGEST_RATE_LIMIT",
        )?
        .try_into()
        .map_err(|_| {
            invalid(
                "PULSEBOARD_INGEST_RATE_LIMIT",
                "that many",
                "must be at most 4294967295",
            )
        })?,
    })
}

/// The sales simulator's disorder knobs, each a share from 0 to 1 (default 0).
fn sales_disorder(var: &impl Fn(&'static str) -> Option<String>) -> Result<crate::sales::Disorder> {
    let share = |name: &'static str| -> Result<f64> {
        match var(name) {
            None => Ok(0.0),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
                _ => Err(invalid(
                    name,
                    &v,
                    "expected a share from 0 to 1, such as 0.05",
                )),
            },
        }
    };
    Ok(crate::sales::Disorder {
        // Within the windows' 5 minutes of allowed lateness.
        out_of_order_fraction: share("PULSEBOARD_SALES_OUT_OF_ORDER")?,
        max_out_of_order_ms: 4 * 60_000,
        // Past the 10-minute watermark and the lateness: kept as late events.
        late_fraction: share("PULSEBOARD_SALES_LATE")?,
        late_min_ms: 20 * 60_000,
        late_max_ms: 60 * 60_000,
        duplicate_fraction: share("PULSEBOARD_SALES_DUPLICATES")?,
        burst_probability: share("PULSEBOARD_SALES_BURSTS")?,
        burst_len: 50,
        burst_gap_ms: 10,
    })
}

fn kafka_security(var: &impl Fn(&'static str) -> Option<String>) -> Result<KafkaSecurity> {
    const PROTOCOL: &str = "PULSEBOARD_KAFKA_SECURITY_PROTOCOL";
    let protocol = match var(PROTOCOL).map(|p| p.to_ascii_lowercase()).as_deref() {
        None | Some("plaintext") => SecurityProtocol::Plaintext,
        Some("ssl") | Some("tls") => SecurityProtocol::Ssl,
        Some("sasl_plaintext") => SecurityProtocol::SaslPlaintext,
        Some("sasl_ssl") => SecurityProtocol::SaslSsl,
        Some(other) => {
            return Err(invalid(
                PROTOCOL,
                other,
                "expected plaintext, ssl, sasl_ssl or sasl_plaintext",
            ));
        }
    };
    let file = |name: &'static str| -> Result<Option<std::path::PathBuf>> {
        match var(name) {
            None => Ok(None),
            Some(path) if std::path::Path::new(&path).is_file() => Ok(Some(path.into())),
            Some(path) => Err(invalid(name, &path, "no such file")),
        }
    };
    let sasl = if protocol.uses_sasl() {
        let username = var("PULSEBOARD_KAFKA_USERNAME").ok_or_else(|| {
            invalid(
                PROTOCOL,
                protocol.name(),
                "SASL needs PULSEBOARD_KAFKA_USERNAME",
            )
        })?;
        let password = secret(
            var,
            "PULSEBOARD_KAFKA_PASSWORD",
            "PULSEBOARD_KAFKA_PASSWORD_FILE",
        )?
        .ok_or_else(|| {
            invalid(
                PROTOCOL,
                protocol.name(),
                "SASL needs PULSEBOARD_KAFKA_PASSWORD or PULSEBOARD_KAFKA_PASSWORD_FILE",
            )
        })?;
        const MECHANISM: &str = "PULSEBOARD_KAFKA_SASL_MECHANISM";
        let mechanism = var(MECHANISM)
            .map(|m| m.to_ascii_uppercase())
            .unwrap_or_else(|| "SCRAM-SHA-512".into());
        if !["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"].contains(&mechanism.as_str()) {
            return Err(invalid(
                MECHANISM,
                &mechanism,
                "expected SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN",
            ));
        }
        Some(SaslLogin {
            mechanism,
            username,
            password,
        })
    } else {
        None
    };
    Ok(KafkaSecurity {
        protocol,
        ca_file: file("PULSEBOARD_KAFKA_CA_FILE")?,
        certificate_file: file("PULSEBOARD_KAFKA_CERT_FILE")?,
        key_file: file("PULSEBOARD_KAFKA_KEY_FILE")?,
        sasl,
    })
}

/// A secret given either in variable `name` or in the file that variable
/// `file_name` points at (its last line ending dropped).
fn secret(
    var: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    file_name: &'static str,
) -> Result<Option<Secret>> {
    match (var(name), var(file_name)) {
        (Some(value), None) => Ok(Some(Secret::new(value))),
        (None, Some(path)) => Ok(Some(Secret::new(
            std::fs::read_to_string(&path)
                .map_err(|e| invalid(file_name, &path, e.to_string()))?
                .trim_end_matches(['\r', '\n']),
        ))),
        (Some(_), Some(path)) => Err(invalid(
            file_name,
            &path,
            format!("set either it or {name}, not both"),
        )),
        (None, None) => Ok(None),
    }
}

fn invalid(name: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn parse<T: std::str::FromStr>(value: Option<String>, name: &'static str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match value {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|e: T::Err| invalid(name, &v, e.to_string())),
    }
}

fn positive(value: usize, name: &'static str) -> Result<usize> {
    if value == 0 {
        Err(invalid(name, "0", "must be at least 1"))
    } else {
        Ok(value)
    }
}

fn duration(value: Option<String>, name: &'static str, default: Duration) -> Result<Duration> {
    let parsed = match value {
        None => return Ok(default),
        Some(v) => humantime::parse_duration(v.trim())
            .map_err(|e| invalid(name, &v, format!("{e} (write e.g. \"250ms\" or \"1s\")")))?,
    };
    if parsed.is_zero() {
        Err(invalid(name, "0", "must be longer than zero"))
    } else {
        Ok(parsed)
    }
}

fn flag(value: Option<String>, name: &'static str, default: bool) -> Result<bool> {
    match value.as_deref().map(str::trim) {
        None => Ok(default),
        Some("1" | "true" | "on" | "yes") => Ok(true),
        Some("0" | "false" | "off" | "no") => Ok(false),
        Some(other) => Err(invalid(name, other, "expected on or off")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_need_only_a_database() {
        let c = config(&[("DATABASE_URL", "postgres://localhost/pulseboard")]).expect("valid");
        assert_eq!(c.http.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.flush.interval, Duration::from_millis(250));
        assert_eq!(c.simulator.period, Duration::from_secs(1));
        assert_eq!(c.simulator.sink, SimulatorSink::Pipeline);
        assert!(c.simulator.enabled);
        assert_eq!(c.kafka, None);
    }

    #[test]
    fn missing_database_url_is_a_clear_error() {
        assert_eq!(config(&[]), Err(ConfigError::Missing("DATABASE_URL")));
    }

    #[test]
    fn durations_read_as_written() {
        let c = config(&[
            ("DATABASE_URL", "postgres://x"),
            ("PULSEBOARD_FLUSH_INTERVAL", "100ms"),
            ("PULSEBOARD_SIMULATOR_PERIOD", "2s"),
        ])
        .expect("valid");
        assert_eq!(c.flush.interval, Duration::from_millis(100));
        assert_eq!(c.simulator.period, Duration::from_secs(2));
    }

    #[test]
    fn raw_retention_is_off_unless_set() {
        let off = config(&[("DATABASE_URL", "postgres://x")]).expect("valid");
        assert_eq!(off.raw_retention, None);
        let on = config(&[
            ("DATABASE_URL", "postgres://x"),
            ("PULSEBOARD_RAW_RETENTION", "30d"),
        ])
        .expect("valid");
        assert_eq!(on.raw_retention, Some(Duration::from_secs(30 * 86_400)));
        for bad in ["a month", "0s"] {
            let err = config(&[
                ("DATABASE_URL", "postgres://x"),
                ("PULSEBOARD_RAW_RETENTION", bad),
            ])
            .unwrap_err();
            assert!(
                err.to_string().contains("PULSEBOARD_RAW_RETENTION"),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = config(&[
            ("DATABASE_URL", "postgres://x"),
            ("PULSEBOARD_FLUSH_INTERVAL", "soon"),
        ])
        .unwrap_err();
        assert!(
            err.to_string().contains("PULSEBOARD_FLUSH_INTERVAL"),
            "{err}"
        );
        let err = config(&[
            ("DATABASE_URL", "postgres://x"),
            ("PULSEBOARD_SIMULATOR_PERIOD", "0s"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("longer than zero"), "{err}");
        let err = config(&[
            ("DATABASE_URL", "postgres://x"),
            ("PULSEBOARD_SALES_RATE", "-2"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("PULSEBOARD_SALES_RATE"), "{err}");
        let err = config(&[
            ("DATABASE_URL", "postgres://x"),
            ("PULSEBOARD_SALES_LATE", "5%"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("PULSEBOARD_SALES_LATE"), "{err}");
    }

    #[test]
    fn sales_disorder_knobs_read_as_shares() {
        let c = config(&[
            ("DATABASE_URL", "postgres://x"),
            ("PULSEBOARD_SALES_OUT_OF_ORDER", "0.1"),
            ("PULSEBOARD_SALES_LATE", "0.02"),
            ("PULSEBOARD_SALES_DUPLICATES", "0.01"),
            ("PULSEBOARD_SALES_BURSTS", "0.05"),
        ])
        .expect("valid");
        let d = c.simulator.sales_disorder;
        assert_eq!(
            (
                d.out_of_order_fraction,
                d.late_fraction,
                d.duplicate_fraction,
                d.burst_probability
            ),
            (0.1, 0.02, 0.01, 0.05)
        );
        // Out of order stays within the windows' lateness; late goes past it.
        assert!(d.max_out_of_order_ms < 5 * 60_000);
        assert!(d.late_min_ms > 15 * 60_000);
        let quiet = config(&[("DATABASE_URL", "postgres://x")]).expect("valid");
        let d = quiet.simulator.sales_disorder;
        let shares = [
            d.out_of_order_fraction,
            d.late_fraction,
            d.duplicate_fraction,
            d.burst_probability,
        ];
        assert_eq!(shares, [0.0; 4], "all off by default");
    }

    #[test]
    fn kafka_sink_needs_a_broker() {
        let err = config(&[
            ("DATABASE_URL", "postgres://x"),
            ("PULSEBOARD_SIMULATOR_SINK", "kafka"),
        ])
        .unwrap_err();
        assert!(
            err.to_string().contains("PULSEBOARD_KAFKA_BOOTSTRAP"),
            "{err}"
        );
        let c = config(&[
            ("DATABASE_URL", "postgres://x"),
            ("PULSEBOARD_SIMULATOR_SINK", "kafka"),
            ("PULSEBOARD_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        ])
        .expect("valid");
        assert_eq!(c.simulator.sink, SimulatorSink::Kafka);
        assert_eq!(c.kafka.expect("kafka").readings_topic, "sensor.readings");
    }

    #[test]
    fn kafka_security_reads_from_the_environment_and_hides_the_password() {
        let file =
            std::env::temp_dir().join(format!("pulseboard-password-{}", rand::random::<u64>()));
        std::fs::write(&file, "s3cret-from-file\n").expect("password file");
        let base = [
            ("DATABASE_URL", "postgres://localhost/pulseboard"),
            ("PULSEBOARD_KAFKA_BOOTSTRAP", "b-1.msk:9096"),
            ("PULSEBOARD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("PULSEBOARD_KAFKA_USERNAME", "alice"),
        ];
        let mut vars = base.to_vec();
        let path = file.display().to_string();
        vars.push(("PULSEBOARD_KAFKA_PASSWORD_FILE", &path));
        let kafka = config(&vars).expect("valid").kafka.expect("kafka");
        let sasl = kafka.security.sasl.clone().expect("sasl");
        assert_eq!(kafka.security.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(sasl.mechanism, "SCRAM-SHA-512");
        assert_eq!(sasl.password.expose(), "s3cret-from-file");
        assert!(!format!("{kafka:?}").contains("s3cret"));
        let _ = std::fs::remove_file(file);

        let err = config(&base).expect_err("no password");
        assert!(
            err.to_string().contains("PULSEBOARD_KAFKA_PASSWORD"),
            "{err}"
        );
        let mut no_user = base.to_vec();
        no_user.retain(|(k, _)| *k != "PULSEBOARD_KAFKA_USERNAME");
        no_user.push(("PULSEBOARD_KAFKA_PASSWORD", "x"));
        let err = config(&no_user).expect_err("no username");
        assert!(
            err.to_string().contains("PULSEBOARD_KAFKA_USERNAME"),
            "{err}"
        );
        let mut unknown = base.to_vec();
        unknown[2] = ("PULSEBOARD_KAFKA_SECURITY_PROTOCOL", "kerberos");
        let err = config(&unknown).expect_err("unknown protocol");
        assert!(err.to_string().contains("expected plaintext, ssl"), "{err}");
        let tls = config(&[
            ("DATABASE_URL", "postgres://localhost/pulseboard"),
            ("PULSEBOARD_KAFKA_BOOTSTRAP", "b-1.msk:9094"),
            ("PULSEBOARD_KAFKA_SECURITY_PROTOCOL", "tls"),
            ("PULSEBOARD_KAFKA_CA_FILE", "/no/such/ca.pem"),
        ])
        .expect_err("missing CA file");
        assert!(
            tls.to_string().contains("PULSEBOARD_KAFKA_CA_FILE"),
            "{tls}"
        );
    }
}
