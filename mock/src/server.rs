//! The listener: one thread per connection, several requests per connection.

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{json, Value};

use crate::answer::{self, After, Reply, Signer};
use crate::aws::{self, json_response, AwsError};
use crate::cli::Options;
use crate::clock::{self, Clock};
use crate::control::{self, Control};
use crate::creds::{self, Credentials};
use crate::http::{self, HttpError, Request, Response};
use crate::keys;
use crate::lane::Lane;
use crate::log::{Record, RequestLog};
use crate::meter::{self, MeterRequest};
use crate::meter_answer::MeterMode;
use crate::meter_store::{Outcome, Policy, Store, Stored};
use crate::recipe::recipe;
use crate::register;
use crate::script::{Mode, Named};
use crate::signals;
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

fn io_fatal(what: &str, e: io::Error) -> Fatal {
    Fatal {
        code: 1,
        message: format!("{what}: {e}"),
    }
}

pub struct Server {
    signer: Signer,
    creds: Credentials,
    verify: bool,
    clock: Clock,
    dispatch: Mutex<Dispatch>,
    policy: Policy,
    records: Mutex<Store>,
    log: RequestLog,
}

struct Dispatch {
    register: Lane<Mode>,
    meter: Lane<MeterMode>,
}

/// Takes a lock even if a connection thread panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Loads or makes the key, writes the requested files, binds, prints the URL, serves until
/// SIGTERM or SIGINT, then prints the MeterUsage totals.
pub fn run(opts: Options) -> Result<(), Fatal> {
    let signer = make_signer(&opts)?;
    let server = Arc::new(Server {
        signer,
        verify: opts.credentials.is_some(),
        creds: Credentials::new(opts.credentials.clone()),
        clock: Clock::skewed(opts.clock_skew_ms),
        dispatch: Mutex::new(Dispatch {
            register: Lane::new(opts.script.clone(), opts.rate),
            meter: Lane::new(opts.meter_script.clone(), opts.meter_rate),
        }),
        policy: opts.metering.clone(),
        records: Mutex::new(Store::default()),
        log: RequestLog::open(opts.request_log.as_deref()).map_err(usage_error)?,
    });
    let listener = TcpListener::bind(opts.listen)
        .map_err(|e| io_fatal(&format!("cannot listen on {}", opts.listen), e))?;
    let url = announce(&listener)?;
    eprintln!("{}", recipe(&url, &opts));
    let shutdown = signals::arm();
    let acceptor = Arc::clone(&server);
    std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || acceptor.accept(listener))
        .map_err(|e| io_fatal("cannot start the accept thread", e))?;
    shutdown.wait();
    server.print_totals();
    Ok(())
}

fn make_signer(opts: &Options) -> Result<Signer, Fatal> {
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
    Ok(signer)
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

/// Prints `http://HOST:PORT` as the first and only stdout line; gives it back.
fn announce(listener: &TcpListener) -> Result<String, Fatal> {
    let addr = listener
        .local_addr()
        .map_err(|e| io_fatal("cannot read the bound address", e))?;
    let url = format!("http://{addr}");
    let mut out = io::stdout().lock();
    writeln!(out, "{url}")
        .and_then(|()| out.flush())
        .map_err(|e| io_fatal("cannot write to stdout", e))?;
    Ok(url)
}

impl Server {
    fn accept(self: Arc<Self>, listener: TcpListener) {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    let server = Arc::clone(&self);
                    std::thread::spawn(move || server.serve(stream));
                }
                Err(e) => eprintln!("entitle-mock: accept failed: {e}"),
            }
        }
    }

    fn serve(&self, mut stream: TcpStream) {
        loop {
            match http::peek_head(&stream) {
                Ok(Some((head, _))) => {
                    if let Some(record) = self.take_no_read(&head) {
                        self.log.write(&record);
                        wait_for_peer_close(&stream);
                        return;
                    }
                }
                Ok(None) | Err(HttpError::Io(_)) => return,
                Err(HttpError::Bad(status, msg)) => return self.refuse(stream, status, &msg),
            }
            let req = match http::read_request(&mut stream) {
                Ok(Some(req)) => req,
                Ok(None) | Err(HttpError::Io(_)) => return,
                Err(HttpError::Bad(status, msg)) => return self.refuse(stream, status, &msg),
            };
            let (reply, record) = self.dispatch(&req);
            self.log.write(&record);
            let close = req.wants_close();
            match reply {
                Reply::Normal(response) => {
                    let bytes = self.dated(response).to_bytes(close);
                    if stream.write_all(&bytes).is_err() || close {
                        return;
                    }
                }
                Reply::Raw(bytes, after) => return finish(stream, &bytes, after),
            }
        }
    }

    /// Adds the Date header, from the mock's (possibly skewed) clock, as AWS does.
    fn dated(&self, response: Response) -> Response {
        response.with_header("Date", &clock::imf_fixdate(self.clock.now_secs()))
    }

    fn refuse(&self, mut stream: TcpStream, status: u16, message: &str) {
        eprintln!("entitle-mock: bad HTTP request ({status}): {message}");
        let response = self.dated(Response::new(status, "text/plain", format!("{message}\n")));
        let _ = stream.write_all(&response.to_bytes(true));
    }

    /// `no-read` must be decided before the request is read: take it only for a RegisterUsage
    /// or MeterUsage head, when it is next in that script and the rate allows.
    fn take_no_read(&self, head: &Request) -> Option<Record> {
        if head.method != "POST" {
            return None;
        }
        let mut d = lock(&self.dispatch);
        let (kind, target) = match head.header("x-amz-target")? {
            register::TARGET if d.register.take_if_next(Mode::NoRead) => {
                ("register", register::TARGET)
            }
            meter::TARGET if d.meter.take_if_next(MeterMode::NoRead) => ("meter", meter::TARGET),
            _ => return None,
        };
        let mut record = Record::new(kind, &head.method, target);
        record.answer = Mode::NoRead.name().into();
        Some(record)
    }

    fn dispatch(&self, req: &Request) -> (Reply, Record) {
        if req.path().starts_with(control::PREFIX) {
            return self.control(req);
        }
        if req.method == "GET" && req.path().starts_with("/ecs/") {
            return self.ecs(req);
        }
        if req.method == "POST" && req.header("x-amz-target").is_none() {
            if let Some(form) = sts_form(req) {
                return self.sts(req, &form);
            }
        }
        match req.header("x-amz-target") {
            Some(meter::TARGET) => return self.meter(req),
            Some(_) => return self.register(req),
            None => {}
        }
        let mut record = Record::new("other", &req.method, req.path());
        let error = aws::unknown_operation();
        record.answer = error.name.into();
        (Reply::Normal(error.response()), record)
    }

    /// Checks SigV4 (fully with --credentials, else its form and time) and notes the outcome.
    fn authenticate(&self, req: &Request, record: &mut Record) -> Option<AwsError> {
        let expected = sigv4::Expected {
            access_key: &self.creds.access_key,
            secret: &self.creds.secret,
            session_token: &self.creds.session_token,
        };
        let now = self.clock.now_secs();
        let auth = sigv4::check(req, self.verify.then_some(&expected), now);
        record.sigv4 = Some(auth.verdict.clone());
        record.access_key = auth.access_key.clone();
        record.security_token = auth.security_token;
        if let Some(region) = &auth.region {
            record.extra.insert("region".into(), json!(region));
        }
        auth.error
    }

    fn register(&self, req: &Request) -> (Reply, Record) {
        let target = req.header("x-amz-target").unwrap_or_default();
        let mut record = Record::new("register", &req.method, target);
        fill_usage_fields(&mut record, &req.body);
        let auth_error = self.authenticate(req, &mut record);
        let result = self.register_checked(req, target, auth_error);
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
        if target != register::TARGET || !is_json_post(req) {
            return Err(aws::unknown_operation());
        }
        if let Some(e) = auth_error {
            return Err(e);
        }
        let usage = register::parse_body(&req.body)?;
        let mode = lock(&self.dispatch)
            .register
            .next_mode()
            .ok_or_else(throttled)?;
        let now = self.clock.now_secs();
        Ok((mode, answer::answer(mode, &usage, &self.signer, now)))
    }

    fn meter(&self, req: &Request) -> (Reply, Record) {
        let mut record = Record::new("meter", &req.method, meter::TARGET);
        fill_meter_fields(&mut record, &req.body);
        let auth_error = self.authenticate(req, &mut record);
        let (answer, reply) = match self.meter_checked(req, auth_error, &mut record) {
            Ok(answered) => answered,
            Err(e) => (e.name.to_string(), Reply::Normal(e.response())),
        };
        record.answer = answer;
        (reply, record)
    }

    /// Gives the answer's name for the log, and the reply.
    fn meter_checked(
        &self,
        req: &Request,
        auth_error: Option<AwsError>,
        record: &mut Record,
    ) -> Result<(String, Reply), AwsError> {
        if !is_json_post(req) {
            return Err(aws::unknown_operation());
        }
        if let Some(e) = auth_error {
            return Err(e);
        }
        let usage = meter::parse_body(&req.body)?;
        let mode = lock(&self.dispatch)
            .meter
            .next_mode()
            .ok_or_else(throttled)?;
        if let Some(reply) = mode.scripted_reply(self.policy.period_ms) {
            return Ok((mode.name().into(), reply));
        }
        let outcome = self.record_usage(&usage)?;
        let id = match outcome {
            Outcome::DryRun if mode == MeterMode::DryRun200 => {
                return Ok((
                    mode.name().into(),
                    Reply::Normal(json_response(200, &json!({}))),
                ));
            }
            Outcome::DryRun => return Err(meter::dry_run_operation()),
            Outcome::Created(stored) => {
                self.print_record(&stored);
                record.extra.insert("newRecord".into(), json!(true));
                stored.id
            }
            Outcome::Repeated(id) => {
                record.extra.insert("newRecord".into(), json!(false));
                id
            }
        };
        record.extra.insert("recordId".into(), json!(id));
        let body = json!({ "MeteringRecordId": id });
        Ok(("ok".into(), Reply::Normal(json_response(200, &body))))
    }

    fn record_usage(&self, usage: &MeterRequest) -> Result<Outcome, AwsError> {
        let now = self.clock.now_f64();
        lock(&self.records).meter(usage, &self.policy, now)
    }

    fn print_record(&self, stored: &Stored) {
        eprintln!(
            "entitle-mock: MeterUsage {} {} {} record {}",
            clock::rfc3339_ms(self.policy.start_ms(stored.period)),
            stored.dimension,
            stored.quantity,
            stored.id
        );
    }

    fn print_totals(&self) {
        let totals = lock(&self.records).totals(&self.policy);
        let period = crate::duration::format(self.policy.period_ms);
        if totals.is_empty() {
            eprintln!("entitle-mock: stopping; no MeterUsage records");
            return;
        }
        eprintln!("entitle-mock: stopping; MeterUsage totals per {period} period:");
        for (start, dimension, quantity) in totals {
            eprintln!("entitle-mock: MeterUsage total {start} {dimension} {quantity}");
        }
    }

    fn control(&self, req: &Request) -> (Reply, Record) {
        let mut record = Record::new("control", &req.method, req.path());
        let response = match control::route(req) {
            Control::ListMeter => {
                record.answer = "meter".into();
                control::listing(&lock(&self.records), &self.policy)
            }
            Control::SetMeterAnswer(script, text) => {
                lock(&self.dispatch).meter.script = script;
                record.answer = "meter-answer".into();
                record.extra.insert("meterAnswer".into(), json!(text));
                control::replaced(&text)
            }
            Control::Refuse(response) => {
                record.answer = format!("refused-{}", response.status);
                response
            }
        };
        (Reply::Normal(response), record)
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
        let response = self.creds.ecs_response(self.clock.now_secs());
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
            let response = self.creds.sts_response(
                role_arn.unwrap_or_default(),
                session,
                self.clock.now_secs(),
            );
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

fn is_json_post(req: &Request) -> bool {
    let content_type = req.header("content-type").unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    req.method == "POST" && media_type == aws::JSON_1_1
}

fn throttled() -> AwsError {
    AwsError::new(400, "ThrottlingException", "Rate exceeded")
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

/// Logs whatever the body says, even when it fails validation.
fn fill_meter_fields(record: &mut Record, body: &[u8]) {
    let map = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        _ => Default::default(),
    };
    let get = |k: &str| map.get(k).cloned().unwrap_or(Value::Null);
    record.product_code = get("ProductCode");
    for (field, member) in [
        ("dimension", "UsageDimension"),
        ("quantity", "UsageQuantity"),
        ("timestamp", "Timestamp"),
        ("dryRun", "DryRun"),
    ] {
        record.extra.insert(field.into(), get(member));
    }
    record.extra.insert("recordId".into(), Value::Null);
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
