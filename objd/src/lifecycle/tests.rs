use super::*;

const DAY: i64 = 86_400 * NS;

fn rule(id: &str) -> Rule {
    Rule {
        id: id.into(),
        enabled: true,
        filter: Filter::default(),
        expiration: None,
        expired_object_delete_marker: false,
        noncurrent_days: None,
        newer_noncurrent: None,
        abort_incomplete_days: None,
        transitions: vec![],
        noncurrent_transitions: vec![],
    }
}

#[test]
fn days_end_at_the_next_midnight_of_the_lifecycle_clock() {
    let c = Clock::default();
    // Written at 10:00 on day 100: one day later rounds up to midnight
    // starting day 102.
    let t = 100 * DAY + 10 * 3600 * NS;
    assert_eq!(c.after_days(t, 1), 102 * DAY);
    // Exactly at midnight: exactly `days` later.
    assert_eq!(c.after_days(100 * DAY, 1), 101 * DAY);
    // A test clock of 2-second days.
    let fast = Clock { day_secs: 2 };
    assert_eq!(fast.after_days(5 * NS, 1), 8 * NS);
}

#[test]
fn the_earliest_matching_rule_sets_the_expiry() {
    let c = Clock::default();
    let mut logs = rule("logs");
    logs.filter.prefix = "logs/".into();
    logs.expiration = Some(When::Days(30));
    let mut tagged = rule("temp");
    tagged.filter.tags = vec![("temp".into(), "yes".into())];
    tagged.expiration = Some(When::Days(1));
    let mut big = rule("big");
    big.filter.size_greater_than = Some(1000);
    big.expiration = Some(When::Date(200 * 86_400));
    let mut off = rule("off");
    off.enabled = false;
    off.expiration = Some(When::Days(1));
    let l = Lifecycle {
        rules: vec![logs, tagged, big, off],
    };
    let temp = [("temp".to_owned(), "yes".to_owned())];
    let e = |key, size, tags: &[(String, String)]| l.expiry(&c, key, size, tags, 100 * DAY);
    assert_eq!(e("logs/a", 10, &[]).map(|x| x.rule), Some("logs".into()));
    assert_eq!(
        e("logs/a", 10, &temp).map(|x| (x.rule, x.at_ns)),
        Some(("temp".into(), 101 * DAY))
    );
    assert_eq!(e("data/a", 5000, &[]).map(|x| x.at_ns), Some(200 * DAY));
    assert_eq!(
        e("data/a", 10, &[]),
        None,
        "disabled and unmatched rules say nothing"
    );
    assert!(l.needs_tags());
}

#[test]
fn noncurrent_versions_go_after_their_days_keeping_the_newest() {
    let c = Clock::default();
    let mut r = rule("nc");
    r.noncurrent_days = Some(2);
    r.newer_noncurrent = Some(1);
    let l = Lifecycle { rules: vec![r] };
    let k = ("k", 10, &[][..]);
    let since = 10 * DAY;
    assert!(!l.noncurrent_due(&c, k, since, 1, 11 * DAY), "too young");
    assert!(l.noncurrent_due(&c, k, since, 1, 12 * DAY));
    assert!(
        !l.noncurrent_due(&c, k, since, 0, 12 * DAY),
        "the newest noncurrent is kept"
    );
}

#[test]
fn markers_and_uploads() {
    let c = Clock::default();
    let mut r = rule("tidy");
    r.filter.prefix = "tmp/".into();
    r.expired_object_delete_marker = true;
    r.abort_incomplete_days = Some(3);
    let l = Lifecycle { rules: vec![r] };
    assert!(l.removes_lone_marker("tmp/x") && !l.removes_lone_marker("keep/x"));
    assert!(!l.upload_abandoned(&c, "tmp/u", 10 * DAY, 12 * DAY));
    assert!(l.upload_abandoned(&c, "tmp/u", 10 * DAY, 13 * DAY));
    assert!(!l.upload_abandoned(&c, "other/u", 10 * DAY, 20 * DAY));
}

#[test]
fn configurations_are_validated_as_s3_validates_them() {
    let ok = |r: Rule| Lifecycle { rules: vec![r] }.validate();
    let malformed = |r: Rule| matches!(ok(r), Err(LifecycleError::Malformed(_)));
    let invalid = |r: Rule| matches!(ok(r), Err(LifecycleError::InvalidArgument(_)));
    let mut r = rule("a");
    r.expiration = Some(When::Days(1));
    assert!(ok(r.clone()).is_ok());
    assert!(invalid(rule("no action")));
    let mut zero = r.clone();
    zero.expiration = Some(When::Days(0));
    assert!(invalid(zero));
    let mut not_midnight = r.clone();
    not_midnight.expiration = Some(When::Date(86_400 + 5));
    assert!(invalid(not_midnight));
    let mut both = r.clone();
    both.expired_object_delete_marker = true;
    assert!(malformed(both));
    let mut newer_alone = r.clone();
    newer_alone.newer_noncurrent = Some(2);
    assert!(malformed(newer_alone));
    let mut long_id = r.clone();
    long_id.id = "x".repeat(256);
    assert!(invalid(long_id));
    let mut sizes = r.clone();
    sizes.filter.size_greater_than = Some(10);
    sizes.filter.size_less_than = Some(10);
    assert!(invalid(sizes));
    let twice = Lifecycle {
        rules: vec![r.clone(), r.clone()],
    };
    assert!(matches!(
        twice.validate(),
        Err(LifecycleError::InvalidArgument(_))
    ));
    assert!(matches!(
        Lifecycle::default().validate(),
        Err(LifecycleError::Malformed(_))
    ));
    let l = Lifecycle { rules: vec![r] };
    assert_eq!(Lifecycle::decode(&l.encode()), Some(l));
}

fn to(class: &str, when: When) -> Transition {
    Transition {
        when,
        class: class.into(),
    }
}

#[test]
fn transitions_are_checked_as_s3_checks_them() {
    let ok = |r: Rule| Lifecycle { rules: vec![r] }.validate();
    let mut r = rule("t");
    r.transitions = vec![to("COLD", When::Days(0))];
    assert_eq!(
        ok(r.clone()),
        Ok(()),
        "a transition alone is an action; 0 days allowed"
    );
    r.transitions.push(to("COLD", When::Days(30)));
    assert!(
        matches!(ok(r.clone()), Err(LifecycleError::InvalidArgument(_))),
        "one class twice"
    );
    r.transitions = vec![to("", When::Days(3))];
    assert!(
        matches!(ok(r.clone()), Err(LifecycleError::Malformed(_))),
        "no class"
    );
    r.transitions = vec![to("COLD", When::Days(30))];
    r.expiration = Some(When::Days(30));
    assert!(
        matches!(ok(r.clone()), Err(LifecycleError::InvalidArgument(_))),
        "expiry not after"
    );
    r.expiration = Some(When::Days(31));
    assert_eq!(ok(r.clone()), Ok(()));
    r.transitions = vec![to("COLD", When::Date(86_400 * 3 + 5))];
    assert!(
        matches!(ok(r.clone()), Err(LifecycleError::InvalidArgument(_))),
        "date not at midnight"
    );
    let mut n = rule("n");
    n.noncurrent_transitions = vec![NoncurrentTransition {
        days: 5,
        newer: None,
        class: "COLD".into(),
    }];
    n.noncurrent_days = Some(5);
    assert!(matches!(ok(n.clone()), Err(LifecycleError::InvalidArgument(_))));
    n.noncurrent_days = Some(6);
    assert_eq!(ok(n), Ok(()));
}

#[test]
fn the_last_transition_due_decides_and_small_objects_stay() {
    let c = Clock::default();
    let mut r = rule("t");
    r.transitions = vec![to("WARM", When::Days(30)), to("COLD", When::Days(180))];
    let l = Lifecycle { rules: vec![r] };
    let big = ("k", MIN_TRANSITION_SIZE, &[][..]);
    assert_eq!(l.transition_due(&c, big, 0, 29 * DAY), None);
    assert_eq!(l.transition_due(&c, big, 0, 30 * DAY), Some("WARM"));
    assert_eq!(l.transition_due(&c, big, 0, 200 * DAY), Some("COLD"));
    let small = ("k", MIN_TRANSITION_SIZE - 1, &[][..]);
    assert_eq!(
        l.transition_due(&c, small, 0, 200 * DAY),
        None,
        "S3's 128 KiB floor"
    );
    // A size condition in the filter lifts the floor.
    let mut r = rule("t");
    r.filter.size_greater_than = Some(0);
    r.transitions = vec![to("COLD", When::Days(1))];
    let l = Lifecycle { rules: vec![r] };
    assert_eq!(l.transition_due(&c, small, 0, 2 * DAY), Some("COLD"));
    // Noncurrent: days since it became noncurrent, keeping the newest.
    let mut r = rule("n");
    r.noncurrent_transitions = vec![NoncurrentTransition {
        days: 2,
        newer: Some(1),
        class: "COLD".into(),
    }];
    let l = Lifecycle { rules: vec![r] };
    assert_eq!(
        l.noncurrent_transition_due(&c, big, 10 * DAY, 1, 12 * DAY),
        Some("COLD")
    );
    assert_eq!(
        l.noncurrent_transition_due(&c, big, 10 * DAY, 0, 12 * DAY),
        None,
        "kept as newest"
    );
    assert_eq!(
        l.noncurrent_transition_due(&c, big, 10 * DAY, 1, 11 * DAY),
        None,
        "not yet"
    );
}
