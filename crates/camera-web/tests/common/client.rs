//! A TLS client for tests that need more than curl: connections from chosen loopback addresses,
//! keep-alive, raw requests, connections dropped on purpose.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::Camera;

#[derive(Clone)]
pub struct Client {
    connector: TlsConnector,
    server: SocketAddr,
}

impl Client {
    pub fn new(camera: &Camera) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(camera.ca_path()).unwrap()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self { connector: TlsConnector::from(Arc::new(config)), server: camera.https.parse().unwrap() }
    }

    pub async fn tcp_from(&self, source: Ipv4Addr) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
        socket.connect(self.server).await
    }

    pub async fn tls_from(&self, source: Ipv4Addr) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = self.tcp_from(source).await?;
        self.connector.connect(ServerName::IpAddress(self.server.ip().into()), tcp).await
    }
}

/// Sends one request and reads one response (status, body) on a keep-alive connection.
pub async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    head: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    request_keep_alive(stream, head, body).await.map(|(status, body, _)| (status, body))
}

/// [`request`], also saying whether the server closes the connection after this answer
/// (`Connection: close`), as an HTTP client must know before it sends the next request.
pub async fn request_keep_alive<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    head: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>, bool)> {
    stream.write_all(format!("{head}Host: 127.0.0.1\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes()).await?;
    stream.write_all(body).await?;
    read_answer(stream).await
}

pub async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<(u16, Vec<u8>)> {
    read_answer(stream).await.map(|(status, body, _)| (status, body))
}

/// One response: status, body, and whether the server said `Connection: close`.
async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<(u16, Vec<u8>, bool)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head:?}")))?;
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap_or(0));
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let closes = head.lines().any(|l| l.strip_prefix("connection:").is_some_and(|v| v.trim() == "close"));
    Ok((status, body, closes))
}

/// Reads until the server closes the connection; returns what it said before closing.
pub async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut said = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        said.extend_from_slice(&chunk[..n]);
    }
    said
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

pub fn addr(a: u8, b: u8, c: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, a, b, c)
}

/// One answer, whole: status, headers (names lower-cased) and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends a request with the given extra header lines (each `Name: value`) on a new connection and
/// reads the whole answer.
pub async fn exchange(client: &Client, method: &str, target: &str, headers: &[String], body: &[u8]) -> Answer {
    let mut tls = client.tls_from(addr(0, 0, 1)).await.unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(body).await.unwrap();
    let raw = read_until_closed(&mut tls).await;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an answer head") + 4;
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.lines();
    let status = lines.next().and_then(|l| l.get(9..12)).and_then(|s| s.parse().ok()).expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer { status, headers, body: raw[end..].to_vec() }
}
