//! A workload that refuses to serve unless `entitle` handed it a token that verifies.
//!
//! Run it under `entitle run` (which sets ENTITLE_TOKEN and ENTITLE_NONCE):
//!
//! ```sh
//! entitle run -- guarded_service --product-code prod-abc123 --public-key-file product.pem
//! ```
//!
//! A real service compiles the key in (`include_str!`) instead of reading a path; the path keeps
//! this example usable with `entitle-mock`'s generated key. It serves one line per connection on
//! 127.0.0.1:PORT (default 8080; `--port 0` picks one and prints it), until killed.

use entitle_verify::{verify, Expected, PublicKey};
use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;

fn main() -> ExitCode {
    match check_entitlement() {
        Ok(product_code) => serve(&product_code),
        Err(why) => {
            eprintln!("guarded_service: refusing to serve: {why}");
            ExitCode::from(76)
        }
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn check_entitlement() -> Result<String, String> {
    let product_code = arg("--product-code").ok_or("--product-code is required")?;
    let key_file = arg("--public-key-file").ok_or("--public-key-file is required")?;
    let pem = std::fs::read_to_string(&key_file).map_err(|e| format!("{key_file}: {e}"))?;
    let key = PublicKey::from_pem(&pem)?;
    let token = std::env::var("ENTITLE_TOKEN")
        .map_err(|_| "no ENTITLE_TOKEN: not started by `entitle run`")?;
    let nonce = std::env::var("ENTITLE_NONCE").map_err(|_| "no ENTITLE_NONCE")?;
    let expected = Expected {
        product_code: &product_code,
        public_key_version: 1,
        nonce: &nonce,
    };
    verify(&token, &key, &expected).map_err(|e| e.to_string())?;
    Ok(product_code)
}

fn serve(product_code: &str) -> ExitCode {
    let port = arg("--port").unwrap_or_else(|| "8080".into());
    let listener = match TcpListener::bind(format!("127.0.0.1:{port}")) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("guarded_service: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::from(71);
        }
    };
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("serving {product_code} on {address}");
    let _ = std::io::stdout().flush();
    for mut stream in listener.incoming().flatten() {
        let _ = writeln!(stream, "entitled to {product_code}");
    }
    ExitCode::SUCCESS
}
