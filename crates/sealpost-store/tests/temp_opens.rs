//! Temporary opens of every size, on every configured backend: large envelopes are stored in
//! chunks behind one index row, which must read back, expire, purge and delete as one.

#![allow(clippy::unwrap_used)]
// The shared helpers serve the main suite too; not all are used here.
#![allow(dead_code, unused_macros)]

#[macro_use]
mod common;

use common::NOW;
use sealpost_store::Store;

store_tests!(
    large_temp_opens_round_trip,
    sqlite_settings_survive_temp_opens,
    abandoned_writer_leaves_nothing
);

fn envelope(len: usize) -> Vec<u8> {
    let mut out = b"SPX\x01".to_vec();
    out.extend((0..len.saturating_sub(4)).map(|i| (i * 131 % 251) as u8));
    out
}

async fn large_temp_opens_round_trip(store: Store) {
    let mib = 1 << 20;
    let sizes = [mib - 1, mib, mib + 1, 2 * mib, 5 * mib / 2];
    for (n, len) in sizes.into_iter().enumerate() {
        let key = format!("{n:064x}");
        let payload = envelope(len);
        store
            .insert_temp_open(&key, &payload, NOW, NOW + 10)
            .await
            .unwrap();
        assert_eq!(
            store.temp_open(&key, NOW).await.unwrap().as_deref(),
            Some(&payload[..]),
            "{len}"
        );
        assert_eq!(store.temp_open(&key, NOW + 10).await.unwrap(), None);
    }
    // Expired: every row of every one of them goes (one row each up to 1 MiB, chunks above).
    let purged = store.purge_expired(NOW + 10).await.unwrap();
    assert_eq!(purged, 1 + 1 + (2 + 1) + (2 + 1) + (3 + 1));
    assert_eq!(store.purge_expired(NOW + 10).await.unwrap(), 0);

    let payload = envelope(3 * mib);
    store
        .insert_temp_open("big", &payload, NOW, NOW + 100)
        .await
        .unwrap();
    store
        .insert_temp_open("small", b"SPX\x01small", NOW, NOW + 100)
        .await
        .unwrap();
    store.delete_temp_open("big").await.unwrap();
    assert_eq!(store.temp_open("big", NOW).await.unwrap(), None);
    // Its chunks went with it: only the small one is left to purge.
    assert_eq!(store.purge_expired(NOW + 100).await.unwrap(), 1);
}

/// Parking relaxes SQLite's durability for its own writes only: afterwards every pooled
/// connection is back to the pool's settings.
async fn sqlite_settings_survive_temp_opens(store: Store) {
    if store.backend() != sealpost_store::Backend::Sqlite {
        return;
    }
    let before = store.pooled_sqlite_settings().await.unwrap();
    assert!(
        before
            .iter()
            .all(|s| *s == before[0] && s.0 >= 1 && s.1 > 0)
    );
    for (n, len) in [100, 3 << 20, 200, 2 << 20].into_iter().enumerate() {
        store
            .insert_temp_open(&format!("k{n}"), &envelope(len), NOW, NOW + 10)
            .await
            .unwrap();
    }
    let after = store.pooled_sqlite_settings().await.unwrap();
    assert!(
        after.iter().all(|s| *s == before[0]),
        "{after:?} vs {before:?}"
    );
}

/// A writer given up before it finished leaves nothing readable and removes its chunks.
async fn abandoned_writer_leaves_nothing(store: Store) {
    assert_eq!(store.count_temp_open_rows().await.unwrap(), 0);
    let mut writer = store.temp_open_writer("gone", NOW, NOW + 10);
    writer.write_chunk(&envelope(1 << 20)).await.unwrap();
    writer.write_chunk(&envelope(1 << 20)).await.unwrap();
    assert_eq!(writer.written(), 2 << 20);
    drop(writer);
    assert_eq!(store.temp_open("gone", NOW).await.unwrap(), None);
    // The chunks are rows of their own ("gone.1", "gone.2"); they go in the background.
    for _ in 0..100 {
        if store.count_temp_open_rows().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        store.count_temp_open_rows().await.unwrap(),
        0,
        "no row is left"
    );
    assert_eq!(store.purge_expired(NOW + 10).await.unwrap(), 0);
}
