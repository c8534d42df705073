//! Wires one node together: store, keys, settings, SMTP inbound, delivery worker, web.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use sealpost_core::committer::Committer;
use sealpost_core::delivery::{DeliveryConfig, DeliveryWorker};
use sealpost_core::pipeline::Gateway;
use sealpost_core::{KeyRing, Settings, SettingsHandle};
use sealpost_crypto::MasterKey;
use sealpost_crypto::report::ReportKey;
use sealpost_smtp::inbound::SessionConfig;
use sealpost_smtp::next_hop::NextHop;
use sealpost_smtp::server::ServerConfig;
use sealpost_store::{NodeInfo, Store, unix_now};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::config::{Config, Role, TlsSetting, parse_network};
use crate::web_listener::{ListenerLimits, spawn_web};

/// A started node; dropping it does not stop it, call [`RunningNode::shutdown`].
pub struct RunningNode {
    pub smtp_addr: Option<SocketAddr>,
    pub web_addr: Option<SocketAddr>,
    /// The admin UI's own listener, when `web.admin_listen` is set.
    pub admin_addr: Option<SocketAddr>,
    pub store: Store,
    pub keys: KeyRing,
    pub settings: SettingsHandle,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    web_handles: Vec<axum_server::Handle>,
}

impl RunningNode {
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for h in &self.web_handles {
            h.graceful_shutdown(Some(Duration::from_secs(5)));
        }
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline => { self.tasks.abort_all(); break }
            }
        }
        sealpost_core::metrics::flush(&self.store).await;
        self.store.close().await;
    }

    /// Waits until a task ends (it should not) or the shutdown signal arrives.
    pub async fn wait(&mut self) {
        let _ = self.tasks.join_next().await;
    }
}

pub async fn open_store(config: &Config) -> Result<Store> {
    let url = config.database_url();
    let store = Store::connect(&url)
        .await
        .with_context(|| format!("cannot open database {}", sealpost_store::redact_url(&url)))?;
    store.migrate().await.context("database migration failed")?;
    Ok(store)
}

pub fn load_master_key(config: &Config) -> Result<(MasterKey, bool)> {
    if let Some(b64) = &config.keys.master_key {
        let key =
            MasterKey::from_base64(b64).context("keys.master_key (environment) is invalid")?;
        return Ok((key, false));
    }
    let path = config.master_key_file();
    MasterKey::load_or_create(&path).with_context(|| format!("master key {}", path.display()))
}

/// The node's proof-of-delivery report key (`keys.report_key`, else `keys.report_key_file`,
/// created on first use). Returns whether it was just created.
pub fn load_report_key(config: &Config) -> Result<(ReportKey, bool)> {
    if let Some(b64) = &config.keys.report_key {
        let key =
            ReportKey::from_base64(b64).context("keys.report_key (environment) is invalid")?;
        return Ok((key, false));
    }
    let path = config.report_key_file();
    ReportKey::load_or_create(&path).with_context(|| format!("report key {}", path.display()))
}

/// The previous master key during a rotation (`keys.previous_master_key[_file]`), if set.
/// Unlike the current key it is never created: a missing file is an error.
pub fn load_previous_master_key(config: &Config) -> Result<Option<MasterKey>> {
    if let Some(b64) = &config.keys.previous_master_key {
        let key = MasterKey::from_base64(b64)
            .context("keys.previous_master_key (environment) is invalid")?;
        return Ok(Some(key));
    }
    let Some(path) = &config.keys.previous_master_key_file else {
        return Ok(None);
    };
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("previous master key {}", path.display()))?,
    );
    let key = MasterKey::from_base64(&text)
        .with_context(|| format!("previous master key {} is invalid", path.display()))?;
    Ok(Some(key))
}

/// The key ring of a node: the current master key (created on first start) plus, during a
/// master-key rotation, the previous one. Returns whether the current key was just created.
pub fn load_keyring(config: &Config) -> Result<(KeyRing, bool)> {
    let (master, created) = load_master_key(config)?;
    let previous = load_previous_master_key(config)?;
    Ok((KeyRing::with_previous(master, previous), created))
}

/// The settings the configuration file seeds into the database on first start.
pub fn seed_settings(config: &Config) -> Settings {
    Settings {
        trigger_keywords: config.policy.trigger_keywords.clone(),
        internal_domains: config
            .policy
            .internal_domains
            .iter()
            .map(|d| sealpost_core::normalise_domain(d))
            .collect(),
        public_url: config.web.public_url.trim_end_matches('/').to_string(),
        notification_from: config.notification_from(),
        default_language: config.policy.default_language.clone(),
        org_name: config.policy.org_name.clone(),
        max_message_size: config.smtp.max_message_size,
        max_recipients: config.smtp.max_recipients,
        hostname: config.hostname.clone(),
        ..Settings::default()
    }
}

pub async fn start(config: &Config) -> Result<RunningNode> {
    let store = open_store(config).await?;
    let (keys, created) = load_keyring(config)?;
    if created {
        tracing::info!(path = %config.master_key_file().display(), "created a new master key; back it up");
    }
    if keys.has_previous() {
        tracing::info!("a previous master key is configured: master-key rotation in progress");
    }
    let (report_key, created) = load_report_key(config)?;
    if created {
        tracing::info!(path = %config.report_key_file().display(), "created a new report key; back it up");
    }
    let reports = Arc::new(sealpost_core::message_report::ReportSigner::new(
        report_key,
        config.hostname.clone(),
    ));
    let settings = SettingsHandle::seed_and_load(&store, &seed_settings(config))
        .await
        .context("cannot load settings")?;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let node_name = config.node_name();
    let delivery_wake = Arc::new(Notify::new());

    let mut smtp_addr = None;
    // One committer for inbound mail and delivery outcomes: they share transactions.
    let committer = Committer::start(store.clone());
    if config.has_role(Role::Smtp) {
        let listener = tokio::net::TcpListener::bind(&config.smtp.listen)
            .await
            .with_context(|| format!("cannot listen for SMTP on {}", config.smtp.listen))?;
        smtp_addr = Some(listener.local_addr()?);
        let current = settings.get();
        let server_config = Arc::new(ServerConfig {
            session: SessionConfig {
                hostname: config.hostname.clone(),
                max_message_size: current.max_message_size,
                max_recipients: current.max_recipients,
                command_timeout: Duration::from_secs(config.smtp.command_timeout_secs),
                data_timeout: Duration::from_secs(config.smtp.data_timeout_secs),
                bare_line_ends: config.smtp.bare_lf,
                ..SessionConfig::default()
            },
            allowed_networks: config
                .smtp
                .allowed_networks
                .iter()
                .filter_map(|n| parse_network(n))
                .collect(),
            max_connections: config.smtp.max_connections,
            max_connections_per_ip: config.smtp.max_connections_per_ip,
        });
        let gateway = Arc::new(Gateway::new(
            store.clone(),
            committer.clone(),
            keys.clone(),
            settings.clone(),
            config.hostname.clone(),
            delivery_wake.clone(),
        ));
        let mut rx = stop_rx.clone();
        tasks.spawn(async move {
            let shutdown = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) =
                sealpost_smtp::server::serve(listener, server_config, gateway, shutdown).await
            {
                tracing::error!(error = %e, "SMTP listener stopped");
            }
        });
    }

    if config.has_role(Role::Delivery) {
        let next_hop: NextHop = config
            .delivery
            .relay
            .parse()
            .map_err(|e| anyhow::anyhow!("delivery.relay: {e}"))?;
        let mut delivery = DeliveryConfig::new(next_hop, &config.hostname);
        delivery.owner = format!("{node_name}-{}", uuid::Uuid::new_v4().simple());
        delivery.concurrency = config.delivery.concurrency;
        delivery.retry_base = Duration::from_secs(config.delivery.retry_base_secs);
        delivery.retry_max = Duration::from_secs(config.delivery.retry_max_secs);
        delivery.lease = Duration::from_secs(config.delivery.lease_secs.max(1));
        let hop_timeout = Duration::from_secs(config.delivery.timeout_secs.max(1));
        delivery.client.command_timeout = hop_timeout.min(delivery.client.command_timeout);
        delivery.client.data_timeout = hop_timeout;
        delivery.dkim = crate::dkim::load_signer(config)?;
        for warning in crate::dkim::warnings(config, &settings.get().notification_from) {
            tracing::warn!("{warning}");
        }
        let worker = DeliveryWorker::new(
            store.clone(),
            committer,
            settings.clone(),
            delivery,
            delivery_wake.clone(),
        );
        spawn_until_stop(&mut tasks, stop_rx.clone(), worker.run());
    }

    let mut web_addr = None;
    let mut admin_addr = None;
    let mut web_handles = Vec::new();
    if config.has_role(Role::Web) {
        let mib = |n: u64| usize::try_from(n.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        let uploads = sealpost_web::ratelimit::UploadLimits::new(
            config.web.max_concurrent_uploads,
            mib(config.web.max_parked_mib_per_client),
            mib(config.web.max_parked_mib),
        );
        let state = sealpost_web::AppState {
            delivery_wake: delivery_wake.clone(),
            rate_limits: Arc::new(sealpost_web::ratelimit::RateLimits::with_uploads(uploads)),
            store: store.clone(),
            keys: keys.clone(),
            settings: settings.clone(),
            web: Arc::new(sealpost_web::WebConfig::default()),
            reports: reports.clone(),
        };
        let tls = match &config.web.tls {
            TlsSetting::Mode(m) if m == "off" => None,
            TlsSetting::Files { cert, key } => Some(sealpost_web::tls::server_config(cert, key)?),
            TlsSetting::Mode(_) => {
                let (cert, key) =
                    crate::selfsigned::ensure(&config.data_dir, &config.web.public_url)?;
                Some(sealpost_web::tls::server_config(&cert, &key)?)
            }
        };
        let limits = ListenerLimits {
            header_timeout: Duration::from_secs(config.web.header_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(config.web.request_timeout_secs.max(1)),
            max_connections: config.web.max_connections,
            max_connections_per_client: config.web.max_connections_per_client,
        };
        let language = sealpost_web::LanguageSource(settings.clone());
        let main_router = match &config.web.admin_listen {
            None if config.web.listen_is_internal => sealpost_web::internal_router(state.clone()),
            None => sealpost_web::router(state.clone()),
            Some(admin_listen) => {
                let (addr, handle) = spawn_web(
                    &mut tasks,
                    admin_listen,
                    sealpost_web::admin_router(state.clone()),
                    tls.clone(),
                    limits,
                    language.clone(),
                )?;
                admin_addr = Some(addr);
                web_handles.push(handle);
                sealpost_web::portal_router(state.clone())
            }
        };
        let (addr, handle) = spawn_web(
            &mut tasks,
            &config.web.listen,
            main_router,
            tls,
            limits,
            language,
        )?;
        web_addr = Some(addr);
        web_handles.push(handle);
    }

    // Housekeeping that any node may do: heartbeats, settings reload, expiry of temporaries.
    let roles: Vec<&str> = config
        .roles
        .iter()
        .map(|r| match r {
            Role::Smtp => "smtp",
            Role::Delivery => "delivery",
            Role::Web => "web",
        })
        .collect();
    let info = NodeInfo {
        name: node_name,
        version: env!("CARGO_PKG_VERSION").to_string(),
        roles: roles.join(","),
        started_at: unix_now(),
        heartbeat_at: unix_now(),
    };
    spawn_until_stop(
        &mut tasks,
        stop_rx.clone(),
        housekeeping(store.clone(), info),
    );
    spawn_until_stop(
        &mut tasks,
        stop_rx.clone(),
        message_sweeper(store.clone(), settings.clone()),
    );
    spawn_until_stop(
        &mut tasks,
        stop_rx.clone(),
        settings
            .clone()
            .watch(store.clone(), Duration::from_secs(3)),
    );

    Ok(RunningNode {
        smtp_addr,
        web_addr,
        admin_addr,
        store,
        keys,
        settings,
        stop,
        tasks,
        web_handles,
    })
}

fn spawn_until_stop(
    tasks: &mut JoinSet<()>,
    mut stop: watch::Receiver<bool>,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tasks.spawn(async move {
        tokio::select! {
            _ = work => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    });
}

async fn housekeeping(store: Store, mut info: NodeInfo) {
    loop {
        info.heartbeat_at = unix_now();
        if let Err(e) = store.heartbeat(&info).await {
            tracing::warn!(error = %e, "heartbeat failed");
        }
        sealpost_core::metrics::flush(&store).await;
        if let Err(e) = store.purge_expired(unix_now()).await {
            tracing::warn!(error = %e, "purge of expired sessions failed");
        }
        // Copies kept for `link` deliveries are deleted once `delivery.link_days` are up
        // (before the checkpoint, so they leave the WAL too).
        match sealpost_core::link::sweep(&store, unix_now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired link copies deleted"),
            Err(e) => tracing::warn!(error = %e, "sweep of expired link copies failed"),
        }
        // Failure windows last `security.lockout_secs` (minutes to hours); a week-old row can
        // only ever start a fresh window.
        if let Err(e) = store.checkpoint_wal().await {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
        if let Err(e) = store.purge_source_failures(unix_now() - 7 * 86_400).await {
            tracing::warn!(error = %e, "purge of old per-source failure counts failed");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Message control: deletes the secrets of expired messages soon after their expiry, and
/// ledger rows and events past `messages.retention_days`. Every node sweeps; each expiry is
/// recorded once because only a row still holding its secret is changed.
async fn message_sweeper(store: Store, settings: sealpost_core::SettingsHandle) {
    loop {
        let retention = settings.get().message_retention_days;
        match sealpost_core::messages::sweep(&store, retention, unix_now()).await {
            Ok(r) if r.expired > 0 || r.deleted_rows > 0 => {
                tracing::info!(
                    expired = r.expired,
                    deleted = r.deleted_rows,
                    "message sweep"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "message sweep failed"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// The data directory must exist before SQLite or the key file are created in it. A new one
/// is private to the node's user (0700); an existing one is left as the operator made it,
/// with a warning when others may look inside.
pub fn ensure_data_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %dir.display(),
            mode = format!("{:o}", mode & 0o777),
            "the data directory is open to other users; 0700 is recommended"
        );
    }
    Ok(())
}
