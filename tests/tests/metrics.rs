//! Prometheus metrics through the real binary: the endpoint wants the
//! bearer token `objd admin metrics token` prints (401 without, 403 with
//! another), and its counters follow the requests made (by API and status
//! class), beside bucket, drive and process gauges; `--metrics-public`
//! opens it.

use std::time::Duration;
use strata_s3client::fetch::Fetcher;
use strata_tests::{Server, put_object, s3_client};

/// A scrape as Prometheus makes it (asking for OpenMetrics).
async fn scrape(f: &Fetcher, endpoint: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    headers.push((
        "accept",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    ));
    let (status, body) = f
        .send(
            http::Method::GET,
            &format!("{endpoint}/_strata/metrics"),
            &headers,
            bytes::Bytes::new(),
        )
        .await
        .unwrap();
    (status.as_u16(), String::from_utf8_lossy(&body).into_owned())
}

use strata_tests::metric_sample as sample;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_and_count_what_was_asked() {
    let s = Server::start(4, &[]);
    let f = Fetcher::new(&Default::default(), Duration::from_secs(10), 1 << 22).unwrap();
    let (status, _) = scrape(&f, &s.endpoint, None).await;
    assert_eq!(status, 401);
    assert_eq!(scrape(&f, &s.endpoint, Some("stm1-not-it")).await.0, 403);
    let out: serde_json::Value = serde_json::from_str(s.admin(&["metrics", "token"]).trim()).unwrap();
    let token = out["token"].as_str().unwrap().to_owned();

    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("metered").send().await.unwrap();
    for i in 0..3 {
        put_object(&c, "metered", &format!("k{i}"), vec![7u8; 1000])
            .await
            .unwrap();
    }
    let _ = c.get_object().bucket("metered").key("missing").send().await;
    // An unsigned STS call, refused by the IAM/STS API.
    let (status, _) = f
        .send(
            http::Method::POST,
            &format!("{}/", s.endpoint),
            &[("content-type", "application/x-www-form-urlencoded")],
            bytes::Bytes::from_static(b"Action=GetCallerIdentity&Version=2011-06-15"),
        )
        .await
        .unwrap();
    assert_eq!(status.as_u16(), 403);
    let (status, text) = scrape(&f, &s.endpoint, Some(&token)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "OpenMetrics text");
    assert_eq!(
        sample(&text, r#"strata_s3_requests_total{api="PutObject",status="2xx"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"strata_s3_requests_total{api="GetObject",status="4xx"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"strata_s3_requests_total{api="IAM/STS",status="4xx"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"strata_s3_request_duration_seconds_count{api="PutObject"}"#
        ),
        Some(3.0)
    );
    assert!(sample(&text, "strata_s3_received_bytes_total").unwrap() >= 3000.0);
    assert_eq!(
        sample(&text, r#"strata_bucket_versions{bucket="metered"}"#),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, r#"strata_bucket_usage_bytes{bucket="metered"}"#),
        Some(3000.0)
    );
    let online = text
        .lines()
        .filter(|l| l.starts_with("strata_drive_online{") && l.ends_with(" 1"))
        .count();
    assert_eq!(online, 4, "{text}");
    assert!(sample(&text, "strata_process_resident_memory_bytes").unwrap() > 1e6);
    // One erasure set of 4 drives, EC:2 by default: reads need 2, writes 3.
    assert_eq!(
        sample(&text, r#"strata_erasure_set_drives{pool="standard",set="0"}"#),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"strata_erasure_set_drives_online{pool="standard",set="0"}"#
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"strata_erasure_set_read_quorum{pool="standard",set="0"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"strata_erasure_set_write_quorum{pool="standard",set="0"}"#
        ),
        Some(3.0)
    );
    // Every drive committed the three PUTs' records and read them back.
    let d1 = s.drives[0].display().to_string();
    let commits = sample(
        &text,
        &format!(r#"strata_drive_operation_duration_seconds_count{{drive="{d1}",op="commit"}}"#),
    );
    assert!(commits.unwrap_or(0.0) >= 3.0, "{text}");
    assert_eq!(
        sample(&text, &format!(r#"strata_drive_errors_total{{drive="{d1}"}}"#)),
        Some(0.0)
    );
    assert!(sample(&text, "strata_heal_objects_scanned_total").is_some());
    assert!(
        !text.contains("strata_audit_"),
        "no audit series without an audit log"
    );
    assert!(
        !text.contains("strata_tls_"),
        "no certificate series over plain HTTP"
    );
    assert!(!text.contains(&token), "the token is not in the metrics");
    // Small objects' shards are not written direct; a 2 MiB object's (two
    // data shards of 1 MiB) are, on a filesystem that takes O_DIRECT, as
    // the test machine's /tmp does.
    let direct = format!(r#"strata_drive_direct_written_bytes_total{{drive="{d1}"}}"#);
    let before = sample(&text, &direct).expect("direct bytes of the drive");
    assert_eq!(
        sample(&text, &format!(r#"strata_drive_direct_writes{{drive="{d1}"}}"#)),
        Some(1.0),
        "{text}"
    );
    put_object(&c, "metered", "large", vec![9u8; 2 << 20])
        .await
        .unwrap();
    let (_, text) = scrape(&f, &s.endpoint, Some(&token)).await;
    let after = sample(&text, &direct).unwrap();
    assert!(after - before >= f64::from(1 << 20), "{before} -> {after}");
    // Clients that do not ask for OpenMetrics get the classic text.
    let auth = format!("Bearer {token}");
    let (_, classic) = f
        .send(
            http::Method::GET,
            &format!("{}/_strata/metrics", s.endpoint),
            &[("authorization", &auth)],
            bytes::Bytes::new(),
        )
        .await
        .unwrap();
    let classic = String::from_utf8_lossy(&classic);
    assert!(classic.contains("# TYPE strata_s3_requests_total counter") && !classic.contains("# EOF"));

    let open = Server::start(4, &["--metrics-public"]);
    assert_eq!(scrape(&f, &open.endpoint, None).await.0, 200);
}
