//! `listkeeper serve`.

use std::path::Path;

use tokio::signal::unix::{signal, SignalKind};

use super::load_config;

/// Build the runtime with the configured number of worker threads and run the server.
pub fn run(path: &Path) -> Result<(), String> {
    let config = load_config(path)?;
    let threads = config.server.worker_threads;
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(threads.max(2) * 4)
            // Idle blocking threads would each wake once to exit after 10 s: keep them.
            .thread_keep_alive(std::time::Duration::from_secs(365 * 24 * 3600))
            .enable_all()
            .build()
    };
    let runtime = runtime.map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the lists");
                let _ = reload_tx.try_send(());
            }
        });
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        };
        crate::server::run(config, shutdown, reload_rx)
            .await
            .map_err(|e| e.to_string())
    })
}
