//! A TCP proxy on loopback that can break the network between a client and a real server in
//! the two ways a server process cannot show by itself: a connection that goes silent without
//! being closed (a half-open connection: a cable pulled, a NAT entry dropped), and a request
//! that the server ran whose answer never comes back.
//!
//! The bytes are the real server's: the proxy only forwards, swallows or cuts, it never
//! answers for the server.

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

use crate::HOST;

/// Something to do when the server's next answer arrives.
type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Shared {
    stopped: AtomicBool,
    /// Connections accepted so far; a connection's number is its generation.
    accepted: AtomicU64,
    /// Connections numbered up to this one are frozen.
    frozen_upto: AtomicU64,
    /// Set by [`Proxy::lose_next_reply`].
    lose_reply: Mutex<Option<Hook>>,
    /// Every socket, to close them all when the proxy stops.
    sockets: Mutex<Vec<TcpStream>>,
}

/// A forwarding proxy from a free loopback port to `target`; stops (closing every connection)
/// when dropped.
///
/// ```
/// let server = session_testkit::RedisServer::start();
/// let proxy = session_testkit::Proxy::start(server.addr());
/// let client = redis::Client::open(format!("redis://{}", proxy.addr())).unwrap();
/// let mut con = client.get_connection().unwrap();
/// let pong: String = redis::cmd("PING").query(&mut con).unwrap();
/// assert_eq!(pong, "PONG");
/// ```
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Starts forwarding from a free port of [`HOST`] to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind((HOST, 0)).expect("bind the proxy on loopback");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let generation = accepting.accepted.fetch_add(1, Ordering::SeqCst) + 1;
                forward(&accepting, client, server, generation);
            }
        });
        Proxy { addr, shared }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Makes every connection open now half-open: nothing more passes in either direction,
    /// yet neither side is told (no FIN, no RST), as when the network between them goes away.
    /// Connections made afterwards work.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = session_testkit::RedisServer::start();
    /// let proxy = session_testkit::Proxy::start(server.addr());
    /// let client = redis::Client::open(format!("redis://{}", proxy.addr())).unwrap();
    /// let mut old = client.get_connection().unwrap();
    /// old.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    /// proxy.freeze();
    /// assert!(redis::cmd("PING").query::<String>(&mut old).is_err());
    /// let mut new = client.get_connection().unwrap();
    /// assert_eq!(redis::cmd("PING").query::<String>(&mut new).unwrap(), "PONG");
    /// ```
    pub fn freeze(&self) {
        let accepted = self.shared.accepted.load(Ordering::SeqCst);
        self.shared.frozen_upto.store(accepted, Ordering::SeqCst);
    }

    /// The server's next answer (on any connection) is swallowed: `hook` runs, then that
    /// connection is closed. The server did run the request; the client sees a dropped
    /// connection and cannot know it did. `hook` is where a test makes a concurrent request
    /// happen between the server running the request and the client retrying it.
    ///
    /// ```
    /// let server = session_testkit::RedisServer::start();
    /// let proxy = session_testkit::Proxy::start(server.addr());
    /// let client = redis::Client::open(format!("redis://{}", proxy.addr())).unwrap();
    /// let mut con = client.get_connection().unwrap();
    /// proxy.lose_next_reply(|| {});
    /// assert!(redis::cmd("SET").arg("k").arg("v").query::<()>(&mut con).is_err());
    /// // The SET ran all the same.
    /// assert_eq!(server.cmd::<String>(&["GET", "k"]), "v");
    /// ```
    pub fn lose_next_reply(&self, hook: impl FnOnce() + Send + 'static) {
        *self.shared.lose_reply.lock().unwrap() = Some(Box::new(hook));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        for socket in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        // Wakes the accept loop so that it sees `stopped`.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Starts the two copy threads of one connection.
fn forward(shared: &Arc<Shared>, client: TcpStream, server: TcpStream, generation: u64) {
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    {
        let mut sockets = shared.sockets.lock().unwrap();
        for socket in [&client, &server] {
            if let Ok(socket) = socket.try_clone() {
                sockets.push(socket);
            }
        }
    }
    let up = Arc::clone(shared);
    thread::spawn(move || copy(&up, client, server, generation, Direction::ToServer));
    let down = Arc::clone(shared);
    thread::spawn(move || copy(&down, server2, client2, generation, Direction::ToClient));
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    ToServer,
    ToClient,
}

fn copy(shared: &Shared, mut from: TcpStream, mut to: TcpStream, generation: u64, way: Direction) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if shared.frozen_upto.load(Ordering::SeqCst) >= generation {
            // Half-open: keep both sockets open, pass nothing on, until the proxy stops.
            while !shared.stopped.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        if way == Direction::ToClient {
            let hook = shared.lose_reply.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
