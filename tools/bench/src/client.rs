//! The TLS client of the handshake and memory measurements: rustls with the ring provider, one
//! `GET /` per connection. [`Handshake::Full`] clients never resume; [`Handshake::Resumed`]
//! clients keep rustls' default session store (shared by every thread of one client) and offer
//! what the server gave them last: a TLS 1.3 ticket, a TLS 1.2 ticket or session id.
//!
//! The server's certificate is checked by pinning: the end-entity certificate must be exactly the
//! one under test. Chain building would only add client CPU time that has nothing to do with the
//! servers being compared. The handshake signature is verified as usual by [`Signatures::Check`]
//! clients; load clients ([`Signatures::Skip`], as wrk or h2load do) leave it out so that one
//! client core can keep one server core busy: the server signs either way.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, SignatureScheme, StreamOwned};

use task_support::Result;

/// A TLS protocol version under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Tls13,
    Tls12,
}

impl Version {
    pub fn label(self) -> &'static str {
        match self {
            Self::Tls13 => "TLS 1.3",
            Self::Tls12 => "TLS 1.2",
        }
    }
}

/// Whether the client resumes sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Every connection is a full handshake: no session is stored or offered.
    Full,
    /// Each connection offers the session the server issued before (rustls' default store).
    Resumed,
}

impl Handshake {
    pub fn label(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Resumed => "resumed",
        }
    }
}

/// Whether the client verifies the server's handshake signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signatures {
    Check,
    Skip,
}

#[derive(Debug)]
struct Pinned {
    leaf: Vec<u8>,
    algorithms: WebPkiSupportedAlgorithms,
    signatures: Signatures,
}

impl Pinned {
    fn check(
        &self,
        verify: impl FnOnce() -> std::result::Result<HandshakeSignatureValid, rustls::Error>,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        match self.signatures {
            Signatures::Check => verify(),
            Signatures::Skip => Ok(HandshakeSignatureValid::assertion()),
        }
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("the server presented another certificate than the one under test".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.check(|| verify_tls12_signature(message, cert, dss, &self.algorithms))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.check(|| verify_tls13_signature(message, cert, dss, &self.algorithms))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Connects to one server over one TLS version.
#[derive(Debug, Clone)]
pub struct Client {
    config: Arc<ClientConfig>,
    addr: SocketAddr,
}

/// An open connection that has done its request.
pub type Connection = StreamOwned<ClientConnection, TcpStream>;

impl Client {
    /// `leaf_der`: the certificate the server must present.
    pub fn new(
        addr: SocketAddr,
        version: Version,
        leaf_der: &[u8],
        signatures: Signatures,
        handshake: Handshake,
    ) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            Pinned { leaf: leaf_der.to_vec(), algorithms: provider.signature_verification_algorithms, signatures };
        let versions: &[&rustls::SupportedProtocolVersion] = match version {
            Version::Tls13 => &[&rustls::version::TLS13],
            Version::Tls12 => &[&rustls::version::TLS12],
        };
        let mut config = ClientConfig::builder_with_provider(provider.clone() as Arc<CryptoProvider>)
            .with_protocol_versions(versions)
            .map_err(|e| format!("client TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.resumption = match handshake {
            Handshake::Full => Resumption::disabled(),
            Handshake::Resumed => Resumption::default(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { config: Arc::new(config), addr })
    }

    /// A new connection (full handshake), `GET /` and its whole response. Returns the open
    /// connection; [`close`] ends it cleanly.
    pub fn request(&self) -> io::Result<Connection> {
        let tcp = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
        let name = ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into());
        let conn = ClientConnection::new(self.config.clone(), name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, tcp);
        stream.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: camera-bench\r\nAccept: */*\r\n\r\n")?;
        read_response(&mut stream)?;
        Ok(stream)
    }

    /// A full handshake alone on a new connection, then close. Returns the bytes read from the TCP
    /// connection until the handshake completed (the server's whole first flight, TLS record
    /// headers included; TLS 1.3 session tickets come after it and are not counted) and the
    /// certificates the server sent, leaf first.
    pub fn handshake_bytes(&self) -> io::Result<(usize, Vec<Vec<u8>>)> {
        let tcp = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let name = ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into());
        let mut conn = ClientConnection::new(self.config.clone(), name).map_err(io::Error::other)?;
        let mut counted = CountingStream { inner: tcp, read: 0 };
        while conn.is_handshaking() {
            conn.complete_io(&mut counted)?;
        }
        let first_flight = counted.read;
        let certs = conn.peer_certificates().unwrap_or_default().iter().map(|c| c.as_ref().to_vec()).collect();
        conn.send_close_notify();
        let _ = conn.writer().flush();
        let _ = conn.write_tls(&mut counted);
        Ok((first_flight, certs))
    }

    /// One round: connect, handshake, request, close. True when the handshake resumed a session.
    pub fn round(&self) -> io::Result<bool> {
        let conn = self.request()?;
        let resumed = conn.conn.handshake_kind() == Some(HandshakeKind::Resumed);
        close(conn);
        Ok(resumed)
    }
}

/// A TCP stream that counts the bytes read from it.
struct CountingStream {
    inner: TcpStream,
    read: usize,
}

impl Read for CountingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

impl Write for CountingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Sends close_notify and closes the TCP connection.
pub fn close(mut conn: Connection) {
    conn.conn.send_close_notify();
    let _ = conn.flush();
}

/// Reads one HTTP/1.1 response with a Content-Length body; anything but 200 is an error.
fn read_response(stream: &mut Connection) -> io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::other("response head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before the response"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        let status = head.lines().next().unwrap_or_default().to_owned();
        return Err(io::Error::other(format!("GET / answered {status:?}")));
    }
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("response without Content-Length"))?;
    let mut have = buf.len() - head_end;
    while have < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "response body cut short"));
        }
        have += n;
    }
    Ok(())
}
