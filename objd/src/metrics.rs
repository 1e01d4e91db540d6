//! Prometheus metrics, in the OpenMetrics text format (`prometheus-client`)
//! or the classic one. Request counts, latencies and bytes are recorded by
//! the server pipeline as requests complete; buckets, drives, the heal queue and the process are
//! read when Prometheus scrapes. Served at [`PATH`] (not `/metrics`, which
//! is the path of a bucket named `metrics`), to callers with the bearer
//! token unless the server was started with `--metrics-public`.

use crate::object::ObjectLayer;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::time::Duration;

/// Where objd serves its metrics.
pub const PATH: &str = "/_strata/metrics";

type Labels = Vec<(&'static str, String)>;

/// Latency buckets, in seconds: 1 ms to a minute.
fn latency() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

/// The request metrics, shared by every connection.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    received: Counter,
    sent: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency),
            in_flight: Gauge::default(),
            received: Counter::default(),
            sent: Counter::default(),
        }
    }
}

/// Counts a request in flight until dropped.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `2xx`, `4xx`, ...
fn class(status: u16) -> String {
    format!("{}xx", status / 100)
}

impl Metrics {
    pub fn start(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Records a completed request.
    pub fn record(&self, api: &str, status: u16, elapsed: Duration, received: u64, sent: u64) {
        self.requests
            .get_or_create(&vec![("api", api.to_owned()), ("status", class(status))])
            .inc();
        self.duration
            .get_or_create(&vec![("api", api.to_owned())])
            .observe(elapsed.as_secs_f64());
        self.received.inc_by(received);
        self.sent.inc_by(sent);
    }

    /// Every family, as the text Prometheus scrapes.
    pub async fn render(
        &self,
        layer: &ObjectLayer,
        audit: Option<&crate::audit::Auditor>,
        certs: Option<&crate::tls::Certs>,
    ) -> String {
        let mut reg = Registry::default();
        reg.register(
            "strata_s3_requests",
            "Requests completed, by API and status class",
            self.requests.clone(),
        );
        reg.register_with_unit(
            "strata_s3_request_duration",
            "Time from a request's arrival to its response headers, by API",
            Unit::Seconds,
            self.duration.clone(),
        );
        reg.register(
            "strata_s3_requests_in_flight",
            "Requests being served",
            self.in_flight.clone(),
        );
        reg.register_with_unit(
            "strata_s3_received",
            "Request body bytes read",
            Unit::Bytes,
            self.received.clone(),
        );
        reg.register_with_unit(
            "strata_s3_sent",
            "Response body bytes sent",
            Unit::Bytes,
            self.sent.clone(),
        );
        buckets(&mut reg, layer);
        drives(&mut reg, layer).await;
        let heal = Gauge::<i64>::default();
        heal.set(layer.heal.pending() as i64);
        reg.register("strata_heal_queue_length", "Objects waiting to be healed", heal);
        let counts = &layer.heal_counts;
        for (name, help, v) in [
            (
                "strata_heal_objects_scanned",
                "Objects checked by healing (on demand, by the scanner, by objd admin heal)",
                &counts.scanned,
            ),
            (
                "strata_heal_objects_healed",
                "Objects healing repaired",
                &counts.healed,
            ),
            (
                "strata_heal_objects_failed",
                "Objects healing could not fully repair",
                &counts.failed,
            ),
        ] {
            let c = Counter::<u64>::default();
            c.inc_by(v.load(std::sync::atomic::Ordering::Relaxed));
            reg.register(name, help, c);
        }
        lifecycle(&mut reg);
        budget(&mut reg, layer.budget());
        process(&mut reg);
        if let Some(a) = audit {
            audit_targets(&mut reg, a);
        }
        if let Some(c) = certs {
            let expiry = gauge_family();
            for (name, t) in c.expiry() {
                expiry.get_or_create(&vec![("sni", name)]).set(t);
            }
            reg.register_with_unit(
                "strata_tls_certificate_expiry_timestamp",
                "When the certificate served for an SNI name (default: for any other name) expires, in Unix time",
                Unit::Seconds,
                expiry,
            );
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).expect("writing to a String");
        out
    }
}

/// The classic Prometheus text format (0.0.4) of OpenMetrics text, for
/// clients that do not ask for OpenMetrics (`promtool`, `curl`): counter
/// families take their samples' `_total` name, `# UNIT` and `# EOF` go.
pub fn classic(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut out = String::with_capacity(openmetrics.len());
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("# UNIT ") || *line == "# EOF" {
            continue;
        }
        let counter_help = line.strip_prefix("# HELP ").and_then(|rest| {
            let name = rest.split(' ').next()?;
            let next = lines.get(i + 1)?;
            (*next == format!("# TYPE {name} counter")).then_some(name)
        });
        let counter_type = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.strip_suffix(" counter"));
        match (counter_help, counter_type) {
            (Some(name), _) => out.push_str(&line.replacen(name, &format!("{name}_total"), 1)),
            (_, Some(name)) => out.push_str(&format!("# TYPE {name}_total counter")),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The buffer budget: its size, what requests hold and who waits.
fn budget(reg: &mut Registry, budget: &crate::object::Budget) {
    for (name, help, v) in [
        (
            "strata_buffer_budget",
            "Memory for object data in flight that requests may take (--buffer-budget)",
            budget.total().unwrap_or(0),
        ),
        (
            "strata_buffer_in_use",
            "Memory for object data taken by requests now",
            budget.in_use(),
        ),
    ] {
        let g = Gauge::<i64>::default();
        g.set(v as i64);
        reg.register_with_unit(name, help, Unit::Bytes, g);
    }
    let waiting = Gauge::<i64>::default();
    waiting.set(budget.waiting() as i64);
    reg.register(
        "strata_buffer_waiting_requests",
        "Requests waiting for buffer memory now",
        waiting,
    );
    let waits = Counter::<u64>::default();
    waits.inc_by(budget.waits());
    reg.register(
        "strata_buffer_waits",
        "Requests that had to wait for buffer memory",
        waits,
    );
}

/// What this node's lifecycle passes did.
fn lifecycle(reg: &mut Registry) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &crate::lifecycle::scan::COUNTS;
    for (name, help, v) in [
        (
            "strata_lifecycle_passes",
            "Lifecycle passes this node ran",
            &c.passes,
        ),
        (
            "strata_lifecycle_versions_transitioned",
            "Versions whose data lifecycle rules moved to a remote tier",
            &c.transitioned,
        ),
        (
            "strata_lifecycle_transition_failures",
            "Transitions that failed (the object stayed where it was, to be tried again)",
            &c.transition_failures,
        ),
        (
            "strata_lifecycle_versions_expired",
            "Current versions lifecycle rules expired (deleted, or hidden behind a delete marker)",
            &c.expired,
        ),
        (
            "strata_lifecycle_versions_removed",
            "Noncurrent versions and lone delete markers lifecycle rules removed",
            &c.removed,
        ),
        (
            "strata_lifecycle_uploads_aborted",
            "Unfinished multipart uploads lifecycle rules aborted",
            &c.aborted,
        ),
    ] {
        let counter = Counter::<u64>::default();
        counter.inc_by(v.load(Relaxed));
        reg.register(name, help, counter);
    }
}

fn gauge_family() -> Family<Labels, Gauge> {
    Family::default()
}

fn buckets(reg: &mut Registry, layer: &ObjectLayer) {
    let (bytes, versions, quota) = (gauge_family(), gauge_family(), gauge_family());
    for b in layer.list_buckets() {
        let Ok(u) = layer.usage(&b.name) else { continue };
        let l = vec![("bucket", b.name.clone())];
        bytes.get_or_create(&l).set(u.bytes as i64);
        versions.get_or_create(&l).set(u.versions as i64);
        if let Some(q) = u.quota {
            quota.get_or_create(&l).set(q as i64);
        }
    }
    reg.register_with_unit(
        "strata_bucket_usage",
        "Bytes stored in a bucket",
        Unit::Bytes,
        bytes,
    );
    reg.register("strata_bucket_versions", "Object versions in a bucket", versions);
    reg.register_with_unit("strata_bucket_quota", "A bucket's quota", Unit::Bytes, quota);
}

async fn drives(reg: &mut Registry, layer: &ObjectLayer) {
    let (online, total, free) = (gauge_family(), gauge_family(), gauge_family());
    let (set_drives, set_online, set_read, set_write) =
        (gauge_family(), gauge_family(), gauge_family(), gauge_family());
    let placement = layer.placement();
    let pools = std::iter::once((placement.home(), layer)).chain(
        placement
            .pool_layers()
            .iter()
            .map(|(n, l)| (n.as_str(), l.as_ref())),
    );
    for (pool, layer) in pools {
        for set in layer.sets() {
            let sl = vec![("pool", pool.to_owned()), ("set", set.index.to_string())];
            let mut up = 0;
            for (pos, d) in set.drives().iter().enumerate() {
                let mut l = vec![
                    ("pool", pool.to_owned()),
                    ("set", set.index.to_string()),
                    ("position", pos.to_string()),
                ];
                let Some(d) = d else {
                    online.get_or_create(&l).set(0);
                    continue;
                };
                let drive = Arc::clone(d);
                let space =
                    tokio::task::spawn_blocking(move || (drive.name().to_owned(), drive.space())).await;
                let Ok((name, space)) = space else {
                    online.get_or_create(&l).set(0);
                    continue;
                };
                l.push(("drive", name));
                let answers = space.is_ok() && d.is_online();
                online.get_or_create(&l).set(i64::from(answers));
                up += i64::from(answers);
                if let Ok(s) = space {
                    total.get_or_create(&l).set(s.total as i64);
                    free.get_or_create(&l).set(s.free as i64);
                }
            }
            set_drives.get_or_create(&sl).set(set.drives().len() as i64);
            set_online.get_or_create(&sl).set(up);
            set_read.get_or_create(&sl).set(set.read_quorum() as i64);
            set_write.get_or_create(&sl).set(set.write_quorum() as i64);
        }
    }
    reg.register(
        "strata_drive_online",
        "1 when the drive answers, 0 when it is offline or faulty",
        online,
    );
    reg.register_with_unit("strata_drive_total", "A drive's capacity", Unit::Bytes, total);
    reg.register_with_unit("strata_drive_free", "A drive's free space", Unit::Bytes, free);
    let measured = crate::drive::metered::families();
    reg.register(
        "strata_drive_errors",
        "Drive calls that failed with an I/O error, a timeout or a corrupt record",
        measured.errors.clone(),
    );
    reg.register_with_unit(
        "strata_drive_operation_duration",
        "Time a drive took for reads (records, scans, shards), commits (to durability) and shard syncs",
        Unit::Seconds,
        measured.latency.clone(),
    );
    reg.register_with_unit(
        "strata_drive_direct_written",
        "Shard bytes a drive wrote around the page cache (O_DIRECT)",
        Unit::Bytes,
        measured.direct_bytes.clone(),
    );
    reg.register(
        "strata_drive_direct_writes",
        "1 while a drive writes large shard files with O_DIRECT, 0 once its filesystem refused (written through the page cache)",
        measured.direct.clone(),
    );
    reg.register(
        "strata_erasure_set_drives",
        "Drives of an erasure set",
        set_drives,
    );
    reg.register(
        "strata_erasure_set_drives_online",
        "Drives of an erasure set that answer",
        set_online,
    );
    reg.register(
        "strata_erasure_set_read_quorum",
        "Drives an erasure set needs to read",
        set_read,
    );
    reg.register(
        "strata_erasure_set_write_quorum",
        "Drives an erasure set needs to write",
        set_write,
    );
}

/// Each audit target's queue and delivery.
fn audit_targets(reg: &mut Registry, audit: &crate::audit::Auditor) {
    use std::sync::atomic::Ordering::Relaxed;
    let counters: [Family<Labels, Counter>; 4] = Default::default();
    let (queue, online) = (gauge_family(), gauge_family());
    for (name, bytes, s) in audit.stats() {
        let l = vec![("target", name.to_owned())];
        for (c, v) in counters
            .iter()
            .zip([&s.queued, &s.delivered, &s.dropped, &s.failures])
        {
            c.get_or_create(&l).inc_by(v.load(Relaxed));
        }
        queue.get_or_create(&l).set(bytes as i64);
        online.get_or_create(&l).set(i64::from(s.online.load(Relaxed)));
    }
    let [queued, delivered, dropped, failures] = counters;
    reg.register(
        "strata_audit_entries",
        "Audit entries queued for a target",
        queued,
    );
    reg.register(
        "strata_audit_delivered",
        "Audit entries a target has taken",
        delivered,
    );
    reg.register(
        "strata_audit_dropped",
        "Audit entries dropped because the target's queue was full",
        dropped,
    );
    reg.register(
        "strata_audit_send_failures",
        "Failed attempts to send a batch to a target",
        failures,
    );
    reg.register_with_unit(
        "strata_audit_queue",
        "Bytes queued for a target and not yet taken",
        Unit::Bytes,
        queue,
    );
    reg.register(
        "strata_audit_target_online",
        "1 while the last attempt to send to the target succeeded",
        online,
    );
}

/// Resident memory, open files and threads of this process (Linux).
fn process(reg: &mut Registry) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let rss = Gauge::<i64>::default();
    rss.set(field("VmRSS:") * 1024);
    reg.register_with_unit(
        "strata_process_resident_memory",
        "Resident memory",
        Unit::Bytes,
        rss,
    );
    let threads = Gauge::<i64>::default();
    threads.set(field("Threads:"));
    reg.register("strata_process_threads", "Threads of the process", threads);
    let files = Gauge::<i64>::default();
    files.set(std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64));
    reg.register("strata_process_open_fds", "Open file descriptors", files);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counters_by_their_samples() {
        let om = "# HELP a_bytes A.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\na_bytes_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            classic(om),
            "# HELP a_bytes_total A.\n# TYPE a_bytes_total counter\na_bytes_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n"
        );
    }

    #[test]
    fn requests_are_counted_by_api_and_class() {
        let m = Metrics::default();
        {
            let _g = m.start();
            m.record("GetObject", 200, Duration::from_millis(3), 0, 10);
            m.record("GetObject", 404, Duration::from_millis(1), 0, 0);
            m.record("PutObject", 200, Duration::from_millis(30), 100, 0);
        }
        let mut reg = Registry::default();
        reg.register("strata_s3_requests", "r", m.requests.clone());
        reg.register_with_unit("strata_s3_received", "b", Unit::Bytes, m.received.clone());
        reg.register("strata_s3_requests_in_flight", "f", m.in_flight.clone());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        assert!(
            out.contains(r#"strata_s3_requests_total{api="GetObject",status="2xx"} 1"#),
            "{out}"
        );
        assert!(out.contains(r#"strata_s3_requests_total{api="GetObject",status="4xx"} 1"#));
        assert!(out.contains("strata_s3_received_bytes_total 100"));
        assert!(out.contains("strata_s3_requests_in_flight 0"));
    }
}
