//! Just enough HTTP/1.1 for the AWS SDK's hyper client: keep-alive, Content-Length or chunked
//! request bodies, and raw byte replies so that faults can be staged exactly.
//!
//! Reads are unbuffered: the head is first peeked, then consumed to its exact length, so any
//! later request stays in the kernel buffer. That lets `no-read` decide from a peeked head and
//! then leave the request really unread.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::thread::sleep;
use std::time::{Duration, Instant};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;
/// How long a client may take to finish a head it has started sending.
const HEAD_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    pub fn wants_close(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let has = |token| connection.split(',').any(|t| t.trim() == token);
        has("close") || (self.version == "HTTP/1.0" && !has("keep-alive"))
    }
}

#[derive(Debug)]
pub enum HttpError {
    /// The peer went away or the socket failed: just drop the connection.
    Io(io::Error),
    /// Malformed or oversized request: answer with this status, then close.
    Bad(u16, String),
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}

/// Waits for a complete request head without consuming it; gives the head and its length.
/// `None` means the peer closed the connection between requests.
pub fn peek_head(stream: &TcpStream) -> Result<Option<(Request, usize)>, HttpError> {
    let mut buf = vec![0; MAX_HEAD];
    let mut started: Option<Instant> = None;
    let mut delay = Duration::from_millis(1);
    loop {
        let n = stream.peek(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(end) = find(&buf[..n], b"\r\n\r\n") {
            return parse_head(&buf[..end + 4]).map(|req| Some((req, end + 4)));
        }
        if n == buf.len() {
            return Err(HttpError::Bad(431, "request head too large".into()));
        }
        // peek returns at once while a partial head sits in the buffer: back off a little.
        if started.get_or_insert_with(Instant::now).elapsed() > HEAD_DEADLINE {
            return Err(HttpError::Bad(408, "request head not completed".into()));
        }
        sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Reads one whole request (head and body). `None` means the peer closed between requests.
pub fn read_request(stream: &mut TcpStream) -> Result<Option<Request>, HttpError> {
    let Some((mut req, head_len)) = peek_head(stream)? else {
        return Ok(None);
    };
    io::copy(&mut (&*stream).take(head_len as u64), &mut io::sink())?;
    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    req.body = read_body(stream, &req)?;
    Ok(Some(req))
}

fn read_body(stream: &mut TcpStream, req: &Request) -> Result<Vec<u8>, HttpError> {
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return read_chunked(stream);
    }
    let len = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| HttpError::Bad(400, format!("bad Content-Length {v:?}")))?,
    };
    if len > MAX_BODY {
        return Err(HttpError::Bad(413, "request body too large".into()));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body)?;
    Ok(body)
}

fn read_chunked(stream: &mut TcpStream) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(stream)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Bad(400, format!("bad chunk size {size_text:?}")))?;
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(HttpError::Bad(413, "request body too large".into()));
        }
        if size == 0 {
            while !read_line(stream)?.is_empty() {} // trailers
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        stream.read_exact(&mut body[start..])?;
        if !read_line(stream)?.is_empty() {
            return Err(HttpError::Bad(400, "chunk not followed by CRLF".into()));
        }
    }
}

/// Reads a CRLF-terminated line a byte at a time, so nothing past it is consumed.
fn read_line(stream: &mut TcpStream) -> Result<String, HttpError> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        line.push(byte[0]);
        if line.len() > 4096 {
            return Err(HttpError::Bad(400, "line too long".into()));
        }
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| HttpError::Bad(400, "line is not UTF-8".into()))
}

pub fn parse_head(bytes: &[u8]) -> Result<Request, HttpError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| HttpError::Bad(400, "request head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Bad(
            400,
            format!("bad request line {request_line:?}"),
        ));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || target.is_empty() {
        return Err(HttpError::Bad(
            400,
            format!("bad request line {request_line:?}"),
        ));
    }
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| HttpError::Bad(400, format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok(Request {
        method: method.into(),
        target: target.into(),
        version: version.into(),
        headers,
        body: Vec::new(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A complete response, serialised with a Content-Length.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        let mut r = Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        };
        if !content_type.is_empty() {
            r = r.with_header("Content-Type", content_type);
        }
        r
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The status line and headers, with the given Content-Length (which may lie on purpose).
    pub fn head_bytes(&self, content_length: usize, close: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {content_length}\r\n"));
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    pub fn to_bytes(&self, close: bool) -> Vec<u8> {
        let mut out = self.head_bytes(self.body.len(), close);
        out.extend_from_slice(&self.body);
        out
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_head() {
        let head =
            b"POST /?a=1 HTTP/1.1\r\nHost: x\r\nX-Amz-Target:  T \r\nconnection: close\r\n\r\n";
        let req = parse_head(head).unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path(), "/");
        assert_eq!(req.query(), "a=1");
        assert_eq!(req.header("x-amz-target"), Some("T"));
        assert!(req.wants_close());
    }

    #[test]
    fn rejects_a_bad_request_line() {
        assert!(parse_head(b"GARBAGE\r\n\r\n").is_err());
        assert!(parse_head(b"GET / SPDY/3\r\n\r\n").is_err());
        assert!(parse_head(b"GET / HTTP/1.1\r\nno colon\r\n\r\n").is_err());
    }

    #[test]
    fn keep_alive_rules() {
        let v10 = parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(v10.wants_close());
        let v11 = parse_head(b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n").unwrap();
        assert!(!v11.wants_close());
    }
}
