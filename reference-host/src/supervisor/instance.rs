//! One launched plugin whose handshake succeeded: its connection, its hooks client, and the
//! API stream of its activation with the thread serving `LocalAPI` on it (RPC-13, RPC-16,
//! RPC-17, RPC-18).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rpcplugin_runtime::codec::rpc::{Call, Reply, API_SERVICE, ON_ACTIVATE};
use rpcplugin_runtime::connection::{Connection, Stream};
use rpcplugin_runtime::rpc::{serve, CallFailure, RpcClient, ServeEnd};

use super::seams::Seams;

/// How long closing an API stream waits for its server thread, whose calls end with the
/// connection, before it reports the thread on standard error and leaves it behind.
const API_SERVER_WAIT: Duration = Duration::from_secs(5);

pub(super) fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An API stream of an activation, with the thread serving `LocalAPI` on it (RPC-13).
struct ApiStream {
    stream: Stream,
    server: JoinHandle<ServeEnd>,
}

impl ApiStream {
    /// Closes the stream and waits for its server thread, at most [`API_SERVER_WAIT`]: its
    /// calls end once the connection has (a LocalAPI call never blocks on the plugin).
    fn close(self) {
        let id = self.stream.id();
        self.stream.close();
        let deadline = Instant::now() + API_SERVER_WAIT;
        while !self.server.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if self.server.is_finished() {
            let _ = self.server.join();
        } else {
            eprintln!(
                "rpcplugin-host: the LocalAPI server of stream {id} has not ended {API_SERVER_WAIT:?} \
                 after its stream closed; left behind"
            );
        }
    }
}

/// One launched process whose handshake succeeded.
pub(super) struct Instance {
    pub(super) pid: u32,
    pub(super) conn: Arc<Connection>,
    pub(super) hooks: RpcClient,
    api: Mutex<Option<ApiStream>>,
    /// Set when a call found the hooks stream ended while the connection was up (LIFE-6).
    hooks_ended: Mutex<Option<String>>,
    seams: Arc<dyn Seams>,
}

impl Instance {
    /// A new instance over `conn`, calling hooks with `hooks`.
    pub(super) fn new(
        pid: u32,
        conn: Arc<Connection>,
        hooks: RpcClient,
        seams: Arc<dyn Seams>,
    ) -> Instance {
        Instance {
            pid,
            conn,
            hooks,
            api: Mutex::new(None),
            hooks_ended: Mutex::new(None),
            seams,
        }
    }

    /// How the hooks stream ended while the connection was up, if it did (LIFE-6): the
    /// plugin closed it, its gob stream broke, or a call found it ended.
    pub(super) fn hooks_ended(&self) -> Option<String> {
        relock(&self.hooks_ended)
            .clone()
            .or_else(|| self.hooks.ended())
    }

    /// Ends the connection, closes the API stream and waits for its server.
    pub(super) fn teardown(&self) {
        self.conn.close();
        self.hooks.close();
        if let Some(api) = relock(&self.api).take() {
            api.close();
        }
    }

    fn note_call_failure(&self, failure: &CallFailure) {
        if let CallFailure::Ended { reason, .. } = failure {
            if self.conn.ended().is_none() {
                relock(&self.hooks_ended).get_or_insert_with(|| reason.clone());
            }
        }
    }

    /// RPC-13: opens a new API stream, serves `LocalAPI` on it (answering
    /// `LoadPluginConfiguration` with `config`), closes the previous one (RPC-17), then calls
    /// `OnActivate` with the new stream's id. On failure the new stream is closed (RPC-17).
    pub(super) fn activate(
        &self,
        config: Arc<Vec<u8>>,
        loads: Arc<AtomicU64>,
    ) -> Result<(), CallFailure> {
        let ended = |reason: String| CallFailure::Ended {
            method: ON_ACTIVATE.to_string(),
            reason,
        };
        let stream = self.conn.open_stream().map_err(|e| ended(e.to_string()))?;
        let id = stream.id();
        let seams = Arc::clone(&self.seams);
        let handler = Arc::new(move |call: Call| match call {
            Call::LoadPluginConfiguration => {
                loads.fetch_add(1, Ordering::Relaxed);
                let config = config.as_ref().clone();
                Ok(Reply::Configuration(seams.configuration(config)?))
            }
            other => Err(format!("rpc: can't find method {}", other.service_method())),
        });
        let server = serve(stream.clone(), &[API_SERVICE], handler).map_err(|e| {
            stream.close();
            ended(format!("cannot serve LocalAPI: {e}"))
        })?;
        let previous = relock(&self.api).replace(ApiStream { stream, server });
        if let Some(previous) = previous {
            previous.close();
        }
        let result = self
            .hooks
            .call(Call::OnActivate {
                api_stream: self.seams.api_stream_id(id.get()),
            })
            .map(|_| ());
        if let Err(failure) = &result {
            self.note_call_failure(failure);
            let mut api = relock(&self.api);
            if api.as_ref().is_some_and(|a| a.stream.id() == id) {
                let mine = api.take();
                drop(api);
                if let Some(mine) = mine {
                    mine.close();
                }
            }
        }
        result
    }

    /// Calls `OnDeactivate`, then closes the API stream if the plugin has not (RPC-17).
    pub(super) fn deactivate(&self) -> Result<(), CallFailure> {
        let result = self.hooks.call(Call::OnDeactivate).map(|_| ());
        if let Err(failure) = &result {
            self.note_call_failure(failure);
        }
        let api = relock(&self.api).take();
        if let Some(api) = api {
            api.close();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    //! The activation protocol of one connection (RPC-13, RPC-17) against an in-process plugin
    //! whose `OnDeactivate` leaves the API stream open, so that the host's own closes show.

    use std::os::fd::OwnedFd;
    use std::sync::atomic::AtomicBool;

    use std::sync::mpsc::{channel, Receiver};

    use rpcplugin_runtime::codec::rpc::HOOKS_SERVICE;
    use rpcplugin_runtime::codec::stream::{Limits, Role};
    use rpcplugin_runtime::codec::StreamId;

    use super::*;

    /// What the fake plugin saw in one `OnActivate`: the API stream id, the configuration it
    /// loaded while the call was pending, and its API client (kept open).
    type Seen = (i64, Result<Reply, CallFailure>, RpcClient);

    fn setup(fail: Arc<AtomicBool>) -> (Instance, Arc<Connection>, Receiver<Seen>) {
        let (host_in, plugin_out) = std::io::pipe().unwrap();
        let (plugin_in, host_out) = std::io::pipe().unwrap();
        let limits = Limits::default();
        let host = Connection::new(
            Role::Host,
            OwnedFd::from(host_in),
            OwnedFd::from(host_out),
            limits,
        )
        .unwrap();
        let plugin = Arc::new(
            Connection::new(
                Role::Plugin,
                OwnedFd::from(plugin_in),
                OwnedFd::from(plugin_out),
                limits,
            )
            .unwrap(),
        );
        let hooks_p = plugin.announce().unwrap();
        let hooks_h = host.wait_for_handshake(Duration::from_secs(5)).unwrap();
        let (tx, rx) = channel();
        let tx = Mutex::new(tx);
        let p = Arc::clone(&plugin);
        serve(
            hooks_p,
            &[HOOKS_SERVICE],
            Arc::new(move |call| match call {
                Call::OnActivate { api_stream } => {
                    let id = StreamId::new(api_stream).ok_or("bad id")?;
                    let stream = p.connect_stream(id).map_err(|e| e.to_string())?;
                    let api = RpcClient::new(stream).map_err(|e| e.to_string())?;
                    let config = api.call(Call::LoadPluginConfiguration);
                    relock(&tx).send((api_stream, config, api)).unwrap();
                    if fail.load(Ordering::SeqCst) {
                        Err("activation refused".into())
                    } else {
                        Ok(Reply::Empty)
                    }
                }
                _ => Ok(Reply::Empty),
            }),
        )
        .unwrap();
        let instance = Instance::new(
            0,
            Arc::new(host),
            RpcClient::new(hooks_h).unwrap(),
            Arc::new(super::super::seams::Conforming),
        );
        (instance, plugin, rx)
    }

    /// Waits until calls on the plugin's API client fail: the host closed the API stream.
    fn assert_closed_by_host(api: &RpcClient) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while api.call(Call::LoadPluginConfiguration).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the host kept the API stream open"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn loaded(config: &[u8]) -> Result<Reply, CallFailure> {
        Ok(Reply::Configuration(config.to_vec()))
    }

    // The host serves LocalAPI on the new stream before and while OnActivate is pending (the
    // plugin loads its configuration from inside the call), and closes the API stream when
    // OnActivate fails, when it activates again, and after OnDeactivate.
    // covers: RPC-13, RPC-16, RPC-17, RPC-18, STREAM-2
    #[test]
    fn activation_opens_serves_and_closes_api_streams() {
        let fail = Arc::new(AtomicBool::new(true));
        let (instance, plugin, seen) = setup(Arc::clone(&fail));
        let loads = Arc::new(AtomicU64::new(0));
        let config = Arc::new(br#"{"Foo":"foo","Bar":{"Baz":"baz"}}"#.to_vec());
        let wait = Duration::from_secs(5);

        let err = instance
            .activate(Arc::clone(&config), Arc::clone(&loads))
            .unwrap_err();
        assert!(
            matches!(&err, CallFailure::Remote { text, .. } if text == "activation refused"),
            "{err:?}"
        );
        let (id, got, api1) = seen.recv_timeout(wait).unwrap();
        assert_eq!((id, got), (1, loaded(&config)));
        assert!(relock(&instance.api).is_none());
        assert_closed_by_host(&api1);

        fail.store(false, Ordering::SeqCst);
        instance
            .activate(Arc::clone(&config), Arc::clone(&loads))
            .unwrap();
        let (id, got, api3) = seen.recv_timeout(wait).unwrap();
        assert_eq!((id, got), (3, loaded(&config)));
        assert_eq!(api3.call(Call::LoadPluginConfiguration), loaded(&config));

        let other = Arc::new(b"null".to_vec());
        instance
            .activate(Arc::clone(&other), Arc::clone(&loads))
            .unwrap();
        let (id, got, api5) = seen.recv_timeout(wait).unwrap();
        assert_eq!((id, got), (5, loaded(&other)));
        assert_closed_by_host(&api3);
        assert_eq!(api5.call(Call::LoadPluginConfiguration), loaded(&other));

        instance.deactivate().unwrap();
        assert_closed_by_host(&api5);
        assert_eq!(loads.load(Ordering::Relaxed), 5);

        instance.teardown();
        plugin.close();
    }
}
