//! The HTTP client under the AWS SDK: HTTP/1.1 (hyper) over TCP, TLS with rustls and ring
//! trusting the embedded Amazon roots (plus `SSL_CERT_FILE`), directly or through an HTTP proxy
//! from the standard variables. AWS's Metering and STS endpoints speak HTTP/1.1, so there is no
//! HTTP/2 here.
//!
//! Why our own: the SDK's client has no proxy setting on the builder this needs, resolves names
//! on tokio's blocking pool (a resolver that never answers then holds the process past its
//! deadline), and carries HTTP/2. Here names are resolved on a detached thread that nobody
//! waits for, and every failure says which host, address or proxy it was about.
//!
//! Proxies (the variables curl, Go and the AWS CLI read): `HTTPS_PROXY` for https endpoints,
//! `HTTP_PROXY` for http ones, `ALL_PROXY` for both (lower case wins over upper case);
//! `NO_PROXY` lists hosts (with their subdomains), `host:port`, IP addresses, CIDR blocks or `*`.
//! https goes through a `CONNECT` tunnel, http in absolute form. Credentials in the proxy URL
//! become `Proxy-Authorization: Basic` and are never logged. Loopback and link-local addresses
//! (the ECS and EC2 credential endpoints) always go direct.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::body::SdkBody;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

/// Amazon Trust Services roots: AWS endpoints chain to these, so a scratch image needs no CA files.
const AMAZON_ROOTS: &[u8] = include_bytes!("amazon-roots.pem");
/// Used when the SDK sets no connect timeout.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest proxy answer to a `CONNECT`.
const MAX_PROXY_ANSWER: usize = 8 * 1024;

/// What the transport needs from the configuration, all checked before any request.
#[derive(Clone, Debug, Default)]
pub struct NetworkSettings {
    /// Certificates from `SSL_CERT_FILE` (a TLS-inspecting proxy's CA, a local test CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub proxies: Proxies,
}

/// The standard proxy variables as given (already chosen: lower case over upper case).
#[derive(Clone, Debug, Default)]
pub struct ProxyVariables {
    pub https: Option<(&'static str, String)>,
    pub http: Option<(&'static str, String)>,
    pub all: Option<(&'static str, String)>,
    pub no_proxy: Option<String>,
}

/// The proxies to use, by endpoint scheme, and the exceptions.
#[derive(Clone, Debug, Default)]
pub struct Proxies {
    https: Option<Proxy>,
    http: Option<Proxy>,
    no_proxy: Vec<NoProxy>,
}

/// One HTTP proxy. `Display` never shows its credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
    /// `Basic …`, from the URL's user and password.
    authorization: Option<String>,
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = if self.authorization.is_some() {
            " (with credentials)"
        } else {
            ""
        };
        write!(
            f,
            "http://{}:{}{credentials}",
            bracketed(&self.host),
            self.port
        )
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum NoProxy {
    Everything,
    Network(IpAddr, u8),
    /// A host name and its subdomains, optionally only on one port.
    Domain(String, Option<u16>),
}

impl Proxies {
    /// Parses the variables; an unusable proxy URL is an error naming the variable.
    pub fn from_variables(variables: &ProxyVariables) -> Result<Proxies, String> {
        let parse = |given: &Option<(&'static str, String)>| {
            given
                .as_ref()
                .map(|(name, url)| Proxy::parse(url).map_err(|e| format!("{name}: {e}")))
                .transpose()
        };
        let all = parse(&variables.all)?;
        Ok(Proxies {
            https: parse(&variables.https)?.or_else(|| all.clone()),
            http: parse(&variables.http)?.or(all),
            no_proxy: variables
                .no_proxy
                .as_deref()
                .map(parse_no_proxy)
                .unwrap_or_default(),
        })
    }

    /// The proxy for a request to `host:port` over `scheme`, if any.
    fn route(&self, scheme: Scheme, host: &str, port: u16) -> Option<&Proxy> {
        let proxy = match scheme {
            Scheme::Https => self.https.as_ref(),
            Scheme::Http => self.http.as_ref(),
        }?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if always_direct(host) || self.no_proxy.iter().any(|rule| rule.matches(host, port)) {
            return None;
        }
        Some(proxy)
    }

    /// A short description for logs: which proxies are in use (never their credentials).
    pub fn describe(&self) -> String {
        match (&self.https, &self.http) {
            (None, None) => "direct".into(),
            (https, http) => format!(
                "https via {}, http via {}",
                https.as_ref().map_or("direct".into(), |p| p.to_string()),
                http.as_ref().map_or("direct".into(), |p| p.to_string())
            ),
        }
    }
}

impl Proxy {
    fn parse(url: &str) -> Result<Proxy, String> {
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "the proxy scheme {scheme}:// is not supported; use an http:// proxy (https endpoints go through it with CONNECT)"
                ))
            }
            None => url,
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| {
            "the proxy URL has no usable host[:port]; expected http://HOST:PORT".to_string()
        })?;
        let authorization = userinfo.map(|userinfo| {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let pair = format!("{}:{}", percent_decode(user), percent_decode(password));
            format!("Basic {}", STANDARD.encode(pair))
        });
        Ok(Proxy {
            host,
            port: port.unwrap_or(80),
            authorization,
        })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            _ => (text, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => None,
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_no_proxy(list: &str) -> Vec<NoProxy> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            if entry == "*" {
                return Some(NoProxy::Everything);
            }
            if let Some((ip, bits)) = entry.split_once('/') {
                let ip: IpAddr = ip.parse().ok()?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits = bits.parse::<u8>().ok().filter(|b| *b <= max)?;
                return Some(NoProxy::Network(ip, bits));
            }
            if let Ok(ip) = entry
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                return Some(NoProxy::Network(ip, if ip.is_ipv4() { 32 } else { 128 }));
            }
            let entry = entry.trim_start_matches('*').trim_start_matches('.');
            let (host, port) = split_host_port(entry)?;
            Some(NoProxy::Domain(host, port))
        })
        .collect()
}

impl NoProxy {
    fn matches(&self, host: &str, port: u16) -> bool {
        match self {
            NoProxy::Everything => true,
            NoProxy::Network(network, bits) => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_network(ip, *network, *bits)),
            NoProxy::Domain(domain, only_port) => {
                let host = host.to_ascii_lowercase();
                let name_matches = host == *domain
                    || host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|prefix| prefix.ends_with('.'));
                name_matches && only_port.is_none_or(|p| p == port)
            }
        }
    }
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Loopback and link-local hosts never go through a proxy: the ECS credential endpoint
/// (169.254.170.2), EC2 metadata (169.254.169.254, fd00:ec2::254) and anything local.
fn always_direct(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_link_local(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback()
                || (ip.segments()[0] & 0xffc0) == 0xfe80
                || ip == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
        Err(_) => false,
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Parses `SSL_CERT_FILE`'s PEM bundle once, checking every certificate the way rustls will
/// use it: a bundle that cannot be used is a configuration error, not a failed handshake later.
pub fn read_ca_bundle(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read SSL_CERT_FILE {path}: {e}"))?;
    let invalid =
        |why: String| format!("SSL_CERT_FILE {path} is not a usable PEM certificate bundle: {why}");
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid("it holds no BEGIN CERTIFICATE block".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in &certificates {
        roots
            .add(certificate.clone())
            .map_err(|e| invalid(e.to_string()))?;
    }
    Ok(certificates)
}

/// The HTTP client handed to the AWS SDK (Metering, STS and the credential providers).
#[derive(Clone, Debug)]
pub struct Transport {
    shared: Arc<Shared>,
}

struct Shared {
    tls: tokio_rustls::TlsConnector,
    proxies: Proxies,
    /// Idle keep-alive connections, one per endpoint: a relay that reports every hour, or
    /// flushes several dimensions at once, reuses its TLS session instead of a new handshake.
    idle: Mutex<Vec<(String, SendRequest<SdkBody>)>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Transport({})", self.proxies.describe())
    }
}

impl Transport {
    pub fn new(settings: &NetworkSettings) -> Result<Transport, String> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(AMAZON_ROOTS) {
            let certificate = certificate.map_err(|e| format!("embedded roots: {e}"))?;
            roots
                .add(certificate)
                .map_err(|e| format!("embedded roots: {e}"))?;
        }
        for certificate in &settings.extra_roots {
            roots
                .add(certificate.clone())
                .map_err(|e| format!("SSL_CERT_FILE: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Transport {
            shared: Arc::new(Shared {
                tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
                proxies: settings.proxies.clone(),
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn into_shared(self) -> SharedHttpClient {
        SharedHttpClient::new(self)
    }
}

impl HttpClient for Transport {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            shared: Arc::clone(&self.shared),
            connect_timeout: settings
                .connect_timeout()
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        })
    }
}

#[derive(Debug)]
struct Connector {
    shared: Arc<Shared>,
    connect_timeout: Duration,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let shared = Arc::clone(&self.shared);
        let connect_timeout = self.connect_timeout;
        HttpConnectorFuture::new(async move {
            let response = shared
                .send(request, connect_timeout)
                .await
                .map_err(TransportError::into_connector_error)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// Where a request goes: scheme, host (as in the URL) and port.
#[derive(Debug, Clone)]
struct Endpoint {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl Endpoint {
    fn of(uri: &http::Uri) -> Result<Endpoint, TransportError> {
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            _ => return Err(TransportError::Url(uri.to_string())),
        };
        let host = uri
            .host()
            .ok_or_else(|| TransportError::Url(uri.to_string()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let default_port = if scheme == Scheme::Https { 443 } else { 80 };
        Ok(Endpoint {
            scheme,
            port: uri.port_u16().unwrap_or(default_port),
            host,
        })
    }

    fn authority(&self) -> String {
        format!("{}:{}", bracketed(&self.host), self.port)
    }
}

impl Shared {
    async fn send(
        &self,
        mut request: http::Request<SdkBody>,
        connect_timeout: Duration,
    ) -> Result<http::Response<hyper::body::Incoming>, TransportError> {
        let endpoint = Endpoint::of(request.uri())?;
        let proxy = self
            .proxies
            .route(endpoint.scheme, &endpoint.host, endpoint.port);
        let key = format!("{:?}://{}", endpoint.scheme, endpoint.authority());
        debug!(
            method = %request.method(),
            url = %request.uri(),
            route = %proxy.map_or("direct".to_string(), |p| format!("via proxy {p}")),
            "HTTP request"
        );
        prepare(&mut request, &endpoint, proxy)?;
        let mut sender = match self.take_idle(&key) {
            Some(sender) => sender,
            None => self.connect(&endpoint, proxy, connect_timeout).await?,
        };
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| TransportError::Http(endpoint.authority(), e))?;
        self.keep_idle(key, sender);
        Ok(response)
    }

    fn take_idle(&self, key: &str) -> Option<SendRequest<SdkBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let at = idle.iter().position(|(k, _)| k == key)?;
        let (_, sender) = idle.swap_remove(at);
        // A connection whose last answer is still being read, or that the server closed, is
        // not reused (dropping it closes it).
        (sender.is_ready() && !sender.is_closed()).then_some(sender)
    }

    fn keep_idle(&self, key: String, sender: SendRequest<SdkBody>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|(k, _)| *k != key);
        idle.push((key, sender));
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        proxy: Option<&Proxy>,
        limit: Duration,
    ) -> Result<SendRequest<SdkBody>, TransportError> {
        let (host, port) = match proxy {
            Some(proxy) => (proxy.host.as_str(), proxy.port),
            None => (endpoint.host.as_str(), endpoint.port),
        };
        let mut tcp = tcp_connect(host, port, limit)
            .await
            .map_err(|e| match proxy {
                Some(proxy) => TransportError::Proxy(proxy.to_string(), e.to_string()),
                None => e,
            })?;
        let stream: Box<dyn Io> = match (endpoint.scheme, proxy) {
            (Scheme::Http, _) => Box::new(tcp),
            (Scheme::Https, proxy) => {
                if let Some(proxy) = proxy {
                    tokio::time::timeout(limit, tunnel(&mut tcp, endpoint, proxy))
                        .await
                        .map_err(|_| {
                            TransportError::Proxy(
                                proxy.to_string(),
                                format!(
                                    "no answer to CONNECT within {}",
                                    crate::aws::seconds(limit)
                                ),
                            )
                        })??;
                }
                Box::new(self.tls_handshake(tcp, endpoint, limit).await?)
            }
        };
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| TransportError::Http(endpoint.authority(), e))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%error, "connection closed");
            }
        });
        Ok(sender)
    }

    async fn tls_handshake(
        &self,
        tcp: TcpStream,
        endpoint: &Endpoint,
        limit: Duration,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TransportError> {
        let name = ServerName::try_from(endpoint.host.clone())
            .map_err(|_| TransportError::Url(endpoint.host.clone()))?;
        match tokio::time::timeout(limit, self.tls.connect(name, tcp)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(error)) => Err(TransportError::Tls(endpoint.host.clone(), error)),
            Err(_) => Err(TransportError::Timeout(format!(
                "TLS handshake with {} took longer than {}",
                endpoint.host,
                crate::aws::seconds(limit)
            ))),
        }
    }
}

/// Origin-form target and a `Host` header for a direct request; absolute form and the proxy's
/// credentials for an http request through a proxy (RFC 9112 §3.2).
fn prepare(
    request: &mut http::Request<SdkBody>,
    endpoint: &Endpoint,
    proxy: Option<&Proxy>,
) -> Result<(), TransportError> {
    let default_port = match endpoint.scheme {
        Scheme::Https => 443,
        Scheme::Http => 80,
    };
    let host = if endpoint.port == default_port {
        bracketed(&endpoint.host)
    } else {
        endpoint.authority()
    };
    if !request.headers().contains_key(http::header::HOST) {
        let value = http::HeaderValue::from_str(&host)
            .map_err(|_| TransportError::Url(endpoint.host.clone()))?;
        request.headers_mut().insert(http::header::HOST, value);
    }
    match (endpoint.scheme, proxy) {
        (Scheme::Http, Some(proxy)) => {
            if let Some(authorization) = &proxy.authorization {
                let value = http::HeaderValue::from_str(authorization).map_err(|_| {
                    TransportError::Proxy(proxy.to_string(), "bad credentials".into())
                })?;
                request
                    .headers_mut()
                    .insert(http::header::PROXY_AUTHORIZATION, value);
            }
        }
        _ => {
            let origin = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            *request.uri_mut() = origin
                .parse()
                .map_err(|_| TransportError::Url(origin.clone()))?;
        }
    }
    Ok(())
}

/// `CONNECT host:port` through the proxy (RFC 9110 §9.3.6): any status but 2xx is a refusal.
async fn tunnel(
    tcp: &mut TcpStream,
    endpoint: &Endpoint,
    proxy: &Proxy,
) -> Result<(), TransportError> {
    let authority = endpoint.authority();
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(authorization) = &proxy.authorization {
        head.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
    }
    head.push_str("\r\n");
    let failed = |why: String| TransportError::Proxy(proxy.to_string(), why);
    tcp.write_all(head.as_bytes())
        .await
        .map_err(|e| failed(format!("cannot send CONNECT: {e}")))?;
    let mut answer = Vec::with_capacity(512);
    loop {
        let mut chunk = [0u8; 512];
        let n = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| failed(format!("no answer to CONNECT: {e}")))?;
        if n == 0 {
            return Err(failed(
                "closed the connection instead of answering CONNECT".into(),
            ));
        }
        answer.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&answer) {
            Ok(httparse::Status::Complete(end)) => {
                let status = response.code.unwrap_or_default();
                if !(200..300).contains(&status) {
                    return Err(TransportError::ProxyRefused {
                        proxy: proxy.to_string(),
                        target: authority,
                        status,
                        reason: response.reason.unwrap_or_default().to_owned(),
                    });
                }
                if end != answer.len() {
                    return Err(failed("sent data before the TLS handshake".into()));
                }
                return Ok(());
            }
            Ok(httparse::Status::Partial) if answer.len() < MAX_PROXY_ANSWER => continue,
            Ok(httparse::Status::Partial) => {
                return Err(failed("its answer to CONNECT is too long".into()))
            }
            Err(e) => return Err(failed(format!("its answer to CONNECT is not HTTP: {e}"))),
        }
    }
}

/// Resolves `host` (unless it is an address) and connects to the first address that answers.
async fn tcp_connect(host: &str, port: u16, limit: Duration) -> Result<TcpStream, TransportError> {
    let addresses = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => resolve(host, port, limit).await?,
    };
    let mut last = None;
    for address in addresses {
        match tokio::time::timeout(limit, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(error)) => last = Some(error.to_string()),
            Err(_) => last = Some(format!("no answer within {}", crate::aws::seconds(limit))),
        }
    }
    Err(TransportError::Connect(
        format!("{}:{port}", bracketed(host)),
        last.unwrap_or_else(|| "no address".into()),
    ))
}

/// The system resolver (getaddrinfo) on a detached thread: it honours /etc/hosts and
/// resolv.conf, and when it hangs (a resolver that never answers: 5 s on musl, 10-20 s on glibc
/// with Kubernetes search domains) nobody waits for it past `limit`.
async fn resolve(
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<Vec<SocketAddr>, TransportError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let _ = sender.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        })
        .map_err(|e| {
            TransportError::Resolve(
                host.to_owned(),
                format!("cannot start a resolver thread: {e}"),
            )
        })?;
    match tokio::time::timeout(limit, receiver).await {
        Ok(Ok(Ok(addresses))) if !addresses.is_empty() => Ok(addresses),
        Ok(Ok(Ok(_))) => Err(TransportError::Resolve(
            host.to_owned(),
            "no addresses".into(),
        )),
        Ok(Ok(Err(error))) => Err(TransportError::Resolve(host.to_owned(), error.to_string())),
        Ok(Err(_)) => Err(TransportError::Resolve(
            host.to_owned(),
            "the resolver thread died".into(),
        )),
        Err(_) => Err(TransportError::Resolve(
            host.to_owned(),
            format!(
                "no answer from the DNS resolver within {}",
                crate::aws::seconds(limit)
            ),
        )),
    }
}

/// The stream under hyper: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Why a request could not be sent or answered. Each names the host, address or proxy.
#[derive(Debug)]
pub enum TransportError {
    Url(String),
    Resolve(String, String),
    Connect(String, String),
    Proxy(String, String),
    /// The proxy answered `CONNECT` with a status other than 2xx.
    ProxyRefused {
        proxy: String,
        target: String,
        status: u16,
        reason: String,
    },
    Tls(String, std::io::Error),
    Timeout(String),
    Http(String, hyper::Error),
}

impl TransportError {
    /// A certificate rustls refused (unknown issuer, wrong name, expired...): retrying cannot
    /// help, and it is what a redirected endpoint looks like.
    pub fn is_untrusted_certificate(&self) -> bool {
        let TransportError::Tls(_, error) = self else {
            return false;
        };
        matches!(
            error
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>()),
            Some(rustls::Error::InvalidCertificate(_))
        )
    }

    /// A proxy that refused the tunnel for a reason on our side (4xx: credentials, an allow
    /// list): asking again cannot help. A 5xx (it could not reach AWS) is worth retrying.
    pub fn is_proxy_refusal(&self) -> bool {
        matches!(self, TransportError::ProxyRefused { status, .. } if (400..500).contains(status))
    }

    fn into_connector_error(self) -> ConnectorError {
        match self {
            TransportError::Url(_) => ConnectorError::user(self.into()),
            TransportError::Timeout(_) => ConnectorError::timeout(self.into()),
            _ => ConnectorError::io(self.into()),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Url(url) => write!(f, "cannot send a request to `{url}`"),
            TransportError::Resolve(host, why) => write!(f, "cannot resolve {host}: {why}"),
            TransportError::Connect(address, why) => {
                write!(f, "cannot connect to {address}: {why}")
            }
            TransportError::Proxy(proxy, why) => write!(f, "proxy {proxy}: {why}"),
            TransportError::ProxyRefused {
                proxy,
                target,
                status,
                reason,
            } => write!(
                f,
                "proxy {proxy} refused CONNECT {target}: HTTP {status} {reason}"
            ),
            TransportError::Tls(host, why) => write!(f, "TLS with {host} failed: {why}"),
            TransportError::Timeout(what) => f.write_str(what),
            TransportError::Http(authority, why) => {
                write!(f, "HTTP exchange with {authority} failed: {why}")
            }
        }
    }
}

impl std::error::Error for TransportError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(https: Option<&str>, http: Option<&str>, no_proxy: Option<&str>) -> Proxies {
        Proxies::from_variables(&ProxyVariables {
            https: https.map(|v| ("HTTPS_PROXY", v.to_owned())),
            http: http.map(|v| ("HTTP_PROXY", v.to_owned())),
            all: None,
            no_proxy: no_proxy.map(str::to_owned),
        })
        .unwrap()
    }

    #[test]
    fn proxy_urls_parse_and_never_show_credentials() {
        let proxy = Proxy::parse("http://us%40er:p%3Ass@Proxy.Corp:3128/").unwrap();
        assert_eq!((proxy.host.as_str(), proxy.port), ("proxy.corp", 3128));
        assert_eq!(
            proxy.authorization.as_deref(),
            Some(format!("Basic {}", STANDARD.encode("us@er:p:ss")).as_str())
        );
        let shown = format!("{proxy} {proxy:?}");
        assert!(
            !shown.contains("p:ss") && !shown.contains("us@er"),
            "{shown}"
        );
        assert_eq!(Proxy::parse("proxy:8080").unwrap().port, 8080);
        assert_eq!(Proxy::parse("http://[::1]:3128").unwrap().host, "::1");
        assert_eq!(Proxy::parse("http://proxy").unwrap().port, 80);
        for bad in [
            "socks5://p:1080",
            "https://p:443",
            "http://",
            "http://p:99999",
            "http://p:x",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_proxy_matches_suffixes_ports_addresses_and_everything() {
        let p = proxies(
            Some("http://proxy:3128"),
            Some("http://proxy:3128"),
            Some("internal.corp, .amazonaws.com:8443,10.0.0.0/8,192.168.1.5,[fd00::1]"),
        );
        let via = |scheme, host: &str, port| p.route(scheme, host, port).is_some();
        assert!(!via(Scheme::Https, "internal.corp", 443));
        assert!(!via(Scheme::Https, "a.b.internal.corp", 443));
        assert!(via(Scheme::Https, "notinternal.corp", 443));
        assert!(via(
            Scheme::Https,
            "metering.marketplace.us-east-1.amazonaws.com",
            443
        ));
        assert!(!via(
            Scheme::Https,
            "metering.marketplace.us-east-1.amazonaws.com",
            8443
        ));
        assert!(!via(Scheme::Http, "10.1.2.3", 80));
        assert!(via(Scheme::Http, "11.1.2.3", 80));
        assert!(!via(Scheme::Http, "192.168.1.5", 80));
        assert!(!via(Scheme::Http, "fd00::1", 80));
        let everything = proxies(Some("http://proxy:3128"), None, Some("*"));
        assert!(everything
            .route(Scheme::Https, "sts.amazonaws.com", 443)
            .is_none());
    }

    #[test]
    fn credential_endpoints_and_loopback_always_go_direct() {
        let p = proxies(Some("http://proxy:3128"), Some("http://proxy:3128"), None);
        for host in [
            "169.254.170.2",
            "169.254.169.254",
            "fd00:ec2::254",
            "127.0.0.1",
            "::1",
            "localhost",
            "fe80::1",
        ] {
            assert!(p.route(Scheme::Http, host, 80).is_none(), "{host}");
        }
        assert!(p
            .route(Scheme::Https, "sts.us-east-1.amazonaws.com", 443)
            .is_some());
    }

    #[test]
    fn all_proxy_is_the_fallback_for_both_schemes() {
        let p = Proxies::from_variables(&ProxyVariables {
            all: Some(("ALL_PROXY", "http://all:1".into())),
            http: Some(("http_proxy", "http://plain:2".into())),
            ..ProxyVariables::default()
        })
        .unwrap();
        assert_eq!(
            p.route(Scheme::Https, "x.example", 443).map(|p| p.port),
            Some(1)
        );
        assert_eq!(
            p.route(Scheme::Http, "x.example", 80).map(|p| p.port),
            Some(2)
        );
        let bad = Proxies::from_variables(&ProxyVariables {
            https: Some(("HTTPS_PROXY", "socks5://p:1".into())),
            ..ProxyVariables::default()
        });
        assert!(bad.unwrap_err().starts_with("HTTPS_PROXY: "));
    }

    #[test]
    fn the_embedded_roots_load() {
        assert!(Transport::new(&NetworkSettings::default()).is_ok());
    }
}
