//! This node's current settings: a snapshot every task reads, reloaded when the database's
//! newest change time moves, so an admin's change reaches all nodes within seconds.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sealpost_store::{Store, StoreError, unix_now};

use super::Settings;

/// The current settings of this node, shared by all its tasks.
#[derive(Clone)]
pub struct SettingsHandle {
    current: Arc<RwLock<Arc<Settings>>>,
    version: Arc<RwLock<i64>>,
}

impl SettingsHandle {
    pub fn new(settings: Settings) -> Self {
        SettingsHandle {
            current: Arc::new(RwLock::new(Arc::new(settings))),
            version: Arc::new(RwLock::new(0)),
        }
    }

    /// A consistent snapshot; cheap (one Arc clone), so callers take one per request or mail.
    pub fn get(&self) -> Arc<Settings> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, settings: Settings, version: i64) {
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(settings),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(settings),
        }
        match self.version.write() {
            Ok(mut g) => *g = version,
            Err(poisoned) => *poisoned.into_inner() = version,
        }
    }

    fn version(&self) -> i64 {
        match self.version.read() {
            Ok(g) => *g,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Seeds the database with `defaults` where no value exists yet, then loads.
    pub async fn seed_and_load(store: &Store, defaults: &Settings) -> Result<Self, StoreError> {
        let now = unix_now();
        for (name, value) in defaults.to_pairs() {
            store.seed_setting(name, &value, now).await?;
        }
        let handle = SettingsHandle::new(defaults.clone());
        handle.reload(store).await?;
        Ok(handle)
    }

    /// Reloads from the database if anything changed since the last load.
    pub async fn reload_if_changed(&self, store: &Store) -> Result<bool, StoreError> {
        let v = store.settings_version().await?;
        if v == self.version() {
            return Ok(false);
        }
        self.reload(store).await?;
        Ok(true)
    }

    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let v = store.settings_version().await?;
        let pairs = store.all_settings().await?;
        let mut settings = Settings::from_pairs(&pairs);
        // Boot configuration, not in the database: kept from the seed.
        settings.hostname = self.get().hostname.clone();
        self.replace(settings, v);
        Ok(())
    }

    /// Polls for changes until the task is dropped.
    pub async fn watch(self, store: Store, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.reload_if_changed(&store).await {
                tracing::warn!(error = %e, "settings reload failed");
            }
        }
    }
}
