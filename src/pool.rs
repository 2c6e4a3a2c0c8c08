//! Keep-alive within a batch: the batch keeps the connections of its finished
//! transfers whose responses allow it, and the next transfer to the same origin
//! by the same route sends its request on one of them instead of connecting,
//! whichever thread runs it. A single URL never uses a pool: it sends
//! `Connection: close` (DESIGN §5).

use crate::response::Head;
use crate::transport::Stream;
use std::io::BufReader;
use std::sync::Mutex;

/// Idle connections a batch keeps per transfer it runs at once (the oldest
/// goes first): enough for a list that alternates between a few hosts, few
/// enough to be polite.
pub const MAX_IDLE: usize = 4;

/// Idle connections a batch keeps at most: with `-j 256`, four per transfer
/// would hold 1,024 descriptors, the usual limit, doing nothing.
pub const MAX_IDLE_IN_ALL: usize = 64;

/// Where a connection leads: the origin and the proxy it goes through. Only a
/// connection with the same route can carry the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route(String);

impl Route {
    /// `origin` is `scheme://host:port`; `proxy` the proxy's URL, if any.
    pub fn new(origin: &str, proxy: Option<&str>) -> Route {
        match proxy {
            Some(p) => Route(format!("{origin} through {p}")),
            None => Route(origin.to_owned()),
        }
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The idle connections of a batch, shared by the threads that run its
/// transfers.
pub struct Pool {
    max_idle: usize,
    idle: Mutex<Vec<(Route, BufReader<Stream>)>>,
}

impl Pool {
    /// A pool that keeps up to `max_idle` connections for the transfers that
    /// follow; with 0 one that keeps nothing (requests say `Connection: close`).
    pub fn new(max_idle: usize) -> Pool {
        Pool {
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The pool of a batch that runs `parallel` transfers at once: `MAX_IDLE`
    /// idle connections for each, `MAX_IDLE_IN_ALL` at most, unless `keep` is
    /// false (a single URL, or the user's `Connection: close`).
    pub fn for_batch(keep: bool, parallel: usize) -> Pool {
        match keep {
            true => Pool::new(parallel.saturating_mul(MAX_IDLE).clamp(1, MAX_IDLE_IN_ALL)),
            false => Pool::new(0),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(Route, BufReader<Stream>)>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether requests should ask for the connection to stay open.
    pub fn enabled(&self) -> bool {
        self.max_idle > 0
    }

    /// An idle connection for `route` that still looks usable: nothing unread
    /// in its buffer and nothing waiting on its socket (a server that closed an
    /// idle connection has sent its FIN by now, usually; the caller handles the
    /// race where it arrives later).
    pub fn take(&self, route: &Route) -> Option<BufReader<Stream>> {
        let conn = {
            let mut idle = self.idle();
            let i = idle.iter().rposition(|(r, _)| r == route)?;
            idle.remove(i).1
        };
        (conn.buffer().is_empty() && !conn.get_ref().socket().has_input()).then_some(conn)
    }

    /// Keeps `conn`, which has just delivered the whole of a response that
    /// allows another request on it, unless it holds bytes past that response
    /// (a server that sends more than it framed is not trusted twice).
    pub fn put(&self, route: Route, conn: BufReader<Stream>) {
        if !self.enabled() || !conn.buffer().is_empty() {
            return;
        }
        let mut idle = self.idle();
        if idle.len() >= self.max_idle {
            idle.remove(0);
        }
        idle.push((route, conn));
    }
}

/// Whether the connection may carry another request after this response
/// (RFC 9112 §9.3): HTTP/1.1 unless it says `Connection: close`; HTTP/1.0 only
/// when it says `Connection: keep-alive`. Never after a response framed both
/// by Transfer-Encoding and Content-Length: RFC 9112 §6.3 calls that a sign of
/// request smuggling or response splitting, so what follows it on the
/// connection is not trusted to be the next response.
pub fn keeps_alive(head: &Head) -> bool {
    let has = |name| head.values(name).next().is_some();
    if has("transfer-encoding") && has("content-length") {
        return false;
    }
    let mut close = false;
    let mut keep_alive = false;
    for token in head
        .values("connection")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
    {
        close |= token.eq_ignore_ascii_case(b"close");
        keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
    }
    !close && (head.minor_version >= 1 || keep_alive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_io::head;

    #[test]
    fn which_responses_keep_the_connection() {
        assert!(keeps_alive(&head("HTTP/1.1 200 OK")));
        assert!(keeps_alive(&head(
            "HTTP/1.1 200 OK\nConnection: Keep-Alive"
        )));
        assert!(!keeps_alive(&head("HTTP/1.1 200 OK\nConnection: close")));
        assert!(!keeps_alive(&head(
            "HTTP/1.1 200 OK\nConnection: upgrade, Close"
        )));
        assert!(!keeps_alive(&head("HTTP/1.0 200 OK")));
        assert!(!keeps_alive(&head(
            "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nContent-Length: 5"
        )));
        assert!(keeps_alive(&head(
            "HTTP/1.0 200 OK\nConnection: keep-alive"
        )));
        assert!(!keeps_alive(&head(
            "HTTP/1.0 200 OK\nConnection: keep-alive\nConnection: close"
        )));
    }

    /// A connected pair on loopback: our side as the pool holds it, and the
    /// server's side.
    fn pair(listener: &std::net::TcpListener) -> (BufReader<Stream>, std::net::TcpStream) {
        use crate::config::IpVersion;
        use crate::transport::{self, Limits};
        use crate::url::Host;
        use std::time::Duration;
        let limits = Limits {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            deadline: None,
        };
        let port = listener.local_addr().unwrap().port();
        let ours = transport::connect(
            &Host::Ip([127, 0, 0, 1].into()),
            port,
            IpVersion::Any,
            &limits,
            &mut |_| {},
        )
        .unwrap();
        let (theirs, _) = listener.accept().unwrap();
        (BufReader::new(Stream::Plain(ours)), theirs)
    }

    fn route(name: &str) -> Route {
        Route::new(&format!("http://{name}"), None)
    }

    #[test]
    fn keeps_a_few_by_route_and_drops_the_oldest() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let pool = Pool::new(MAX_IDLE);
        let mut servers = vec![];
        for i in 0..=MAX_IDLE {
            let (conn, server) = pair(&listener);
            pool.put(route(&format!("h{i}")), conn);
            servers.push(server);
        }
        assert!(pool.take(&route("h0")).is_none(), "the oldest was dropped");
        assert!(pool.take(&route("elsewhere")).is_none());
        for i in 1..=MAX_IDLE {
            assert!(pool.take(&route(&format!("h{i}"))).is_some(), "h{i}");
        }
        assert!(pool.take(&route("h1")).is_none(), "taken once");
    }

    #[test]
    fn a_batch_keeps_a_few_idle_connections_per_transfer_at_once() {
        assert_eq!(Pool::for_batch(true, 1).max_idle, MAX_IDLE);
        assert_eq!(Pool::for_batch(true, 8).max_idle, 8 * MAX_IDLE);
        assert_eq!(Pool::for_batch(true, 256).max_idle, MAX_IDLE_IN_ALL);
        assert!(!Pool::for_batch(false, 8).enabled());
    }

    #[test]
    fn a_connection_the_server_wrote_to_or_closed_is_not_reused() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let pool = Pool::new(MAX_IDLE);
        let (conn, mut server) = pair(&listener);
        pool.put(route("h"), conn);
        server.write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
        assert!(pool.take(&route("h")).is_none(), "unasked bytes");
        let (conn, server) = pair(&listener);
        pool.put(route("h"), conn);
        drop(server);
        assert!(pool.take(&route("h")).is_none(), "closed by the server");
        let (mut conn, mut server) = pair(&listener);
        server.write_all(b"extra").unwrap();
        std::io::BufRead::fill_buf(&mut conn).unwrap();
        pool.put(route("h"), conn);
        assert!(
            pool.take(&route("h")).is_none(),
            "bytes past the body, buffered"
        );
        let (conn, _server) = pair(&listener);
        pool.put(route("h"), conn);
        assert!(pool.take(&route("h")).is_some(), "idle and open");
    }

    #[test]
    fn a_pool_that_does_not_keep_keeps_nothing() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let pool = Pool::new(0);
        let (conn, _server) = pair(&listener);
        pool.put(route("h"), conn);
        assert!(pool.take(&route("h")).is_none());
    }

    #[test]
    fn routes_differ_by_proxy() {
        assert_eq!(
            Route::new("http://h:80", None),
            Route::new("http://h:80", None)
        );
        assert_ne!(
            Route::new("http://h:80", None),
            Route::new("http://h:80", Some("http://p:3128"))
        );
    }
}
