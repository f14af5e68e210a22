//! The listener: one thread per connection, several requests per connection.

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};

use crate::answer::{self, After, Reply, Signer};
use crate::aws::{self, AwsError};
use crate::cli::Options;
use crate::clock;
use crate::creds::{self, Credentials};
use crate::http::{self, HttpError, Request, Response};
use crate::keys;
use crate::log::{Record, RequestLog};
use crate::register::{self, TARGET};
use crate::script::{Mode, Script};
use crate::sigv4;

/// A start-up failure: the exit code and a one-line message.
#[derive(Debug)]
pub struct Fatal {
    pub code: u8,
    pub message: String,
}

fn usage_error(message: String) -> Fatal {
    Fatal { code: 64, message }
}

pub struct Server {
    signer: Signer,
    creds: Credentials,
    verify: bool,
    dispatch: Mutex<Dispatch>,
    log: RequestLog,
}

struct Dispatch {
    script: Script,
    bucket: Option<Bucket>,
}

/// Token bucket: `rate` per second, burst `rate` (at least 1).
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64) -> Bucket {
        Bucket {
            rate,
            tokens: rate.max(1.0),
            last: Instant::now(),
        }
    }

    fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate.max(1.0));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Loads or makes the key, writes the requested files, binds, prints the URL and serves forever.
pub fn run(opts: Options) -> Result<(), Fatal> {
    let key = match &opts.private_key {
        Some(path) => keys::load(path).map_err(usage_error)?,
        None => generate_key(opts.key_bits)?,
    };
    let signer = Signer::new(key).map_err(usage_error)?;
    if let Some(path) = &opts.write_public_key {
        keys::write(path, signer.public_pem()).map_err(usage_error)?;
    }
    if let Some(path) = &opts.write_private_key {
        let pem = keys::private_pem(signer.key()).map_err(usage_error)?;
        keys::write(path, &pem).map_err(usage_error)?;
    }
    let server = Arc::new(Server {
        signer,
        verify: opts.credentials.is_some(),
        creds: Credentials::new(opts.credentials.clone()),
        dispatch: Mutex::new(Dispatch {
            script: opts.script.clone(),
            bucket: opts.rate.map(Bucket::new),
        }),
        log: RequestLog::open(opts.request_log.as_deref()).map_err(usage_error)?,
    });
    let listener = TcpListener::bind(opts.listen).map_err(|e| Fatal {
        code: 1,
        message: format!("cannot listen on {}: {e}", opts.listen),
    })?;
    announce(&listener)?;
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let server = Arc::clone(&server);
                std::thread::spawn(move || server.serve(stream));
            }
            Err(e) => eprintln!("entitle-mock: accept failed: {e}"),
        }
    }
    Ok(())
}

fn generate_key(bits: usize) -> Result<rsa::PrivateKey, Fatal> {
    let started = Instant::now();
    let key = keys::generate(bits).map_err(|message| Fatal { code: 1, message })?;
    eprintln!(
        "entitle-mock: generated a {bits}-bit RSA key in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(key)
}

fn announce(listener: &TcpListener) -> Result<(), Fatal> {
    let addr = listener.local_addr().map_err(|e| Fatal {
        code: 1,
        message: format!("cannot read the bound address: {e}"),
    })?;
    let mut out = io::stdout().lock();
    writeln!(out, "http://{addr}")
        .and_then(|()| out.flush())
        .map_err(|e| Fatal {
            code: 1,
            message: format!("cannot write to stdout: {e}"),
        })
}

impl Server {
    fn serve(&self, mut stream: TcpStream) {
        loop {
            match http::peek_head(&stream) {
                Ok(Some((head, _))) if self.take_no_read(&head) => {
                    let mut record = Record::new("register", &head.method, TARGET);
                    record.answer = Mode::NoRead.name().into();
                    self.log.write(&record);
                    wait_for_peer_close(&stream);
                    return;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(HttpError::Io(_)) => return,
                Err(HttpError::Bad(status, msg)) => return refuse(stream, status, &msg),
            }
            let req = match http::read_request(&mut stream) {
                Ok(Some(req)) => req,
                Ok(None) | Err(HttpError::Io(_)) => return,
                Err(HttpError::Bad(status, msg)) => return refuse(stream, status, &msg),
            };
            let (reply, record) = self.dispatch(&req);
            self.log.write(&record);
            let close = req.wants_close();
            match reply {
                Reply::Normal(response) => {
                    if stream.write_all(&response.to_bytes(close)).is_err() || close {
                        return;
                    }
                }
                Reply::Raw(bytes, after) => return finish(stream, &bytes, after),
            }
        }
    }

    /// `no-read` must be decided before the request is read: take it only for a
    /// RegisterUsage head, when it is next in the script and the rate allows.
    fn take_no_read(&self, head: &Request) -> bool {
        if head.method != "POST" || head.header("x-amz-target") != Some(TARGET) {
            return false;
        }
        let mut d = self.dispatch.lock().unwrap_or_else(|e| e.into_inner());
        if d.script.peek() != Mode::NoRead {
            return false;
        }
        if let Some(bucket) = &mut d.bucket {
            if !bucket.try_take() {
                return false;
            }
        }
        d.script.take();
        true
    }

    /// The next script entry, or `None` when the request is over the rate.
    fn next_mode(&self) -> Option<Mode> {
        let mut d = self.dispatch.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = &mut d.bucket {
            if !bucket.try_take() {
                return None;
            }
        }
        Some(d.script.take())
    }

    fn dispatch(&self, req: &Request) -> (Reply, Record) {
        if req.method == "GET" && req.path().starts_with("/ecs/") {
            return self.ecs(req);
        }
        if req.method == "POST" && req.header("x-amz-target").is_none() {
            if let Some(form) = sts_form(req) {
                return self.sts(req, &form);
            }
        }
        if req.header("x-amz-target").is_some() {
            return self.register(req);
        }
        let mut record = Record::new("other", &req.method, req.path());
        let error = aws::unknown_operation();
        record.answer = error.name.into();
        (Reply::Normal(error.response()), record)
    }

    fn register(&self, req: &Request) -> (Reply, Record) {
        let target = req.header("x-amz-target").unwrap_or_default();
        let mut record = Record::new("register", &req.method, target);
        fill_usage_fields(&mut record, &req.body);
        let expected = sigv4::Expected {
            access_key: &self.creds.access_key,
            secret: &self.creds.secret,
            session_token: &self.creds.session_token,
            now: clock::now_secs(),
        };
        let auth = sigv4::check(req, self.verify.then_some(&expected));
        record.sigv4 = Some(auth.verdict.clone());
        record.access_key = auth.access_key.clone();
        record.security_token = auth.security_token;
        if let Some(region) = &auth.region {
            record.extra.insert("region".into(), json!(region));
        }
        let result = self.register_checked(req, target, auth.error);
        record.answer = match &result {
            Ok((mode, _)) => mode.name().into(),
            Err(e) => e.name.into(),
        };
        let reply = match result {
            Ok((_, reply)) => reply,
            Err(e) => Reply::Normal(e.response()),
        };
        (reply, record)
    }

    fn register_checked(
        &self,
        req: &Request,
        target: &str,
        auth_error: Option<AwsError>,
    ) -> Result<(Mode, Reply), AwsError> {
        let content_type = req.header("content-type").unwrap_or_default();
        let json_1_1 = content_type.split(';').next().unwrap_or("").trim() == aws::JSON_1_1;
        if req.method != "POST" || target != TARGET || !json_1_1 {
            return Err(aws::unknown_operation());
        }
        if let Some(e) = auth_error {
            return Err(e);
        }
        let usage = register::parse_body(&req.body)?;
        let mode = self
            .next_mode()
            .ok_or_else(|| AwsError::new(400, "ThrottlingException", "Rate exceeded"))?;
        Ok((
            mode,
            answer::answer(mode, &usage, &self.signer, clock::now_secs()),
        ))
    }

    fn ecs(&self, req: &Request) -> (Reply, Record) {
        let mut record = Record::new("ecs", &req.method, req.path());
        record.answer = "credentials".into();
        record.access_key = Some(self.creds.access_key.clone());
        record.security_token = true;
        let authorization = req.header("authorization").is_some();
        record
            .extra
            .insert("authorization".into(), json!(authorization));
        let response = self.creds.ecs_response(clock::now_secs());
        (Reply::Normal(response), record)
    }

    fn sts(&self, req: &Request, form: &[(String, String)]) -> (Reply, Record) {
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let mut record = Record::new("sts", &req.method, req.path());
        let action = field("Action").unwrap_or_default();
        let role_arn = field("RoleArn");
        let token_present = field("WebIdentityToken").is_some_and(|t| !t.is_empty());
        record.extra.insert("action".into(), json!(action));
        record.extra.insert("roleArn".into(), json!(role_arn));
        record
            .extra
            .insert("webIdentityToken".into(), json!(token_present));
        let (response, answer) = if action != "AssumeRoleWithWebIdentity" {
            let msg = format!("Could not find operation {action} for version 2011-06-15");
            (
                creds::sts_error(400, "InvalidAction", &msg),
                "InvalidAction",
            )
        } else if role_arn.is_none_or(str::is_empty) || !token_present {
            let msg = "1 validation error detected: RoleArn and WebIdentityToken must not be null";
            (
                creds::sts_error(400, "ValidationError", msg),
                "ValidationError",
            )
        } else {
            record.access_key = Some(self.creds.access_key.clone());
            record.security_token = true;
            let session = field("RoleSessionName").unwrap_or("entitle-mock");
            let response =
                self.creds
                    .sts_response(role_arn.unwrap_or_default(), session, clock::now_secs());
            (response, "credentials")
        };
        record.answer = answer.into();
        (Reply::Normal(response), record)
    }
}

/// The form fields of an STS-style query request, if the body is one (it has an Action).
fn sts_form(req: &Request) -> Option<Vec<(String, String)>> {
    let body = std::str::from_utf8(&req.body).ok()?;
    let form = crate::util::parse_form(body);
    form.iter().any(|(k, _)| k == "Action").then_some(form)
}

/// Logs whatever the body says, even when it fails validation.
fn fill_usage_fields(record: &mut Record, body: &[u8]) {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        let get = |k: &str| map.get(k).cloned().unwrap_or(Value::Null);
        record.product_code = get("ProductCode");
        record.public_key_version = get("PublicKeyVersion");
        record.nonce = get("Nonce");
    }
}

fn refuse(mut stream: TcpStream, status: u16, message: &str) {
    eprintln!("entitle-mock: bad HTTP request ({status}): {message}");
    let response = Response::new(status, "text/plain", format!("{message}\n"));
    let _ = stream.write_all(&response.to_bytes(true));
}

fn finish(mut stream: TcpStream, bytes: &[u8], after: After) {
    if !bytes.is_empty() && stream.write_all(bytes).is_err() {
        return;
    }
    match after {
        After::Close => {
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = io::copy(&mut stream, &mut io::sink());
        }
        After::Hold => {
            let _ = io::copy(&mut stream, &mut io::sink());
        }
        After::Reset => reset(stream),
    }
}

/// Closes with RST instead of FIN (SO_LINGER with a zero timeout).
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is owned by `stream` and open; the option value is a `linger` of the
    // size passed.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

/// Waits, without reading, until the peer closes its side.
#[cfg(target_os = "linux")]
fn wait_for_peer_close(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut pfd, 1, -1) };
        if n > 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Without POLLRDHUP the peer's close cannot be seen without reading: hold for a while.
#[cfg(not(target_os = "linux"))]
fn wait_for_peer_close(_stream: &TcpStream) {
    std::thread::sleep(std::time::Duration::from_secs(600));
}
