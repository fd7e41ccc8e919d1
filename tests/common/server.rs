//! A small HTTP/1.1 file server on 127.0.0.1 with fault injection, standing in for a mirror.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and no body.
    Status(u16),
    /// Send the right Content-Length but close after this many body bytes.
    Truncate(usize),
}

#[derive(Clone)]
pub struct Server {
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
    faults: Arc<Mutex<HashMap<String, VecDeque<Fault>>>>,
}

impl Server {
    /// Serves `root` until the test process exits.
    pub fn start(root: PathBuf) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = Server {
            url,
            requests: Arc::default(),
            faults: Arc::default(),
        };
        let s = server.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                let root = root.clone();
                std::thread::spawn(move || s.handle(stream, &root));
            }
        });
        server
    }

    /// Queues a fault for the next request of `path` (URL path, leading slash).
    pub fn fault(&self, path: &str, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .push_back(fault);
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn handle(&self, stream: TcpStream, root: &std::path::Path) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut stream = stream;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut range: Option<(u64, Option<u64>)> = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    let v = v.trim();
                    let (a, b) = v.split_once('-').unwrap();
                    range = Some((a.parse().unwrap_or(0), b.parse().ok()));
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            self.requests.lock().unwrap().push(path.clone());
            let fault = self
                .faults
                .lock()
                .unwrap()
                .get_mut(&path)
                .and_then(|q| q.pop_front());
            let mut file = root.join(path.split('?').next().unwrap_or("").trim_start_matches('/'));
            if path.ends_with('/') {
                file = file.join("index.html");
            }
            match (fault, std::fs::read(&file)) {
                (Some(Fault::Status(code)), _) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\n\r\n"
                    );
                }
                (Some(Fault::Truncate(n)), Ok(data)) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        data.len()
                    );
                    let _ = stream.write_all(&data[..n.min(data.len())]);
                    return;
                }
                (_, Ok(data)) if line.starts_with("HEAD ") => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                        data.len()
                    );
                }
                (_, Ok(data)) => {
                    if let Some((start, end)) = range {
                        let end = end
                            .unwrap_or(data.len() as u64 - 1)
                            .min(data.len() as u64 - 1);
                        let body = &data[start as usize..=end as usize];
                        let _ = write!(
                            stream,
                            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{end}/{}\r\n\r\n",
                            body.len(),
                            data.len()
                        );
                        let _ = stream.write_all(body);
                    } else {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                            data.len()
                        );
                        let _ = stream.write_all(&data);
                    }
                }
                (_, Err(_)) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                    );
                }
            }
            let _ = stream.flush();
            let _ = reader.get_mut().read(&mut []);
        }
    }
}
