//! Multipart uploads whose parts are uploaded more than once at a time.

use super::tests::{body, fixture, pattern, read_all, small_blocks, walk};
use super::*;
use crate::object::conditions::WriteCondition;

#[tokio::test]
async fn the_upload_of_a_part_that_started_last_wins_even_when_it_finishes_first() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let id = f
        .layer
        .create_multipart("bkt", "mp", PutOptions::default())
        .await
        .unwrap();
    let (early, late) = (pattern(300_000, 1), pattern(200_000, 2));
    // The early upload sends half its body, then waits.
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let half = early.len() / 2;
    let (first, second) = (
        bytes::Bytes::copy_from_slice(&early[..half]),
        bytes::Bytes::copy_from_slice(&early[half..]),
    );
    let slow: ByteStream = Box::pin(futures::stream::unfold(
        (Some(first), Some((wait, second))),
        |(first, rest)| async move {
            if let Some(b) = first {
                return Some((Ok(b), (None, rest)));
            }
            let (wait, b) = rest?;
            let _ = wait.await;
            Some((Ok(b), (None, None)))
        },
    ));
    let layer = Arc::clone(&f.layer);
    let id2 = id.clone();
    let early_upload = tokio::spawn(async move {
        layer
            .upload_part("bkt", "mp", &id2, 1, slow, None, None, None, &NoKeys)
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (late_etag, _) = f
        .layer
        .upload_part("bkt", "mp", &id, 1, body(late.clone()), None, None, None, &NoKeys)
        .await
        .unwrap();
    release.send(()).unwrap();
    let (early_etag, _) = early_upload.await.unwrap().unwrap();
    assert_ne!(early_etag, late_etag);
    let (parts, _) = f.layer.list_parts("bkt", "mp", &id, 0, 1000).await.unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(
        parts[0].etag, late_etag,
        "the upload that started last is the part"
    );
    // The loser's ETag names no part; the winner's completes.
    let complete = |etag: &str| CompletePart {
        number: 1,
        etag: etag.to_owned(),
        checksum: None,
    };
    let lost = f
        .layer
        .complete_multipart(
            "bkt",
            "mp",
            &id,
            vec![complete(&early_etag)],
            &WriteCondition::default(),
            None,
        )
        .await;
    assert!(matches!(lost, Err(ObjectError::InvalidPart(_))), "{lost:?}");
    f.layer
        .complete_multipart(
            "bkt",
            "mp",
            &id,
            vec![complete(&late_etag)],
            &WriteCondition::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(read_all(&f.layer, "bkt", "mp").await.unwrap(), late);
    // The early upload's files are gone from every drive.
    for p in &f.paths {
        assert_eq!(walk(&p.join("data")).len(), 1, "{}", p.display());
    }
}
