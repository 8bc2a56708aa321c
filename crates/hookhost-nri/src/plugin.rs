//! The plugin's life: connect (to the runtime's socket, or the connection a runtime that started
//! the plugin passed on fd 3), multiplex, serve the Plugin service, register, and when the
//! runtime goes away, connect again with backoff (external mode) or end (pre-connected mode).
//! A health file says whether the plugin is registered.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use protobuf::Message;
use tokio::net::UnixStream;
use tokio::sync::watch;
use ttrpc::r#async::transport::{Listener, Socket};
use ttrpc::r#async::{Client, Server};
use ttrpc::proto::Request;

use crate::api::{REGISTER_PLUGIN, RUNTIME_SERVICE, RegisterPluginRequest};
use crate::chain;
use crate::handler::Handler;
use crate::health::Health;
use crate::mux::{self, MuxError};
use crate::service::{PluginService, Progress};

/// Where containerd and CRI-O listen for external NRI plugins by default.
pub const DEFAULT_SOCKET: &str = "/var/run/nri/nri.sock";
/// Set by a runtime that started the plugin: the fd of its connection (NRI passes 3).
pub const SOCKET_ENV: &str = "NRI_PLUGIN_SOCKET";
/// Set by a runtime that started the plugin: the name it knows the plugin by.
pub const NAME_ENV: &str = "NRI_PLUGIN_NAME";
/// Set by a runtime that started the plugin: the plugin's index.
pub const IDX_ENV: &str = "NRI_PLUGIN_IDX";

/// How long the runtime is given to answer RegisterPlugin (its own registration timeout is 5 s
/// by default).
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the ttrpc server may take to close a finished connection.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How the plugin identifies itself and where it connects.
#[derive(Debug, Clone)]
pub struct Config {
    /// The plugin's name (the runtime names it `INDEX-NAME`).
    pub name: String,
    /// Two digits; the runtime calls plugins in ascending index order.
    pub index: String,
    /// The runtime's NRI socket (external mode).
    pub socket: PathBuf,
    /// Written while registered, removed otherwise (for a liveness/readiness probe).
    pub health_file: Option<PathBuf>,
    /// The first delay before connecting again; doubled after each failure.
    pub retry_min: Duration,
    /// The longest delay between attempts.
    pub retry_max: Duration,
}

impl Config {
    /// `name` and `index` on the default socket, no health file, retries from 0.2 s to 5 s.
    pub fn new(name: impl Into<String>, index: impl Into<String>) -> Config {
        Config {
            name: name.into(),
            index: index.into(),
            socket: PathBuf::from(DEFAULT_SOCKET),
            health_file: None,
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
        }
    }
}

/// Why the plugin cannot run.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The index is not what NRI accepts.
    #[error(
        "NRI plugin index {0:?} must be two digits, 00 to 99 (the runtime orders plugins by it)"
    )]
    Index(String),
    /// The name is not what NRI accepts.
    #[error("NRI plugin name {0:?} must be non-empty and without '/'")]
    Name(String),
    /// The runtime's pre-connected socket variable is not an fd number.
    #[error(
        "{SOCKET_ENV}={0:?} is not a file descriptor number (a runtime that starts the plugin sets it to 3)"
    )]
    SocketEnv(String),
    /// The runtime's pre-connected socket cannot be used.
    #[error("cannot use the NRI connection on fd {fd} ({SOCKET_ENV})")]
    PreConnected {
        /// The fd.
        fd: RawFd,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the NRI plugin's threads")]
    Runtime(#[source] io::Error),
    /// A pre-connected plugin's only connection failed.
    #[error("the runtime's NRI connection ended")]
    Session(#[source] SessionError),
}

/// Why one connection to the runtime ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The socket could not be connected.
    #[error("cannot connect to the NRI socket {path} (is NRI enabled in the runtime?)")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The Plugin service could not be started on the connection.
    #[error("cannot serve NRI's Plugin service")]
    Serve(#[source] ttrpc::Error),
    /// RegisterPlugin failed.
    #[error("the runtime refused to register the plugin")]
    Register(#[source] ttrpc::Error),
    /// The connection ended.
    #[error(transparent)]
    Mux(#[from] MuxError),
}

/// Where the plugin's connection comes from.
enum Transport {
    /// The runtime's socket, connected (again) by the plugin.
    External(PathBuf),
    /// The connection a runtime that started the plugin passed.
    PreConnected(RawFd),
}

/// An NRI plugin around a [`Handler`].
pub struct Plugin {
    config: Config,
    transport: Transport,
}

impl Plugin {
    /// A plugin with `config`; when a runtime started it ([`SOCKET_ENV`] set), on the
    /// connection the runtime passed, with the name and index the runtime gave.
    pub fn new(mut config: Config) -> Result<Plugin, PluginError> {
        let transport = match std::env::var(SOCKET_ENV) {
            Ok(fd) => {
                let fd = fd.trim().parse().map_err(|_| PluginError::SocketEnv(fd))?;
                config.name = std::env::var(NAME_ENV).unwrap_or(config.name);
                config.index = std::env::var(IDX_ENV).unwrap_or(config.index);
                Transport::PreConnected(fd)
            }
            Err(_) => Transport::External(config.socket.clone()),
        };
        check_identity(&config)?;
        Ok(Plugin { config, transport })
    }

    /// Runs until SIGTERM or SIGINT, or, when a runtime started the plugin, until that runtime
    /// closes the connection.
    pub fn run(self, handler: Arc<dyn Handler>) -> Result<(), PluginError> {
        let runtime = tokio::runtime::Runtime::new().map_err(PluginError::Runtime)?;
        runtime.block_on(self.serve(handler, stop_signal()))
    }

    /// Runs on a thread of its own until the returned [`Running`] is dropped.
    pub fn spawn(self, handler: Arc<dyn Handler>) -> Result<Running, PluginError> {
        let runtime = tokio::runtime::Runtime::new().map_err(PluginError::Runtime)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let stopped = async move {
                let _ = stopped.await;
            };
            runtime.block_on(self.serve(handler, stopped))
        });
        Ok(Running {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Serves until `stop` completes (or the pre-connected connection ends).
    async fn serve(
        self,
        handler: Arc<dyn Handler>,
        stop: impl Future<Output = ()>,
    ) -> Result<(), PluginError> {
        let health = Health::new(self.config.health_file.clone());
        let result = tokio::select! {
            result = self.sessions(handler, &health) => result,
            () = stop => {
                tracing::info!("NRI plugin stopping");
                Ok(())
            }
        };
        health.down();
        result
    }

    async fn sessions(
        &self,
        handler: Arc<dyn Handler>,
        health: &Health,
    ) -> Result<(), PluginError> {
        match &self.transport {
            Transport::PreConnected(fd) => {
                let stream = pre_connected(*fd)?;
                match session(stream, &self.config, handler, health).await {
                    Ok(()) | Err(SessionError::Mux(MuxError::Closed)) => Ok(()),
                    Err(err) => Err(PluginError::Session(err)),
                }
            }
            Transport::External(path) => {
                reconnecting(path, &self.config, handler, health).await;
                Ok(())
            }
        }
    }
}

/// A plugin running on its own thread; dropping it stops the plugin.
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), PluginError>>>,
}

impl Running {
    /// Stops the plugin and returns how it ended.
    pub fn stop(mut self) -> Result<(), PluginError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), PluginError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(PluginError::Runtime(io::Error::other(
                "the plugin thread panicked",
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

fn check_identity(config: &Config) -> Result<(), PluginError> {
    let index = &config.index;
    if index.len() != 2 || !index.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PluginError::Index(index.clone()));
    }
    let name = &config.name;
    if name.is_empty() || name.contains('/') {
        return Err(PluginError::Name(name.clone()));
    }
    Ok(())
}

/// The runtime's connection on `fd`, moved to a close-on-exec descriptor so that processes the
/// handler starts (hooks) never inherit it.
fn pre_connected(fd: RawFd) -> Result<UnixStream, PluginError> {
    let fail = |source| PluginError::PreConnected { fd, source };
    // SAFETY: the runtime that started the plugin passed this fd for the plugin alone; it is
    // owned here once, at start-up, and nothing else in the process uses it.
    let passed = unsafe { OwnedFd::from_raw_fd(fd) };
    let owned = passed.try_clone().map_err(fail)?;
    drop(passed);
    let stream = std::os::unix::net::UnixStream::from(owned);
    stream.set_nonblocking(true).map_err(fail)?;
    UnixStream::from_std(stream).map_err(fail)
}

/// Connects to `path` again and again, waiting longer after each failure (reset once a
/// connection got registered); never returns.
async fn reconnecting(path: &PathBuf, config: &Config, handler: Arc<dyn Handler>, health: &Health) {
    let mut delay = config.retry_min;
    let mut failures = 0u32;
    loop {
        let result = match UnixStream::connect(path).await {
            Ok(stream) => session(stream, config, handler.clone(), health).await,
            Err(source) => Err(SessionError::Connect {
                path: path.clone(),
                source,
            }),
        };
        health.down();
        if health.was_up() {
            (delay, failures) = (config.retry_min, 0);
        }
        log_end(&result, failures, delay);
        failures += 1;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(config.retry_max);
    }
}

/// Logs how a connection ended: the first failure in a row as a warning, the next ones quietly.
fn log_end(result: &Result<(), SessionError>, failures: u32, delay: Duration) {
    let why = match result {
        Ok(()) => "the NRI connection ended".to_string(),
        Err(err) => chain(err),
    };
    match failures {
        0 => tracing::warn!("{why}; connecting again in {delay:?}"),
        _ => tracing::debug!("{why}; connecting again in {delay:?}"),
    }
}

/// One connection: multiplex it, serve the Plugin service, register, and wait for its end.
async fn session(
    stream: UnixStream,
    config: &Config,
    handler: Arc<dyn Handler>,
    health: &Health,
) -> Result<(), SessionError> {
    let mut conns = mux::multiplex(stream);
    let (service, mut progress) = PluginService::new(handler);
    // The listener hands out connection 1 once and then waits (an ended listener would make
    // the server's shutdown fail).
    let plugin_conn =
        futures::stream::iter([Ok::<_, io::Error>(conns.plugin)]).chain(futures::stream::pending());
    let mut server = Server::new()
        .add_listener(Listener::new(plugin_conn))
        .register_service(service.table());
    server.start().await.map_err(SessionError::Serve)?;
    let client = Client::new(Socket::new(conns.runtime));
    let result = async {
        register(&client, config).await?;
        tracing::info!(
            "registered with the runtime as {}-{}",
            config.index,
            config.name
        );
        watch_progress(&mut progress, &mut conns.done, config, health).await
    }
    .await;
    conns.done.abort();
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, server.shutdown()).await;
    result
}

/// Follows the connection until it ends, marking the plugin healthy once it is synchronized.
async fn watch_progress(
    progress: &mut watch::Receiver<Progress>,
    done: &mut tokio::task::JoinHandle<Result<(), MuxError>>,
    config: &Config,
    health: &Health,
) -> Result<(), SessionError> {
    loop {
        tokio::select! {
            end = &mut *done => {
                let end = end.unwrap_or_else(|join| Err(MuxError::Io(io::Error::other(join))));
                return end.map_err(SessionError::Mux);
            }
            changed = progress.changed() => {
                if changed.is_err() {
                    continue;
                }
                if *progress.borrow_and_update() == Progress::Ready {
                    tracing::info!("synchronized: serving NRI requests");
                    health.up(&format!("registered as {}-{}\n", config.index, config.name));
                }
            }
        }
    }
}

async fn register(client: &Client, config: &Config) -> Result<(), SessionError> {
    let payload = RegisterPluginRequest {
        plugin_name: config.name.clone(),
        plugin_idx: config.index.clone(),
        ..Default::default()
    }
    .write_to_bytes()
    .map_err(|e| SessionError::Register(ttrpc::Error::Others(e.to_string())))?;
    let request = Request {
        service: RUNTIME_SERVICE.to_string(),
        method: REGISTER_PLUGIN.to_string(),
        payload,
        timeout_nano: REGISTRATION_TIMEOUT.as_nanos() as i64,
        ..Default::default()
    };
    client
        .request(request)
        .await
        .map(|_| ())
        .map_err(SessionError::Register)
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(err) => {
            tracing::warn!("cannot watch SIGTERM ({err}); stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_two_digits_and_the_name_a_plain_word() {
        let check = |name: &str, index: &str| check_identity(&Config::new(name, index));
        assert!(check("hookhost", "50").is_ok());
        assert!(check("device-injector", "05").is_ok());
        for index in ["5", "050", "ab", ""] {
            let err = check("hookhost", index).unwrap_err();
            assert!(err.to_string().contains("two digits"), "{index}: {err}");
        }
        assert!(matches!(check("", "50"), Err(PluginError::Name(_))));
        assert!(matches!(check("a/b", "50"), Err(PluginError::Name(_))));
    }
}
