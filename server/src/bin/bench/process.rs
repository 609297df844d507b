//! Pulseboard as its users run it: the `pulseboard` binary in a process of
//! its own, measured from outside (CPU time and resident memory from /proc,
//! counters from `/metrics`).

use crate::http::Connection;
use anyhow::Context;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub struct RunningService {
    child: tokio::process::Child,
    pub addr: SocketAddr,
    /// The cookie of a signed-in admin, for pages and server functions.
    pub session: String,
}

/// Resident memory in MiB: now, and the most since the process started.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_mib: f64,
    pub peak_mib: f64,
}

impl RunningService {
    /// Starts the binary next to this one with `env` on a free port and
    /// waits until it answers `/healthz`. Its log goes to `log`.
    pub async fn start(env: &[(&str, String)], log: &std::path::Path) -> anyhow::Result<Self> {
        let binary = std::env::current_exe()?.with_file_name("pulseboard");
        anyhow::ensure!(
            binary.exists(),
            "{} is missing; build it with `cargo build --release -p server --bins`",
            binary.display()
        );
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = tokio::process::Command::new(&binary)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("PULSEBOARD_ADDR", addr.to_string())
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let service = RunningService {
            child,
            addr,
            session: String::new(),
        };
        let started = Instant::now();
        loop {
            if let Ok(mut connection) = Connection::open(addr).await
                && connection
                    .request("GET", "/healthz", &[], b"")
                    .await
                    .is_ok()
            {
                return Ok(service);
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "the service did not answer within 2 minutes"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A connection that is signed in as the benchmark's admin.
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        Ok(Connection::open(self.addr).await?.signed_in(&self.session))
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        Ok(proc_stat(self.pid())?.cpu_seconds())
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib = |field: &str| -> anyhow::Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(field))
                .with_context(|| format!("no {field} in /proc status"))?;
            let value: f64 = line
                .split_whitespace()
                .nth(1)
                .context("no value")?
                .parse()?;
            Ok(value)
        };
        Ok(Memory {
            rss_mib: kib("VmRSS:")? / 1024.0,
            peak_mib: kib("VmHWM:")? / 1024.0,
        })
    }

    /// A counter from `/metrics`, summed over its labels that contain `label`.
    pub async fn counter(&self, name: &str, label: &str) -> anyhow::Result<u64> {
        Ok(sum_of(&self.metrics().await?, name, label) as u64)
    }

    /// `/metrics` as served now.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let mut connection = Connection::open(self.addr).await?;
        let reply = connection.request("GET", "/metrics", &[], b"").await?;
        Ok(reply.text())
    }

    /// Kafka records received and stored so far.
    pub async fn kafka_counts(&self) -> anyhow::Result<(u64, u64)> {
        let kafka = "source=\"kafka\"";
        Ok((
            self.counter("pulseboard_records_received_total", kafka)
                .await?,
            self.counter("pulseboard_records_stored_total", kafka)
                .await?,
        ))
    }

    /// SIGTERM, as an operator stops it; waits for it to flush and exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let exited = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .context("the service did not exit within 60 s of SIGTERM")??;
        anyhow::ensure!(exited.success(), "the service exited with {exited}");
        Ok(())
    }
}

/// CPU time of a process from /proc/PID/stat.
pub struct ProcStat {
    pub parent: u32,
    ticks: u64,
    children_ticks: u64,
}

impl ProcStat {
    pub fn cpu_seconds(&self) -> f64 {
        self.ticks as f64 / TICKS_PER_SECOND
    }
}

pub fn proc_stat(pid: u32) -> anyhow::Result<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses; fields follow the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("malformed /proc stat")?
        .1
        .split_whitespace()
        .collect();
    let field =
        |i: usize| -> anyhow::Result<u64> { Ok(fields.get(i).context("short stat")?.parse()?) };
    Ok(ProcStat {
        parent: field(1)? as u32,
        ticks: field(11)? + field(12)?,
        children_ticks: field(13)? + field(14)?,
    })
}

/// Clock ticks per second in /proc's CPU times (USER_HZ, 100 on every
/// Linux this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used so far by a Postgres server: its postmaster, every
/// process it started, and those that have exited.
pub fn postgres_cpu_seconds(postmaster_pid_file: &str) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(postmaster_pid_file)
        .with_context(|| format!("reading {postmaster_pid_file}"))?;
    let postmaster: u32 = text
        .lines()
        .next()
        .context("empty pid file")?
        .trim()
        .parse()?;
    let main = proc_stat(postmaster)?;
    let mut ticks = main.ticks + main.children_ticks;
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(stat) = proc_stat(pid)
            && stat.parent == postmaster
        {
            ticks += stat.ticks;
        }
    }
    Ok(ticks as f64 / TICKS_PER_SECOND)
}

/// Samples of `name` in a `/metrics` text whose labels contain `label`, summed.
pub fn sum_of(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
